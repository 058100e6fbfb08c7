"""RViz markers: one skeleton per person in its own colour, meshes, and DELETEALL first."""

import numpy as np
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from pose_perception.core.frames import make_T
from pose_perception.core.keypoints import COCO_WHOLEBODY_133
from pose_perception.core.types import HumanPose
from pose_perception.ros.markers import (
    color_for_id,
    marker_array,
    mesh_resource_marker,
    mesh_triangle_marker,
    skeleton_markers,
    text_marker,
)


def _human(track_id, n_visible=133):
    kp3 = np.random.default_rng(track_id).random((133, 3)).astype(np.float32)
    conf = np.zeros(133, np.float32)
    conf[:n_visible] = 0.9
    return HumanPose(
        track_id=track_id, score=0.9, keypoints_uv=np.zeros((133, 2), np.float32), confidence=conf, keypoints_3d=kp3
    )


def test_skeleton_has_bones_between_confident_joints_only_and_a_colour_per_id():
    header = Header(frame_id="camera")
    markers = skeleton_markers(header, [_human(1), _human(2, n_visible=17)], COCO_WHOLEBODY_133)
    assert [m.type for m in markers] == [Marker.LINE_LIST, Marker.SPHERE_LIST] * 2
    assert len(markers[0].points) == 2 * len(COCO_WHOLEBODY_133.edges)
    body_edges = sum(1 for a, b in COCO_WHOLEBODY_133.edges if a < 17 and b < 17)
    assert len(markers[2].points) == 2 * body_edges and len(markers[3].points) == 17
    assert markers[0].color != markers[2].color
    assert color_for_id(5) == color_for_id(5)


def test_people_without_3d_get_no_skeleton():
    h = HumanPose(track_id=1, score=1, keypoints_uv=np.zeros((133, 2), np.float32), confidence=np.ones(133, np.float32))
    assert skeleton_markers(Header(), [h], COCO_WHOLEBODY_133) == []


def test_marker_array_starts_with_deleteall_so_stale_markers_vanish():
    arr = marker_array(Header(), [text_marker(Header(), "id 1", np.zeros(3), 1)], namespaces=("skeleton", "labels"))
    assert [m.action for m in arr.markers[:2]] == [Marker.DELETEALL, Marker.DELETEALL]
    assert arr.markers[2].text == "id 1"
    assert len(marker_array(Header(), []).markers) == 1


def test_mesh_markers():
    tri = mesh_triangle_marker(Header(), np.eye(3), np.array([[0, 1, 2]]), 4)
    assert tri.type == Marker.TRIANGLE_LIST and len(tri.points) == 3 and tri.points[1].y == 1.0
    res = mesh_resource_marker(Header(), "file:///m.stl", make_T(np.eye(3), [1, 2, 3]), 2, scale=0.001)
    assert res.type == Marker.MESH_RESOURCE and res.pose.position.z == 3.0 and res.scale.x == 0.001
