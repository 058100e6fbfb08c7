"""Keypoint backends: MediaPipe Holistic mapped to COCO-WholeBody 133 on a real photo, and the ONNX SimCC
backend's loading, pre-processing and decoding with tiny models the tests build."""

import numpy as np
import pytest

from human_onnx_models import bright_spot_simcc_model, wrong_input_model
from pose_perception.core.keypoints import BODY, FACE, FEET, LEFT_HAND, RIGHT_HAND
from pose_perception.human import backends as B

# The astronaut photo (scikit-image, NASA, public domain), 512x512: her face lies inside this box and her
# shoulders inside the upper body box (pixels, margins included).
ASTRONAUT_FACE_BOX = (160, 50, 300, 200)
ASTRONAUT_UPPER_BODY_BOX = (60, 150, 380, 330)


def inside(uv, box):
    x0, y0, x1, y1 = box
    return bool(np.all((uv[..., 0] >= x0) & (uv[..., 0] <= x1) & (uv[..., 1] >= y0) & (uv[..., 1] <= y1)))


@pytest.fixture(scope="module")
def holistic():
    b = B.MediaPipeHolisticBackend()
    yield b
    b.close()


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut()


def test_face_map_is_68_distinct_mesh_vertices():
    assert len(B.MP_FACE_468_TO_IBUG_68) == 68
    assert len(set(B.MP_FACE_468_TO_IBUG_68)) == 68
    assert max(B.MP_FACE_468_TO_IBUG_68) < 468
    # iBUG 8 is the chin (mesh 152), 30 the nose tip (mesh 4), 36 / 45 the outer eye corners (33 / 263).
    assert B.MP_FACE_468_TO_IBUG_68[8] == 152 and B.MP_FACE_468_TO_IBUG_68[30] == 4
    assert (B.MP_FACE_468_TO_IBUG_68[36], B.MP_FACE_468_TO_IBUG_68[45]) == (33, 263)


def test_holistic_mapping_puts_each_landmark_where_the_layout_says():
    # Landmark i of each part sits at normalised x = i / 1000 so every output can be traced to its source.
    pose = np.zeros((33, 4))
    pose[:, 0] = np.arange(33) / 1000
    pose[:, 3] = 0.9
    world = np.arange(99, dtype=float).reshape(33, 3)
    face = np.zeros((468, 3))
    face[:, 0] = np.arange(468) / 1000
    lh = np.zeros((21, 3))
    lh[:, 0] = np.arange(21) / 1000
    rh = np.zeros((21, 3))
    rh[:, 0] = np.arange(21) / 1000 + 0.5
    uv, conf, w = B.holistic_to_wholebody(pose, world, face, lh, rh, crop_xywh=(10.0, 20.0, 1000.0, 100.0))
    src = np.round(uv[:, 0] - 10.0).astype(int)
    assert src[BODY].tolist() == list(B.MP_POSE_TO_COCO_BODY_17)
    assert src[FEET].tolist() == [31, 31, 29, 32, 32, 30]
    assert src[FACE].tolist() == list(B.MP_FACE_468_TO_IBUG_68)
    assert src[LEFT_HAND].tolist() == list(range(21))
    assert src[RIGHT_HAND].tolist() == [500 + i for i in range(21)]
    assert np.allclose(uv[:, 1], 20.0)
    assert conf[FEET][[1, 4]] == pytest.approx([0.45, 0.45])  # small toes are stand-ins
    assert conf[FEET][[0, 2]] == pytest.approx([0.9, 0.9])
    assert np.allclose(w[BODY], world[list(B.MP_POSE_TO_COCO_BODY_17)])
    assert np.isnan(w[FACE]).all() and np.isnan(w[LEFT_HAND]).all()


def test_missing_parts_stay_nan_with_zero_confidence():
    pose = np.zeros((33, 4))
    pose[:, 3] = 1.0
    uv, conf, w = B.holistic_to_wholebody(pose, None, None, None, None, (0, 0, 100, 100))
    assert w is None
    assert np.isnan(uv[FACE]).all() and np.isnan(uv[LEFT_HAND]).all() and np.isnan(uv[RIGHT_HAND]).all()
    assert (conf[FACE] == 0).all() and (conf[RIGHT_HAND] == 0).all()


def test_astronaut_keypoints_land_on_her_body(holistic, astronaut):
    est = holistic.estimate(astronaut, None)
    assert est is not None and est.score > 0.4
    assert est.keypoints_uv.shape == (133, 2) and est.keypoints_uv.dtype == np.float32
    assert est.confidence.shape == (133,) and est.keypoints_world_m.shape == (133, 3)
    assert inside(est.keypoints_uv[0:5], ASTRONAUT_FACE_BOX)  # nose, eyes, ears
    assert inside(est.keypoints_uv[FACE], ASTRONAUT_FACE_BOX)
    assert inside(est.keypoints_uv[5:7], ASTRONAUT_UPPER_BODY_BOX)  # shoulders
    # She faces the camera: her left shoulder is on the image's right.
    assert est.keypoints_uv[5, 0] > est.keypoints_uv[6, 0] + 100
    # Metric world landmarks: shoulder width of an adult, head above the hips (y down).
    w = est.keypoints_world_m
    assert 0.25 < np.linalg.norm(w[5] - w[6]) < 0.5
    assert w[0, 1] < w[11, 1]


def test_estimate_with_a_box_maps_back_to_full_image_pixels(holistic, astronaut):
    canvas = np.full((700, 900, 3), 100, np.uint8)
    canvas[100:612, 300:812] = astronaut
    est = holistic.estimate(canvas, np.array([300, 100, 812, 612], np.float32))
    assert est is not None
    face_box = np.array(ASTRONAUT_FACE_BOX) + [300, 100, 300, 100]
    assert inside(est.keypoints_uv[FACE], face_box)


