"""Multi-target tracker: confirmation, stable ids through crossings and short gaps, ids never reused."""

import numpy as np

from pose_perception.radar.tracking import MultiTargetTracker, TrackerConfig


def test_three_walkers_keep_their_ids_through_noise_and_dropouts():
    rng = np.random.default_rng(0)
    tracker = MultiTargetTracker(TrackerConfig())
    starts = np.array([[2.0, -1.5, 0.0], [3.0, 0.0, 0.0], [4.0, 1.5, 0.0]])
    vel = np.array([[0.0, 0.8, 0.0], [0.5, 0.0, 0.0], [-0.3, -0.4, 0.0]])
    ids_of = {}
    for k in range(60):
        t = k / 20.0
        truth = starts + vel * t
        meas = truth + rng.normal(0, 0.08, truth.shape)
        visible = [i for i in range(3) if not (20 <= k < 24 and i == 1)]  # person 1 stands still: no points
        order = rng.permutation(visible)
        tracks = tracker.update(t, meas[order])
        for tr in tracks:
            if tr.cluster is None:
                continue
            person = order[tr.cluster]
            ids_of.setdefault(person, set()).add(tr.id)
        if k >= 5:
            assert len(tracks) == 3
    assert all(len(ids) == 1 for ids in ids_of.values()), ids_of
    assert len({next(iter(v)) for v in ids_of.values()}) == 3


def test_a_lost_track_is_dropped_and_its_id_never_comes_back():
    tracker = MultiTargetTracker(TrackerConfig(max_coast_s=0.5))
    for k in range(5):
        tracks = tracker.update(k * 0.05, np.array([[3.0, 0.0, 0.0]]))
    first = tracks[0].id
    for k in range(5, 30):
        tracks = tracker.update(k * 0.05, np.zeros((0, 3)))
    assert tracks == []
    for k in range(30, 36):
        tracks = tracker.update(k * 0.05, np.array([[3.0, 0.0, 0.0]]))
    assert tracks and tracks[0].id != first


def test_single_spurious_detections_never_become_people():
    tracker = MultiTargetTracker()
    rng = np.random.default_rng(3)
    for k in range(40):
        tracks = tracker.update(k * 0.05, rng.uniform([1, -3, -1], [7, 3, 1], (1, 3)))
        assert tracks == []
