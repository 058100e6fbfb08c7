"""BodyMeshFitter.fit_image: the body model fitted to 2D keypoints by reprojection through the camera (SMPLify-style).

SYNTHETIC bodies: anny's own full forward pass (AnnyPoser) posed from real mocap, seen by a pinhole camera; the fitter
sees only their projected keypoints (and, where said, their 3D keypoints as depth). REAL: the astronaut photo
(scikit-image), a person seen from the waist up.
"""

import numpy as np
import pytest
import torch

from pose_perception.core.camera import CameraIntrinsics, project
from pose_perception.core.types import HumanPose
from pose_perception.human.body_mesh import BodyMeshFitter, FitterConfig, fit_meshes
from pose_perception.human.body_model import MODEL_KEYPOINT_NAMES
from pose_perception.evaluation.human.mocap import clip_bodies
from pose_perception.evaluation.human.synthetic import AnnyPoser

torch.set_num_threads(1)

K = np.array([[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]])
PHENOTYPE = {"gender": 0.2, "height": 0.7, "proportions": 0.4}
# Anny stands on z = 0 with z up; the camera looks along its y axis from 3.5 m: camera (x, y, z) = (x, -z, y) + t.
R_CAM_BODY = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
T_CAM_BODY = np.array([0.2, 0.9, 3.5])


@pytest.fixture(scope="module")
def fitter():
    return BodyMeshFitter(device="cpu")


@pytest.fixture(scope="module")
def body():
    """(true vertices (V, 3), true keypoints (23, 3)) in the camera frame, a walking body 3.5 m away."""
    _, vertices, keypoints = clip_bodies(AnnyPoser(), "walk", 10.0, 4, PHENOTYPE)[-1]
    return vertices @ R_CAM_BODY.T + T_CAM_BODY, keypoints @ R_CAM_BODY.T + T_CAM_BODY


def wholebody_2d(keypoints_23, keep=None):
    uv = np.full((133, 2), np.nan, np.float32)
    conf = np.zeros(133, np.float32)
    uv[:23] = project(keypoints_23, K)
    conf[:23] = 0.9
    if keep is not None:
        drop = np.setdiff1d(np.arange(23), keep)
        uv[drop], conf[drop] = np.nan, 0.0
    return uv, conf


def box_iou(a_uv, b_uv):
    a = np.r_[a_uv.min(axis=0), a_uv.max(axis=0)]
    b = np.r_[b_uv.min(axis=0), b_uv.max(axis=0)]
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_rgb_only_mesh_lies_on_the_person_in_the_image(fitter, body):
    vertices, keypoints = body
    uv, conf = wholebody_2d(keypoints)
    result = fitter.fit_image(1, uv, conf, K, 0.0)
    fitter.forget(1)
    assert result is not None and result.cold
    assert result.residual_px < 4.0  # the body is ~400 px tall
    assert box_iou(project(result.mesh.vertices, K), project(vertices, K)) > 0.85
    # Distance: set by the default adult's size, not measured; this body is near average, so within 15 %.
    assert abs(np.median(result.mesh.vertices[:, 2]) / np.median(vertices[:, 2]) - 1.0) < 0.15


def test_depth_keypoints_pull_the_mesh_to_metric_3d(fitter, body):
    vertices, keypoints = body
    uv, conf = wholebody_2d(keypoints)
    k3 = np.full((133, 3), np.nan, np.float32)
    k3[:23] = keypoints
    result = fitter.fit_image(2, uv, conf, K, 0.0, k3, conf, depth_measured=True)
    fitter.forget(2)
    assert result is not None and result.residual_m < 0.04
    assert np.linalg.norm(result.mesh.vertices - vertices, axis=1).mean() < 0.06


