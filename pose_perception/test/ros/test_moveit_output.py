"""MoveIt output of object_pose_node: moveit_msgs/CollisionObject with the genuine type hash, ADD / MOVE / REMOVE
as objects appear, move and vanish (CollisionScene), and over real DDS a subscriber playing MoveIt's planning scene
gets every tracked object with the pose of the same frame; meshes for a remote RViz (package:// or inline)."""

import time
from pathlib import Path

import numpy as np
import pytest
from std_msgs.msg import Header

from pose_perception.core.types import ObjectPose
from pose_perception.objects.collision import ADD, MOVE, REMOVE, CollisionScene, simplified_mesh
from pose_perception.ros.moveit import ros_mesh_uri

from scenes import add_s_m

from pose_perception.ros.conversions import pose_to_T
from mustard_node import scene_camera, start_mustard_node
from ros_helpers import wait_for

# Type hashes of a Jazzy build of the real packages (moveit_msgs 2.x, object_recognition_msgs 2.x), from its
# generated install/moveit_msgs/include/moveit_msgs/moveit_msgs/msg/detail/collision_object__description.c
# (the hash of CollisionObject and the expected hash of the ObjectType it holds).
JAZZY_HASHES = {
    "moveit_msgs/msg/CollisionObject": "RIHS01_74b0acd6d56be032bf4f764b2c2633f50588b5fb2bd71e97206c59052747cf7e",
    "object_recognition_msgs/msg/ObjectType": "RIHS01_5eb3ee3976403366d7c50d7dbee8bec96b3bced1e752674a7194a35841632134",
}


def pose(name, instance=0, x=0.0):
    T = np.eye(4)
    T[0, 3] = x
    return ObjectPose(name=name, instance=instance, T_cam_obj=T, score=0.9, bbox_size_m=np.ones(3) * 0.1)


def test_collision_scene_adds_moves_refreshes_and_removes():
    scene = CollisionScene(refresh_s=1.0, remove_after_s=0.0)
    ops = scene.update(0.0, [pose("mug"), pose("box", 1)])
    assert [(u.object_id, u.operation) for u in ops] == [("mug_0", ADD), ("box_1", ADD)]
    assert [(u.object_id, u.operation) for u in scene.update(0.1, [pose("mug", x=0.1), pose("box", 1)])] == [
        ("mug_0", MOVE),
        ("box_1", MOVE),
    ]
    assert [(u.object_id, u.operation) for u in scene.update(0.2, [pose("mug")])] == [
        ("mug_0", MOVE),
        ("box_1", REMOVE),
    ]
    assert [u.operation for u in scene.update(1.3, [pose("mug")])] == [ADD]  # refreshed after refresh_s
    assert [u.operation for u in scene.update(1.0, [pose("mug")])] == [ADD]  # stamps went back (bag loop)
    assert [(u.object_id, u.operation) for u in scene.remove_all()] == [("mug_0", REMOVE)]
    assert scene.object_ids == []
    patient = CollisionScene(remove_after_s=0.5)
    patient.update(0.0, [pose("mug")])
    assert patient.update(0.3, []) == [] and [u.operation for u in patient.update(0.6, [])] == [REMOVE]


def test_simplified_mesh_keeps_the_shape_with_fewer_faces():
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.05)
    v, f = simplified_mesh(sphere.vertices, sphere.faces, 500)
    assert 100 < len(f) <= 500 and len(f) < len(sphere.faces)
    assert np.allclose(np.linalg.norm(v, axis=1), 0.05, atol=0.005)
    v2, f2 = simplified_mesh(sphere.vertices, sphere.faces, 0)
    assert len(f2) == len(sphere.faces)


def test_mesh_in_a_package_share_gets_a_package_uri():
    import os

    from ament_index_python.packages import get_package_share_directory

    share = Path(get_package_share_directory("std_msgs"))
    target = next(share.rglob("*.msg"))
    assert ros_mesh_uri(target.as_uri()) == f"package://std_msgs/{target.relative_to(share).as_posix()}"
    assert ros_mesh_uri("file:///tmp/not_in_a_package.stl") == "file:///tmp/not_in_a_package.stl"
    assert ros_mesh_uri("package://x/y.stl") == "package://x/y.stl"
    assert os.environ.get("AMENT_PREFIX_PATH")


def test_types_hash_as_the_real_packages(client):
    from moveit_msgs.msg import CollisionObject
    from object_recognition_msgs.msg import ObjectType

    for t, name in (
        (CollisionObject, "moveit_msgs/msg/CollisionObject"),
        (ObjectType, "object_recognition_msgs/msg/ObjectType"),
    ):
        topic = f"/hash_check/{t.__name__}"
        client.publisher(t, topic)
        [info] = client.node.get_publishers_info_by_topic(topic)
        assert info.topic_type == name and str(info.topic_type_hash) == JAZZY_HASHES[name]


