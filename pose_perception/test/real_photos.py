"""The human pipeline as the tests run it on annotated REAL photos (no tracking, 2D only), and its score."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


@contextmanager
def photo_pipeline() -> Iterator:
    """A HumanPosePipeline for single photos (up to 20 people, no tracking, no 3D), closed afterwards."""
    from pose_perception.human.pipeline import HumanPipelineConfig, HumanPosePipeline

    pipe = HumanPosePipeline(HumanPipelineConfig(max_people=20, tracking=False, lift_3d=False, head_pose=False))
    try:
        yield pipe
    finally:
        pipe.close()


def score_photo(pipe, image):
    """The pipeline's people on an AnnotatedImage, scored against its annotation (real_eval.ImageScore)."""
    from pose_perception.core.io import read_image_rgb
    from pose_perception.evaluation.cli.eval_human import _body
    from pose_perception.evaluation.human.real_eval import score_image

    return score_image(image, *_body(pipe.process(read_image_rgb(image.path), None, None, 0.0)[0]))
