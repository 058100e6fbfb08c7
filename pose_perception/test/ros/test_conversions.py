"""Message <-> numpy conversions: every supported encoding, padding, byte order, and clear refusals."""

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from pose_perception.core.camera import CameraIntrinsics
from pose_perception.core.keypoints import COCO_WHOLEBODY_133
from pose_perception.core.types import BodyMesh, HumanPose, ObjectPose, Source
from pose_perception.core.frames import make_T
from pose_perception.ros import conversions as cv

RNG = np.random.default_rng(1)


def _padded_image(arr: np.ndarray, encoding: str, pad: int, big_endian: bool = False) -> Image:
    h, w = arr.shape[:2]
    a = arr.astype(arr.dtype.newbyteorder(">" if big_endian else "<"))
    row = a.reshape(h, -1).view(np.uint8).reshape(h, -1)
    data = np.concatenate([row, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    return Image(
        height=h, width=w, encoding=encoding, is_bigendian=int(big_endian), step=row.shape[1] + pad, data=data.tobytes()
    )


@pytest.mark.parametrize(
    "encoding,shape,dtype",
    [
        ("rgb8", (4, 5, 3), np.uint8),
        ("bgr8", (4, 5, 3), np.uint8),
        ("rgba8", (4, 5, 4), np.uint8),
        ("bgra8", (4, 5, 4), np.uint8),
        ("mono8", (4, 5), np.uint8),
        ("mono16", (4, 5), np.uint16),
        ("16UC1", (4, 5), np.uint16),
        ("32FC1", (4, 5), np.float32),
    ],
)
@pytest.mark.parametrize("pad", [0, 3, 8])
@pytest.mark.parametrize("big_endian", [False, True])
def test_image_to_numpy_honours_step_padding_and_byte_order(encoding, shape, dtype, pad, big_endian):
    arr = (RNG.random(shape) * 200).astype(dtype)
    if np.dtype(dtype).itemsize > 1 and pad % np.dtype(dtype).itemsize:
        pad += np.dtype(dtype).itemsize - pad % np.dtype(dtype).itemsize
    out = cv.image_to_numpy(_padded_image(arr, encoding, pad, big_endian))
    assert out.shape == shape and out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, arr)


def test_image_round_trip_is_zero_copy_for_unpadded_native_images():
    rgb = RNG.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    msg = cv.numpy_to_image(rgb, "rgb8")
    out = cv.image_to_numpy(msg)
    np.testing.assert_array_equal(out, rgb)
    assert not out.flags.owndata  # a view of the message buffer


def test_colour_encodings_convert_to_rgb():
    rgb = RNG.integers(0, 255, (3, 4, 3), dtype=np.uint8)
    bgra = np.concatenate([rgb[:, :, ::-1], np.full((3, 4, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(cv.image_to_rgb(cv.numpy_to_image(rgb[:, :, ::-1], "bgr8")), rgb)
    np.testing.assert_array_equal(cv.image_to_rgb(cv.numpy_to_image(bgra, "bgra8")), rgb)
    grey = cv.image_to_rgb(cv.numpy_to_image(rgb[:, :, 0], "mono8"))
    assert grey.shape == (3, 4, 3) and np.all(grey[:, :, 1] == rgb[:, :, 0])


def test_depth_16uc1_is_millimetres_and_zero_is_invalid():
    mm = np.array([[0, 1000], [1500, 65535]], dtype=np.uint16)
    d = cv.depth_to_m(cv.numpy_to_image(mm, "16UC1"))
    assert np.isnan(d[0, 0]) and d[0, 1] == pytest.approx(1.0) and d[1, 0] == pytest.approx(1.5)


def test_depth_32fc1_is_metres_and_nan_inf_nonpositive_are_invalid():
    m = np.array([[np.nan, 2.0], [np.inf, -1.0]], dtype=np.float32)
    d = cv.depth_to_m(cv.numpy_to_image(m, "32FC1"))
    assert d[0, 1] == 2.0 and np.isnan(d[0, 0]) and np.isnan(d[1, 0]) and np.isnan(d[1, 1])


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda m: setattr(m, "encoding", "yuv422_yuy2"), "unsupported image encoding"),
        (lambda m: setattr(m, "step", 5), "step"),
        (lambda m: setattr(m, "data", bytes(m.data[:-7])), "truncated"),
        (lambda m: setattr(m, "width", 0), "no pixels"),
    ],
)
def test_inconsistent_images_are_refused_with_a_clear_error(mutate, match):
    msg = cv.numpy_to_image(np.zeros((4, 6, 3), np.uint8), "rgb8")
    mutate(msg)
    with pytest.raises(cv.ImageConversionError, match=match):
        cv.image_to_numpy(msg)


def test_colour_image_is_not_accepted_as_depth():
    with pytest.raises(cv.ImageConversionError, match="16UC1"):
        cv.depth_to_m(cv.numpy_to_image(np.zeros((2, 2, 3), np.uint8), "rgb8"))


def test_camera_info_round_trip_and_all_zero_K_refused():
    intr = CameraIntrinsics(K=np.array([[500.0, 0, 320], [0, 510, 240], [0, 0, 1]]), width=640, height=480)
    back = cv.camera_info_to_intrinsics(cv.intrinsics_to_camera_info(intr))
    np.testing.assert_allclose(back.K, intr.K)
    assert (back.width, back.height) == (640, 480)
    with pytest.raises(cv.CameraInfoError, match="uncalibrated"):
        cv.camera_info_to_intrinsics(CameraInfo(width=640, height=480))


def test_pointcloud_round_trip_with_mixed_fields_and_vectors():
    dtype = np.dtype(
        [
            ("x", "<f4"),
            ("y", "<f4"),
            ("z", "<f4"),
            ("intensity", "<u2"),
            ("ring", "u1"),
            ("t", "<f8"),
            ("rgb3", "<f4", (3,)),
        ]
    )
    cloud = np.zeros(7, dtype)
    for name in ("x", "y", "z", "t"):
        cloud[name] = RNG.random(7)
    cloud["intensity"] = np.arange(7)
    cloud["rgb3"] = RNG.random((7, 3))
    back = cv.pointcloud2_to_array(cv.array_to_pointcloud2(cloud))
    for name in dtype.names:
        np.testing.assert_array_equal(back[name], cloud[name])


def _raw_cloud(points: np.ndarray, point_step: int, big_endian: bool, height: int = 1) -> PointCloud2:
    """x,y,z float32 at offsets 0,4,8 and a float32 'velocity' at offset 16, with padding up to point_step."""
    n = len(points)
    order = ">" if big_endian else "<"
    buf = np.zeros((n, point_step), np.uint8)
    for i, off in enumerate((0, 4, 8, 16)):
        buf[:, off : off + 4] = points[:, i].astype(order + "f4").view(np.uint8).reshape(n, 4)
    fields = [
        PointField(name=nm, offset=off, datatype=PointField.FLOAT32, count=1)
        for nm, off in zip(("x", "y", "z", "velocity"), (0, 4, 8, 16))
    ]
    width = n // height
    return PointCloud2(
        height=height,
        width=width,
        fields=fields,
        is_bigendian=big_endian,
        point_step=point_step,
        row_step=point_step * width,
        data=buf.tobytes(),
        is_dense=True,
    )


@pytest.mark.parametrize("big_endian", [False, True])
def test_pointcloud_with_padding_offsets_and_foreign_byte_order(big_endian):
    pts = RNG.random((6, 4)).astype(np.float32)
    cloud = cv.pointcloud2_to_array(_raw_cloud(pts, point_step=32, big_endian=big_endian))
    assert cloud.shape == (6,)
    np.testing.assert_array_equal(cloud["velocity"], pts[:, 3])
    np.testing.assert_array_equal(cloud["z"], pts[:, 2])


def test_organised_cloud_keeps_its_grid():
    pts = RNG.random((12, 4)).astype(np.float32)
    cloud = cv.pointcloud2_to_array(_raw_cloud(pts, point_step=20, big_endian=False, height=3))
    assert cloud.shape == (3, 4)
    np.testing.assert_array_equal(cloud["x"].ravel(), pts[:, 0])


def test_empty_and_inconsistent_clouds():
    empty = _raw_cloud(np.zeros((0, 4), np.float32), 20, False)
    assert cv.pointcloud2_to_array(empty).shape == (0,)
    bad = _raw_cloud(RNG.random((4, 4)).astype(np.float32), 20, False)
    bad.data = bytes(bad.data[:30])
    with pytest.raises(cv.PointCloudConversionError, match="bytes"):
        cv.pointcloud2_to_array(bad)
    with pytest.raises(cv.PointCloudConversionError, match="no fields"):
        cv.pointcloud2_to_array(PointCloud2(height=1, width=1, point_step=4, row_step=4, data=b"\0" * 4))


def test_humans_round_trip_through_the_message():
    n = COCO_WHOLEBODY_133.num_keypoints
    mesh = BodyMesh(vertices=RNG.random((5, 3)).astype(np.float32), faces=np.array([[0, 1, 2], [2, 3, 4]], np.int32))
    kp3 = RNG.random((n, 3)).astype(np.float32)
    kp3[100] = np.nan
    human = HumanPose(
        track_id=7,
        score=0.9,
        keypoints_uv=RNG.random((n, 2)).astype(np.float32) * 100,
        confidence=RNG.random(n).astype(np.float32),
        keypoints_3d=kp3,
        bbox_xyxy=np.array([1, 2, 30, 40], np.float32),
        source=Source.RGBD,
        T_sensor_body=make_T(np.eye(3), [0.1, 0.2, 2.0]),
        mesh=mesh,
    )
    msg = cv.humans_to_msg(Header(frame_id="cam"), [human], COCO_WHOLEBODY_133)
    assert msg.layout == "coco_wholebody_133" and len(msg.keypoint_names) == n
    (back,) = cv.msg_to_humans(msg)
    assert back.track_id == 7 and back.source == Source.RGBD
    np.testing.assert_allclose(back.keypoints_uv, human.keypoints_uv)
    np.testing.assert_allclose(back.keypoints_3d, kp3)  # NaN survives
    np.testing.assert_allclose(back.T_sensor_body, human.T_sensor_body, atol=1e-9)
    np.testing.assert_array_equal(back.mesh.faces, mesh.faces)


def test_human_with_wrong_keypoint_count_is_refused():
    human = HumanPose(
        track_id=1, score=1.0, keypoints_uv=np.zeros((17, 2), np.float32), confidence=np.zeros(17, np.float32)
    )
    with pytest.raises(cv.ConversionError, match="do not match layout"):
        cv.humans_to_msg(Header(), [human], COCO_WHOLEBODY_133)


def test_objects_round_trip_through_the_message():
    T = make_T(np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]]), [0.1, -0.2, 0.8])
    obj = ObjectPose(
        name="mug",
        instance=2,
        T_cam_obj=T,
        score=0.8,
        bbox_size_m=np.array([0.1, 0.1, 0.12]),
        mesh_uri="file:///tmp/mug.stl",
        covariance=np.eye(6) * 1e-4,
        bbox_center_m=np.array([0.0, 0.01, 0.06]),
    )
    (back,) = cv.msg_to_objects(cv.objects_to_msg(Header(frame_id="cam"), [obj]))
    assert (back.name, back.instance, back.mesh_uri) == ("mug", 2, "file:///tmp/mug.stl")
    np.testing.assert_allclose(back.T_cam_obj, T, atol=1e-9)
    np.testing.assert_allclose(back.covariance, obj.covariance)
    np.testing.assert_allclose(back.bbox_size_m, obj.bbox_size_m)
    np.testing.assert_allclose(back.bbox_center_m, obj.bbox_center_m)


