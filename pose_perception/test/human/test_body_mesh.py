"""BodyMeshFitter: fits anny to 3D keypoints, warm-starts per track, and degrades gracefully on bad input.

Ground truth comes from anny's own full forward pass (AnnyPoser) posed from real mocap, not from the fitter's model.
"""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pose_perception.core.keypoints import COCO_WHOLEBODY_133
from pose_perception.core.types import BodyMesh
from pose_perception.human.body_mesh import (
    BodyMeshError,
    BodyMeshFitter,
    BodyModelUnavailableError,
    FitterConfig,
    model_keypoint_index,
)
from pose_perception.human.body_model import (
    GROUP_NAMES,
    MODEL_KEYPOINT_NAMES,
    anny_bone_rotations,
    load_anny_model_data,
)
from pose_perception.evaluation.human.mocap import clip_bodies
from pose_perception.evaluation.human.synthetic import AnnyPoser

torch.set_num_threads(1)

PHENOTYPE = {"gender": 0.2, "height": 0.7, "proportions": 0.4}


@pytest.fixture(scope="module")
def poser():
    return AnnyPoser()


@pytest.fixture(scope="module")
def fitter():
    return BodyMeshFitter(device="cpu")


def clip_frames(poser, name, count, rate_hz=10.0, offset_m=(0.0, 0.0, 0.0)):
    """[(stamp_s, true vertices (V, 3), true keypoints (23, 3)), ...] of a SYNTHETIC body along a mocap clip."""
    return [
        (t, (v + offset_m).astype(np.float32), (kp + offset_m).astype(np.float32))
        for t, v, kp in clip_bodies(poser, name, rate_hz, count, PHENOTYPE)
    ]


def to_wholebody(keypoints_23):
    kp = np.full((133, 3), np.nan, np.float32)
    kp[:23] = keypoints_23
    conf = np.zeros(133, np.float32)
    conf[:23] = 0.9
    return kp, conf


def test_keypoint_mapping_follows_coco_wholebody_names():
    inp, mdl = model_keypoint_index(133)
    names = COCO_WHOLEBODY_133.keypoint_names
    assert len(inp) == 23
    assert all(names[i] == MODEL_KEYPOINT_NAMES[m] for i, m in zip(inp, mdl))
    assert len(model_keypoint_index(17)[0]) == 17  # body only: no feet


def test_reduced_model_reproduces_anny_forward(fitter, poser):
    """The fitter's 17-group model poses the mesh exactly as anny's own forward pass does."""
    rotvecs = np.random.default_rng(3).normal(0.0, 0.3, (len(GROUP_NAMES), 3))
    body = poser.pose(anny_bone_rotations(rotvecs), PHENOTYPE)
    shape = torch.tensor([PHENOTYPE[a] for a in fitter.data.shape_axes], dtype=torch.float64)
    args = (torch.as_tensor(rotvecs), torch.zeros(3, dtype=torch.float64), shape)
    with torch.no_grad():
        kp = fitter.body.keypoints(*args).numpy()
        v = fitter.body.vertices(*args).numpy()
    # The poser stands the body on z = 0: the two agree up to that vertical shift.
    shift = np.array([0.0, 0.0, body.vertices[:, 2].min() - v[:, 2].min()])
    assert np.abs(kp + shift - body.keypoints_133[:23]).max() < 0.005
    assert np.linalg.norm(v + shift - body.vertices, axis=1).mean() < 0.002


def test_fit_recovers_keypoints_of_a_known_anny_pose(fitter, poser):
    _, vertices, keypoints = clip_frames(poser, "punch", 8, offset_m=(0.5, -3.0, 0.2))[-1]
    result = fitter.fit_details(1, *to_wholebody(keypoints), 0.0)
    fitter.forget(1)
    assert result is not None and result.cold
    errors = np.linalg.norm(result.keypoints_3d - keypoints, axis=1)
    assert errors.mean() < 0.02 and errors.max() < 0.06
    assert isinstance(result.mesh, BodyMesh)
    assert result.mesh.vertices.shape == vertices.shape and result.mesh.vertices.dtype == np.float32
    assert result.mesh.faces.dtype == np.int32 and result.mesh.faces.shape[1] == 3
    assert np.linalg.norm(result.mesh.vertices - vertices, axis=1).mean() < 0.04


