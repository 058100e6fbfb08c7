"""The demo's annotated PNGs: skeletons on the photos, object mesh outlines on the RGB, radar top view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pose_perception.core.camera import project
from pose_perception.core.frames import transform_points
from pose_perception.core.keypoints import COCO_BODY_17, COCO_WHOLEBODY_133


def _last_per_stamp(results: list[tuple[float, Any]]) -> list[Any]:
    return [m for _, m in results]


def _frame_for(msg, part, stream):
    """The input frame a result answers: its header stamp is the stamp the demo published that frame with."""
    stamp = round(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, 6)
    stamps = sorted(part.published)
    k = stamps.index(stamp) if stamp in part.published else len(stamps) - 1
    return stream.frames[stream.index_of_publication(k)]


def write_demo_pictures(out: Path, parts: dict, streams: dict) -> list[Path]:
    import cv2

    from pose_perception.core.overlay import draw_humans
    from pose_perception.ros.conversions import msg_to_humans, msg_to_objects

    written = []
    if "human" in parts and parts["human"].results:
        stream = streams["human"]
        done = set()
        for msg in reversed(_last_per_stamp(parts["human"].results)):
            frame = _frame_for(msg, parts["human"], stream)
            k = next(i for i, f in enumerate(stream.frames) if f is frame)
            if k in done:
                continue
            done.add(k)
            img = draw_humans(frame.rgb, msg_to_humans(msg), COCO_WHOLEBODY_133)
            path = out / f"human_{k}.png"
            cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            written.append(path)
    if "objects" in parts and parts["objects"].results:
        import trimesh

        stream = streams["objects"]
        msgs = _last_per_stamp(parts["objects"].results)
        msg = next((m for m in reversed(msgs) if m.objects), msgs[-1])
        img = _frame_for(msg, parts["objects"], stream).rgb.copy()
        for o in msg_to_objects(msg):
            verts = np.asarray(trimesh.load(o.mesh_uri.removeprefix("file://"), force="mesh").vertices)
            uv = project(transform_points(o.T_cam_obj, verts), stream.intrinsics.K)
            uv = uv[np.isfinite(uv).all(axis=1)].astype(np.int32)
            if len(uv) >= 3:
                hull = cv2.convexHull(uv)
                cv2.polylines(img, [hull], True, (0, 255, 0), 2)
                x, y = hull[:, 0].min(axis=0)
                cv2.putText(
                    img,
                    f"{o.name} {o.score:.2f}",
                    (int(x), max(12, int(y) - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.5,
                    (0, 255, 0),
                    1,
                    cv2.LINE_AA,
                )
        path = out / "objects.png"
        cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        written.append(path)
    if "radar" in parts and parts["radar"].results:
        written.append(_radar_top_view(out / "radar_topview.png", parts["radar"], streams["radar"]))
    return written


def _radar_top_view(path: Path, part, stream, mars_dir: Path | None = None) -> Path:
    """x forward (up in the picture), y left, metres, all in the radar frame: the points of the answered frame and
    the four before it, the estimated skeletons, and the simulator's ground truth (dashed); beside it a REAL panel
    (a recorded MARS frame through the same pipeline, Kinect truth dashed) when the MARS recordings are present."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pose_perception.ros.conversions import msg_to_humans

    _, msg = part.results[-1]
    stamp = round(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, 6)
    stamps = sorted(part.published)
    k = stamps.index(stamp) if stamp in part.published else len(stamps) - 1
    n = len(stream.points)
    pts = np.concatenate([stream.points[(k - j) % n] for j in range(5)])
    real = real_radar_frame(mars_dir)
    fig, axes = plt.subplots(1, 2 if real else 1, figsize=(12 if real else 6, 6), dpi=100, squeeze=False)
    ax = axes[0, 0]
    _draw_top_view(
        ax,
        pts,
        stream.joints_true[k % n],
        [h.keypoints_3d[:17] for h in msg_to_humans(msg)],
        [h.track_id for h in msg_to_humans(msg)],
        "radar points (5 frames)",
    )
    ax.set_title(f"SYNTHETIC (dashed: simulator truth), frame {k % n}")
    if real:
        ax = axes[0, 1]
        _draw_top_view(
            ax, real["points"], real["truth"][None], real["estimates"], real["ids"], "radar points (4 frames)"
        )
        ax.set_title(f"REAL: {real['name']} (dashed: Kinect)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _draw_top_view(ax, points: np.ndarray, truths, estimates, ids, label: str) -> None:
    ax.scatter(-points[:, 1], points[:, 0], s=4, c="0.6", label=label)
    for joints in truths:
        for a, b in COCO_BODY_17.edges:
            ax.plot(-joints[[a, b], 1], joints[[a, b], 0], "--", c="0.3", lw=1)
    for kp, track_id in zip(estimates, ids):
        for a, b in COCO_BODY_17.edges:
            if np.isfinite(kp[[a, b]]).all():
                ax.plot(-kp[[a, b], 1], kp[[a, b], 0], "-", lw=2)
        ax.text(-kp[11, 1], kp[11, 0], f" id {track_id}")
    ax.plot([0], [0], "k^", ms=8)
    ax.set_xlabel("-y (m, right of the radar)")
    ax.set_ylabel("x (m, forward)")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=8)


def real_radar_frame(
    mars_dir: Path | None = None, subject: int = 1, split: str = "test", frame: int = 400, weights: str | None = None
) -> dict | None:
    """A recorded MARS frame (read at run time, never copied) through the radar pipeline with the shipped weights
    trained on the real sensor (weights None: those): points of its 4-frame window, Kinect truth (17, 3),
    estimates, ids, all REP-103. None when the data is absent."""
    from pose_perception.evaluation.radar import mars
    from pose_perception.radar.network import MARS_WEIGHTS
    from pose_perception.radar.pipeline import RadarPipelineConfig, RadarPosePipeline

    root = Path(mars_dir) if mars_dir else mars.default_mars_dir()
    try:
        rec = mars.read_recording(root, subject, split, "woutlier")
    except mars.MarsDataError:
        return None
    frame = min(frame, len(rec) - 1)
    if weights is None and MARS_WEIGHTS.is_file():
        weights = str(MARS_WEIGHTS)
    pipe = RadarPosePipeline(
        RadarPipelineConfig(
            weights_path=weights, device="cpu", radar_height_m=mars.radar_height_from_skeletons(rec.kinect_m)
        )
    )
    humans = []
    for k in range(max(0, frame - 60), frame + 1):  # 6 s before it: the tracker confirms, the clutter map fills
        humans = pipe.process(float(rec.stamps_s[k]), rec.frames[k])
    pts = np.concatenate(rec.frames[max(0, frame - 3) : frame + 1])
    return {
        "name": f"{rec.name} frame {frame}\n(MARS, MIT licence; in the MARS weights' training data)",
        "points": pts,
        "truth": rec.coco17_m[frame],
        "estimates": [h.keypoints_3d[:17] for h in humans],
        "ids": [h.track_id for h in humans],
    }
