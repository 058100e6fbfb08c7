"""Person proposals: face boxes grown to body boxes, depth tightening and separation, greying found people,
and a user ONNX person detector (tested with a tiny model the test builds)."""

import numpy as np
import pytest

from human_onnx_models import constant_detector_model, wrong_input_model
from pose_perception.human import proposals as P
from pose_perception.human.backends import ModelFileError


def test_body_box_grows_down_from_the_face_and_stays_in_the_image():
    box = P.body_box_from_face(np.array([100, 50, 140, 110.0]), 640, 480)
    assert box[0] < 100 and box[2] > 140 and box[1] < 50
    assert box[3] == 480  # 8 face heights below would leave the image
    assert box.dtype == np.float32


def test_depth_tightens_the_box_to_the_person_and_greys_other_depths():
    depth = np.full((100, 200), 4.0, np.float32)  # wall at 4 m
    depth[20:90, 60:90] = 1.5  # person at 1.5 m
    depth[0:5, :] = np.nan  # invalid rows
    box = P.refine_box_with_depth(np.array([0, 0, 200, 100.0]), depth, 1.5, band_m=0.5)
    assert box.tolist() == [60, 20, 90, 90]
    rgb = np.full((100, 200, 3), 200, np.uint8)
    out = P.mask_other_depths(rgb, depth, 1.5, 0.5)
    assert (out[50, 70] == 200).all() and (out[50, 10] == 128).all() and (out[2, 10] == 200).all()
    # Depth that says nothing leaves the box alone.
    same = np.array([0, 0, 200, 100.0])
    assert P.refine_box_with_depth(same, np.full((100, 200), np.nan, np.float32), 1.5, 0.5) is same
    assert P.refine_box_with_depth(same, depth, float("nan"), 0.5) is same


def test_person_depth_is_the_median_of_valid_pixels():
    depth = np.full((50, 50), np.nan, np.float32)
    depth[20:30, 20:30] = 2.0
    depth[25, 25] = 9.0  # a single outlier
    assert P.person_depth_at(depth, np.array([25, 25]), 5) == pytest.approx(2.0)
    assert np.isnan(P.person_depth_at(depth, np.array([3, 3]), 2))


def test_grey_out_and_duplicate_suppression():
    rgb = np.zeros((10, 10, 3), np.uint8)
    out = P.grey_out_boxes(rgb, [np.array([2, 2, 5, 5.0]), np.full(4, np.nan)])
    assert (out[3, 3] == 128).all() and (out[7, 7] == 0).all() and (rgb == 0).all()
    a = P.PersonProposal(np.array([0, 0, 10, 10], np.float32), 0.9)
    b = P.PersonProposal(np.array([1, 1, 10, 10], np.float32), 0.5)
    c = P.PersonProposal(np.array([20, 0, 30, 10], np.float32), 0.4)
    assert P.suppress_duplicates([b, c, a]) == [a, c]


def test_face_proposer_finds_the_astronaut_face():
    from skimage import data

    proposer = P.MediaPipeFaceProposer()
    try:
        faces = proposer.faces(data.astronaut())
        assert len(faces) == 1
        box, score = faces[0]
        assert score > 0.7 and 150 < (box[0] + box[2]) / 2 < 300 and 50 < (box[1] + box[3]) / 2 < 200
        props = proposer.propose(data.astronaut())
        assert len(props) == 1 and props[0].bbox_xyxy[3] == 512
        assert proposer.propose(np.zeros((240, 320, 3), np.uint8)) == []
    finally:
        proposer.close()


def test_onnx_detector_scales_boxes_back_through_the_letterbox(tmp_path):
    dets = np.array([[8, 8, 32, 48, 0.9], [0, 0, 10, 10, 0.2], [40, 40, 60, 60, 0.95]], np.float32)
    labels = np.array([0, 0, 3])  # the third is not a person
    det = P.OnnxPersonDetector(constant_detector_model(tmp_path / "det.onnx", dets, labels), device="cpu")
    found = det.detect(np.zeros((128, 128, 3), np.uint8))  # letterbox scale 0.5
    assert len(found) == 1
    assert found[0][0].tolist() == [16, 16, 64, 96] and found[0][1] == pytest.approx(0.9)
    depth = np.full((128, 128), 3.0, np.float32)
    depth[30:90, 20:60] = 1.2
    props = det.propose(np.zeros((128, 128, 3), np.uint8), depth)
    assert props[0].depth_m == pytest.approx(1.2)
    assert props[0].bbox_xyxy.tolist() == [20, 30, 60, 90]


def test_onnx_detector_file_errors(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        P.OnnxPersonDetector(tmp_path / "yolox.onnx", "cpu")
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="cannot be loaded"):
        P.OnnxPersonDetector(tmp_path / "bad.onnx", "cpu")
    with pytest.raises(ModelFileError, match=r"\(1, 3, H, W\)"):
        P.OnnxPersonDetector(wrong_input_model(tmp_path / "w.onnx"), "cpu")
