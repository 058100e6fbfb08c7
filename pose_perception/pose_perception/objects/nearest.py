"""Bounded nearest-neighbour queries for the ICPs: scipy's KD-tree on the CPU, brute force in torch on a GPU.
Both answer as scipy's cKDTree.query(q, distance_upper_bound=r): (distance (N,), index (N,)), inf and M if none."""

from __future__ import annotations

import numpy as np


class KDTreeNearest:
    """Nearest of points (M, 3) float64 by scipy's cKDTree (the CPU default); tree: one already built over them."""

    def __init__(self, points: np.ndarray, tree=None):
        from scipy.spatial import cKDTree

        self.points = np.asarray(points, dtype=np.float64)
        self._tree = tree if tree is not None else cKDTree(self.points)

    def query(self, queries: np.ndarray, max_dist_m: float) -> tuple[np.ndarray, np.ndarray]:
        """queries (N, 3) -> distance (N,) float64 m, index (N,) int64; inf and M where none is within max_dist_m."""
        return self._tree.query(np.asarray(queries, dtype=np.float64), distance_upper_bound=max_dist_m)


class TorchNearest:
    """Nearest of points (M, 3) by brute force in torch, in chunks of at most max_pairs query-point pairs.

    On a GPU one distance matrix over the ICP's few thousand model samples replaces the KD-tree walk. The choice
    of neighbour is made in float32; the distance returned is recomputed in float64 from that neighbour, so it
    differs from the KD-tree's only where two samples are equally near within float32 rounding."""

    def __init__(self, points: np.ndarray, device: str, max_pairs: int = 1 << 24):
        import torch

        self.points = np.asarray(points, dtype=np.float64)
        self.device = device
        self._points_t = torch.as_tensor(self.points, dtype=torch.float32, device=device)
        self._max_pairs = max_pairs

    def query(self, queries: np.ndarray, max_dist_m: float) -> tuple[np.ndarray, np.ndarray]:
        """queries (N, 3) -> distance (N,) float64 m, index (N,) int64; inf and M where none is within max_dist_m."""
        import torch

        q = np.asarray(queries, dtype=np.float64).reshape(-1, 3)
        M = len(self.points)
        idx = np.full(len(q), M, dtype=np.int64)
        if M == 0 or len(q) == 0:
            return np.full(len(q), np.inf), idx
        q_t = torch.as_tensor(q, dtype=torch.float32, device=self.device)
        step = max(1, self._max_pairs // M)
        with torch.no_grad():
            for s in range(0, len(q), step):
                idx[s : s + step] = torch.cdist(q_t[s : s + step], self._points_t).argmin(dim=1).cpu().numpy()
        dist = np.linalg.norm(q - self.points[idx], axis=1)
        far = ~(dist < max_dist_m)  # strictly closer, as the KD-tree's bound
        dist[far], idx[far] = np.inf, M
        return dist, idx


def make_nearest(
    points: np.ndarray, device: str = "cpu", backend: str | None = None, tree=None
) -> KDTreeNearest | TorchNearest:
    """The nearest-neighbour structure for points (M, 3) on device ("cpu" | "cuda[:N]"): backend "kdtree" or
    "torch"; None picks the KD-tree on the CPU and torch on CUDA. ("torch" on "cpu" exists for tests: it runs the
    GPU code path where no GPU is.) tree: a cKDTree already built over points, reused by the KD-tree backend."""
    backend = backend or ("torch" if device.startswith("cuda") else "kdtree")
    if backend == "kdtree":
        return KDTreeNearest(points, tree)
    if backend == "torch":
        return TorchNearest(points, device)
    raise ValueError(f"nearest-neighbour backend must be 'kdtree' or 'torch', got '{backend}'")
