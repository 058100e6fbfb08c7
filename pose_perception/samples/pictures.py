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


def write_demo_pictures(out: Path, parts: dict, streams: dict) -> list[Path]:
    import cv2

    from pose_perception.core.overlay import draw_humans
    from pose_perception.ros.conversions import msg_to_humans, msg_to_objects

    written = []
    if "human" in parts and parts["human"].results:
        stream = streams["human"]
        # The photo each result belongs to: frames alternate, so match by people count on the frame's content.
        done = set()
        for msg in reversed(_last_per_stamp(parts["human"].results)):
            humans = msg_to_humans(msg)
            k = 1 if len(humans) > 1 else 0
            if k in done:
                continue
            done.add(k)
            img = draw_humans(stream.frames[k].rgb, humans, COCO_WHOLEBODY_133)
            path = out / f"human_{k}.png"
            cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            written.append(path)
    if "objects" in parts and parts["objects"].results:
        from pose_perception.objects.synthetic import load_eval_object

        stream = streams["objects"]
        msgs = _last_per_stamp(parts["objects"].results)
        msg = next((m for m in reversed(msgs) if m.objects), msgs[-1])
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        img = stream.frames[-1].rgb.copy()
        for o in msg_to_objects(msg):
            verts = load_eval_object(o.name).vertices_m
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
        del stamp
    if "radar" in parts and parts["radar"].results:
        written.append(_radar_top_view(out / "radar_topview.png", parts["radar"].results, streams["radar"]))
    return written


def _radar_top_view(path: Path, results, stream) -> Path:
    """x forward (up in the picture), y left, metres; points of the frame and estimated skeletons."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pose_perception.ros.conversions import msg_to_humans

    _, msg = results[-1]
    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    humans = msg_to_humans(msg)
    pts = np.concatenate(stream.points[-5:]) if stream.points else np.zeros((0, 5))
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    ax.scatter(-pts[:, 1], pts[:, 0], s=4, c="0.6", label="radar points (last 5 frames)")
    for h in humans:
        k = h.keypoints_3d[:17]
        for a, b in COCO_BODY_17.edges:
            if np.isfinite(k[[a, b]]).all():
                ax.plot(-k[[a, b], 1], k[[a, b], 0], "-", lw=2)
        ax.text(-k[11, 1], k[11, 0], f" id {h.track_id}")
    ax.set_xlabel("-y (m, right)")
    ax.set_ylabel("x (m, forward)")
    ax.set_aspect("equal")
    ax.set_title(f"radar top view (SYNTHETIC data), t={stamp:.2f}")
    ax.legend(loc="upper right", fontsize=8)
    fig.savefig(path)
    plt.close(fig)
    return path
