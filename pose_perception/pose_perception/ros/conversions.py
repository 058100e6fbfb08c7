"""The one place where ROS messages become numpy arrays and result dataclasses become messages.

Images honour `step` padding and `is_bigendian` and are zero-copy views where the layout allows; inconsistent
messages raise a ConversionError subclass that says what is wrong.
"""

from __future__ import annotations

import sys
from typing import Literal, Optional, Sequence

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, PoseWithCovariance, Vector3
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from shape_msgs.msg import Mesh, MeshTriangle
from std_msgs.msg import Header

from pose_perception.core.camera import CameraIntrinsics, CameraModelError
from pose_perception.core.depth import sanitize_depth_m
from pose_perception.core.frames import T_to_xyz_quat, xyz_quat_to_T
from pose_perception.core.keypoints import KeypointLayout
from pose_perception.core.types import BodyMesh, HumanPose, ObjectPose, Source


class ConversionError(ValueError):
    """A message that cannot be converted; the text says which field is inconsistent."""


class ImageConversionError(ConversionError):
    pass


class CameraInfoError(ConversionError):
    pass


class PointCloudConversionError(ConversionError):
    pass


# encoding -> (numpy dtype, channels)
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "8UC3": (np.dtype(np.uint8), 3),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}

_HOST_BIG_ENDIAN = sys.byteorder == "big"


def stamp_to_s(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def s_to_stamp(t_s: float) -> Time:
    sec = int(np.floor(t_s))
    return Time(sec=sec, nanosec=int(round((t_s - sec) * 1e9)) % 1_000_000_000)


def image_to_numpy(msg: Image) -> np.ndarray:
    """sensor_msgs/Image -> (H, W) or (H, W, C) array of the encoding's dtype (a read-only view when possible)."""
    try:
        dtype, channels = IMAGE_ENCODINGS[msg.encoding]
    except KeyError:
        raise ImageConversionError(
            f"unsupported image encoding '{msg.encoding}'; supported: {sorted(IMAGE_ENCODINGS)}"
        ) from None
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ImageConversionError(f"image has no pixels ({w}x{h})")
    row_bytes = w * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageConversionError(
            f"image step {step} is smaller than width*channels*bytes = {row_bytes} for {msg.encoding} {w}x{h}"
        )
    if step % dtype.itemsize:
        raise ImageConversionError(f"image step {step} is not a multiple of the {dtype.itemsize}-byte pixel element")
    data = msg.data
    buffer = data if isinstance(data, (bytes, bytearray, memoryview)) else np.asarray(data, dtype=np.uint8)
    size = len(buffer)
    if size < step * h:
        raise ImageConversionError(f"image data has {size} bytes, expected step*height = {step * h} (truncated?)")
    big = bool(msg.is_bigendian)
    typed = dtype.newbyteorder(">" if big else "<") if dtype.itemsize > 1 else dtype
    rows = np.frombuffer(buffer, dtype=np.uint8, count=step * h).reshape(h, step)
    pixels = (
        rows[:, :row_bytes].view(typed).reshape(h, w, channels)
        if step != row_bytes
        else np.frombuffer(buffer, dtype=typed, count=h * w * channels).reshape(h, w, channels)
    )
    if dtype.itemsize > 1 and big != _HOST_BIG_ENDIAN:
        pixels = pixels.astype(dtype)  # byte swap into native order (one copy)
    return pixels[:, :, 0] if channels == 1 else pixels


def image_to_rgb(msg: Image) -> np.ndarray:
    """Colour or mono image message -> (H, W, 3) uint8 RGB."""
    arr = image_to_numpy(msg)
    enc = msg.encoding
    if enc in ("rgb8", "8UC3"):
        return arr
    if enc == "bgr8":
        return arr[:, :, ::-1]
    if enc == "rgba8":
        return arr[:, :, :3]
    if enc == "bgra8":
        return arr[:, :, 2::-1]
    if enc in ("mono8", "8UC1"):
        return np.repeat(arr[:, :, None], 3, axis=2)
    if enc in ("mono16",):
        return np.repeat((arr >> 8).astype(np.uint8)[:, :, None], 3, axis=2)
    raise ImageConversionError(f"encoding '{enc}' is not a colour image (expected rgb8, bgr8, rgba8, bgra8, mono8)")


def depth_to_m(msg: Image) -> np.ndarray:
    """Depth image (16UC1 / mono16 millimetres, 32FC1 metres) -> (H, W) float32 metres, NaN where invalid."""
    arr = image_to_numpy(msg)
    if msg.encoding in ("16UC1", "mono16"):
        return sanitize_depth_m(arr.astype(np.float32) * 0.001)
    if msg.encoding == "32FC1":
        return sanitize_depth_m(arr)
    raise ImageConversionError(f"depth encoding must be 16UC1 (mm) or 32FC1 (m), got '{msg.encoding}'")


def numpy_to_image(array: np.ndarray, encoding: str, header: Optional[Header] = None) -> Image:
    """(H, W) or (H, W, C) array -> sensor_msgs/Image in native byte order, no row padding."""
    try:
        dtype, channels = IMAGE_ENCODINGS[encoding]
    except KeyError:
        raise ImageConversionError(f"unsupported image encoding '{encoding}'") from None
    arr = np.ascontiguousarray(array, dtype=dtype)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] != channels:
        raise ImageConversionError(
            f"array of shape {array.shape} does not fit encoding {encoding} ({channels} channels)"
        )
    h, w = arr.shape[:2]
    msg = Image(
        height=h, width=w, encoding=encoding, is_bigendian=int(_HOST_BIG_ENDIAN), step=w * channels * dtype.itemsize
    )
    if header is not None:
        msg.header = header
    msg.data = arr.tobytes()
    return msg


