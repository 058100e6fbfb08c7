"""objects.tracker: tracking every frame, searches on a background thread, their finds tracked through the frames
that arrived meanwhile and merged into the tracks (what object_pose_node runs)."""

import threading
import time

import numpy as np
import pytest

from scenes import add_s_m

from pose_perception.objects.estimator import (
    EstimatorConfig,
    EstimatorInputError,
    ObjectPoseEstimator,
    UnknownObjectError,
)
from pose_perception.evaluation.objects.synthetic import make_sequence
from pose_perception.objects.tracker import ObjectTracker, ObjectTrackerConfig

pytestmark = pytest.mark.timeout(240)


def wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_tracker_finds_in_the_background_then_tracks_and_forgets_on_reset(load_ycb):
    """SYNTHETIC clip of a mustard bottle sliding 1 cm and turning 3 degrees a frame. The first step() returns at
    once (nothing tracked yet; the search runs on its own thread); once the search is done its find is tracked in
    every later frame; reset() forgets it and remove_model() drops the model's tracks; a broken frame is refused
    with EstimatorInputError and the tracks survive it."""
    model = load_ycb("006_mustard_bottle")
    errors = []
    tracker = ObjectTracker(
        [model], EstimatorConfig(), ObjectTrackerConfig(redetect_period_s=60.0), on_search_error=errors.append
    )
    clip = list(make_sequence("006_mustard_bottle", 8, 3, fps=10.0))
    try:
        t0 = time.monotonic()
        assert tracker.step(None, clip[0].depth_m, clip[0].intrinsics) == []
        assert time.monotonic() - t0 < 0.5 and tracker.search_busy()
        assert wait_for(lambda: not tracker.search_busy(), 60)
        for scene in clip[1:5]:
            poses = tracker.step(scene.rgb, scene.depth_m, scene.intrinsics)
            assert [p.name for p in poses] == ["006_mustard_bottle"], poses
            truth = scene.object("006_mustard_bottle").T_cam_obj
            assert add_s_m(model.dense_points, poses[0].T_cam_obj, truth) < 0.1 * model.diameter_m
        with pytest.raises(EstimatorInputError):
            tracker.step(None, np.full_like(clip[5].depth_m, np.nan), clip[5].intrinsics)
        assert len(tracker.step(clip[5].rgb, clip[5].depth_m, clip[5].intrinsics)) == 1
        assert tracker.reset() == 1
        assert tracker.reset() == 0
        with pytest.raises(UnknownObjectError):
            tracker.remove_model("no_such_object")
        tracker.configure(ObjectTrackerConfig(track=False))  # a full estimation on the caller's thread
        assert len(tracker.step(clip[6].rgb, clip[6].depth_m, clip[6].intrinsics)) == 1
        tracker.configure(score_threshold=0.5)
        assert tracker.estimator.config.score_threshold == 0.5
        assert not tracker.estimator.config.redetect_on_loss  # the tracker's own searches stay the only ones
        tracker.remove_model("006_mustard_bottle")
        assert tracker.models == {}
        assert errors == []
    finally:
        tracker.close()


def test_a_search_result_is_tracked_through_the_frames_that_arrived_meanwhile(load_ycb):
    """SYNTHETIC clip of a mustard bottle sliding 1 cm and turning 3 degrees a frame. The search runs on frame 0
    while frames 1-8 arrive (and one broken frame, all NaN, which is skipped); handed over, its find is where the
    bottle is in frame 8, a jump that tracking from frame 0's pose alone does not survive."""
    from pose_perception.objects.tracker import BackgroundSearch, follow_with

    model = load_ycb("006_mustard_bottle")
    estimator = ObjectPoseEstimator([model], EstimatorConfig(redetect_on_loss=False))
    clip = list(make_sequence("006_mustard_bottle", 9, 3, fps=10.0))
    frames_in = threading.Event()

    def search(cancelled):
        frames_in.wait(30)
        return estimator.estimate(None, clip[0].depth_m, clip[0].intrinsics, cancelled=cancelled)

    search_in_background = BackgroundSearch()
    search_in_background.start(search, follow_with(estimator))
    for k, scene in enumerate(clip[1:]):
        search_in_background.add_frame((scene.depth_m, scene.intrinsics, None))
        if k == 3:
            search_in_background.add_frame((np.full_like(scene.depth_m, np.nan), scene.intrinsics, None))
    frames_in.set()
    assert wait_for(lambda: not search_in_background.busy(), 60)
    found = search_in_background.take()
    T_last = clip[-1].object("006_mustard_bottle").T_cam_obj
    assert [p.name for p in found] == ["006_mustard_bottle"]
    assert add_s_m(model.dense_points, found[0].T_cam_obj, T_last) < 0.1 * model.diameter_m
    stale = estimator.estimate(None, clip[0].depth_m, clip[0].intrinsics)
    assert estimator.track(None, clip[-1].depth_m, clip[-1].intrinsics, stale) == []


def test_frames_kept_for_a_search_are_thinned_not_truncated():
    from pose_perception.objects.tracker import BackgroundSearch

    release = threading.Event()
    search = BackgroundSearch(max_frames=4)
    followed = []
    search.start(lambda cancelled: release.wait(30) and ["found"], lambda poses, f: followed.append(f) or poses)
    for k in range(1, 10):
        search.add_frame(k)
    release.set()
    assert wait_for(lambda: not search.busy(), 10)
    assert search.take() == ["found"]
    assert followed[0] == 1 and followed[-1] == 9 and len(followed) <= 4 and followed == sorted(followed)


def test_a_discarded_search_hands_over_nothing():
    """The reset service discards the search under way: what it finds was seen before the reset."""
    from pose_perception.objects.tracker import BackgroundSearch

    release = threading.Event()
    search = BackgroundSearch()
    search.start(lambda cancelled: release.wait(30) and ["found before the reset"], lambda poses, f: poses)
    search.add_frame(1)
    search.discard()
    release.set()
    assert wait_for(lambda: not search.busy(), 10)
    assert search.take() is None
    search.start(lambda cancelled: ["found after"], lambda poses, f: poses)
    assert wait_for(lambda: not search.busy(), 10)
    assert search.take() == ["found after"]


def test_a_discarded_search_is_told_and_frees_the_slot_at_once():
    """A search that checks `cancelled` (estimate() does, before each segment) ends as soon as it is discarded,
    so the next search can start without waiting for the unwanted one to finish."""
    from pose_perception.objects.estimator import EstimationCancelled
    from pose_perception.objects.tracker import BackgroundSearch

    started = threading.Event()

    def slow_search(cancelled):
        started.set()
        for _ in range(3000):  # 30 s unless told
            if cancelled():
                raise EstimationCancelled("estimate() was cancelled")
            time.sleep(0.01)
        return ["found before the reset"]

    search = BackgroundSearch()
    search.start(slow_search, lambda poses, f: poses)
    assert started.wait(10) and search.busy()
    t0 = time.monotonic()
    search.discard()
    assert wait_for(lambda: not search.busy(), 5)
    assert time.monotonic() - t0 < 2.0
    assert search.take() is None  # the cancellation is not reported as an error either
