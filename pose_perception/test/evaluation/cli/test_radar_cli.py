"""`pose-perception radar estimate --frames FRAMES.npz --out OUT.json` in the documented format."""

import json

import numpy as np
import pytest

from pose_perception.cli.main import main
from pose_perception.evaluation.radar import simulator as sim
from pose_perception.evaluation.radar.training import random_sequence


def test_estimate_writes_the_documented_json(tmp_path):
    rng = np.random.default_rng(2)
    frames = random_sequence(rng, sim.load_skeleton(), [sim.load_clip("humanoid3d_spinkick")], 12, allow_mirror=False)
    stamps = np.arange(len(frames)) / 20.0
    np.savez(tmp_path / "frames.npz", stamps=stamps, **{f"points_{i:04d}": f[0] for i, f in enumerate(frames)})
    out = tmp_path / "out.json"
    assert (
        main(["radar", "estimate", "--frames", str(tmp_path / "frames.npz"), "--out", str(out), "--device", "cpu"]) == 0
    )
    result = json.loads(out.read_text())
    assert result["layout"] == "coco_body_17" and len(result["keypoint_names"]) == 17
    assert [f["stamp"] for f in result["frames"]] == pytest.approx(stamps.tolist())
    people = [h for f in result["frames"] for h in f["humans"]]
    assert people, "no person in 12 frames of a simulated person"
    assert all(np.shape(h["keypoints_3d"]) == (17, 3) and len(h["confidence"]) == 17 for h in people)
    assert len({h["id"] for h in people}) == 1


def test_estimate_refuses_a_malformed_frames_file(tmp_path, capsys):
    np.savez(tmp_path / "bad.npz", stamps=np.array([0.0, 0.05]), points_0000=np.zeros((3, 5), np.float32))
    assert main(["radar", "estimate", "--frames", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "o.json")]) == 2
    assert "points_0001" in capsys.readouterr().err


def test_mars_eval_says_where_the_data_should_be(tmp_path, capsys):
    assert main(["radar", "eval", "--mars", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "MARS data not found" in err and "--mars DIR" in err