def camera_info_to_intrinsics(msg: CameraInfo) -> CameraIntrinsics:
    K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    try:
        return CameraIntrinsics(
            K=K, width=int(msg.width), height=int(msg.height), dist=np.asarray(msg.d, dtype=np.float64)
        )
    except CameraModelError as exc:
        raise CameraInfoError(f"camera_info unusable: {exc}") from exc


def intrinsics_to_camera_info(intrinsics: CameraIntrinsics, header: Optional[Header] = None) -> CameraInfo:
    msg = CameraInfo(width=intrinsics.width, height=intrinsics.height, distortion_model="plumb_bob")
    if header is not None:
        msg.header = header
    msg.k = intrinsics.K.ravel().tolist()
    d = list(intrinsics.dist) + [0.0] * max(0, 5 - len(intrinsics.dist))
    msg.d = [float(x) for x in d]
    msg.r = np.eye(3).ravel().tolist()
    P = np.zeros((3, 4))
    P[:3, :3] = intrinsics.K
    msg.p = P.ravel().tolist()
    return msg


# PointField datatype -> numpy dtype
_POINTFIELD_DTYPES: dict[int, np.dtype] = {
    PointField.INT8: np.dtype(np.int8),
    PointField.UINT8: np.dtype(np.uint8),
    PointField.INT16: np.dtype(np.int16),
    PointField.UINT16: np.dtype(np.uint16),
    PointField.INT32: np.dtype(np.int32),
    PointField.UINT32: np.dtype(np.uint32),
    PointField.FLOAT32: np.dtype(np.float32),
    PointField.FLOAT64: np.dtype(np.float64),
}
_DTYPE_POINTFIELDS = {v: k for k, v in _POINTFIELD_DTYPES.items()}


