"""`pose-perception bench objects` runs on a 2-frame SYNTHETIC sequence and prints timings with the machine."""

import json

from pose_perception.cli.main import main


def test_tiny_bench_prints_machine_and_timings(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "objects",
                "--object",
                "007_tuna_fish_can",
                "--frames",
                "2",
                "--estimates",
                "1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "machine:" in text and "SYNTHETIC" in text
    result = json.loads(out.read_text())
    assert result["baseline"]["n"] == 1 and result["baseline"]["mean_ms"] > 0
    if "track" in result:  # the estimator of area objects is in this build
        assert result["track"]["n"] == 1 and result["estimate"]["n"] == 1


def test_bench_refuses_a_sequence_too_short_to_track(capsys):
    assert main(["bench", "objects", "--frames", "1"]) == 2
    assert "--frames must be >= 2" in capsys.readouterr().out
