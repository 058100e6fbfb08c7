"""Bounded nearest-neighbour search: the torch (GPU) path answers as the KD-tree (CPU) path, run here on torch's CPU
device since these machines have no GPU."""

import numpy as np
import pytest

from pose_perception.objects.nearest import KDTreeNearest, TorchNearest, make_nearest


def _points_and_queries():
    rng = np.random.default_rng(3)
    points = rng.uniform(-0.1, 0.1, size=(3000, 3))
    near = points[rng.integers(0, len(points), 4000)] + rng.normal(scale=0.003, size=(4000, 3))
    far = rng.uniform(-0.5, 0.5, size=(1000, 3))
    return points, np.concatenate([near, far])


def test_torch_nearest_answers_as_the_kd_tree():
    pytest.importorskip("torch")
    points, queries = _points_and_queries()
    bound = 0.004
    d_kd, j_kd = KDTreeNearest(points).query(queries, bound)
    # small chunks, so the chunking is exercised too
    d_t, j_t = TorchNearest(points, "cpu", max_pairs=len(points) * 777).query(queries, bound)
    found = np.isfinite(d_kd)
    assert 0.2 < found.mean() < 0.9  # both answers occur
    assert np.array_equal(np.isfinite(d_t), found)
    assert np.array_equal(j_t[~found], np.full((~found).sum(), len(points)))
    assert np.allclose(d_t[found], d_kd[found], atol=1e-7)
    assert (j_t[found] == j_kd[found]).mean() > 0.999  # only float32 near-ties may pick the other sample


def test_bound_is_strict_as_the_kd_tree():
    pytest.importorskip("torch")
    points = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    queries = np.array([[0.5, 0.0, 0.0], [0.25, 0.0, 0.0]])
    for nn in (KDTreeNearest(points), TorchNearest(points, "cpu")):
        d, j = nn.query(queries, 0.5)
        assert np.isinf(d[0]) and j[0] == 2 and d[1] == 0.25 and j[1] == 0


def test_the_device_picks_the_backend():
    points = np.zeros((4, 3))
    assert isinstance(make_nearest(points, "cpu"), KDTreeNearest)
    assert isinstance(make_nearest(points, "cpu", "torch"), TorchNearest)
    with pytest.raises(ValueError, match="kdtree' or 'torch'"):
        make_nearest(points, "cpu", "faiss")
