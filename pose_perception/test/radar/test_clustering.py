"""Clustering separates simulated people (SYNTHETIC); static clutter suppression keeps moving points."""

import numpy as np

from pose_perception.evaluation.radar import simulator as sim
from pose_perception.radar.clustering import ClusterConfig, StaticClutterMap, cluster_people, dbscan
from pose_perception.radar.points import FrameAccumulator


def test_dbscan_finds_dense_groups_and_marks_noise():
    rng = np.random.default_rng(0)
    a = rng.normal([0, 0], 0.05, (30, 2))
    b = rng.normal([2, 0], 0.05, (30, 2))
    noise = np.array([[5.0, 5.0], [-4.0, 3.0]])
    labels = dbscan(np.vstack([a, b, noise]), eps=0.2, min_samples=4)
    assert len(set(labels[:30])) == 1 and len(set(labels[30:60])) == 1
    assert labels[0] != labels[30] and labels[0] >= 0
    assert np.all(labels[60:] == -1)


def test_empty_cloud_gives_no_clusters():
    assert cluster_people(np.zeros((0, 5), np.float32)) == []


def test_three_simulated_people_become_three_clusters():
    rng = np.random.default_rng(4)
    skeleton = sim.load_skeleton()
    clips = [sim.load_clip(n) for n in ("humanoid3d_dance_b", "humanoid3d_spinkick", "humanoid3d_punch")]
    positions = [(2.5, -1.3), (3.5, 0.2), (2.8, 1.6)]
    people = [sim.random_person(rng, skeleton, [c], np.array(p), allow_mirror=False) for c, p in zip(clips, positions)]
    scene = sim.SimScene(people, skeleton, sim.RadarModel(ghosts_per_frame=1.0))
    acc = FrameAccumulator(4)
    good = 0
    frames = scene.frames(np.arange(12) / 20.0, rng)
    for k, (points, _labels, _) in enumerate(frames):
        acc.add(k / 20.0, points)
    labels = np.concatenate([f[1] for f in frames[-4:]])
    cloud, _ = acc.stacked()
    clusters = cluster_people(cloud, ClusterConfig())
    owners = [np.bincount(labels[c.indices] + 1, minlength=4).argmax() - 1 for c in clusters]
    purity = [np.mean(labels[c.indices] == o) for c, o in zip(clusters, owners)]
    good = sorted(o for o in owners if o >= 0)
    assert good == [0, 1, 2], f"clusters owned by {owners}"
    assert min(purity) > 0.9


def test_static_clutter_is_suppressed_but_moving_points_are_kept():
    rng = np.random.default_rng(1)
    clutter_map = StaticClutterMap(memory_s=2.0)
    wall = np.column_stack([np.full(20, 4.0), np.linspace(-1, 1, 20), np.zeros(20), np.zeros(20), np.full(20, 20.0)])
    kept = []
    for k in range(120):  # 6 s at 20 Hz
        person = np.column_stack([rng.normal(2.0, 0.2, (10, 3)), rng.uniform(0.3, 1.0, 10), np.full(10, 15.0)])
        frame = np.vstack([wall + rng.normal(0, 0.01, wall.shape) * [1, 1, 1, 0, 0], person]).astype(np.float32)
        keep = clutter_map.filter(k / 20.0, frame)
        kept.append((keep[:20].mean(), keep[20:].mean()))
    assert kept[0][0] == 1.0  # a new static object is not clutter yet
    assert kept[-1][0] <= 0.1  # after a while it is
    assert all(p == 1.0 for _, p in kept)  # moving points are never removed


def _blob(rng, centre, n, sigma=(0.1, 0.1, 0.3)):
    from pose_perception.radar.points import NUM_COLUMNS

    pts = np.zeros((n, NUM_COLUMNS), np.float32)
    pts[:, :3] = rng.normal(centre, sigma, (n, 3))
    return pts


def test_limb_fragments_merge_into_their_body_and_multipath_ghosts_are_dropped():
    from pose_perception.radar.clustering import Cluster, merge_fragments_and_ghosts

    rng = np.random.default_rng(3)
    body, arm = _blob(rng, [2.0, 0.0, 0.0], 80), _blob(rng, [2.0, -0.6, 0.5], 20, (0.05, 0.05, 0.1))
    ghost_behind = _blob(rng, [3.2, 0.1, 0.0], 15)  # same bearing, farther: reflection
    ghost_side = _blob(rng, [2.3, -2.2, 0.0], 15)  # beside and 1.2 m farther, a quarter of the points
    other = _blob(rng, [2.0, 2.0, 0.0], 60)  # another person beside, as large: kept
    pts = np.concatenate([body, arm, ghost_behind, ghost_side, other])
    groups = np.split(np.arange(len(pts)), np.cumsum([80, 20, 15, 15]))
    clusters = [Cluster(g, np.median(pts[g, :3], axis=0), 0.0) for g in groups]
    out = merge_fragments_and_ghosts(pts, clusters)
    assert sorted(len(c.indices) for c in out) == [60, 100]
    big = max(out, key=lambda c: len(c.indices))
    assert set(big.indices) == set(groups[0]) | set(groups[1])


def test_tracks_of_small_clusters_are_not_confirmed():
    from pose_perception.radar.tracking import MultiTargetTracker

    tr = MultiTargetTracker()
    for k in range(6):
        tracks = tr.update(k * 0.1, np.array([[2.0, 0.0, 0.0], [2.5, -2.0, 0.0]]), np.array([80, 8]))
    assert [tuple(np.round(t.position_m[:2], 1)) for t in tracks] == [(2.0, 0.0)]


def test_a_farther_person_with_the_points_of_its_range_is_not_a_ghost():
    # SYNTHETIC-like numbers of bench radar's scene: a person 1.1 m behind another, 13 degrees apart, with the
    # ~1 / range^2 fewer points of its range and a person's height, is a person; a compact weak cluster there is not.
    from pose_perception.radar.clustering import Cluster, merge_fragments_and_ghosts

    rng = np.random.default_rng(5)
    near = _blob(rng, [2.2, -0.7, 0.0], 290)
    far = _blob(rng, [3.4, -0.27, 0.0], 130)  # (3.6 / 2.3)^2 = 2.4x fewer points: as its range predicts
    ghost = _blob(rng, [3.4, -0.27, 0.0], 40, (0.1, 0.1, 0.1))  # 7x fewer, 0.5 m tall
    for second, kept in ((far, True), (ghost, False)):
        pts = np.concatenate([near, second])
        groups = [np.arange(len(near)), np.arange(len(near), len(pts))]
        clusters = [Cluster(g, np.median(pts[g, :3], axis=0), 0.0) for g in groups]
        assert len(merge_fragments_and_ghosts(pts, clusters)) == (2 if kept else 1)