def test_fit_works_in_any_sensor_frame(fitter, poser):
    """No gravity assumed: the same person seen lying in a rotated (e.g. radar) frame fits as well."""
    _, _, keypoints = clip_frames(poser, "walk", 3)[-1]
    R = Rotation.from_rotvec([0.4, -1.9, 0.7]).as_matrix()
    rotated = (keypoints @ R.T + [1.0, 2.0, -4.0]).astype(np.float32)
    result = fitter.fit_details(2, rotated, np.ones(23, np.float32), 0.0)
    fitter.forget(2)
    assert result is not None
    assert np.linalg.norm(result.keypoints_3d - rotated, axis=1).mean() < 0.02


def test_warm_start_converges_faster_than_cold(poser):
    """With the same small iteration budget, starting from the previous frame beats starting from scratch."""
    frames = clip_frames(poser, "dance_a", 12)
    fitter = BodyMeshFitter(
        device="cpu", config=FitterConfig(cold_iterations=5, warm_iterations=5, max_residual_m=10.0)
    )
    warm, cold = [], []
    fitter.fit_details(0, frames[0][2], np.ones(23, np.float32), frames[0][0])
    for k, (stamp, _, keypoints) in enumerate(frames[1:]):
        w = fitter.fit_details(0, keypoints, np.ones(23, np.float32), stamp)
        c = fitter.fit_details(1000 + k, keypoints, np.ones(23, np.float32), stamp)
        assert not w.cold and c.cold
        warm.append(w.residual_m)
        cold.append(c.residual_m)
    assert np.mean(warm) < np.mean(cold)
    assert np.mean(warm) < 0.05


def test_low_confidence_keypoints_do_not_pull(fitter, poser):
    _, _, keypoints = clip_frames(poser, "walk", 5)[-1]
    corrupted = keypoints.copy()
    wrist = MODEL_KEYPOINT_NAMES.index("left_wrist")
    corrupted[wrist] += [0.0, 0.0, 0.4]
    confidence = np.ones(23, np.float32)
    confidence[wrist] = 0.05
    result = fitter.fit_details(3, corrupted, confidence, 0.0)
    fitter.forget(3)
    assert np.linalg.norm(result.keypoints_3d[wrist] - keypoints[wrist]) < 0.2  # unobserved: held by the prior
    assert np.linalg.norm(result.keypoints_3d[wrist] - corrupted[wrist]) > 0.3


def test_most_joints_missing_keeps_last_good_mesh_then_none(fitter, poser):
    frames = clip_frames(poser, "walk", 2)
    good = fitter.fit(4, frames[0][2], np.ones(23, np.float32), 0.0)
    assert good is not None
    sparse = np.full((23, 3), np.nan, np.float32)
    sparse[:3] = frames[1][2][:3]  # only the nose and eyes
    assert fitter.fit(4, sparse, np.ones(23, np.float32), 0.1) is good
    assert fitter.fit(4, sparse, np.ones(23, np.float32), 5.0) is None  # too old to show
    assert fitter.fit(5, sparse, np.ones(23, np.float32), 0.0) is None  # new track: nothing to keep
    fitter.forget(4)


@pytest.mark.parametrize(
    "keypoints, confidence, stamp",
    [
        (np.full((133, 3), np.nan, np.float32), np.ones(133, np.float32), 0.0),
        (np.full((23, 3), np.inf, np.float32), np.ones(23, np.float32), 0.0),
        (np.zeros((23, 3), np.float32), np.ones(23, np.float32), 0.0),  # everything at one point
        (np.zeros((5, 3), np.float32), np.ones(5, np.float32), 0.0),  # too few keypoints
        (np.zeros((23, 2), np.float32), np.ones(23, np.float32), 0.0),  # 2D, not 3D
        (np.zeros((23, 3), np.float32), np.ones(7, np.float32), 0.0),  # confidence of the wrong length
        (None, None, 0.0),
        (np.zeros((23, 3), np.float32), np.full(23, np.nan, np.float32), float("nan")),
    ],
)
def test_bad_input_never_raises(fitter, keypoints, confidence, stamp):
    assert fitter.fit(77, keypoints, confidence, stamp) is None