def pointcloud2_to_array(msg: PointCloud2) -> np.ndarray:
    """PointCloud2 -> structured array (N,) for unorganised clouds or (H, W) for organised ones.

    Honours field offsets, datatypes, counts, point_step padding, row_step and endianness. Returns a view of
    the message buffer when the byte order is native.
    """
    if not msg.fields:
        raise PointCloudConversionError("PointCloud2 has no fields")
    order: Literal[">", "<"] = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for f in msg.fields:
        if f.datatype not in _POINTFIELD_DTYPES:
            raise PointCloudConversionError(f"field '{f.name}' has unknown datatype {f.datatype}")
        base = _POINTFIELD_DTYPES[f.datatype].newbyteorder(order)
        names.append(f.name)
        formats.append(base if f.count <= 1 else (base, (f.count,)))
        offsets.append(f.offset)
    spans = sorted(
        (off, off + np.dtype(fmt if isinstance(fmt, np.dtype) else fmt[0]).itemsize * max(f.count, 1), f.name)
        for off, fmt, f in zip(offsets, formats, msg.fields)
    )
    for (a0, a1, a), (b0, _, b) in zip(spans, spans[1:]):
        if b0 < a1:
            raise PointCloudConversionError(
                f"fields '{a}' (bytes {a0}-{a1 - 1}) and '{b}' (from byte {b0}) overlap: the field offsets are wrong"
            )
    if spans and spans[-1][1] > msg.point_step:
        raise PointCloudConversionError(
            f"field '{spans[-1][2]}' ends at byte {spans[-1][1]}, beyond point_step {msg.point_step}"
        )
    try:
        dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": msg.point_step})
    except (ValueError, TypeError) as exc:
        raise PointCloudConversionError(f"fields do not fit point_step {msg.point_step}: {exc}") from exc
    h, w = int(msg.height), int(msg.width)
    if h * w == 0:
        return np.zeros(0, dtype=dtype)
    if msg.row_step < w * msg.point_step:
        raise PointCloudConversionError(f"row_step {msg.row_step} < width*point_step {w * msg.point_step}")
    data = msg.data
    buffer = data if isinstance(data, (bytes, bytearray, memoryview)) else np.asarray(data, dtype=np.uint8)
    if len(buffer) < msg.row_step * h:
        raise PointCloudConversionError(
            f"cloud data has {len(buffer)} bytes, expected row_step*height = {msg.row_step * h}"
        )
    rows = np.frombuffer(buffer, dtype=np.uint8, count=msg.row_step * h).reshape(h, msg.row_step)
    cloud: np.ndarray = np.ndarray(
        shape=(h, w), dtype=dtype, buffer=np.ascontiguousarray(rows[:, : w * msg.point_step])
    )
    if msg.is_bigendian != _HOST_BIG_ENDIAN:
        cloud = cloud.astype(cloud.dtype.newbyteorder("="))
    return cloud[0] if h == 1 else cloud


def array_to_pointcloud2(cloud: np.ndarray, header: Optional[Header] = None) -> PointCloud2:
    """Structured array (N,) or (H, W) -> PointCloud2 (native byte order, point_step = itemsize)."""
    if cloud.dtype.names is None:
        raise PointCloudConversionError("array_to_pointcloud2 needs a structured array with named fields")
    arr = cloud.reshape(1, -1) if cloud.ndim == 1 else cloud
    fields = []
    for name in arr.dtype.names:
        ftype, offset = arr.dtype.fields[name][:2]
        base, count = (ftype.base, int(np.prod(ftype.shape))) if ftype.shape else (ftype, 1)
        key = base.newbyteorder("=")
        if key not in _DTYPE_POINTFIELDS:
            raise PointCloudConversionError(f"field '{name}' has dtype {base} that PointCloud2 cannot carry")
        fields.append(PointField(name=name, offset=offset, datatype=_DTYPE_POINTFIELDS[key], count=count))
    msg = PointCloud2(
        height=arr.shape[0],
        width=arr.shape[1],
        fields=fields,
        is_bigendian=_HOST_BIG_ENDIAN,
        point_step=arr.dtype.itemsize,
        row_step=arr.dtype.itemsize * arr.shape[1],
        is_dense=False,
    )
    if header is not None:
        msg.header = header
    msg.data = np.ascontiguousarray(arr).tobytes()
    return msg


RADAR_POINT_FIELDS = ("x", "y", "z", "velocity", "intensity")


def radar_points_to_pointcloud2(points: np.ndarray, header: Optional[Header] = None) -> PointCloud2:
    """points (N, 5) float32 columns x, y, z (m), velocity (m/s), intensity -> PointCloud2 with those float32
    fields, the layout the radar node reads by default (as a TI driver publishes it)."""
    cloud = np.zeros(len(points), np.dtype([(n, np.float32) for n in RADAR_POINT_FIELDS]))
    for j, n in enumerate(RADAR_POINT_FIELDS):
        cloud[n] = points[:, j]
    return array_to_pointcloud2(cloud, header)


