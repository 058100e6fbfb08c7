"""Start-up noise of native libraries, filtered: MediaPipe's TFLite and absl write INFO / WARNING lines straight to
file descriptor 2 (no Python logging, no environment variable silences the absl ones), a dozen per node start and
more per model. filter_native_stderr() routes fd 2 through a pipe and drops those lines; everything else (Python
warnings and tracebacks, ROS logs, native ERROR / FATAL lines) is forwarded unchanged.
POSE_PERCEPTION_NATIVE_LOGS=1 keeps them all."""

from __future__ import annotations

import atexit
import os
import re
import threading

NOISE = (
    re.compile(rb"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."),
    re.compile(rb"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    # absl / glog INFO and WARNING lines: "W0000 00:00:1796575146.598448   21164 file.cc:114] message"
    re.compile(rb"^[IW]\d{4} [\d:. ]+\s+\d+ [\w./+-]+\.(cc|h|cpp):\d+\] "),
)
_installed = False


def is_noise(line: bytes) -> bool:
    return any(p.match(line) for p in NOISE)


def filter_native_stderr() -> bool:
    """Filter fd 2 of this process (once; not when POSE_PERCEPTION_NATIVE_LOGS=1). True when installed."""
    global _installed
    if _installed or os.environ.get("POSE_PERCEPTION_NATIVE_LOGS") == "1":
        return False
    os.environ.setdefault("GLOG_minloglevel", "2")  # glog's own INFO / WARNING (absl ignores it)
    read_fd, write_fd = os.pipe()
    original = os.dup(2)
    os.dup2(write_fd, 2)
    os.close(write_fd)

    def pump():
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            pending = b""
            while True:
                chunk = pipe.read(65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                out = b"".join(line + b"\n" for line in lines if not is_noise(line))
                if out:
                    os.write(original, out)
            if pending and not is_noise(pending):
                os.write(original, pending)

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()

    def restore():  # at exit: hand fd 2 back, let the pump forward what is left
        try:
            os.dup2(original, 2)
        except OSError:
            return
        thread.join(timeout=1.0)

    atexit.register(restore)
    _installed = True
    return True
