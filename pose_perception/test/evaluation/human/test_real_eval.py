"""The REAL-photo evaluation: dataset readers (COCO-style and MPII annotation files written here), OKS, PCK,
matching, recall / precision rules, and `pose-perception eval human` without the data (clear message)."""

import json
from pathlib import Path

import numpy as np
import pytest

from pose_perception.core.realdata import realdata_dir
from pose_perception.evaluation.human.real_eval import (
    AnnotatedImage,
    AnnotatedPerson,
    RealDataMissingError,
    _coco_style,
    _mpii,
    _POSETRACK_17,
    body_oks,
    load_annotated_sets,
    match_people,
    pck_hits,
    score_image,
)

REAL = realdata_dir("humans")


def person(x0, y0, h=200.0):
    """An upright annotated person of height h: COCO body 17 points in a plausible layout."""
    w = 0.35 * h
    rel = np.array(
        [
            [0.5, 0.08],
            [0.45, 0.06],
            [0.55, 0.06],
            [0.4, 0.07],
            [0.6, 0.07],
            [0.25, 0.2],
            [0.75, 0.2],
            [0.2, 0.38],
            [0.8, 0.38],
            [0.18, 0.52],
            [0.82, 0.52],
            [0.35, 0.55],
            [0.65, 0.55],
            [0.35, 0.77],
            [0.65, 0.77],
            [0.35, 0.98],
            [0.65, 0.98],
        ]
    )
    uv = np.array([x0, y0]) + rel * [w, h]
    return AnnotatedPerson(uv, np.ones(17, bool), np.array([x0, y0, x0 + w, y0 + h]))


def test_oks_and_pck_of_perfect_noisy_and_missing_estimates():
    g = person(100, 50)
    assert body_oks(g.keypoints_uv, g) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noisy = g.keypoints_uv + rng.normal(0, 8, g.keypoints_uv.shape)
    assert 0.3 < body_oks(noisy, g) < 1.0
    torso, box = pck_hits(g.keypoints_uv, g)
    assert torso.all() and box.all()
    torso, box = pck_hits(None, g)  # a missed person: every annotated point wrong
    assert len(torso) == 17 and not torso.any() and not box.any()
    far = g.keypoints_uv + [30.0, 0.0]  # 30 px: within 0.2 x box (40 px), beyond 0.2 x torso (~19 px)
    torso, box = pck_hits(far, g)
    assert box.all() and not torso.any()


def test_matching_recall_and_precision_rules():
    a, b, small = person(100, 50), person(400, 60), person(600, 10, h=30)
    img = AnnotatedImage("t", Path("x.jpg"), (a, b, small), exhaustive=True)
    preds = [b.keypoints_uv + 2.0, a.keypoints_uv - 1.0, small.keypoints_uv, np.full((17, 2), 900.0)]
    boxes = [b.bbox_xyxy, a.bbox_xyxy, small.bbox_xyxy, np.array([880.0, 880, 920, 920])]
    assert match_people(preds, img.people) == {0: 1, 1: 0, 2: 2}
    s = score_image(img, preds, boxes)
    # The 30 px person is neither required nor a false find; the far estimate is false.
    assert (s.required, s.found, s.false, s.judged) == (2, 2, 1, 3)
    # Not exhaustive: an unmatched find is not judged.
    s = score_image(
        AnnotatedImage("t", Path("x.jpg"), (a, b), exhaustive=False), preds[:2] + preds[3:], boxes[:2] + boxes[3:]
    )
    assert (s.false, s.judged) == (0, 2)
    # Inside an ignore region: not judged.
    poly = np.array([[850.0, 850], [950, 850], [950, 950], [850, 950]])
    s = score_image(
        AnnotatedImage("t", Path("x.jpg"), (a, b), True, (poly,)), preds[:2] + preds[3:], boxes[:2] + boxes[3:]
    )
    assert (s.false, s.judged) == (0, 2)