def T_to_pose(T: np.ndarray) -> Pose:
    xyz, q = T_to_xyz_quat(T)
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in xyz)
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (float(v) for v in q)
    return pose


def pose_to_T(pose: Pose) -> np.ndarray:
    p, o = pose.position, pose.orientation
    return xyz_quat_to_T(np.array([p.x, p.y, p.z]), np.array([o.x, o.y, o.z, o.w]))


def mesh_to_msg(mesh: BodyMesh) -> Mesh:
    msg = Mesh()
    msg.vertices = [
        Point(x=float(x), y=float(y), z=float(z)) for x, y, z in np.asarray(mesh.vertices, dtype=np.float64)
    ]
    msg.triangles = [MeshTriangle(vertex_indices=[int(a), int(b), int(c)]) for a, b, c in np.asarray(mesh.faces)]
    return msg


def msg_to_mesh(msg: Mesh) -> BodyMesh:
    vertices = np.array([[p.x, p.y, p.z] for p in msg.vertices], dtype=np.float32).reshape(-1, 3)
    faces = np.array([t.vertex_indices for t in msg.triangles], dtype=np.int32).reshape(-1, 3)
    return BodyMesh(vertices=vertices, faces=faces)


def humans_to_msg(header: Header, humans: Sequence[HumanPose], layout: KeypointLayout):
    """Result dataclasses -> pose_perception_msgs/HumanArray (layout and keypoint names carried inline)."""
    from pose_perception_msgs.msg import Human, HumanArray

    out = HumanArray(header=header, layout=layout.name, keypoint_names=list(layout.keypoint_names))
    for h in humans:
        n = layout.num_keypoints
        if h.keypoints_uv.shape != (n, 2) or h.confidence.shape != (n,):
            raise ConversionError(
                f"human {h.track_id}: keypoints {h.keypoints_uv.shape} / confidence {h.confidence.shape} "
                f"do not match layout {layout.name} ({n} keypoints)"
            )
        m = Human(id=int(h.track_id), score=float(h.score), source=int(h.source))
        bbox = h.bbox_xyxy if h.bbox_xyxy is not None else np.full(4, np.nan)
        m.bbox = np.asarray(bbox, dtype=np.float32)
        m.keypoints_uv = np.asarray(h.keypoints_uv, dtype=np.float32).ravel()
        m.confidence = np.asarray(h.confidence, dtype=np.float32)
        if h.keypoints_3d is not None:
            m.keypoints_3d = [
                Point(x=float(x), y=float(y), z=float(z)) for x, y, z in np.asarray(h.keypoints_3d, dtype=np.float64)
            ]
        if h.T_sensor_body is not None:
            m.has_root_pose = True
            m.root_pose = T_to_pose(h.T_sensor_body)
        if h.mesh is not None:
            m.has_mesh = True
            m.mesh = mesh_to_msg(h.mesh)
        out.humans.append(m)
    return out


def msg_to_humans(msg) -> list[HumanPose]:
    """pose_perception_msgs/HumanArray -> result dataclasses (used by recorders, the demo and tests)."""
    humans = []
    n = len(msg.keypoint_names)
    for m in msg.humans:
        k3 = (
            np.array([[p.x, p.y, p.z] for p in m.keypoints_3d], dtype=np.float32).reshape(-1, 3)
            if m.keypoints_3d
            else None
        )
        humans.append(
            HumanPose(
                track_id=int(m.id),
                score=float(m.score),
                keypoints_uv=np.asarray(m.keypoints_uv, dtype=np.float32).reshape(n, 2),
                confidence=np.asarray(m.confidence, dtype=np.float32),
                keypoints_3d=k3,
                bbox_xyxy=np.asarray(m.bbox, dtype=np.float32),
                source=Source(m.source),
                T_sensor_body=pose_to_T(m.root_pose) if m.has_root_pose else None,
                mesh=msg_to_mesh(m.mesh) if m.has_mesh else None,
            )
        )
    return humans


