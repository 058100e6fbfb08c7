"""3D lifting: robust depth look-up, world-landmark placement, bone clean-up, body frame."""

import numpy as np
import pytest

from pose_perception.core import keypoints as kp
from pose_perception.core.camera import project
from pose_perception.core.frames import body_frame  # used on lifted skeletons: tested here on one
from pose_perception.human.lifting import (
    DepthSizeError,
    LiftingError,
    enforce_bone_lengths,
    lift_with_depth,
    lift_with_world_landmarks,
)

K = np.array([[525.0, 0.0, 319.5], [0.0, 525.0, 239.5], [0.0, 0.0, 1.0]])
W, H = 640, 480


def _scene(person_z=2.0, wall_z=4.0):
    """A 'person' box (x 200-400, y 100-400) at person_z in front of a wall at wall_z (test-made depth)."""
    depth = np.full((H, W), wall_z, dtype=np.float32)
    depth[100:400, 200:400] = person_z
    return depth


def _kp(points_uv):
    uv = np.full((133, 2), np.nan, dtype=np.float32)
    conf = np.zeros(133, dtype=np.float32)
    for i, p in points_uv.items():
        uv[i] = p
        conf[i] = 0.9
    return uv, conf


def test_keypoint_on_person_gets_its_depth_back_projected():
    uv, conf = _kp({0: (300.0, 200.0), 5: (250.0, 300.0), 11: (350.0, 350.0)})
    pts, c = lift_with_depth(uv, conf, _scene(), K, add_surface_offset=False)
    np.testing.assert_allclose(pts[[0, 5, 11], 2], 2.0, atol=1e-6)
    np.testing.assert_allclose(project(pts[[0]].astype(np.float64), K), uv[[0]], atol=1e-3)
    assert np.all(c[[0, 5, 11]] > 0.8)
    assert np.all(np.isnan(pts[1])) and c[1] == 0.0


def test_surface_offset_moves_joints_behind_the_skin():
    uv, conf = _kp({11: (350.0, 350.0), 0: (300.0, 150.0), 5: (250.0, 300.0)})
    pts, _ = lift_with_depth(uv, conf, _scene(), K)
    assert pts[11, 2] > 2.05  # hip joint centre lies ~10 cm inside the body
    assert pts[0, 2] < 2.01  # the nose is on the skin


def test_edge_pixels_of_the_background_are_rejected():
    # Keypoint 1 px inside the box's left edge: most of the 5x5 window sees the wall 2 m behind.
    uv, conf = _kp({9: (201.0, 250.0), 5: (300.0, 200.0), 6: (320.0, 200.0), 11: (300.0, 350.0)})
    pts, _ = lift_with_depth(uv, conf, _scene(), K, add_surface_offset=False)
    assert pts[9, 2] == pytest.approx(2.0, abs=1e-6)


def test_background_behind_the_person_is_rejected():
    # A wrist detected in a gap (over the wall) while the body is at 2 m: no depth for it.
    uv, conf = _kp({9: (450.0, 250.0), 5: (250.0, 200.0), 6: (350.0, 200.0), 11: (260.0, 350.0), 12: (340.0, 350.0)})
    pts, c = lift_with_depth(uv, conf, _scene(), K)
    assert np.all(np.isnan(pts[9])) and c[9] == 0.0
    assert np.all(np.isfinite(pts[[5, 6, 11, 12]]))


def test_sparse_depth_lowers_confidence():
    depth = _scene()
    holes = np.random.default_rng(0).random(depth.shape) < 0.8
    sparse = depth.copy()
    sparse[holes] = np.nan
    uv, conf = _kp({5: (250.0, 200.0), 6: (350.0, 200.0), 11: (260.0, 350.0)})
    _, c_dense = lift_with_depth(uv, conf, depth, K)
    _, c_sparse = lift_with_depth(uv, conf, sparse, K)
    assert np.all(c_sparse[[5, 6, 11]] < 0.7 * c_dense[[5, 6, 11]])


def test_all_nan_depth_gives_nan_and_zero_confidence():
    uv, conf = _kp({0: (300.0, 200.0), 5: (250.0, 300.0)})
    pts, c = lift_with_depth(uv, conf, np.full((H, W), np.nan, dtype=np.float32), K)
    assert np.all(np.isnan(pts)) and np.all(c == 0.0)
    assert pts.shape == (133, 3) and pts.dtype == np.float32


def test_zero_depth_counts_as_invalid():
    uv, conf = _kp({0: (300.0, 200.0)})
    pts, c = lift_with_depth(uv, conf, np.zeros((H, W), dtype=np.float32), K)
    assert np.all(np.isnan(pts)) and np.all(c == 0.0)