def test_no_person_gives_none(holistic):
    from skimage import data

    assert holistic.estimate(data.coffee(), None) is None  # a cup of coffee on a table
    assert holistic.estimate(np.zeros((240, 320, 3), np.uint8), None) is None


def test_tiny_boxes_give_none_and_bad_arrays_are_refused(holistic, astronaut):
    assert holistic.estimate(astronaut, np.array([10, 10, 20, 20], np.float32)) is None
    assert holistic.estimate(np.zeros((8, 8, 3), np.uint8), None) is None
    with pytest.raises(B.BackendInputError, match="uint8"):
        holistic.estimate(astronaut.astype(np.float32), None)
    with pytest.raises(B.BackendInputError, match="H, W, 3"):
        holistic.estimate(astronaut[:, :, 0], None)
    with pytest.raises(B.BackendInputError, match="finite"):
        holistic.estimate(astronaut, np.array([0, np.nan, 5, 5]))


# ---- ONNX -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spot_model(tmp_path_factory):
    return bright_spot_simcc_model(tmp_path_factory.mktemp("onnx") / "spot_rtmw_256x192.onnx")


def test_onnx_backend_reads_input_size_and_finds_the_bright_spot(spot_model):
    backend = B.OnnxWholeBodyBackend(spot_model, device="cpu")
    assert backend.input_wh == (192, 256) and backend.providers == ["CPUExecutionProvider"]
    img = np.zeros((480, 640, 3), np.uint8)
    u0, v0 = 401, 222
    img[v0 - 2 : v0 + 3, u0 - 2 : u0 + 3] = 255
    est = backend.estimate(img, np.array([350, 120, 470, 400], np.float32))
    assert est is not None and est.keypoints_world_m is None
    # 1.25 padding of a 280 px tall box over 256 input rows: one input pixel is ~1.4 image pixels.
    assert np.allclose(est.keypoints_uv, [u0, v0], atol=2.0)
    assert np.all(est.confidence > 0.5)


def test_topdown_affine_keeps_the_input_aspect_ratio_and_centre():
    M, center, scale = B.topdown_affine(np.array([100, 100, 200, 400]), (192, 256), padding=1.25)
    assert center == pytest.approx([150, 250])
    assert scale[0] / scale[1] == pytest.approx(192 / 256)
    assert scale[1] == pytest.approx(300 * 1.25)
    assert M @ [150, 250, 1] == pytest.approx([96, 128])


def test_simcc_decoding_takes_argmax_over_split_ratio_and_the_weaker_axis_as_score():
    sx = np.zeros((2, 20))
    sy = np.zeros((2, 40))
    sx[0, 7], sy[0, 31] = 0.9, 0.6
    locs, scores = B.decode_simcc(sx, sy, 2.0)
    assert locs[0] == pytest.approx([3.5, 15.5]) and scores[0] == pytest.approx(0.6)
    assert np.isnan(locs[1]).all() and scores[1] == 0  # nothing there


def test_body_only_onnx_models_fill_the_first_keypoints(tmp_path):
    backend = B.OnnxWholeBodyBackend(bright_spot_simcc_model(tmp_path / "body17.onnx", num_keypoints=17), "cpu")
    img = np.zeros((200, 200, 3), np.uint8)
    img[98:103, 98:103] = 255
    est = backend.estimate(img, None)
    assert np.isfinite(est.keypoints_uv[:17]).all() and np.isnan(est.keypoints_uv[17:]).all()
    assert (est.confidence[17:] == 0).all()


def test_missing_corrupt_and_wrong_onnx_files_raise_clear_errors(tmp_path):
    with pytest.raises(B.ModelFileError, match="does not exist"):
        B.OnnxWholeBodyBackend(tmp_path / "rtmw-x.onnx", "cpu")
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07this is not a protobuf" * 10)
    with pytest.raises(B.ModelFileError, match="cannot be loaded"):
        B.OnnxWholeBodyBackend(bad, "cpu")
    with pytest.raises(B.ModelFileError, match=r"\(1, 3, H, W\)"):
        B.OnnxWholeBodyBackend(wrong_input_model(tmp_path / "wrong.onnx"), "cpu")
    with pytest.raises(B.ModelFileError, match="no ONNX model path"):
        B.OnnxWholeBodyBackend("", "cpu")


def test_cuda_is_refused_clearly_when_onnxruntime_has_no_cuda(spot_model):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(B.BackendError, match="onnxruntime-gpu"):
        B.OnnxWholeBodyBackend(spot_model, device="cuda")
    assert B.OnnxWholeBodyBackend(spot_model, device="auto").providers == ["CPUExecutionProvider"]


def test_a_lane_follows_its_person_and_a_released_lane_forgets_them(holistic, astronaut):
    first = holistic.estimate(astronaut, None, lane=7)
    again = holistic.estimate(astronaut, None, lane=7)  # video mode: from last call's landmarks
    assert first is not None and again is not None
    seen = (first.confidence[:17] > 0.5) & (again.confidence[:17] > 0.5)  # her legs are out of the photo
    assert np.count_nonzero(seen) >= 7  # face and shoulders at least
    # Same person, same place: within 6 % of the 512 px photo (tracking refines the region, so not identical).
    assert np.max(np.abs(again.keypoints_uv[:17][seen] - first.keypoints_uv[:17][seen])) < 30.0
    holistic.release_lane(7)
    from skimage import data

    # The released graph is reused for a new lane without carrying the astronaut's region along.
    assert holistic.estimate(data.coffee(), None, lane=8) is None
    holistic.release_lane(8)
    holistic.release_lane(99)  # unknown lanes are ignored
