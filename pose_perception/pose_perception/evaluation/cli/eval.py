"""`pose-perception eval ...`: accuracy on data with ground truth (synthetic data is labelled synthetic)."""

from pose_perception.cli._dispatch import register_group

MEMBERS = {
    "human": "pose_perception.evaluation.cli.eval_human",
    "human-3d": "pose_perception.evaluation.cli.eval_human3d",
    "objects": "pose_perception.evaluation.cli.eval_objects",
    "mesh": "pose_perception.evaluation.cli.eval_mesh",
}


def register(subparsers) -> None:
    register_group(subparsers, "eval", __doc__.splitlines()[0], MEMBERS)
