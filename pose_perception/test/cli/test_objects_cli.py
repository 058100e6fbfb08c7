"""`pose-perception objects estimate`: files in, the issue's OUT.json schema out, clear errors for bad files."""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "objects"))

from scenes import INTRINSICS, add_s_m, make_scene, ycb_path

from pose_perception.cli.main import main
from pose_perception.core.io import write_camera_info_yaml, write_depth_png_mm
from pose_perception.objects.model import load_object_model


def _write_frame(tmp_path, scene):
    import cv2

    cv2.imwrite(str(tmp_path / "rgb.png"), scene.rgb[..., ::-1])
    write_depth_png_mm(tmp_path / "depth.png", scene.depth_m)
    np.save(tmp_path / "depth.npy", scene.depth_m)
    write_camera_info_yaml(tmp_path / "info.yaml", INTRINSICS)


def test_estimate_writes_poses_in_the_documented_schema(tmp_path, capsys):
    model = load_object_model("mustard", ycb_path("006_mustard_bottle"), cache_dir=tmp_path / "cache")
    scene = make_scene([model], np.random.default_rng(61), distance_m=0.8)
    _write_frame(tmp_path, scene)
    for depth in ("depth.png", "depth.npy"):
        out = tmp_path / f"out_{depth}.json"
        rc = main(
            [
                "objects",
                "estimate",
                "--mesh",
                f"mustard={ycb_path('006_mustard_bottle')}",
                "--mesh",
                f"mug={ycb_path('025_mug')}",
                "--mesh-units",
                "m",
                "--rgb",
                str(tmp_path / "rgb.png"),
                "--depth",
                str(tmp_path / depth),
                "--camera-info",
                str(tmp_path / "info.yaml"),
                "--out",
                str(out),
            ]
        )
        assert rc == 0
        result = json.loads(out.read_text())
        assert set(result) == {"objects", "timing_ms"} and "total" in result["timing_ms"]
        assert len(result["objects"]) == 1
        obj = result["objects"][0]
        assert set(obj) == {"name", "instance", "pose", "score"}
        assert obj["name"] == "mustard" and obj["instance"] == 0 and 0 < obj["score"] <= 1
        T = np.array(obj["pose"])
        assert T.shape == (4, 4)
        assert add_s_m(model.dense_points, T, scene.poses[0]) < 0.1 * model.diameter_m


def test_bad_mesh_and_bad_depth_exit_with_a_message(tmp_path, capsys):
    scene = make_scene([load_object_model("mug", ycb_path("025_mug"), cache_dir=tmp_path)], np.random.default_rng(1))
    _write_frame(tmp_path, scene)
    args = [
        "--rgb",
        str(tmp_path / "rgb.png"),
        "--camera-info",
        str(tmp_path / "info.yaml"),
        "--out",
        str(tmp_path / "o.json"),
    ]
    rc = main(
        ["objects", "estimate", "--mesh", f"x={tmp_path / 'nope.stl'}", "--depth", str(tmp_path / "depth.png")] + args
    )
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    np.save(tmp_path / "zeros.npy", np.zeros((480, 640), np.float32))
    rc = main(
        ["objects", "estimate", "--mesh", f"mug={ycb_path('025_mug')}", "--depth", str(tmp_path / "zeros.npy")] + args
    )
    assert rc == 2 and "no valid pixels" in capsys.readouterr().err
    np.save(tmp_path / "small.npy", np.ones((240, 320), np.float32))
    rc = main(
        ["objects", "estimate", "--mesh", f"mug={ycb_path('025_mug')}", "--depth", str(tmp_path / "small.npy")] + args
    )
    assert rc == 2 and "camera info says" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()
