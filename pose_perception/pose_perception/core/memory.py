"""Process memory: resident size of a process (Linux /proc) and giving freed heap back to the system.

Python frees a 500 MB mesh's arrays, but glibc keeps the pages in its heap unless asked: `trim_heap()` after a
refused or failed load is what makes the process's RSS go back down.
"""

from __future__ import annotations

import ctypes
import gc
import os
from typing import Optional


def rss_bytes(pid: Optional[int] = None) -> int:
    """Resident set size of `pid` (default: this process) in bytes; raises ProcessLookupError when it is gone."""
    try:
        with open(f"/proc/{pid or os.getpid()}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        raise ProcessLookupError(f"no process {pid}") from None
    return 0  # a zombie has no VmRSS line


def trim_heap() -> None:
    """Collect garbage, then return free heap pages to the OS (glibc malloc_trim; a no-op elsewhere)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