def test_a_person_seen_from_the_waist_up_gets_a_mesh(fitter, body):
    vertices, keypoints = body
    upper = [MODEL_KEYPOINT_NAMES.index(n) for n in MODEL_KEYPOINT_NAMES[:11]]  # face, shoulders, elbows, wrists
    uv, conf = wholebody_2d(keypoints, keep=upper)
    result = fitter.fit_image(3, uv, conf, K, 0.0)
    fitter.forget(3)
    assert result is not None
    err = np.linalg.norm(project(result.keypoints_3d[upper], K) - project(keypoints[upper], K), axis=1)
    assert err.mean() < 5.0
    # The head and shoulders of the mesh lie where the person's are.
    head = vertices[:, 2] > 0  # all in front of the camera
    top_true = project(vertices[head], K)[:, 1].min()
    top_fit = project(result.mesh.vertices, K)[:, 1].min()
    assert abs(top_true - top_fit) < 20.0


def test_warm_fit_of_the_next_frame_is_quicker_and_as_good(body):
    vertices, keypoints = body
    fitter = BodyMeshFitter(device="cpu", config=FitterConfig())
    uv, conf = wholebody_2d(keypoints)
    first = fitter.fit_image(5, uv, conf, K, 0.0)
    moved_uv, _ = wholebody_2d(keypoints + [0.05, 0.0, 0.0])
    second = fitter.fit_image(5, moved_uv, conf, K, 0.1)
    assert first.cold and second is not None and not second.cold
    assert second.iterations < first.iterations and second.residual_px < 4.0


def test_no_shoulders_no_mesh_and_bad_input_never_raises(fitter, body):
    _, keypoints = body
    uv, conf = wholebody_2d(keypoints, keep=[0, 1, 2, 11, 12, 13, 14])
    assert fitter.fit_image(4, uv, conf, K, 0.0) is None
    uv, conf = wholebody_2d(keypoints)
    assert fitter.fit_image(4, uv, conf, np.full((3, 3), np.nan), 0.0) is None
    assert fitter.fit_image(4, uv[:5], conf, K, 0.0) is None
    assert fitter.fit_image(4, np.full((133, 2), np.nan), conf, K, 0.0) is None
    assert fitter.fit_image(4, uv, conf, K, float("nan")) is None
    assert fitter.fit_image(4, uv, conf, K, 0.0, keypoints_3d=np.ones((3, 3))) is not None  # bad 3D: 2D only


def test_real_waist_up_photo_gets_a_mesh_inside_the_person():
    """REAL: the astronaut photo (waist up, no depth, default camera): the mesh projects inside her box."""
    from skimage import data

    from pose_perception.evaluation.cli.eval_human import mesh_inside_fraction
    from pose_perception.human.pipeline import HumanPipelineConfig, HumanPosePipeline

    rgb = data.astronaut()
    cam = CameraIntrinsics.default_for_size(rgb.shape[1], rgb.shape[0])
    pipeline = HumanPosePipeline(HumanPipelineConfig(max_people=1, tracking=False, head_pose=False, mesh=True))
    try:
        humans, timing = pipeline.process(rgb, None, cam, 0.0)
    finally:
        pipeline.close()
    assert len(humans) == 1 and humans[0].mesh is not None
    inside = mesh_inside_fraction(
        humans[0].mesh.vertices.astype(np.float64),
        cam.K,
        np.asarray(humans[0].bbox_xyxy, np.float64),
        rgb.shape[1],
        rgb.shape[0],
    )
    assert inside > 0.9


def test_fit_meshes_fits_2d_keypoints_once_the_fitter_knows_the_camera(fitter, body):
    """The node's mesh thread calls fit_meshes(fitter, humans, stamp): with the camera set (the pipeline does it each
    frame) a person without 3D keypoints, seen from the waist up, gets a mesh; without it, none."""
    _, keypoints = body
    uv, conf = wholebody_2d(keypoints, keep=list(range(11)))
    person = HumanPose(track_id=7, score=0.9, keypoints_uv=uv, confidence=conf, keypoints_3d=None)
    fitter.set_camera(None)
    assert fit_meshes(fitter, [person], 0.0)[0].mesh is None
    fitter.set_camera(K, (640, 480))
    try:
        assert fit_meshes(fitter, [person], 0.0)[0].mesh is not None
    finally:
        fitter.set_camera(None)
        fitter.reset()
