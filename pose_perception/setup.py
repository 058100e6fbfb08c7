"""ament_python package pose_perception (also a plain pip-installable package: tools/setup_env.sh)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "pose_perception"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["data/*", "data/**/*"]},
    include_package_data=True,
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml") + glob("config/*.rviz")),
    ],
    install_requires=["setuptools"],
    # pose_perception.evaluation (simulators, synthetic scenes, training, metrics, samples, bench / eval /
    # demo commands) needs these on top of the runtime; package.xml declares them too, as colcon installs
    # the whole package.
    extras_require={"eval": ["scikit-image", "matplotlib"]},
    zip_safe=False,
    maintainer="pose_perception maintainers",
    description="3D whole-body human pose, body meshes and unseen-object 6D pose for ROS 2.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "pose-perception = pose_perception.cli.main:main",
            "human_pose_node = pose_perception.ros.human_pose_node:main",
            "object_pose_node = pose_perception.ros.object_pose_node:main",
            "radar_pose_node = pose_perception.ros.radar_pose_node:main",
        ],
    },
)
