"""`pose-perception bench mesh`: runs end to end, prints the machine and the per-person rate, writes JSON."""

import json

from pose_perception.cli.main import build_parser


def test_bench_mesh_runs_and_reports_rate(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = build_parser().parse_args(["bench", "mesh", "--frames", "4", "--json", str(out)])
    args.func(args)
    result = json.loads(out.read_text())
    assert result["full mesh"]["warm"]["n"] == 4 and result["full mesh"]["warm"]["rate_hz"] > 0
    printed = capsys.readouterr().out
    assert "Hz per person" in printed and "cores" in printed
