"""A fitted body mesh goes through the ROS conversions unchanged: shape_msgs/Mesh and a TRIANGLE_LIST marker."""

import numpy as np
import torch
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from pose_perception.human.body_mesh import BodyMeshFitter
from pose_perception.evaluation.human.mocap import clip_bodies
from pose_perception.evaluation.human.synthetic import AnnyPoser
from pose_perception.ros.conversions import mesh_to_msg, msg_to_mesh
from pose_perception.ros.markers import mesh_triangle_marker

torch.set_num_threads(1)


def test_decimated_body_mesh_round_trips_and_draws():
    ((_, _, keypoints),) = clip_bodies(AnnyPoser(), "walk", 10.0, 1, {})
    fitter = BodyMeshFitter(device="cpu", max_faces=2000)
    mesh = fitter.fit(1, keypoints.astype(np.float32), np.ones(23, np.float32), 0.0)
    back = msg_to_mesh(mesh_to_msg(mesh))
    np.testing.assert_allclose(back.vertices, mesh.vertices, atol=1e-6)
    np.testing.assert_array_equal(back.faces, mesh.faces)
    marker = mesh_triangle_marker(Header(frame_id="camera"), mesh.vertices, mesh.faces, marker_id=1)
    assert marker.type == Marker.TRIANGLE_LIST and len(marker.points) == 3 * len(mesh.faces)
