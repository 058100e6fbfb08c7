"""Optional outputs of object_pose_node for planners and remote viewers.

- collision_object (moveit_msgs/CollisionObject): MoveIt's planning scene monitor listens to `collision_object` and
  follows it; each tracked object is ADDed with its mesh (inline shape_msgs/Mesh, simplified) or its bounding box,
  MOVEd every frame, REMOVEd when it vanishes (objects/collision.py decides which). On where moveit_msgs is
  importable (setup_env.sh builds the type here, no wheel; a real install has the package).
- Mesh markers and ObjectPose.mesh_resource that work from another machine: a package:// URI where the mesh lies
  in a ROS package's share directory (RViz resolves it on its own machine), else, with mesh_markers "triangles",
  the simplified mesh inline as a TRIANGLE_LIST marker.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence
from urllib.parse import unquote, urlparse

import numpy as np
from geometry_msgs.msg import Point
from shape_msgs.msg import Mesh, MeshTriangle, SolidPrimitive

from pose_perception.core.types import ObjectPose
from pose_perception.objects.collision import ADD, MOVE, CollisionScene, CollisionUpdate, simplified_mesh
from pose_perception.ros.conversions import T_to_pose
from pose_perception.ros.markers import mesh_resource_marker, mesh_triangle_marker
from pose_perception.ros.params import ParamSpec

try:
    from moveit_msgs.msg import CollisionObject
except ImportError:  # no moveit_msgs: the output is off (the node warns when it was asked for)
    CollisionObject = None

PARAMS = (
    ParamSpec(
        "collision_objects",
        False,
        "Publish moveit_msgs/CollisionObject on `collision_object` (MoveIt's "
        "planning scene follows the tracked objects: ADD, MOVE every frame, REMOVE when gone).",
        read_only=True,
    ),
    ParamSpec(
        "collision_shape",
        "mesh",
        "Geometry of the collision objects: the simplified mesh, or its bounding box.",
        choices=("mesh", "box"),
        read_only=True,
    ),
    ParamSpec(
        "collision_mesh_max_faces",
        2000,
        "Faces of the simplified meshes sent to the planner and drawn by mesh_markers triangles (0: all).",
        min=0,
        max=1_000_000,
        read_only=True,
    ),
    ParamSpec(
        "collision_refresh_s",
        5.0,
        "Seconds between two ADDs of the same object (a planning scene started later gets it; MOVE in between).",
        min=0.1,
        max=3600.0,
        read_only=True,
    ),
    ParamSpec(
        "collision_remove_after_s",
        0.0,
        "An object missing this long is REMOVEd (0: at once).",
        min=0.0,
        max=3600.0,
        read_only=True,
    ),
    ParamSpec(
        "mesh_markers",
        "resource",
        "Mesh markers: 'resource' (MESH_RESOURCE with a package:// URI where the "
        "mesh is in a ROS package's share directory, else file://, which only RViz on this machine opens) or "
        "'triangles' (the simplified mesh inline: any RViz, more bandwidth).",
        choices=("resource", "triangles"),
        read_only=True,
    ),
)


class CollisionObjectOutput:
    """Publishes the CollisionScene's updates as moveit_msgs/CollisionObject on `collision_object`.

    models(): name -> ObjectModel of the node's estimator (read when an object is first ADDed)."""

    def __init__(
        self,
        node,
        models: Callable[[], Mapping],
        shape: str = "mesh",
        max_faces: int = 2000,
        refresh_s: float = 5.0,
        remove_after_s: float = 0.0,
        topic: str = "collision_object",
    ):
        self._pub = node.result_publisher(CollisionObject, topic, depth=100)
        self._models, self._shape, self._max_faces = models, shape, int(max_faces)
        self.scene = CollisionScene(refresh_s, remove_after_s)
        self._geometry: dict = {}  # (name, id(model)) -> kwargs of an ADD

    @classmethod
    def from_params(cls, node, models: Callable[[], Mapping], params: Mapping) -> Optional["CollisionObjectOutput"]:
        """The output the parameters ask for; None (with a warning naming what is missing) where it is off."""
        if not params["collision_objects"]:
            return None
        if CollisionObject is None:
            node.get_logger().warning(
                "collision_objects is true but moveit_msgs is not importable: no "
                "collision_object output (install ros-jazzy-moveit-msgs)"
            )
            return None
        return cls(
            node,
            models,
            params["collision_shape"],
            params["collision_mesh_max_faces"],
            params["collision_refresh_s"],
            params["collision_remove_after_s"],
        )

    def publish(self, header, t_s: float, poses: Sequence[ObjectPose]) -> None:
        for u in self.scene.update(t_s, poses):
            self._pub.publish(self._message(header, u))

    def remove_all(self, header) -> None:
        for u in self.scene.remove_all():
            self._pub.publish(self._message(header, u))

    def _message(self, header, u: CollisionUpdate):
        msg = CollisionObject(header=header, id=u.object_id)
        if u.operation not in (ADD, MOVE):
            msg.operation = CollisionObject.REMOVE
            return msg
        if u.pose is None:
            raise ValueError(f"collision {u.operation} of '{u.object_id}' without a pose")
        msg.pose = T_to_pose(u.pose.T_cam_obj)
        if u.operation == ADD:
            msg.operation = CollisionObject.ADD
            for field, value in self._geometry_of(u.name).items():
                setattr(msg, field, value)
        else:
            msg.operation = CollisionObject.MOVE
        return msg

    def _geometry_of(self, name: str) -> dict:
        model = self._models().get(name)
        if model is None:
            return {}
        key = (name, id(model))
        if key not in self._geometry:
            if self._shape == "box":
                box = SolidPrimitive(type=SolidPrimitive.BOX, dimensions=[float(v) for v in model.bbox_size_m])
                T_obj_box = np.eye(4)
                T_obj_box[:3, 3] = model.centre_m
                self._geometry[key] = {"primitives": [box], "primitive_poses": [T_to_pose(T_obj_box)]}
            else:
                vertices, faces = simplified_mesh(model.vertices, model.faces, self._max_faces)
                self._geometry[key] = {"meshes": [mesh_msg(vertices, faces)], "mesh_poses": [T_to_pose(np.eye(4))]}
        return self._geometry[key]


