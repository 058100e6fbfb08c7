"""HumanTracker: stable ids, birth / loss hysteresis, ids never reused, smoothing."""

import numpy as np
import pytest

from pose_perception.core.types import HumanPose, Source
from pose_perception.human.tracking import HumanTracker, box_iou


def _person(cx, cy=240.0, track_id=-1, jitter=None, with_3d=True):
    """A person whose 17 body keypoints spread 60x160 px around (cx, cy); 3D at 3 m with x from cx."""
    rng = np.random.default_rng(0)
    offsets = rng.uniform([-30, -80], [30, 80], size=(133, 2))
    uv = (np.array([cx, cy]) + offsets).astype(np.float32)
    if jitter is not None:
        uv = uv + jitter
    conf = np.full(133, 0.9, dtype=np.float32)
    pts = None
    if with_3d:
        pts = np.zeros((133, 3), dtype=np.float32)
        pts[:, 0] = (uv[:, 0] - 320) / 525 * 3.0
        pts[:, 1] = (uv[:, 1] - 240) / 525 * 3.0
        pts[:, 2] = 3.0
    box = np.array([uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()], dtype=np.float32)
    return HumanPose(
        track_id=track_id,
        score=0.9,
        keypoints_uv=uv,
        confidence=conf,
        keypoints_3d=pts,
        bbox_xyxy=box,
        source=Source.RGBD,
    )


def test_birth_after_min_hits_and_stable_ids_while_moving():
    tracker = HumanTracker(min_hits=3, max_misses=2)
    outputs = []
    for i in range(10):
        people = [_person(150 + 4 * i, track_id=99), _person(450 - 4 * i, track_id=99)]
        outputs.append(tracker.update(i / 30.0, people))
    assert outputs[0] == [] and outputs[1] == []
    assert len(outputs[2]) == 2
    ids_left = {o[0].track_id for o in outputs[2:]}
    ids_right = {o[1].track_id for o in outputs[2:]}
    assert len(ids_left) == 1 and len(ids_right) == 1 and ids_left != ids_right
    assert 99 not in ids_left | ids_right


def test_detection_order_does_not_change_ids():
    tracker = HumanTracker(min_hits=1)
    first = tracker.update(0.0, [_person(150), _person(450)])
    swapped = tracker.update(0.033, [_person(452), _person(152)])
    by_x = lambda people: {int(p.bbox_xyxy[0] > 300): p.track_id for p in people}  # noqa: E731
    assert by_x(first) == by_x(swapped)


def test_loss_after_max_misses_and_ids_are_never_reused():
    tracker = HumanTracker(min_hits=1, max_misses=2)
    first_id = tracker.update(0.0, [_person(200)])[0].track_id
    tracker.update(0.1, [])
    tracker.update(0.2, [])
    assert tracker.update(0.3, [_person(200)])[0].track_id == first_id  # within max_misses: same id
    for k in range(3):
        tracker.update(0.4 + 0.1 * k, [])
    second_id = tracker.update(1.0, [_person(200)])[0].track_id
    assert second_id != first_id
    tracker.reset()
    third_id = tracker.update(2.0, [_person(200)])[0].track_id
    assert third_id not in (first_id, second_id)


def test_a_tentative_track_that_misses_is_forgotten():
    tracker = HumanTracker(min_hits=3)
    tracker.update(0.0, [_person(200)])
    tracker.update(0.1, [])
    assert tracker.num_tracks == 0
    assert tracker.update(0.2, [_person(200)]) == []


def test_far_apart_detections_are_not_matched():
    assert box_iou(np.array([0, 0, 10, 10]), np.array([20, 20, 30, 30])) == 0.0
    tracker = HumanTracker(min_hits=1)
    a = tracker.update(0.0, [_person(100)])[0].track_id
    b = tracker.update(0.033, [_person(550)])[0].track_id
    assert a != b


def test_keypoints_are_smoothed():
    rng = np.random.default_rng(1)
    tracker = HumanTracker(min_hits=1)
    raw, smooth = [], []
    for i in range(60):
        jitter = rng.normal(scale=3.0, size=(133, 2))
        det = _person(300, jitter=jitter)
        out = tracker.update(i / 30.0, [det])[0]
        raw.append(det.keypoints_uv[0])
        smooth.append(out.keypoints_uv[0])
        assert out.keypoints_3d is not None and out.T_sensor_body is not None or out.T_sensor_body is None
    assert np.std(np.array(smooth)[20:], axis=0).max() < 0.6 * np.std(np.array(raw)[20:], axis=0).min()


def test_people_without_2d_are_tracked_in_3d():
    tracker = HumanTracker(min_hits=1)

    def radar(x):
        pts = np.zeros((17, 3), dtype=np.float32)
        pts[:, 0] = x
        pts[:, 2] = 3.0
        return HumanPose(
            track_id=0,
            score=1.0,
            keypoints_uv=np.full((17, 2), np.nan, dtype=np.float32),
            confidence=np.ones(17, dtype=np.float32),
            keypoints_3d=pts,
            bbox_xyxy=np.full(4, np.nan, dtype=np.float32),
            source=Source.RADAR,
        )

    ids = [tracker.update(i * 0.1, [radar(-1.0 + 0.02 * i), radar(1.0)]) for i in range(5)]
    assert [p.track_id for p in ids[0]] == [p.track_id for p in ids[-1]]


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        HumanTracker(min_hits=0)
    with pytest.raises(ValueError):
        HumanTracker(iou_weight=0.0, keypoint_weight=0.0)
    with pytest.raises(ValueError):
        HumanTracker().update(float("nan"), [])


def test_degenerate_detections_do_not_break_the_tracker():
    tracker = HumanTracker(min_hits=1)
    nan_person = HumanPose(
        track_id=0,
        score=0.1,
        keypoints_uv=np.full((133, 2), np.nan, dtype=np.float32),
        confidence=np.zeros(133, dtype=np.float32),
        keypoints_3d=None,
        bbox_xyxy=None,
    )
    out = tracker.update(0.0, [nan_person, _person(300)])
    assert len(out) == 2 and len({p.track_id for p in out}) == 2
    out = tracker.update(0.1, [nan_person])  # nothing to match on: a new id, the old ones coast
    assert len(out) == 1 and out[0].track_id not in (1, 2)
