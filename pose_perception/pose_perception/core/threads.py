"""One BLAS thread while a block of small-matrix numpy work runs (objects/estimator.py's search).

numpy's matrix products go to OpenBLAS, which splits a product over all cores and keeps its worker threads
spinning after each call. The object search makes thousands of small and mid-sized products (the 1600 x 1600
compatibility matrices, batched 6x6 systems): on a loaded 2-core machine the spinning workers cost about a third of
the search's CPU time (REAL dev frames: 2.5-2.9 s -> 1.9-2.0 s CPU per frame, the same poses bit for bit: OpenBLAS
splits a product by blocks of its output, so each entry is summed the same way on one thread or several;
docs/objects-real.md). threadpoolctl changes the thread count of the BLAS libraries loaded in this process.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_depth = 0  # blocks inside one_blas_thread() now, on any thread
_limiter = None  # the threadpoolctl limit of the outermost block; restores the previous counts when it ends


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with every loaded BLAS library on one thread. Nests and overlaps across threads: the limit is
    process-wide (BLAS libraries keep one count), set when the first block starts and restored when the last one
    ends, so a block never lifts the limit under another one still running."""
    global _depth, _limiter
    from threadpoolctl import threadpool_limits

    with _lock:
        if _depth == 0:
            _limiter = threadpool_limits(limits=1, user_api="blas")
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _limiter is not None:
                _limiter.restore_original_limits()
                _limiter = None
