"""`pose-perception eval mesh`: runs end to end on SYNTHETIC bodies, labels them, writes JSON."""

import json

from pose_perception.cli.main import build_parser


def test_eval_mesh_runs_on_synthetic_bodies(tmp_path, capsys):
    out = tmp_path / "eval.json"
    args = build_parser().parse_args(["eval", "mesh", "--clips", "walk", "--frames", "6", "--json", str(out)])
    rc = args.func(args)
    printed = capsys.readouterr().out
    assert "SYNTHETIC" in printed and "cores" in printed
    result = json.loads(out.read_text())
    assert rc == (0 if result["keypoint_to_input_cm"] <= 3.0 else 1)
    assert result["clips"][0]["clip"] == "walk" and result["clips"][0]["frames"] == 6
    assert 0.0 < result["vertex_error_cm"] < 10.0