def objects_to_msg(header: Header, objects: Sequence[ObjectPose]):
    """Result dataclasses -> pose_perception_msgs/ObjectPoseArray."""
    from pose_perception_msgs.msg import ObjectPose as ObjectPoseMsg
    from pose_perception_msgs.msg import ObjectPoseArray

    out = ObjectPoseArray(header=header)
    for o in objects:
        sx, sy, sz = (float(v) for v in o.bbox_size_m)
        cx, cy, cz = (float(v) for v in _bbox_center(o))
        out.objects.append(
            ObjectPoseMsg(
                name=o.name,
                instance=int(o.instance),
                score=float(o.score),
                mesh_resource=o.mesh_uri,
                pose=_pose_with_covariance(o),
                bbox_size=Vector3(x=sx, y=sy, z=sz),
                bbox_center=Point(x=cx, y=cy, z=cz),
            )
        )
    return out


def _pose_with_covariance(o: ObjectPose) -> PoseWithCovariance:
    """o's model pose with its covariance (zeros where unknown)."""
    cov = o.covariance if o.covariance is not None else np.zeros((6, 6))
    return PoseWithCovariance(pose=T_to_pose(o.T_cam_obj), covariance=np.asarray(cov, dtype=np.float64).ravel())


def _bbox_center(o: ObjectPose) -> np.ndarray:
    """Object-frame centre (3,) of o's bounding box; the origin where unknown."""
    return np.zeros(3) if o.bbox_center_m is None else np.asarray(o.bbox_center_m, dtype=np.float64)


def objects_to_detections_msg(header: Header, objects: Sequence[ObjectPose]):
    """Result dataclasses -> vision_msgs/Detection3DArray, the convention of Isaac ROS and MoveIt-side tools:
    one Detection3D per instance (id "<name>_<instance>"), one hypothesis (class_id = name, score, the pose of
    the model's frame with its covariance), and the bounding box posed in the header's frame (bbox.center is the
    box's centre, not the model origin). Needs vision_msgs (ImportError where it is not installed)."""
    from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose

    out = Detection3DArray(header=header)
    for o in objects:
        hyp = ObjectHypothesisWithPose(pose=_pose_with_covariance(o))
        hyp.hypothesis.class_id = o.name
        hyp.hypothesis.score = float(o.score)
        det = Detection3D(header=header, id=f"{o.name}_{o.instance}", results=[hyp])
        T_cam_box = o.T_cam_obj.copy()
        T_cam_box[:3, 3] = o.T_cam_obj[:3, :3] @ _bbox_center(o) + o.T_cam_obj[:3, 3]
        det.bbox.center = T_to_pose(T_cam_box)
        det.bbox.size.x, det.bbox.size.y, det.bbox.size.z = (float(v) for v in o.bbox_size_m)
        out.detections.append(det)
    return out


def msg_to_objects(msg) -> list[ObjectPose]:
    return [
        ObjectPose(
            name=o.name,
            instance=int(o.instance),
            T_cam_obj=pose_to_T(o.pose.pose),
            score=float(o.score),
            bbox_size_m=np.array([o.bbox_size.x, o.bbox_size.y, o.bbox_size.z]),
            mesh_uri=o.mesh_resource,
            covariance=np.asarray(o.pose.covariance, dtype=np.float64).reshape(6, 6),
            bbox_center_m=np.array([o.bbox_center.x, o.bbox_center.y, o.bbox_center.z]),
        )
        for o in msg.objects
    ]


def detections_from_msg(msg) -> list:
    """vision_msgs/Detection2DArray -> [objects.detections.Detection2D] (mapping in objects/detections.py): the first
    hypothesis' class_id names the object (empty: any), the box is the centre +- half the size, in pixels."""
    from pose_perception.objects.detections import Detection2D

    out = []
    for d in msg.detections:
        c, sx, sy = d.bbox.center.position, d.bbox.size_x, d.bbox.size_y
        name = d.results[0].hypothesis.class_id if len(d.results) else ""
        box = np.array([c.x - sx / 2.0, c.y - sy / 2.0, c.x + sx / 2.0, c.y + sy / 2.0], dtype=np.float64)
        out.append(Detection2D(box, name or None))
    return out
