"""The person finder and the ROI-driven landmarks on real photos: SSD anchors and decoding of MediaPipe's bundled
detectors, tiles, the fused proposals, regions of interest and their affine maps, one person's whole body from
a region, and overlapping people who each keep their own keypoints."""

import numpy as np
import pytest

from pose_perception.core.keypoints import FACE
from pose_perception.evaluation.samples.photos import three_person_frame

pytest.importorskip("mediapipe")
pytest.importorskip("tflite_runtime")

from pose_perception.human.detectors import (
    FACE_DETECTOR,
    PALM_DETECTOR,
    POSE_DETECTOR,
    SsdDetector,
    nms,
    ssd_anchors,
    tile_windows,
)
from pose_perception.human.finder import FinderConfig, PersonFinder
from pose_perception.human.landmarks import Roi, RoiWholeBodyBackend, roi_from_alignment


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="module")
def backend():
    b = RoiWholeBodyBackend()
    yield b
    b.close()


def test_anchor_counts_match_the_bundled_models():
    for spec, n in ((POSE_DETECTOR, 2254), (FACE_DETECTOR, 2304), (PALM_DETECTOR, 2016)):
        a = ssd_anchors(spec.input_side, spec.strides, spec.interpolated_anchor)
        assert a.shape == (n, 2) and a.min() > 0 and a.max() < 1
    # First anchors: the finest grid, row by row, both anchors of a location together.
    a = ssd_anchors(224, (8, 16, 32, 32, 32), True)
    assert np.allclose(a[0], a[1]) and np.allclose(a[0], [0.5 / 28, 0.5 / 28]) and a[2, 0] > a[0, 0]


def test_pose_and_face_detectors_find_the_astronaut_head_and_nothing_in_black(astronaut):
    pose, face = SsdDetector(POSE_DETECTOR), SsdDetector(FACE_DETECTOR)
    for det in (pose, face):
        found = nms(det.detect(astronaut), 0.3)
        assert found, det.spec.model
        best = max(found, key=lambda d: d.score)
        c = 0.5 * (best.box_xyxy[:2] + best.box_xyxy[2:])
        assert 170 < c[0] < 290 and 60 < c[1] < 200, (det.spec.model, best.box_xyxy)
        assert det.detect(np.zeros((240, 320, 3), np.uint8)) == []
    # The same head seen through a window: decoded back to the same image pixels.
    best = max(pose.detect(astronaut), key=lambda d: d.score)
    win = max(pose.detect(astronaut, np.array([100, 20, 400, 320], np.float32)), key=lambda d: d.score)
    assert (
        np.abs(0.5 * (win.box_xyxy[:2] + win.box_xyxy[2:]) - 0.5 * (best.box_xyxy[:2] + best.box_xyxy[2:])).max() < 15
    )


def test_tiles_cover_the_image_with_overlap():
    wins = tile_windows(640, 480, 200, 0.25)
    covered = np.zeros((480, 640), bool)
    for w in wins:
        covered[int(w[1]) : int(w[3]), int(w[0]) : int(w[2])] = True
        assert w[2] - w[0] <= 200 + 1e-3 and w[2] <= 640 and w[3] <= 480
    assert covered.all() and len(wins) == 4 * 3
    assert len(tile_windows(100, 80, 200)) == 1


def test_roi_maps_crop_pixels_upright_and_turned():
    upright = Roi(np.array([100.0, 200.0]), 50.0, np.array([0.0, -1.0]))
    A = upright.crop_to_image(256)
    assert np.allclose(A @ [128, 128, 1], [100, 200]) and np.allclose(A @ [0, 0, 1], [75, 175])
    lying = Roi(np.array([100.0, 200.0]), 50.0, np.array([1.0, 0.0]))  # head to the image's right
    A = lying.crop_to_image(256)
    assert np.allclose(A @ [128, 0, 1], [125, 200])  # the crop's top centre is at the head side
    assert np.linalg.det(A[:, :2]) > 0  # a rotation, not a mirror
    roi = roi_from_alignment(np.array([10.0, 50.0]), np.array([10.0, 10.0]))
    assert roi.side_px == pytest.approx(2 * 40 * 1.25) and np.allclose(roi.up_uv, [0, -1])
    assert roi_from_alignment(np.zeros(2), np.zeros(2)) is None


