"""One BLAS thread while a block of small-matrix numpy work runs (objects/estimator.py's search).

numpy's matrix products go to OpenBLAS, which splits a product over all cores and keeps its worker threads
spinning after each call. The object search makes thousands of small and mid-sized products (the 1600 x 1600
compatibility matrices, batched 6x6 systems): on the loaded 2-core dev machine the spinning workers cost up to
a third of the search's CPU time, with the same poses bit for bit (OpenBLAS splits a product by blocks of its
output, so each entry is summed the same way on one thread or several; docs/objects-real.md). threadpoolctl sets
the thread count of the BLAS libraries loaded in this process.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with every loaded BLAS library on one thread, and restore the previous counts after it.

    The count is process-wide, and it must be set and restored on the same thread (OpenBLAS ignored a restore
    from another thread in a test here), so each block sets and restores its own: blocks that overlap on two
    threads (a node's tracking and its background search) may end with the earlier count back while the other
    still runs, or with one thread left; either changes only speed, never a result."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
