"""Depth rendering by ray casting: exact depth, instance ids and OpenCV pixel-centre conventions."""

import numpy as np
import pytest
import trimesh

from scenes import INTRINSICS
from pose_perception.core.camera import backproject
from pose_perception.objects.render import RenderError, render_depth


def _box(size=0.1):
    m = trimesh.creation.box(extents=[size, size, size])
    return m.vertices, m.faces


def test_box_face_depth_is_exact_and_backprojects_onto_the_face():
    T = np.eye(4)
    T[:3, 3] = [0.02, -0.01, 0.5]
    depth, ids = render_depth([(_box(), T)], INTRINSICS)
    assert depth.shape == (480, 640) and ids.shape == (480, 640)
    hit = np.isfinite(depth)
    assert np.allclose(depth[hit], 0.45, atol=1e-5)  # front face at z = 0.5 - 0.05
    assert np.all(ids[hit] == 0) and np.all(ids[~hit] == -1)
    v, u = np.nonzero(hit)
    pts = backproject(np.stack([u, v], 1).astype(float), depth[hit], INTRINSICS.K)
    # pixel centres: every back-projected point lies inside the face, and the extreme ones within 1 px of its edge
    px = 0.45 / INTRINSICS.fx
    assert pts[:, 0].min() >= -0.03 - 1e-6 and pts[:, 0].max() <= 0.07 + 1e-6
    assert pts[:, 0].min() < -0.03 + px and pts[:, 0].max() > 0.07 - px


def test_nearer_object_wins_and_ids_follow_list_order():
    T_far, T_near = np.eye(4), np.eye(4)
    T_far[:3, 3] = [0, 0, 1.0]
    T_near[:3, 3] = [0, 0, 0.6]
    depth, ids = render_depth([(_box(0.3), T_far), (_box(0.05), T_near)], INTRINSICS)
    assert ids[240, 320] == 1 and depth[240, 320] == pytest.approx(0.575, abs=1e-5)
    assert ids[240, 320 + 100] == 0 and depth[240, 420] == pytest.approx(0.85, abs=1e-5)


def test_roi_rendering_matches_the_full_image():
    T = np.eye(4)
    T[:3, 3] = [0, 0, 0.5]
    full, _ = render_depth([(_box(), T)], INTRINSICS)
    roi, _ = render_depth([(_box(), T)], INTRINSICS, roi_xyxy=(250, 200, 400, 300))
    assert np.array_equal(np.isnan(roi), np.isnan(full[200:300, 250:400]))
    assert np.allclose(roi, full[200:300, 250:400], equal_nan=True)


def test_bad_inputs_raise_render_error():
    with pytest.raises(RenderError):
        render_depth([(_box(), np.full((4, 4), np.nan))], INTRINSICS)
    with pytest.raises(RenderError):
        render_depth([((np.zeros((3, 3)), np.zeros((0, 3), int)), np.eye(4))], INTRINSICS)
    with pytest.raises(RenderError):
        render_depth([(_box(), np.eye(4))], INTRINSICS, roi_xyxy=(10, 10, 10, 20))
