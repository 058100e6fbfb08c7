import threading

import numpy as np
from threadpoolctl import threadpool_info

from pose_perception.core.threads import one_blas_thread


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_one_blas_thread_limits_inside_and_restores_after_on_any_thread():
    np.ones((4, 4)) @ np.ones((4, 4))  # numpy's BLAS is loaded
    before = _blas_threads()
    assert before, "numpy's BLAS library was not found by threadpoolctl"
    with one_blas_thread():
        assert set(_blas_threads()) == {1}
        with one_blas_thread():  # nested (track() calls estimate())
            assert set(_blas_threads()) == {1}
        assert set(_blas_threads()) == {1}
    assert _blas_threads() == before
    seen = []

    def worker():  # a node runs the search on a background thread
        with one_blas_thread():
            seen.append(_blas_threads())
        seen.append(_blas_threads())

    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    assert set(seen[0]) == {1} and seen[1] == before