def test_wrong_size_depth_raises_a_specific_error():
    uv, conf = _kp({0: (300.0, 200.0)})
    with pytest.raises(DepthSizeError, match="registered"):
        lift_with_depth(uv, conf, np.ones((240, 320), dtype=np.float32), K, image_size_wh=(W, H))
    with pytest.raises(DepthSizeError):  # principal point of a 640x480 camera outside a 160x120 depth image
        lift_with_depth(uv, conf, np.ones((120, 160), dtype=np.float32), K)
    with pytest.raises(LiftingError):
        lift_with_depth(uv, conf, np.ones((H, W, 3), dtype=np.float32), K)
    with pytest.raises(LiftingError):
        lift_with_depth(uv[:, :1], conf, _scene(), K)


def test_keypoints_outside_the_image_are_unknown():
    uv, conf = _kp({0: (-5.0, 200.0), 1: (300.0, 480.5), 2: (300.0, 200.0)})
    pts, c = lift_with_depth(uv, conf, _scene(), K)
    assert np.all(np.isnan(pts[[0, 1]])) and np.all(c[[0, 1]] == 0)
    assert np.all(np.isfinite(pts[2]))


def _skeleton_cam():
    """A standing adult facing the camera 3 m away (camera frame, metres), COCO body 17 in a 133 array."""
    body = np.array(
        [
            [0.0, -0.75, 2.90],
            [0.03, -0.78, 2.92],
            [-0.03, -0.78, 2.92],
            [0.07, -0.76, 3.0],
            [-0.07, -0.76, 3.0],
            [0.17, -0.55, 3.0],
            [-0.17, -0.55, 3.0],
            [0.20, -0.27, 3.0],
            [-0.20, -0.27, 3.0],
            [0.22, -0.02, 2.98],
            [-0.22, -0.02, 2.98],
            [0.10, -0.05, 3.0],
            [-0.10, -0.05, 3.0],
            [0.11, 0.37, 3.0],
            [-0.11, 0.37, 3.0],
            [0.12, 0.78, 3.02],
            [-0.12, 0.78, 3.02],
        ]
    )
    pts = np.full((133, 3), np.nan)
    pts[:17] = body
    return pts


def test_world_landmarks_are_placed_by_the_translation_that_reprojects_them():
    cam = _skeleton_cam()
    uv = project(np.nan_to_num(cam, nan=1.0), K).astype(np.float32)
    uv[17:] = np.nan
    uv[kp.LEFT_HAND] = project(cam[[9]] + [[0.02, 0.05, 0.0]], K)  # hand without world landmarks
    conf = np.zeros(133, dtype=np.float32)
    conf[:17] = 0.9
    conf[kp.LEFT_HAND] = 0.8
    world = cam - kp.pelvis(cam)  # hip-centred, camera-aligned axes
    pts, c = lift_with_world_landmarks(uv, conf, world, K)
    np.testing.assert_allclose(pts[:17], cam[:17], atol=1e-3)
    assert np.all(c[:17] > 0.85)
    # Hand points without world landmarks are placed at the wrist's depth at reduced confidence.
    np.testing.assert_allclose(pts[kp.LEFT_HAND][:, 2], cam[9, 2], atol=1e-3)
    assert np.all((c[kp.LEFT_HAND] > 0) & (c[kp.LEFT_HAND] < 0.5))
    assert np.all(np.isnan(pts[kp.FACE])) and np.all(c[kp.FACE] == 0)


def test_world_landmarks_with_too_few_keypoints_give_nothing():
    cam = _skeleton_cam()
    uv = project(np.nan_to_num(cam, nan=1.0), K).astype(np.float32)
    conf = np.zeros(133, dtype=np.float32)
    conf[[5, 6]] = 0.9
    pts, c = lift_with_world_landmarks(uv, conf, cam - kp.pelvis(cam), K)
    assert np.all(np.isnan(pts)) and np.all(c == 0)
    with pytest.raises(LiftingError):
        lift_with_world_landmarks(uv, conf, cam[:17], K)


def test_bone_clean_up_leaves_a_consistent_skeleton_alone():
    cam = _skeleton_cam()
    conf = np.where(np.isfinite(cam[:, 0]), 0.9, 0.0)
    pts, c = enforce_bone_lengths(cam, conf, kp.COCO_WHOLEBODY_133)
    np.testing.assert_allclose(pts[:17], cam[:17], atol=1e-6)
    np.testing.assert_allclose(c, conf, atol=1e-6)


