"""People from radar points: suppress static clutter, then density-based clustering (DBSCAN) on position and
Doppler velocity. Points are (N, 5) float32 [x, y, z, velocity, intensity] in the radar frame (REP-103).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from pose_perception.radar.points import VELOCITY


@dataclass(frozen=True)
class ClusterConfig:
    """eps_m: DBSCAN neighbourhood radius in the scaled feature space (metres); z_scale < 1 lets a standing
    person (tall, narrow) form one cluster; velocity_scale_s converts m/s to metres of feature distance
    (small: one person's limbs move at very different speeds)."""

    eps_m: float = 0.35
    min_samples: int = 4
    z_scale: float = 0.35
    velocity_scale_s: float = 0.08
    min_points: int = 6  # clusters smaller than this are noise or ghosts
    max_extent_m: float = 1.6  # horizontal size above which a cluster is not one person
    # One body, one cluster (merge_fragments_and_ghosts): a smaller cluster whose nearest point is within
    # fragment_gap_m (horizontally) of a cluster at least fragment_ratio times larger is a limb of that body.
    fragment_gap_m: float = 0.5  # REAL MARS: an arm raised sideways gives a separate cluster ~0.4 m from the body
    fragment_ratio: float = 2.0
    fragment_max_centroid_m: float = 1.0  # a limb's cluster is never farther than this from its body's (people are)
    # ... and any smaller cluster whose centroid is within fragment_centroid_m of a larger one's (people that
    # close mostly merge in DBSCAN already).
    fragment_centroid_m: float = 0.75
    # Multipath ghosts (the body's reflection off a wall or the floor: a longer path, so farther than the body, and
    # weaker than a person there would be). A cluster more than ghost_behind_m farther than a larger one is a ghost
    # when it holds less than 1 / ghost_range_ratio of the points the nearer one would give at its range (detections
    # fall ~1 / range^2, a reflection loses more), or when it is compact in height (a standing, sitting or walking
    # person spans more than ghost_min_height_m over the accumulated frames) with less than 1 / ghost_compact_ratio
    # of the larger one's points. Measured (`radar eval --mars --ghost-stats`, docs/radar.md): REAL MARS ghosts hold
    # 2.7-6.6x fewer points than their range predicts and span 0.4-0.9 m of height (quartiles); SYNTHETIC people
    # 2.5-3.5 m away beside another person hold 0.95-1.44x (quartiles) and span 1.2-2.2 m (5-95 %).
    ghost_behind_m: float = 0.25
    ghost_range_ratio: float = 2.0
    ghost_min_height_m: float = 1.0
    ghost_compact_ratio: float = 2.0


@dataclass(frozen=True)
class Cluster:
    """indices (M,) into the clustered points; centroid_m (3,) median position; velocity_mps mean Doppler."""

    indices: np.ndarray
    centroid_m: np.ndarray
    velocity_mps: float


def dbscan(features: np.ndarray, eps: float, min_samples: int, weights: np.ndarray | None = None) -> np.ndarray:
    """DBSCAN (Ester et al. 1996) on (N, D) features with a k-d tree. Returns labels (N,) int, -1 for noise.

    Core points (neighbour weight within eps, self included, >= min_samples) are linked into connected
    components; border points join the cluster of a core neighbour. weights (N,): points each row stands for.
    """
    n = len(features)
    if n == 0:
        return np.zeros(0, np.int64)
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    tree = cKDTree(features)
    pairs = tree.query_pairs(eps, output_type="ndarray")
    counts = (
        w
        + np.bincount(pairs[:, 0], weights=w[pairs[:, 1]], minlength=n)
        + np.bincount(pairs[:, 1], weights=w[pairs[:, 0]], minlength=n)
    )
    core = counts >= min_samples
    labels = np.full(n, -1, np.int64)
    if not core.any():
        return labels
    cc_pairs = pairs[core[pairs[:, 0]] & core[pairs[:, 1]]]
    graph = coo_matrix((np.ones(len(cc_pairs)), (cc_pairs[:, 0], cc_pairs[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    core_idx = np.flatnonzero(core)
    _, compact = np.unique(comp[core_idx], return_inverse=True)
    labels[core_idx] = compact
    # Border points: attach to the cluster of any core neighbour.
    border = pairs[core[pairs[:, 0]] ^ core[pairs[:, 1]]]
    if len(border):
        c = np.where(core[border[:, 0]], border[:, 0], border[:, 1])
        b = np.where(core[border[:, 0]], border[:, 1], border[:, 0])
        labels[b] = labels[c]
    return labels


def cluster_people(points: np.ndarray, config: ClusterConfig = ClusterConfig()) -> list[Cluster]:
    """(N, 5) radar points -> person clusters, largest first."""
    if len(points) == 0:
        return []
    feats = np.column_stack(
        [points[:, 0], points[:, 1], points[:, 2] * config.z_scale, points[:, VELOCITY] * config.velocity_scale_s]
    ).astype(np.float64)
    # Accumulated clouds are dense: cluster voxels of eps/3 weighted by their point count (same clusters up
    # to the voxel size, and far fewer neighbour pairs).
    keys = np.floor(feats / (config.eps_m / 3.0)).astype(np.int64)
    keys -= keys.min(axis=0)
    dims = keys.max(axis=0) + 1
    flat = (
        np.ravel_multi_index(keys.T, dims)
        if np.prod(dims.astype(np.float64)) < 2**62
        else (np.unique(keys, axis=0, return_inverse=True)[1].ravel())
    )
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    centres = np.zeros((len(counts), feats.shape[1]))
    np.add.at(centres, inverse, feats)
    centres /= counts[:, None]
    labels = dbscan(centres, config.eps_m, config.min_samples, weights=counts)[inverse]
    clusters = []
    for lab in range(labels.max() + 1):
        idx = np.flatnonzero(labels == lab)
        if len(idx) < config.min_points:
            continue
        xy = points[idx, :2]
        if np.max(np.ptp(xy, axis=0)) > config.max_extent_m:
            # Two people close together: split along the wider axis at the largest gap-free median.
            clusters += _split(points, idx, config)
            continue
        clusters.append(_make(points, idx))
    return sorted(clusters, key=lambda c: -len(c.indices))


def merge_fragments_and_ghosts(
    points: np.ndarray, clusters: list[Cluster], config: ClusterConfig = ClusterConfig()
) -> list[Cluster]:
    """Clusters (largest first) of the (N, 5) points -> the same people with body fragments merged into their
    body and multipath ghosts dropped, largest first (see ClusterConfig). Two people of similar size are never
    merged (the ratios); a ghost is dropped only behind a larger cluster (is_multipath_ghost)."""
    if len(clusters) < 2:
        return clusters
    kept: list[Cluster] = []
    order = sorted(clusters, key=lambda c: -len(c.indices))
    members: list[np.ndarray] = []
    for c in order:
        n = len(c.indices)
        target, ghost = None, False
        for i, k in enumerate(kept):
            nk = len(members[i])
            if nk > n:
                ghost = is_multipath_ghost(points, c, k, nk, config)
                if ghost:
                    break
            dist = np.linalg.norm(k.centroid_m[:2] - c.centroid_m[:2])
            near = dist <= config.fragment_centroid_m
            if (nk >= config.fragment_ratio * n and dist <= config.fragment_max_centroid_m) or near:
                gap = cKDTree(points[members[i], :2]).query(points[c.indices, :2], k=1)[0].min()
                if gap <= config.fragment_gap_m:
                    target = i
                    break
        if ghost:
            continue
        if target is None:
            kept.append(c)
            members.append(c.indices)
        else:
            members[target] = np.concatenate([members[target], c.indices])
            kept[target] = _make(points, members[target])
    return sorted(kept, key=lambda c: -len(c.indices))


def is_multipath_ghost(points: np.ndarray, c: Cluster, k: Cluster, nk: int, config: ClusterConfig) -> bool:
    """Whether cluster c of the (N, 5) points is a multipath ghost of the larger cluster k (nk points, more than
    c's): farther by more than ghost_behind_m, and either too weak for its range or compact in height with few
    points (ClusterConfig)."""
    n = len(c.indices)
    rng_c, rng_k = float(np.hypot(*c.centroid_m[:2])), float(np.hypot(*k.centroid_m[:2]))
    if rng_c <= rng_k + config.ghost_behind_m:
        return False
    if nk >= config.ghost_range_ratio * n * (rng_c / max(rng_k, 1e-3)) ** 2:
        return True
    return nk >= config.ghost_compact_ratio * n and float(np.ptp(points[c.indices, 2])) < config.ghost_min_height_m


def _make(points: np.ndarray, idx: np.ndarray) -> Cluster:
    return Cluster(idx, np.median(points[idx, :3], axis=0).astype(np.float64), float(np.mean(points[idx, VELOCITY])))


def _split(points: np.ndarray, idx: np.ndarray, config: ClusterConfig) -> list[Cluster]:
    """Split an over-wide cluster with 2-means on the horizontal position (a few Lloyd iterations)."""
    xy = points[idx, :2].astype(np.float64)
    axis = np.argmax(np.ptp(xy, axis=0))
    centres = np.stack([xy[np.argmin(xy[:, axis])], xy[np.argmax(xy[:, axis])]])
    for _ in range(10):
        assign = np.argmin(np.linalg.norm(xy[:, None] - centres[None], axis=2), axis=1)
        centres = np.stack([xy[assign == k].mean(0) if np.any(assign == k) else centres[k] for k in range(2)])
    return [_make(points, idx[assign == k]) for k in range(2) if np.count_nonzero(assign == k) >= config.min_points]


class StaticClutterMap:
    """Suppresses reflections from static objects (walls, furniture) that survive the driver's Doppler filter.

    A voxel grid remembers how long each voxel has held near-zero-velocity points (exponential decay with
    `memory_s`). Points with |velocity| < static_velocity_mps in voxels occupied for longer than
    `persistence` are clutter. People move (or breathe) and are not removed unless they stand still longer
    than the memory, which matches what radar drivers do.
    """

    def __init__(
        self, voxel_m: float = 0.25, memory_s: float = 10.0, persistence: float = 0.6, static_velocity_mps: float = 0.05
    ):
        self.voxel_m = voxel_m
        self.memory_s = memory_s
        self.persistence = persistence
        self.static_velocity_mps = static_velocity_mps
        self._occupancy: dict[tuple[int, int, int], float] = {}
        self._last_stamp: float | None = None

    def _keys(self, points: np.ndarray) -> list[tuple[int, int, int]]:
        return [tuple(k) for k in np.floor(points[:, :3] / self.voxel_m).astype(np.int64)]

    def filter(self, stamp_s: float, points: np.ndarray) -> np.ndarray:
        """(N, 5) frame -> boolean mask (N,) of points to keep; updates the map with this frame."""
        dt = 0.0 if self._last_stamp is None else max(0.0, stamp_s - self._last_stamp)
        self._last_stamp = stamp_s
        decay = float(np.exp(-dt / self.memory_s))
        # Occupancy rises towards 1 while a voxel keeps holding static points, and decays otherwise.
        rate = 1.0 - decay
        for key in list(self._occupancy):
            self._occupancy[key] *= decay
            if self._occupancy[key] < 1e-3:
                del self._occupancy[key]
        static = np.abs(points[:, VELOCITY]) < self.static_velocity_mps
        keys = self._keys(points)
        keep = np.ones(len(points), bool)
        # A point's persistence is the summed occupancy of the 2x2x2 voxels nearest to it, so clutter that
        # jitters across a voxel border counts as fully as clutter in the middle of one.
        corner = np.floor(points[:, :3] / self.voxel_m - 0.5).astype(np.int64)
        for i in np.flatnonzero(static):
            cx, cy, cz = corner[i]
            occ = sum(
                self._occupancy.get((cx + a, cy + b, cz + c), 0.0) for a in (0, 1) for b in (0, 1) for c in (0, 1)
            )
            keep[i] = occ < self.persistence
        for key in {k for k, s in zip(keys, static) if s}:
            self._occupancy[key] = self._occupancy.get(key, 0.0) + rate
        return keep

    def reset(self) -> None:
        self._occupancy.clear()
        self._last_stamp = None
