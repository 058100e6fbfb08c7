"""The object node tests' common set-up: a SYNTHETIC RGB-D frame of the YCB mustard bottle 0.8 m from the camera,
and object_pose_node started with that bottle as its only model."""

from pathlib import Path

import numpy as np
from scenes import INTRINSICS, make_scene, ycb_path  # test/objects, on the path through conftest.py

from pose_perception.objects.model import load_object_model
from ros_helpers import NodeProcess, RgbdCamera, RosClient, start_node


def mustard_scene(cache_dir: Path):
    """(ObjectModel, Scene): the bottle's model and one rendered frame of it (seed 71)."""
    model = load_object_model("mustard", ycb_path("006_mustard_bottle"), cache_dir=cache_dir)
    return model, make_scene([model], np.random.default_rng(71), distance_m=0.8)


def start_mustard_node(cache_dir: Path, ns: str = "", **params) -> NodeProcess:
    """object_pose_node with the bottle loaded (no symmetry), its cache in cache_dir, params on top."""
    base = {"objects": '["mustard=ycb:006_mustard_bottle"]', "symmetry": "none", "cache_dir": str(cache_dir)}
    extra_args = ("--ros-args", "-r", f"__ns:={ns}") if ns else ()
    return start_node("pose_perception.ros.object_pose_node", params={**base, **params}, extra_args=extra_args)


def scene_camera(client: RosClient, scene, ns: str = "") -> RgbdCamera:
    """A camera that publishes the scene's frame."""
    return RgbdCamera(client, INTRINSICS, scene.rgb, scene.depth_m, ns=ns)
