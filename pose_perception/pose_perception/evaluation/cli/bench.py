"""`pose-perception bench ...`: speed measurements, each printing the machine it ran on."""

from pose_perception.cli._dispatch import register_group

MEMBERS = {
    "transport": "pose_perception.evaluation.cli.bench_transport",
    "human": "pose_perception.evaluation.cli.bench_human",
    "objects": "pose_perception.evaluation.cli.bench_objects",
    "radar": "pose_perception.evaluation.cli.bench_radar",
    "mesh": "pose_perception.evaluation.cli.bench_mesh",
    "onboarding": "pose_perception.evaluation.cli.bench_onboarding",
    "soak": "pose_perception.evaluation.cli.bench_soak",
}


def register(subparsers) -> None:
    register_group(subparsers, "bench", __doc__.splitlines()[0], MEMBERS)