def mesh_msg(vertices: np.ndarray, faces: np.ndarray) -> Mesh:
    """vertices (V, 3) metres, faces (F, 3) -> shape_msgs/Mesh."""
    return Mesh(
        vertices=[Point(x=float(x), y=float(y), z=float(z)) for x, y, z in np.asarray(vertices, float)],
        triangles=[MeshTriangle(vertex_indices=[int(a), int(b), int(c)]) for a, b, c in np.asarray(faces)],
    )


@functools.lru_cache(maxsize=1)
def _package_shares() -> tuple[tuple[str, Path], ...]:
    """(package, share directory) of every package in the ament index, longest path first."""
    try:
        from ament_index_python.packages import get_packages_with_prefixes
    except ImportError:
        return ()
    shares = [
        (name, (Path(prefix) / "share" / name).resolve()) for name, prefix in get_packages_with_prefixes().items()
    ]
    return tuple(sorted(shares, key=lambda s: -len(str(s[1]))))


def ros_mesh_uri(uri: str) -> str:
    """A file:// URI of a mesh inside a ROS package's share directory -> package://<package>/<path>, which RViz on
    any machine with that package resolves; anything else unchanged."""
    if not uri.startswith("file://"):
        return uri
    path = Path(unquote(urlparse(uri).path)).resolve()
    for name, share in _package_shares():
        if path.is_relative_to(share):
            return f"package://{name}/{path.relative_to(share).as_posix()}"
    return uri


class MeshMarkers:
    """The object mesh markers and mesh_resource URIs mesh_markers asks for."""

    def __init__(self, models: Callable[[], Mapping], mode: str = "resource", max_faces: int = 2000):
        self._models, self.mode, self._max_faces = models, mode, int(max_faces)
        self._meshes: dict = {}

    def with_ros_uris(self, poses: Sequence[ObjectPose]) -> list[ObjectPose]:
        return [replace(p, mesh_uri=ros_mesh_uri(p.mesh_uri)) if p.mesh_uri else p for p in poses]

    def marker(self, header, pose: ObjectPose, marker_id: int, color, scale: float = 1.0):
        """The marker of one object (None when it has no mesh)."""
        if self.mode == "triangles":
            model = self._models().get(pose.name)
            if model is not None:
                key = (pose.name, id(model))
                if key not in self._meshes:
                    self._meshes[key] = simplified_mesh(model.vertices, model.faces, self._max_faces)
                vertices, faces = self._meshes[key]
                T = pose.T_cam_obj
                return mesh_triangle_marker(
                    header, vertices @ T[:3, :3].T + T[:3, 3], faces, marker_id, ns="objects", color=color
                )
        if not pose.mesh_uri:
            return None
        return mesh_resource_marker(
            header, ros_mesh_uri(pose.mesh_uri), pose.T_cam_obj, marker_id, ns="objects", color=color, scale=scale
        )
