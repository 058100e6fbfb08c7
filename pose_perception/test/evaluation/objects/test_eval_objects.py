"""`pose-perception eval objects` end to end on a tiny SYNTHETIC configuration."""

import json

import pytest

from pose_perception.cli.main import main


def test_tiny_eval_runs_end_to_end_and_reports_synthetic_results(tmp_path, capsys):
    out = tmp_path / "eval.json"
    rc = main(
        [
            "eval",
            "objects",
            "--objects",
            "007_tuna_fish_can",
            "--scenes",
            "1",
            "--negatives",
            "1",
            "--occlusion",
            "0.1,0.2",
            "--seed",
            "4",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "SYNTHETIC" in text and "machine:" in text
    result = json.loads(out.read_text())
    assert result["label"].startswith("SYNTHETIC")
    base = result["overall"]["baseline"]
    assert base["n"] == 1 and base["negatives"] == 1
    for key in ("add_s_recall", "adds_recall", "ar_mssd", "ar_mspd"):
        assert 0.0 <= base[key] <= 1.0
    assert base["time_ms_mean"] > 0
    assert 0.8 - 0.03 <= result["per_object"]["007_tuna_fish_can"]["visible_fraction_mean"] <= 0.9 + 0.03
    # one scene hidden 10-20 %: it falls in the 0.10-0.30 bucket (or 0.00-0.10 at the tolerance's edge)
    buckets = result["add_s_recall_by_occlusion"]["baseline"]
    assert sum(b["n"] for b in buckets.values()) == 1 and set(buckets) <= {"0.00-0.10", "0.10-0.30"}
    if "estimator" in result["overall"]:
        assert result["overall"]["estimator"]["n"] == 1
        assert "time_ratio_baseline_over_estimator" in result["baseline_comparison"]


def test_unknown_object_is_refused(capsys):
    assert main(["eval", "objects", "--objects", "no_such_thing", "--scenes", "1"]) == 2
    assert "unknown objects" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["0.5", "0.6,0.2", "0,1.0", "a,b"])
def test_bad_occlusion_range_is_an_argument_error(bad):
    with pytest.raises(SystemExit):
        main(["eval", "objects", "--occlusion", bad])


def test_an_estimator_that_raises_is_counted_as_a_miss_not_a_crash():
    from pose_perception.evaluation.cli.eval_objects import MethodResults

    results = MethodResults()

    def broken(*_args, **_kwargs):
        raise RuntimeError("segmentation exploded")

    assert results.call(broken, 1, masks=None) == []
    assert results.call(lambda: ["pose"]) == ["pose"]
    assert results.failures == 1 and results.first_failure == "RuntimeError: segmentation exploded"
