"""`pose-perception bench ...`: speed measurements, each printing the machine it ran on."""
from pose_perception.cli._dispatch import register_group

MEMBERS = {
    "transport": "pose_perception.cli.bench_transport",
    "human": "pose_perception.cli.bench_human",
    "objects": "pose_perception.cli.bench_objects",
    "radar": "pose_perception.cli.bench_radar",
    "mesh": "pose_perception.cli.bench_mesh",
    "onboarding": "pose_perception.cli.bench_onboarding",
    "soak": "pose_perception.cli.bench_soak",
}


def register(subparsers) -> None:
    register_group(subparsers, "bench", __doc__.splitlines()[0], MEMBERS)