def test_readers_map_each_dataset_order_to_coco_body(tmp_path):
    # PoseTrack18-style file: nose, head_bottom, head_top, ears (unannotated), then COCO's 12 limb points.
    kps = [10, 20, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] + [float(v) for i in range(12) for v in (100 + i, 200 + i, 1)]
    coco = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "ignore_regions_x": [[0, 10, 10]], "ignore_regions_y": [[0, 0, 10]]}
        ],
        "annotations": [
            {"image_id": 1, "keypoints": kps, "bbox": [0, 0, 50, 300], "track_id": 4, "bbox_head": [5, 5, 20, 20]}
        ],
    }
    (tmp_path / "pt.json").write_text(json.dumps(coco))
    (im,) = _coco_style(tmp_path / "pt.json", tmp_path, "posetrack18", _POSETRACK_17, True, 17)
    (p,) = im.people
    assert p.visible.tolist() == [True, False, False, False, False] + [True] * 12
    assert np.allclose(p.keypoints_uv[5], [100, 200]) and np.allclose(p.keypoints_uv[16], [111, 211])
    assert p.track_id == 4 and np.allclose(p.head_xyxy, [5, 5, 25, 25]) and len(im.ignore_polygons) == 1
    # MPII: r_ankle 0 ... l_wrist 15; -1 marks a missing joint.
    joints = [[float(10 * i), float(10 * i + 1)] for i in range(16)]
    joints[0] = [-1.0, -1.0]
    (tmp_path / "mpii.json").write_text(
        json.dumps([{"image": "m.jpg", "joints": joints, "joints_vis": [1] * 16, "center": [0, 0], "scale": 1.0}])
    )
    (im,) = _mpii(tmp_path / "mpii.json", tmp_path)
    (p,) = im.people
    assert not im.exhaustive and not p.visible[16]  # right ankle missing
    assert np.allclose(p.keypoints_uv[5], joints[13]) and np.allclose(p.keypoints_uv[10], joints[10])


def test_missing_real_data_is_a_clear_error(tmp_path, capsys):
    from pose_perception.cli.main import main

    with pytest.raises(RealDataMissingError, match="--real"):
        load_annotated_sets(tmp_path)
    assert main(["eval", "human", "--real", str(tmp_path / "nowhere"), "--out-dir", str(tmp_path)]) == 2
    assert "no annotated real photos" in capsys.readouterr().err


@pytest.mark.skipif(not (REAL / "mmpose_testdata").is_dir(), reason="../shared/realdata/humans is not beside the repo")
def test_the_real_annotated_sets_load():
    images = load_annotated_sets(REAL)
    sets = {im.dataset for im in images}
    assert sets == {"posetrack18", "mpii", "mhp", "exlpose", "jhmdb"}
    assert sum(len(im.people) for im in images) >= 30
    for im in images:
        for p in im.people:
            assert p.visible.sum() >= 2 and np.isfinite(p.keypoints_uv[p.visible]).all()


@pytest.mark.skipif(not (REAL / "mmpose_testdata").is_dir(), reason="../shared/realdata/humans is not beside the repo")
def test_real_overlapping_players_and_a_street_crowd_are_found_each_with_their_own_keypoints():
    """REAL photos: the two MHP basketball players whose boxes overlap are both found with their own skeletons
    (box PCK@0.2 >= 0.9 over both: nothing borrowed from the other), and at least 6 of the 11 annotated PoseTrack18
    street dancers (the baseline found none), without false finds outside the ignore regions there."""
    from real_photos import photo_pipeline, score_photo

    images = {im.path.name if im.dataset == "mhp" else im.path.parent.name: im for im in load_annotated_sets(REAL)}
    with photo_pipeline() as p:
        s = score_photo(p, images["10084.jpg"])
        assert (s.required, s.found, s.false) == (2, 2, 0)
        assert np.mean(s.pck_box) >= 0.9  # both players' annotated points (box PCK@0.2)
        p.reset()
        s = score_photo(p, images["012834_mpii_test"])
        assert s.found >= 6 and s.false <= 1, (s.found, s.false)


def test_mesh_inside_fraction_counts_in_image_vertices_in_the_box():
    from pose_perception.evaluation.cli.eval_human import mesh_inside_fraction

    K = np.array([[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]])
    # Four vertices at 1 m: pixels (50, 50), (60, 50), (90, 50) and one beyond the image (x = 200 px).
    v = np.array([[0.0, 0, 1], [0.1, 0, 1], [0.4, 0, 1], [1.5, 0, 1]])
    box = np.array([40.0, 40, 70, 60])
    assert mesh_inside_fraction(v, K, box, 100, 100) == pytest.approx(2 / 3)
    assert np.isnan(mesh_inside_fraction(v[3:], K, box, 100, 100))


@pytest.mark.skipif(not (REAL / "mmpose_testdata").is_dir(), reason="../shared/realdata/humans is not beside the repo")
def test_discovery_reports_the_frame_each_real_person_is_first_found():
    """REAL: the PoseTrack18 frame of two players held still with the node's video settings: both are reported
    from the tracker's third hit on (frame 2) or soon after, each person a frame number."""
    import argparse

    from pose_perception.evaluation.cli.eval_human import _discovery

    images = [im for im in load_annotated_sets(REAL) if im.path.parent.name == "009473_mpii_test"]
    args = argparse.Namespace(max_people=20, proposer=None, palms=False, no_person_boxes=False)
    out = _discovery(args, images, log=lambda *_: None, frames=6)
    assert out["people"] == 2 and out["frames"] == 6
    assert all(f is not None and 2 <= f <= 5 for f in out["first_found_frame"]), out