def test_bone_clean_up_repairs_an_occluded_elbow_along_its_ray():
    cam = _skeleton_cam()
    bad = cam.copy()
    bad[7] *= 2.55 / np.linalg.norm(cam[7]) * np.linalg.norm(cam[7]) / cam[7, 2]  # 45 cm too near, same pixel
    conf = np.where(np.isfinite(cam[:, 0]), 0.9, 0.0)
    pts, c = enforce_bone_lengths(bad, conf, kp.COCO_WHOLEBODY_133)
    assert np.linalg.norm(bad[7] - cam[7]) > 0.4
    assert np.linalg.norm(pts[7] - cam[7]) < 0.08  # typical bone lengths, not this body's exact ones
    np.testing.assert_allclose(project(pts[[7]].astype(np.float64), K), project(cam[[7]], K), atol=1e-2)
    assert c[7] == pytest.approx(0.45)


def test_bone_clean_up_drops_an_unrepairable_wrist():
    cam = _skeleton_cam()
    bad = cam.copy()
    bad[9] = [1.5, -0.02, 2.9]  # nearer than the elbow and 1.3 m from it: no depth on its ray can fix that
    conf = np.where(np.isfinite(cam[:, 0]), 0.9, 0.0)
    pts, c = enforce_bone_lengths(bad, conf, kp.COCO_WHOLEBODY_133)
    assert np.all(np.isnan(pts[9])) and c[9] == 0.0
    with pytest.raises(LiftingError):
        enforce_bone_lengths(cam[:17], conf, kp.COCO_WHOLEBODY_133)


def test_body_frame_follows_rep155_axes():
    cam = _skeleton_cam()  # facing the camera: forward = -z_cam, up = -y_cam, the person's left = +x_cam
    T = body_frame(cam)
    np.testing.assert_allclose(T[:3, 3], kp.pelvis(cam), atol=1e-9)
    assert T[:3, 0] @ [0, 0, -1] > 0.99
    assert T[:3, 1] @ [1, 0, 0] > 0.99
    assert T[:3, 2] @ [0, -1, 0] > 0.99
    np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-9)
    assert np.linalg.det(T[:3, :3]) == pytest.approx(1.0)
    missing = cam.copy()
    missing[11] = np.nan
    assert body_frame(missing) is None


@pytest.fixture(scope="module")
def anny_frames():
    synthetic = pytest.importorskip("pose_perception.evaluation.human.synthetic")
    poser = synthetic.AnnyPoser(num_threads=1)
    rng = np.random.default_rng(7)
    return [synthetic.random_frame(poser, rng) for _ in range(2)]


def test_lifting_a_synthetic_render_recovers_the_joints(anny_frames):
    errors = []
    for frame in anny_frames:
        assert frame.synthetic
        conf = np.where(np.all(np.isfinite(frame.keypoints_uv), axis=1), 1.0, 0.0).astype(np.float32)
        pts, c = lift_with_depth(frame.keypoints_uv, conf, frame.depth_m, frame.intrinsics.K)
        pts, c = enforce_bone_lengths(pts, c, kp.COCO_WHOLEBODY_133)
        vis = frame.unoccluded[:23]
        errors += np.linalg.norm(pts[:23] - frame.keypoints_3d[:23], axis=1)[vis].tolist()
    errors = np.array(errors)
    assert np.count_nonzero(np.isfinite(errors)) >= 0.9 * errors.size
    assert np.nanmedian(errors) < 0.02


def test_nan_confidence_and_infinite_depth_are_harmless():
    uv, conf = _kp({0: (300.0, 350.0), 1: (300.0, 200.0), 5: (250.0, 300.0), 6: (350.0, 300.0)})
    conf[0] = np.nan
    depth = _scene()
    depth[150:250, 250:350] = np.inf  # keypoint 1 lies on a patch of infinite depth
    pts, c = lift_with_depth(uv, conf, depth, K)
    assert np.all(np.isnan(pts[[0, 1]])) and np.all(c[[0, 1]] == 0.0)
    assert np.all(np.isfinite(pts[[5, 6]]))
    assert np.all(np.isfinite(c))


def test_world_landmark_placement_shrugs_off_a_few_wrong_keypoints():
    cam = _skeleton_cam()
    uv = project(np.nan_to_num(cam, nan=1.0), K).astype(np.float32)
    uv[17:] = np.nan
    uv[[9, 10]] += [[80.0, -60.0], [-70.0, 90.0]]  # both wrists detected on the wrong limb
    conf = np.zeros(133, dtype=np.float32)
    conf[:17] = 0.9
    pts, c = lift_with_world_landmarks(uv, conf, cam - kp.pelvis(cam), K)
    good = [i for i in range(17) if i not in (9, 10)]
    np.testing.assert_allclose(pts[good], cam[good], atol=0.02)
    assert np.all(c[[9, 10]] < 0.5 * c[good].min())  # the outliers reproject badly and say so