def test_detection_3d_holds_the_model_pose_and_the_box_posed_at_its_centre():
    pytest.importorskip("vision_msgs.msg")
    T = make_T(np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]]), [0.1, -0.2, 0.8])
    obj = ObjectPose(
        name="mug",
        instance=2,
        T_cam_obj=T,
        score=0.8,
        bbox_size_m=np.array([0.1, 0.12, 0.14]),
        bbox_center_m=np.array([0.0, 0.01, 0.07]),
    )
    msg = cv.objects_to_detections_msg(Header(frame_id="cam"), [obj])
    (det,) = msg.detections
    assert msg.header.frame_id == "cam" and det.header.frame_id == "cam" and det.id == "mug_2"
    (hyp,) = det.results
    assert hyp.hypothesis.class_id == "mug" and hyp.hypothesis.score == pytest.approx(0.8)
    np.testing.assert_allclose(cv.pose_to_T(hyp.pose.pose), T, atol=1e-9)
    # the box centre is the model's box centre carried into the camera frame, with the model's orientation
    T_box = cv.pose_to_T(det.bbox.center)
    np.testing.assert_allclose(T_box[:3, 3], [0.1 - 0.01, -0.2, 0.8 + 0.07], atol=1e-9)
    np.testing.assert_allclose(T_box[:3, :3], T[:3, :3], atol=1e-9)
    assert (det.bbox.size.x, det.bbox.size.y, det.bbox.size.z) == pytest.approx((0.1, 0.12, 0.14))


def test_radar_points_become_a_cloud_with_the_fields_the_radar_node_reads():
    points = np.array([[1.0, 2.0, 0.5, -0.356, 12.0], [0.0, 3.0, 1.0, 0.0, 7.5]], np.float32)
    msg = cv.radar_points_to_pointcloud2(points)
    assert [f.name for f in msg.fields] == ["x", "y", "z", "velocity", "intensity"]
    cloud = cv.pointcloud2_to_array(msg)
    for j, name in enumerate(cv.RADAR_POINT_FIELDS):
        np.testing.assert_array_equal(cloud[name], points[:, j])
