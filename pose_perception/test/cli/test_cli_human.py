"""`pose-perception human IMAGE ... --out OUT.json`: the JSON schema of the issue, the overlay, and clear errors
for missing or unreadable inputs (exit code 2, no traceback)."""

import json

import numpy as np
import pytest

from pose_perception.cli.main import main
from pose_perception.core.camera import CameraIntrinsics
from pose_perception.core.io import write_camera_info_yaml, write_depth_png_mm


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory):
    import cv2
    from skimage import data

    path = tmp_path_factory.mktemp("cli") / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def test_json_has_the_issue_schema_and_the_overlay_is_written(astronaut_png, tmp_path):
    out, overlay = tmp_path / "out.json", tmp_path / "overlay.png"
    assert main(["human", str(astronaut_png), "--out", str(out), "--overlay", str(overlay)]) == 0
    d = json.loads(out.read_text())
    assert d["layout"] == "coco_wholebody_133" and len(d["keypoint_names"]) == 133
    assert d["keypoint_names"][0] == "nose" and d["keypoint_names"][-1] == "right_hand_pinky_tip"
    assert len(d["humans"]) == 1
    h = d["humans"][0]
    assert set(h) == {"id", "score", "bbox", "keypoints_2d", "keypoints_3d", "mesh"}
    assert len(h["bbox"]) == 4 and len(h["keypoints_2d"]) == 133 and all(len(k) == 3 for k in h["keypoints_2d"])
    u, v, c = h["keypoints_2d"][0]  # nose on her face
    assert 170 < u < 290 and 60 < v < 200 and c > 0.5
    assert h["mesh"] is None
    assert h["keypoints_3d"] is None or (len(h["keypoints_3d"]) == 133 and all(len(p) == 3 for p in h["keypoints_3d"]))
    assert {"proposals", "keypoints", "total"} <= set(d["timing_ms"])
    import cv2

    assert cv2.imread(str(overlay)).shape == (512, 512, 3)


def test_depth_and_camera_info_files_are_read(astronaut_png, tmp_path):
    depth, info, out = tmp_path / "d.png", tmp_path / "info.yaml", tmp_path / "o.json"
    write_depth_png_mm(depth, np.full((512, 512), 2.0, np.float32))
    write_camera_info_yaml(info, CameraIntrinsics.default_for_size(512, 512))
    assert (
        main(["human", str(astronaut_png), "--depth", str(depth), "--camera-info", str(info), "--out", str(out)]) == 0
    )
    assert len(json.loads(out.read_text())["humans"]) == 1


def test_bad_inputs_exit_2_with_a_message(astronaut_png, tmp_path, capsys):
    out = str(tmp_path / "o.json")
    assert main(["human", str(tmp_path / "missing.png"), "--out", out]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert main(["human", str(astronaut_png), "--camera-info", str(tmp_path / "nope.yaml"), "--out", out]) == 2
    assert "camera info" in capsys.readouterr().err
    small = tmp_path / "small.npy"
    np.save(small, np.ones((10, 10), np.float32))
    assert main(["human", str(astronaut_png), "--depth", str(small), "--out", out]) == 2
    assert "registered" in capsys.readouterr().err
    assert (
        main(["human", str(astronaut_png), "--backend", "onnx", "--model", str(tmp_path / "rtmw.onnx"), "--out", out])
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


def test_an_image_without_people_gives_an_empty_list(tmp_path):
    import cv2
    from skimage import data

    img = tmp_path / "coffee.png"
    cv2.imwrite(str(img), data.coffee())
    out = tmp_path / "o.json"
    assert main(["human", str(img), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["humans"] == []


def test_mesh_flag_gives_a_mesh_or_says_the_fitter_is_missing(tmp_path, capsys):
    import importlib.util

    import cv2
    from skimage import data

    image = tmp_path / "cameraman.png"  # a standing man, hips visible (the astronaut's are out of frame)
    cv2.imwrite(str(image), data.camera())
    out = tmp_path / "m.json"
    rc = main(["human", str(image), "--mesh", "--out", str(out)])
    if importlib.util.find_spec("pose_perception.human.body_mesh") is None:
        assert rc == 2 and "body_mesh" in capsys.readouterr().err
        return
    assert rc == 0
    mesh = json.loads(out.read_text())["humans"][0]["mesh"]
    assert mesh is not None and len(mesh["vertices"]) > 100 and all(len(f) == 3 for f in mesh["faces"])
