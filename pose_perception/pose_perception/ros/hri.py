"""Optional ROS4HRI output of human_pose_node (`hri_output: true`): what hri_msgs clients (pyhri, libhri, hri_rviz)
read, per REP-155:

- /humans/bodies/tracked (hri_msgs/IdsList): ids of the bodies seen in this frame; /humans/faces/tracked likewise
  for the faces whose pose is known;
- /humans/bodies/<id>/skeleton2d (hri_msgs/Skeleton2D) and /roi (hri_msgs/NormalizedRegionOfInterest2D);
  /humans/faces/<id>/roi;
- TF frames (with the node's other frames): the REP-155 joint frames parented to body_<id>, face_<id> and gaze_<id>
  (human/hri.py computes them).

ROS4HRI ids are strings used as topic names (humans/bodies/<id>/...), and a ROS 2 name token must not start with a
digit: track 7 has the id "h7" (hri_id), hence body_h7, face_h7, gaze_h7, l_wrist_h7 (body_h7 is the node's body_7
under its ROS4HRI name). Topics are relative ("humans/..."): /humans/... in the root namespace, /robot1/humans/... under robot1. The
per-id publishers are created when an id appears and destroyed when it is gone. Needs hri_msgs (setup_env.sh
builds the four types here; a real install has the package); without it the node warns and publishes none of this.
"""

from __future__ import annotations

from typing import Any, Sequence

from pose_perception.core.keypoints import KeypointLayout
from pose_perception.core.types import HumanPose
from pose_perception.human.hri import face_roi_normalized, rep155_frames, roi_normalized, skeleton18_normalized
from pose_perception.ros.params import ParamSpec
from pose_perception.ros.qos import result_qos

try:
    from hri_msgs.msg import IdsList, NormalizedPointOfInterest2D, NormalizedRegionOfInterest2D, Skeleton2D
except ImportError:  # no hri_msgs: the output is off (the node warns when it was asked for)
    IdsList = None

PARAMS = (
    ParamSpec(
        "hri_output",
        False,
        "Publish ROS4HRI (REP-155) topics under humans/bodies/ and humans/faces/ and the "
        "REP-155 joint, face_<id> and gaze_<id> TF frames (needs hri_msgs).",
        read_only=True,
    ),
)


class HriOutput:
    def __init__(self, node, layout: KeypointLayout, min_conf: float = 0.5):
        self._node, self._layout, self._min_conf = node, layout, float(min_conf)
        self._bodies_pub = node.create_publisher(IdsList, "humans/bodies/tracked", result_qos(10))
        self._faces_pub = node.create_publisher(IdsList, "humans/faces/tracked", result_qos(10))
        self._per_id: dict[str, Any] = {}  # topic -> publisher, for the ids seen in the last frame

    @classmethod
    def from_params(cls, node, layout: KeypointLayout, params) -> "HriOutput | None":
        if not params["hri_output"]:
            return None
        if IdsList is None:
            node.get_logger().warning(
                "hri_output is true but hri_msgs is not importable: no ROS4HRI output (install ros-jazzy-hri-msgs)"
            )
            return None
        return cls(node, layout, params["min_joint_confidence"])

    def frames(self, sensor_frame: str, humans: Sequence[HumanPose]) -> list:
        """The REP-155 frames: body_<hri id> and the frames rep155_frames parents to it, face and gaze."""
        out = []
        for h in humans:
            if h.T_sensor_body is not None:
                out.append((sensor_frame, f"body_{hri_id(h.track_id)}", h.T_sensor_body))
            out += rep155_frames(h, self._layout, sensor_frame, hri_id(h.track_id), self._min_conf)
        return out

    def publish(self, header, width: int, height: int, humans: Sequence[HumanPose]) -> None:
        bodies, faces, topics = [], [], {}
        for h in humans:
            bid = hri_id(h.track_id)
            bodies.append(bid)
            skel = Skeleton2D(
                header=header,
                skeleton=[
                    NormalizedPointOfInterest2D(x=float(x), y=float(y), c=float(c))
                    for x, y, c in skeleton18_normalized(h, self._layout, width, height)
                ],
            )
            topics[f"humans/bodies/{bid}/skeleton2d"] = skel
            roi = roi_normalized(h.bbox_xyxy, width, height) if h.bbox_xyxy is not None else None
            if roi is not None:
                topics[f"humans/bodies/{bid}/roi"] = _roi_msg(header, roi, h.score)
            face_roi = face_roi_normalized(h, self._layout, width, height)
            if h.T_sensor_head is not None:
                faces.append(bid)
                if face_roi is not None:
                    topics[f"humans/faces/{bid}/roi"] = _roi_msg(header, face_roi, h.score)
        for topic, msg in topics.items():
            pub = self._per_id.get(topic)
            if pub is None:
                pub = self._per_id[topic] = self._node.create_publisher(type(msg), topic, result_qos(10))
            pub.publish(msg)
        for topic in set(self._per_id) - set(topics):  # the id is gone: so is its topic
            self._node.destroy_publisher(self._per_id.pop(topic))
        self._bodies_pub.publish(IdsList(header=header, ids=bodies))
        self._faces_pub.publish(IdsList(header=header, ids=faces))


def hri_id(track_id: int) -> str:
    """The ROS4HRI id of a track: a valid ROS 2 name token (not starting with a digit)."""
    return f"h{int(track_id)}"


def _roi_msg(header, roi, score: float):
    xmin, ymin, xmax, ymax = roi
    return NormalizedRegionOfInterest2D(
        header=header, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax, c=float(min(max(score, 0.0), 1.0))
    )
