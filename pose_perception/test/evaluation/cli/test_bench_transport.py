"""`pose-perception bench transport` runs a real two-process measurement and reports every stream.
(Its timings are benchmarks recorded in the README, not asserted here.)"""

import json
import subprocess
import sys

from ros_helpers import REPO, ros_env


def test_bench_transport_measures_image_and_depth_between_two_processes(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pose_perception.cli.main", "bench", "transport", "--seconds", "2", "--json", str(out)],
        env=ros_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mean ms" in proc.stdout and "machine:" in proc.stdout
    result = json.loads(out.read_text())
    assert {r["stream"] for r in result["results"]} == {"image", "depth"}
    assert all(r["frames"] > 10 and r["latency_mean_ms"] > 0 for r in result["results"])