@pytest.mark.timeout(240)
def test_planning_scene_follows_the_tracked_object_over_dds(client, scene, tmp_path):
    """A subscriber plays MoveIt's planning scene: the bottle is ADDed with its mesh at the pose the node publishes
    for that frame, MOVEd in later frames with the pose of each, and REMOVEd when the node forgets it."""
    from moveit_msgs.msg import CollisionObject
    from pose_perception_msgs.msg import ObjectPoseArray
    from pose_perception_msgs.srv import RemoveObject

    model, sc = scene
    ns = "/moveit_test"
    collisions = client.collect(CollisionObject, f"{ns}/collision_object", 100)
    objects = client.collect(ObjectPoseArray, f"{ns}/objects")
    cam = scene_camera(client, sc, ns=ns)
    node = start_mustard_node(tmp_path, ns=ns, collision_objects=True, collision_mesh_max_faces=800)
    send = cam.send

    def stamp(h):
        return (h.stamp.sec, h.stamp.nanosec)

    try:
        client.wait_for_subscribers(cam.image, timeout_s=90)
        wait_for(lambda: (send(), any(m.objects for m in objects))[1], 120, "an object pose")
        for _ in range(10):
            send()
            time.sleep(0.1)
        wait_for(lambda: sum(c.operation == CollisionObject.MOVE for c in collisions) >= 5, 20, "MOVEs")
        add = next(c for c in collisions if c.operation == CollisionObject.ADD)
        assert add.id == "mustard_0" and add.header.frame_id == "camera"
        assert len(add.meshes) == 1 and 0 < len(add.meshes[0].triangles) <= 800 and len(add.mesh_poses) == 1
        assert add_s_m(model.dense_points, pose_to_T(add.pose), sc.poses[0]) < 0.1 * model.diameter_m
        # every frame's pose reaches the planning scene: the collision object of each stamp equals the ObjectPose
        by_stamp = {stamp(m.header): m.objects[0] for m in objects if m.objects}
        moves = [c for c in collisions if c.operation == CollisionObject.MOVE]
        assert all(not c.meshes and not c.primitives for c in moves)
        matched = [c for c in moves if stamp(c.header) in by_stamp]
        assert len(matched) >= 5
        for c in matched:
            assert np.allclose(pose_to_T(c.pose), pose_to_T(by_stamp[stamp(c.header)].pose.pose), atol=1e-9)
        assert {stamp(m.header) for m in objects if m.objects} <= {stamp(c.header) for c in collisions}
        # the object vanishes (forgotten): REMOVE
        assert client.call(
            RemoveObject, f"{ns}/object_pose_node/remove_object", RemoveObject.Request(name="mustard"), 30
        ).success
        wait_for(lambda: (send(), any(c.operation == CollisionObject.REMOVE for c in collisions))[1], 20, "REMOVE")
        assert next(c for c in collisions if c.operation == CollisionObject.REMOVE).id == "mustard_0"
    finally:
        node.stop()


def test_triangle_mesh_markers_carry_the_mesh_at_the_pose():
    """mesh_markers triangles: the simplified mesh inline (any RViz, no file access), placed at the object's pose."""
    from types import SimpleNamespace

    import trimesh
    from visualization_msgs.msg import Marker

    from pose_perception.ros.moveit import MeshMarkers

    box = trimesh.creation.box(extents=(0.1, 0.2, 0.3))
    model = SimpleNamespace(vertices=np.asarray(box.vertices), faces=np.asarray(box.faces))
    p = pose("box", x=1.0)
    m = MeshMarkers(lambda: {"box": model}, "triangles", 1000).marker(Header(frame_id="camera"), p, 3, None)
    assert m.type == Marker.TRIANGLE_LIST and len(m.points) == 3 * len(box.faces)
    xs = np.array([[q.x, q.y, q.z] for q in m.points])
    assert np.allclose(xs.min(0), [0.95, -0.1, -0.15]) and np.allclose(xs.max(0), [1.05, 0.1, 0.15])
    resource = MeshMarkers(lambda: {}, "resource").marker(
        Header(),
        ObjectPose(
            name="x", instance=0, T_cam_obj=np.eye(4), score=1.0, bbox_size_m=np.ones(3), mesh_uri="file:///m.stl"
        ),
        0,
        None,
    )
    assert resource.type == Marker.MESH_RESOURCE and resource.mesh_resource == "file:///m.stl"