def test_impossible_bone_lengths(fitter, poser):
    _, _, keypoints = clip_frames(poser, "walk", 4)[-1]
    long_arm = keypoints.copy()
    wrist, elbow = MODEL_KEYPOINT_NAMES.index("right_wrist"), MODEL_KEYPOINT_NAMES.index("right_elbow")
    long_arm[wrist] = long_arm[elbow] + 3.0 * (long_arm[wrist] - long_arm[elbow])  # a forearm ~0.8 m long
    result = fitter.fit_details(6, long_arm, np.ones(23, np.float32), 0.0)
    assert result is not None  # the impossible end is ignored, the rest still fits
    fitted = result.keypoints_3d
    assert np.linalg.norm(fitted[wrist] - long_arm[wrist]) > 0.4
    assert np.linalg.norm(fitted[wrist] - fitted[elbow]) < 0.35
    others = [i for i in range(23) if i != wrist]
    assert np.linalg.norm(fitted[others] - keypoints[others], axis=1).mean() < 0.03
    giant = keypoints * 4.0  # a torso four times too large: no person
    assert fitter.fit(7, giant, np.ones(23, np.float32), 0.0) is None
    fitter.forget(6)


def test_a_jumping_track_is_reinitialised(fitter, poser):
    frames = clip_frames(poser, "walk", 3)
    first = fitter.fit_details(8, frames[0][2], np.ones(23, np.float32), 0.0)
    jumped = frames[1][2] + np.array([6.0, 0.0, 0.0], np.float32)
    result = fitter.fit_details(8, jumped, np.ones(23, np.float32), 0.1)
    assert not first.cold or result.cold
    assert result.cold
    assert np.linalg.norm(result.keypoints_3d - jumped, axis=1).mean() < 0.03
    fitter.forget(8)


def test_decimated_mesh_for_publishing(poser):
    small = BodyMeshFitter(device="cpu", max_faces=3000)
    assert len(small.faces) <= 3000 and small.faces.dtype == np.int32
    _, vertices, keypoints = clip_frames(poser, "walk", 2)[-1]
    mesh = small.fit(0, keypoints, np.ones(23, np.float32), 0.0)
    assert mesh.faces is small.faces
    assert mesh.faces.max() == len(mesh.vertices) - 1 < 3000
    # Every decimated vertex is a posed vertex of the full mesh, close to the true surface.
    from scipy.spatial import cKDTree

    distance, _ = cKDTree(vertices).query(mesh.vertices)
    assert np.mean(distance) < 0.04
    with pytest.raises(BodyMeshError):
        BodyMeshFitter(device="cpu", max_faces=10)


def test_smplx_needs_user_files_and_says_so(tmp_path):
    with pytest.raises(BodyModelUnavailableError, match="smplx_model_path"):
        BodyMeshFitter(device="cpu", model="smplx")
    with pytest.raises(BodyModelUnavailableError, match="licen"):
        BodyMeshFitter(device="cpu", model="smplx", smplx_model_path=str(tmp_path / "missing"))
    (tmp_path / "smplx").mkdir()
    try:
        import smplx  # noqa: F401
    except ImportError:
        with pytest.raises(BodyModelUnavailableError, match="pip install smplx"):
            BodyMeshFitter(device="cpu", model="smplx", smplx_model_path=str(tmp_path))
    with pytest.raises(BodyMeshError, match="unknown body model"):
        BodyMeshFitter(device="cpu", model="smpl-h")


def test_model_data_is_cached_on_disk(tmp_path):
    first = load_anny_model_data(tmp_path)
    files = list(tmp_path.glob("anny_*.npz"))
    assert len(files) == 1
    again = load_anny_model_data(tmp_path)
    assert np.array_equal(first.node_vertices, again.node_vertices)
    assert first.node_vertices.shape == (27, 13718, 3) and first.faces.shape == (27420, 3)
    np.testing.assert_allclose(first.skin_weights.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(first.keypoint_weights.sum(1), 1.0, atol=1e-3)


def test_a_rejected_fit_returns_the_last_good_mesh(poser):
    fitter = BodyMeshFitter(device="cpu", config=FitterConfig(max_residual_m=0.02))
    frames = clip_frames(poser, "walk", 2)
    good = fitter.fit(1, frames[0][2], np.ones(23, np.float32), 0.0)
    assert good is not None
    scrambled = frames[1][2] + np.random.default_rng(0).normal(0.0, 0.08, (23, 3)).astype(np.float32)
    assert fitter.fit(1, scrambled, np.ones(23, np.float32), 0.1) is good  # no fit within 2 cm: keep the last
    assert fitter.fit(2, scrambled, np.ones(23, np.float32), 0.1) is None  # a new track has nothing to keep
