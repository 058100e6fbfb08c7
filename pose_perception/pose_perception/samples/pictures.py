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
                cv2.putText(img, f"{o.name} {o.score:.2f}", (int(x), max(12, int(y) - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                            (0, 255, 0), 1, cv2.LINE_AA)
        path = out / "objects.png"
        cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        written.append(path)
    if "radar" in parts and parts["radar"].results:
        written.append(_radar_top_view(out / "radar_topview.png", parts["radar"], streams["radar"]))
    return written


def _radar_top_view(path: Path, part, stream) -> Path:
    """x forward (up in the picture), y left, metres: the points of the answered frame and the four before it,
    the estimated skeletons, and the simulator's ground truth (dashed)."""
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
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    ax.scatter(-pts[:, 1], pts[:, 0], s=4, c="0.6", label="radar points (5 frames)")
    for joints in stream.joints_true[k % n]:
        for a, b in COCO_BODY_17.edges:
            ax.plot(-joints[[a, b], 1], joints[[a, b], 0], "--", c="0.3", lw=1)
    for h in msg_to_humans(msg):
        kp = h.keypoints_3d[:17]
        for a, b in COCO_BODY_17.edges:
            if np.isfinite(kp[[a, b]]).all():
                ax.plot(-kp[[a, b], 1], kp[[a, b], 0], "-", lw=2)
        ax.text(-kp[11, 1], kp[11, 0], f" id {h.track_id}")
    ax.set_xlabel("-y (m, right)")
    ax.set_ylabel("x (m, forward)")
    ax.set_aspect("equal")
    ax.set_title(f"radar top view, SYNTHETIC data (dashed: simulator truth), frame {k % n}")
    ax.legend(loc="upper right", fontsize=8)
    fig.savefig(path)
    plt.close(fig)
    return path
