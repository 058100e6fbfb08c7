"""Low-light frames: the photometric normalisation for the person models (human/lowlight.py) leaves normal photos
alone, brightens near-black ones, and lets the pipeline find a person it misses in the dark frame (SYNTHETIC: the
astronaut photo darkened; REAL: an ExLPose low-light frame, skipped when ../shared/realdata is missing)."""

import numpy as np
import pytest
from real_photos import photo_pipeline, score_photo

from pose_perception.human.lowlight import LowLightConfig, highlight_level, normalise_low_light


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut()


def _darken(rgb: np.ndarray, factor: float, seed: int = 0) -> np.ndarray:
    """A low-light exposure of the same scene: values scaled down, plus sensor noise of about one grey level."""
    rng = np.random.default_rng(seed)
    dark = rgb.astype(np.float32) * factor + rng.normal(0.0, 0.7, rgb.shape)
    return np.clip(np.round(dark), 0, 255).astype(np.uint8)


def test_normal_photo_is_returned_unchanged(astronaut):
    assert normalise_low_light(astronaut) is astronaut
    assert normalise_low_light(_darken(astronaut, 0.03), LowLightConfig(dark_below=0)) is not None


def test_dark_frame_is_stretched_to_the_target(astronaut):
    dark = _darken(astronaut, 0.03)
    assert highlight_level(dark) < 10
    out = normalise_low_light(dark)
    assert out.shape == dark.shape and out.dtype == np.uint8
    assert 150 < highlight_level(out) <= 255
    # A monotone per-value map: the order of pixel values (so every edge's position) is kept.
    order = np.argsort(dark[..., 1].ravel(), kind="stable")
    assert np.all(np.diff(out[..., 1].ravel()[order].astype(int)) >= 0)


def test_pipeline_finds_the_person_in_a_near_black_frame(astronaut):
    pytest.importorskip("mediapipe")
    pytest.importorskip("tflite_runtime")
    from pose_perception.human.pipeline import HumanPipelineConfig, HumanPosePipeline

    def people(rgb, below):
        pipe = HumanPosePipeline(
            HumanPipelineConfig(max_people=3, tracking=False, lift_3d=False, head_pose=False, low_light_below=below)
        )
        try:
            return pipe.process(rgb, None, None, 0.0)[0]
        finally:
            pipe.close()

    ref = people(astronaut, 0)
    assert len(ref) == 1
    dark = _darken(astronaut, 0.025)
    assert people(dark, 0) == []  # without the normalisation the models see nobody
    found = people(dark, LowLightConfig().dark_below)
    assert len(found) == 1
    # The same keypoints as in the normally exposed photo: face, shoulders, arms (body 0-10; the photo is cut at
    # the waist, so hips and legs are guesses) within 5 % of the person's box height.
    a, b = ref[0].keypoints_uv[:11], found[0].keypoints_uv[:11]
    ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    assert ok.sum() >= 8
    h = ref[0].bbox_xyxy[3] - ref[0].bbox_xyxy[1]
    assert np.median(np.linalg.norm(a[ok] - b[ok], axis=1)) < 0.05 * h


@pytest.fixture(scope="module")
def exlpose_lit_frame():
    from pose_perception.core.realdata import realdata_dir
    from pose_perception.evaluation.human.real_eval import load_annotated_sets

    real = realdata_dir("humans")
    if not (real / "mmpose_testdata" / "exlpose").is_dir():
        pytest.skip("../shared/realdata/humans (ExLPose low-light frames) is not beside the repo")
    images = [im for im in load_annotated_sets(real) if im.dataset == "exlpose" and "exp400" in im.path.name]
    assert len(images) == 1
    return images[0]


def test_real_low_light_frame_person_found_with_keypoints_on_him(exlpose_lit_frame):
    """REAL ExLPose frame (99.5th luminance percentile ~5 of 255): the lit man is found, his body keypoints on
    him (PCK@0.2 of the box), and nothing else is reported (the man in his shadow is not guessed at)."""
    pytest.importorskip("mediapipe")
    pytest.importorskip("tflite_runtime")
    from pose_perception.core.io import read_image_rgb

    assert highlight_level(read_image_rgb(exlpose_lit_frame.path)) < 10
    with photo_pipeline() as pipe:
        s = score_photo(pipe, exlpose_lit_frame)
    assert s.found == 1 and s.false == 0 and s.estimates == 1
    assert np.mean(s.pck_box_found) >= 0.9  # his annotated body points within 0.2 of his box's longer side
