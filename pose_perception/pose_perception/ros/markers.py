"""RViz markers: skeletons (lines + joint spheres, colour per id), meshes, text labels.

Every MarkerArray starts with a DELETEALL for its namespace so people and objects that left vanish at once.
"""

from __future__ import annotations

import colorsys
from typing import Optional, Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from pose_perception.core.keypoints import KeypointLayout
from pose_perception.core.types import HumanPose
from pose_perception.ros.conversions import T_to_pose


def color_for_id(track_id: int, alpha: float = 1.0) -> ColorRGBA:
    """Distinct, stable colour per id (golden-ratio hue steps)."""
    hue = (int(track_id) * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return ColorRGBA(r=r, g=g, b=b, a=alpha)


def _duration(seconds: float) -> Duration:
    return Duration(sec=int(seconds), nanosec=int((seconds % 1.0) * 1e9))


def _added_marker(
    header: Header, ns: str, marker_id: int, marker_type: int, color: ColorRGBA, lifetime_s: float
) -> Marker:
    """An ADD marker with an identity pose (points are given in the header frame unless the pose is set)."""
    m = Marker(
        header=header,
        ns=ns,
        id=int(marker_id),
        type=marker_type,
        action=Marker.ADD,
        color=color,
        lifetime=_duration(lifetime_s),
    )
    m.pose.orientation.w = 1.0
    return m


def delete_all_marker(header: Header, ns: str = "") -> Marker:
    return Marker(header=header, ns=ns, action=Marker.DELETEALL)


def skeleton_markers(
    header: Header,
    humans: Sequence[HumanPose],
    layout: KeypointLayout,
    ns: str = "skeleton",
    min_confidence: float = 0.3,
    lifetime_s: float = 1.0,
) -> list[Marker]:
    """One LINE_LIST (bones) and one SPHERE_LIST (joints) per person with 3D keypoints."""
    markers = []
    for h in humans:
        if h.keypoints_3d is None:
            continue
        pts = np.asarray(h.keypoints_3d, dtype=np.float64)
        ok = np.isfinite(pts).all(axis=1) & (np.asarray(h.confidence) >= min_confidence)
        color = color_for_id(h.track_id)
        bones = _added_marker(header, ns, 2 * int(h.track_id), Marker.LINE_LIST, color, lifetime_s)
        bones.scale.x = 0.02
        for a, b in layout.edges:
            if ok[a] and ok[b]:
                bones.points += [
                    Point(x=pts[a, 0], y=pts[a, 1], z=pts[a, 2]),
                    Point(x=pts[b, 0], y=pts[b, 1], z=pts[b, 2]),
                ]
        joints = _added_marker(header, ns, 2 * int(h.track_id) + 1, Marker.SPHERE_LIST, color, lifetime_s)
        joints.scale.x = joints.scale.y = joints.scale.z = 0.04
        joints.points = [Point(x=x, y=y, z=z) for x, y, z in pts[ok]]
        markers += [bones, joints]
    return markers


def mesh_triangle_marker(
    header: Header,
    vertices: np.ndarray,
    faces: np.ndarray,
    marker_id: int,
    ns: str = "mesh",
    color: Optional[ColorRGBA] = None,
    lifetime_s: float = 1.0,
) -> Marker:
    """vertices (V, 3) metres in header frame, faces (F, 3) -> TRIANGLE_LIST marker."""
    m = _added_marker(header, ns, marker_id, Marker.TRIANGLE_LIST, color or color_for_id(marker_id, 0.6), lifetime_s)
    m.scale.x = m.scale.y = m.scale.z = 1.0
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces).ravel()]
    m.points = [Point(x=x, y=y, z=z) for x, y, z in tri]
    return m


def mesh_resource_marker(
    header: Header,
    mesh_uri: str,
    T_frame_obj: np.ndarray,
    marker_id: int,
    ns: str = "objects",
    color: Optional[ColorRGBA] = None,
    scale: float = 1.0,
    lifetime_s: float = 1.0,
) -> Marker:
    """A mesh file (file:// or package:// URI) drawn at T_frame_obj; scale converts the file's units to metres."""
    m = _added_marker(header, ns, marker_id, Marker.MESH_RESOURCE, color or color_for_id(marker_id, 0.8), lifetime_s)
    m.mesh_resource = mesh_uri
    m.pose = T_to_pose(T_frame_obj)
    m.scale.x = m.scale.y = m.scale.z = float(scale)
    return m


def text_marker(
    header: Header,
    text: str,
    position_m: np.ndarray,
    marker_id: int,
    ns: str = "labels",
    height_m: float = 0.08,
    color: Optional[ColorRGBA] = None,
    lifetime_s: float = 1.0,
) -> Marker:
    m = _added_marker(
        header, ns, marker_id, Marker.TEXT_VIEW_FACING, color or ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0), lifetime_s
    )
    m.text = text
    m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in position_m)
    m.scale.z = height_m
    return m


def marker_array(header: Header, markers: Sequence[Marker], namespaces: Sequence[str] = ("",)) -> MarkerArray:
    """MarkerArray whose first entries delete everything previously drawn in the given namespaces
    ("" = all of this publisher's markers)."""
    return MarkerArray(markers=[delete_all_marker(header, ns) for ns in namespaces] + list(markers))
