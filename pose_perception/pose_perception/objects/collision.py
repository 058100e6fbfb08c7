"""Collision geometry of tracked objects for a motion planner, without ROS: which objects to add to a planning scene,
move or remove as they appear, move and vanish (CollisionScene), and the light mesh each is added with
(simplified_mesh). ros/moveit.py turns these into moveit_msgs/CollisionObject messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from pose_perception.core.types import ObjectPose

ADD, MOVE, REMOVE = "add", "move", "remove"


@dataclass(frozen=True)
class CollisionUpdate:
    """One planning-scene operation. object_id: "<name>_<instance>" (the object's TF frame name); name: the model
    (whose geometry an ADD carries); pose: the ObjectPose (None for REMOVE)."""

    object_id: str
    operation: str
    name: str
    pose: Optional[ObjectPose] = None


def object_id(pose: ObjectPose) -> str:
    return f"{pose.name}_{pose.instance}"


class CollisionScene:
    """What a planning scene must be told so that it holds exactly the tracked objects.

    An object seen for the first time is ADDed (with its geometry), then MOVEd (pose only) every frame; it is ADDed
    again every refresh_s seconds, so that a planning scene that started (or lost a message) after the first ADD
    still gets it (ADD replaces an existing object). An object missing for remove_after_s seconds of frame time is
    REMOVEd (0: at the first frame without it). Times are the frames' stamps (s).
    """

    def __init__(self, refresh_s: float = 5.0, remove_after_s: float = 0.0):
        self.refresh_s = float(refresh_s)
        self.remove_after_s = float(remove_after_s)
        self._added_at: dict[str, float] = {}  # object id -> stamp of its last ADD
        self._seen_at: dict[str, float] = {}  # object id -> stamp it was last seen
        self._names: dict[str, str] = {}

    @property
    def object_ids(self) -> list[str]:
        return sorted(self._added_at)

    def update(self, t_s: float, poses: Sequence[ObjectPose]) -> list[CollisionUpdate]:
        out = []
        present = set()
        for p in poses:
            oid = object_id(p)
            present.add(oid)
            self._seen_at[oid], self._names[oid] = t_s, p.name
            added = self._added_at.get(oid)
            if added is None or not (0.0 <= t_s - added < self.refresh_s):  # a stamp going back also re-adds
                self._added_at[oid] = t_s
                out.append(CollisionUpdate(oid, ADD, p.name, p))
            else:
                out.append(CollisionUpdate(oid, MOVE, p.name, p))
        for oid in sorted(set(self._added_at) - present):
            if not (0.0 <= t_s - self._seen_at[oid] < self.remove_after_s):
                out.append(self._forget(oid))
        return out

    def remove_all(self) -> list[CollisionUpdate]:
        """REMOVE every object the scene was told about (reset, shutdown)."""
        return [self._forget(oid) for oid in sorted(self._added_at)]

    def _forget(self, oid: str) -> CollisionUpdate:
        del self._added_at[oid], self._seen_at[oid]
        return CollisionUpdate(oid, REMOVE, self._names.pop(oid))


def simplified_mesh(vertices: np.ndarray, faces: np.ndarray, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """vertices (V, 3) float, faces (F, 3) int -> the same surface with at most max_faces faces (quadric
    decimation; unchanged when it already has few enough, or max_faces is 0). A planner checks collisions against
    every triangle and the mesh travels in every ADD: a few thousand faces keep both cheap."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    if max_faces <= 0 or len(faces) <= max_faces:
        return vertices, faces
    import open3d as o3d

    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(faces))
    small = mesh.simplify_quadric_decimation(target_number_of_triangles=int(max_faces))
    small.remove_degenerate_triangles()
    small.remove_unreferenced_vertices()
    return np.asarray(small.vertices, dtype=np.float64), np.asarray(small.triangles, dtype=np.int64)
