"""`pose-perception eval human-3d` and the SYNTHETIC human it renders (anny posed from mocap, ray-cast)."""

import json

import numpy as np
import pytest

pytest.importorskip("anny")
pytest.importorskip("open3d")

from pose_perception.cli.main import main


def test_eval_human3d_reports_synthetic_lifting_error(tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["eval", "human-3d", "--frames", "2", "--seed", "3", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC" in printed and "machine:" in printed
    result = json.loads(out.read_text())
    assert result["synthetic"] is True and result["frames"] == 2 and result["poses"] == "mocap"
    unoccluded = result["results"]["depth_true2d_unoccluded"]
    assert unoccluded["n"] >= 20
    assert unoccluded["median_cm"] < 2.5
    assert result["results"]["world_true2d_all"]["median_cm"] < 10.0


@pytest.fixture(scope="module")
def poser():
    from pose_perception.evaluation.human import synthetic

    return synthetic.AnnyPoser(num_threads=1)


def test_synthetic_frame_is_consistent(poser):
    from pose_perception.core.camera import project
    from pose_perception.evaluation.human import synthetic

    body = poser.pose()
    T = synthetic.camera_facing_body(distance_m=3.0, yaw_deg=0.0)
    frame = synthetic.render_frame(body, T, noise=False)
    assert frame.synthetic and frame.rgb.shape == (480, 640, 3) and frame.depth_m.shape == (480, 640)
    assert 0.02 < frame.person_mask.mean() < 0.5
    # Joints project where the body is, a little behind the visible surface.
    uv = project(frame.keypoints_3d[:17].astype(np.float64), frame.intrinsics.K)
    np.testing.assert_allclose(uv, frame.keypoints_uv[:17], atol=1e-3)
    u, v = np.round(uv[5]).astype(int)
    assert frame.person_mask[v, u]
    assert 0.0 < frame.keypoints_3d[5, 2] - frame.depth_clean_m[v, u] < 0.15
    # Facing the camera: the body's left shoulder is on the image right.
    assert frame.keypoints_uv[5, 0] > frame.keypoints_uv[6, 0]


def test_mocap_frames_are_retargeted_onto_the_body(poser):
    from scipy.spatial.transform import Rotation

    from pose_perception.evaluation.human import synthetic

    rest = poser.pose().keypoints_133
    clip = synthetic.load_mocap_clip("punch")
    frame = clip[len(clip) // 2]
    body = poser.pose(synthetic.mocap_pose(frame, rest, face_forward=False))

    # The humanoid's right forearm direction (root, chest, right shoulder, right elbow in the DeepMimic layout).
    def rot(i):
        w, x, y, z = frame[i : i + 4]
        return Rotation.from_quat([x, y, z, w]).as_matrix()

    G_forearm = rot(4) @ rot(8) @ rot(25) @ Rotation.from_rotvec([0, 0, frame[29]]).as_matrix()
    target = synthetic._M_ANNY_FROM_HUMANOID @ G_forearm @ np.array([0.0, -1.0, 0.0])
    forearm = body.keypoints_133[10] - body.keypoints_133[8]
    angle = np.degrees(np.arccos(target @ forearm / np.linalg.norm(forearm)))
    assert angle < 10.0
    with pytest.raises(synthetic.SyntheticDataError):
        synthetic.load_mocap_clip("no_such_clip")
