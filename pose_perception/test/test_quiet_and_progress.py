"""Quiet start-up (core/quiet.py): the native TFLite / absl chatter MediaPipe writes to fd 2 is dropped, everything
else passes; progress with the time left (core/progress.py)."""

import os
import subprocess
import sys
from pathlib import Path

from pose_perception.core.progress import progress, time_left
from pose_perception.core.quiet import is_noise

REPO = Path(__file__).resolve().parents[1]

NOISE = [
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"W0000 00:00:1796575146.598448   21164 inference_feedback_manager.cc:114] Feedback manager requires a "
    b"model with a single signature inference. Disabling support for feedback tensors.",
    b"I0000 00:00:1796575147.217253   21163 gl_context.cc:357] GL version: 2.1",
]
KEPT = [
    b"E0000 00:00:1796575147.217253   21163 calculator_graph.cc:887] INTERNAL: something broke",
    b"[ERROR] [1796574866.96] [human_pose_node]: frame failed: ValueError: bad image",
    b"Traceback (most recent call last):",
    b"W: a line that only looks alike",
]


def test_noise_patterns():
    assert all(is_noise(line) for line in NOISE)
    assert not any(is_noise(line) for line in KEPT)


def run_with_filter(env_extra=None):
    code = (
        "import os, sys\n"
        "from pose_perception.core.quiet import filter_native_stderr\n"
        "filter_native_stderr()\n"
        f"os.write(2, b'\\n'.join({NOISE + KEPT!r}) + b'\\n')\n"
        "print('python stderr line', file=sys.stderr)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, env=env, timeout=60).stderr


def test_a_process_with_the_filter_prints_only_what_matters():
    err = run_with_filter()
    assert not any(line in err for line in NOISE), err
    assert all(line in err for line in KEPT) and b"python stderr line" in err


def test_the_filter_can_be_turned_off():
    err = run_with_filter({"POSE_PERCEPTION_NATIVE_LOGS": "1"})
    assert all(line in err for line in NOISE + KEPT)


def test_time_left():
    assert time_left(10.0, 0, 5) == ""
    assert time_left(10.0, 1, 5) == "0:40 left"
    assert time_left(100.0, 1, 40) == "1:05:00 left"
    assert time_left(3.0, 3, 3) == "0:00 left"


def test_progress_bar_shows_rate_and_time_left(monkeypatch, capsys):
    monkeypatch.setenv("POSE_PERCEPTION_PROGRESS", "1")
    bar = progress(4, "eval objects", unit="scene")
    for _ in range(4):
        bar.update()
    bar.close()
    err = capsys.readouterr().err
    assert "eval objects" in err and "4/4" in err and "scene/s" in err and "<" in err  # tqdm's "elapsed<left"