def test_roi_backend_gives_the_astronaut_whole_body(backend, astronaut):
    est = backend.estimate(astronaut, None)
    assert est is not None and est.keypoints_uv.shape == (133, 2)
    assert 170 < est.keypoints_uv[0, 0] < 290 and 60 < est.keypoints_uv[0, 1] < 200
    face = est.keypoints_uv[FACE]
    assert np.all(est.confidence[FACE] > 0) and np.all((face[:, 1] > 60) & (face[:, 1] < 220))
    assert est.keypoints_world_m is not None and np.isfinite(est.keypoints_world_m[:17]).all()
    # A region holding nobody gives nobody.
    assert backend.estimate(np.zeros((256, 256, 3), np.uint8), None) is None


def test_finder_proposes_each_of_three_people_and_respects_its_budget():
    frame = three_person_frame()
    finder = PersonFinder(FinderConfig())
    props = finder.propose(frame)
    heads = [0.5 * (p.head_xyxy[:2] + p.head_xyxy[2:]) for p in props if p.head_xyxy is not None]
    # The astronaut, the cameraman and the mirrored astronaut each have a head proposal in their third.
    for third in range(3):
        assert any(third * 640 / 3 <= h[0] < (third + 1) * 640 / 3 for h in heads), (third, heads)
    assert finder.last_timing_ms["windows"] == len(finder.work(640, 480))
    budget = PersonFinder(FinderConfig(budget_ms=1.0))
    budget.propose(frame)
    assert budget.last_timing_ms["windows"] == 2  # the whole image and one more item; the others in later calls
    first = budget._cursor
    budget.propose(frame)
    assert budget.last_timing_ms["windows"] == 2 and budget._cursor == first + 1


def test_budgeted_rounds_look_first_where_nobody_is_followed():
    finder = PersonFinder(FinderConfig(tile_fractions=(0.6, 0.35), budget_ms=25.0))
    items = finder.work(640, 480)
    tiles = [i for i, (_, w) in enumerate(items) if w is not None]
    plain = finder.schedule(items)
    assert plain == list(range(len(items))) and plain[1] not in tiles  # whole image (MediaPipe, boxes), tiles
    # Someone followed in the left half: the tiles inside them come after all the others.
    left = [np.array([0, 0, 330, 480], np.float32)]
    order = finder.schedule(items, left)[2:]
    assert sorted(order) == tiles
    inside = [i for i in order if items[i][1][2] <= 330]
    assert inside and order[-len(inside) :] == inside
    assert finder.schedule(items, left)[0] == 0


def test_overlapping_people_each_keep_their_own_keypoints():
    """Two people whose boxes overlap by half (the astronaut and her mirror image, side by side): each is found
    once, with the keypoints of their own body (nose on their own face), none borrowed from the other."""
    from skimage import data

    from pose_perception.human.pipeline import HumanPipelineConfig, HumanPosePipeline

    a = data.astronaut()[:, 60:330]
    frame = np.concatenate([a, a[:, ::-1]], axis=1)[:, 40:-40].copy()  # faces ~200 px apart, bodies overlap
    p = HumanPosePipeline(HumanPipelineConfig(max_people=5, tracking=False, lift_3d=False, head_pose=False))
    try:
        humans, _ = p.process(frame, None, None, 0.0)
    finally:
        p.close()
    assert len(humans) == 2, [h.bbox_xyxy for h in humans]
    noses = sorted(float(h.keypoints_uv[0, 0]) for h in humans)
    mid = frame.shape[1] / 2
    assert noses[0] < mid - 40 and noses[1] > mid + 40, noses
    for h in humans:  # every confident face point on the side of its own nose
        side = h.keypoints_uv[0, 0] < mid
        face = h.keypoints_uv[FACE][h.confidence[FACE] > 0]
        assert len(face) == 68 and np.all((face[:, 0] < mid) == side)
