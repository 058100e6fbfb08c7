"""human_pose_node: camera stream in, tracked whole-body 3D people out (HumanArray, markers, TF, debug image).

Thin shell over human.pipeline.HumanPosePipeline; body meshes are fitted on their own thread at mesh_rate_hz.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import replace
from typing import Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from pose_perception.core.camera import CameraIntrinsics
from pose_perception.core.depth import DepthRange, validate_depth
from pose_perception.core.frames import make_T
from pose_perception.core.keypoints import COCO_WHOLEBODY_133
from pose_perception.core.types import HumanPose
from pose_perception.human.pipeline import STAGES, HumanPipelineConfig, HumanPosePipeline
from pose_perception.ros import hri
from pose_perception.ros.base_node import MESH_PARAMS, PerceptionNode, run_node
from pose_perception.ros.conversions import (
    camera_info_to_intrinsics,
    depth_to_m,
    humans_to_msg,
    image_to_rgb,
    numpy_to_image,
    stamp_to_s,
)
from pose_perception.ros.markers import marker_array, mesh_triangle_marker, skeleton_markers, text_marker
from pose_perception.ros.params import ParamSpec, config_from_params, config_param
from pose_perception.ros.qos import result_qos

LAYOUT = COCO_WHOLEBODY_133

_C = HumanPipelineConfig
# One table: fields of HumanPipelineConfig (default from the dataclass unless the node needs another, said why;
# read-only: the pipeline is built at configure), then the node's own. Run-time changes of the others apply at the
# next frame.
PARAMS = (
    config_param(
        _C,
        "backend",
        "Keypoint backend: MediaPipe's landmark models on regions chosen per person (roi), "
        "MediaPipe Holistic, or an ONNX model.",
        choices=("roi", "mediapipe", "onnx"),
    ),
    config_param(
        _C, "model_path", "ONNX whole-body model (RTMW / DWPose / RTMPose-wholebody export) for backend onnx."
    ),
    config_param(_C, "device", "Device for ONNX models and the mesh fitter.", choices=("auto", "cpu", "cuda")),
    config_param(
        _C,
        "proposer",
        "Person proposals: MediaPipe's person, face and palm detectors and an SSDLite person detector fused "
        "over tiles (fused), the face detector alone, a user ONNX detector, or none (search only).",
        choices=("fused", "face", "onnx", "none"),
    ),
    # Video: a budget keeps a proposal round inside a frame (the CLI, on single images, looks at all tiles at once).
    config_param(
        _C,
        "finder_budget_ms",
        "Proposer fused: detector time per proposal round; tiles left over are "
        "looked at in the next rounds (0: all at once).",
        default=25.0,
        min=0.0,
        max=10000.0,
    ),
    config_param(
        _C,
        "finder_person_boxes",
        "Proposer fused: also the SSDLite whole-body person detector (people whose head the other detectors miss).",
    ),
    config_param(_C, "detector_model_path", "ONNX person detector (mmdeploy RTMDet / YOLOX export) for proposer onnx."),
    config_param(_C, "max_people", "Most people estimated per frame.", min=1, max=20),
    config_param(_C, "min_person_score", "Mean body confidence below which a person is dropped.", min=0.0, max=1.0),
    # Video: people found are followed every frame, so searching every 3rd frame costs little (docs/human-real.md);
    # the dataclass default 1 is for single images.
    config_param(
        _C,
        "search_period",
        "Run the proposer and look for people it missed every N frames (people "
        "already found are followed every frame).",
        default=3,
        min=1,
        max=10000,
    ),
    config_param(
        _C, "workers", "People whose keypoints are estimated concurrently (0: one per CPU core).", min=0, max=64
    ),
    config_param(
        _C,
        "max_search_backoff",
        "Searches that find nobody stretch search_period up to this factor (reset when someone is found or lost).",
        default=8,
        min=1,
        max=1000,
    ),
    config_param(
        _C,
        "search_calls_per_frame",
        "Keypoint-model runs one search may make (0: as many as needed); searches resume where the last one stopped.",
        default=1,
        min=0,
        max=100,
    ),
    config_param(
        _C,
        "depth_band_m",
        "Depth difference that separates a person from others and the background.",
        min=0.05,
        max=5.0,
    ),
    config_param(_C, "lift_3d", "Estimate 3D keypoints (depth, else MediaPipe world landmarks; needs camera_info)."),
    config_param(_C, "head_pose", "Estimate head orientation (head_<id> frames) from the face landmarks."),
    ParamSpec(
        "use_depth",
        False,
        "Subscribe depth/image (registered to image, 16UC1 mm or 32FC1 m) and lift with it.",
        read_only=True,
    ),
    ParamSpec(
        "sync_slop_s",
        0.03,
        "Largest stamp difference between image and depth paired together.",
        min=0.0,
        max=1.0,
        read_only=True,
    ),
    *MESH_PARAMS,
    ParamSpec("publish_tf", True, "Publish body_<id>, head_<id> and joint frames on /tf."),
    ParamSpec("frame_prefix", "", "Prefix of every TF frame name (e.g. 'cam1_' when several nodes track people)."),
    ParamSpec(
        "joint_frames",
        "",
        "Comma-separated keypoint names (COCO-WholeBody) published as <name>_<id> frames, "
        "e.g. 'left_wrist,right_wrist'.",
        read_only=True,
    ),
    ParamSpec("min_joint_confidence", 0.5, "Joint frames and marker joints need this confidence.", min=0.0, max=1.0),
    ParamSpec("debug_image", False, "Publish debug/image with the skeletons drawn.", read_only=True),
    ParamSpec("min_depth_m", 0.1, "Depth pixels nearer than this are invalid.", min=0.0, max=100.0),
    ParamSpec(
        "max_depth_m",
        10.0,
        "Depth pixels farther than this are invalid (65.535 m: saturated 16-bit).",
        min=0.1,
        max=1000.0,
    ),
    ParamSpec(
        "min_valid_depth_fraction",
        0.01,
        "A depth frame with fewer valid pixels is not used: that frame's "
        "people are published without 3D (never lifted from a guess), and the node says so.",
        min=0.0,
        max=1.0,
    ),
    ParamSpec(
        "stage_window",
        100,
        "Frames over which the per-stage times on /diagnostics are averaged.",
        min=1,
        max=10000,
        read_only=True,
    ),
    *hri.PARAMS,  # ROS4HRI output: ros/hri.py
)


class HumanPoseNode(PerceptionNode):
    def __init__(self, **kwargs):
        super().__init__("human_pose_node", PARAMS, **kwargs)
        self.pipeline: Optional[HumanPosePipeline] = None
        self._intrinsics: Optional[CameraIntrinsics] = None
        self._stage_ms: dict[str, deque] = {s: deque(maxlen=self.params["stage_window"]) for s in STAGES + ("total",)}
        self._stage_lock = threading.Lock()
        self._stage_pub = self.create_publisher(DiagnosticArray, "/diagnostics", result_qos(10))
        self._stage_timer = self.create_timer(self.params["diagnostics_period_s"], self._publish_stage_timing)

    # ---- lifecycle hooks -----------------------------------------------------------------------------
    def load_pipeline(self) -> None:
        p = self.params
        self.joint_frames = [n.strip() for n in p["joint_frames"].split(",") if n.strip()]
        unknown = [n for n in self.joint_frames if n not in LAYOUT.keypoint_names]
        if unknown:
            raise ValueError(
                f"joint_frames names {unknown}, which are not COCO-WholeBody keypoints "
                f"(e.g. 'left_wrist', 'nose', 'right_hand_index_tip')"
            )
        config = replace(
            config_from_params(HumanPipelineConfig, PARAMS, p),
            mesh=p["mesh"],
            mesh_model=p["mesh_model"],
            mesh_max_faces=p["mesh_max_faces"],
        )
        if self.pipeline is not None:
            self.pipeline.close()
        self.pipeline = HumanPosePipeline(config)
        if self.pipeline.mesh_fitter is not None:
            self.start_meshes(self.pipeline.mesh_fitter, self._record_mesh_ms)

    def release_pipeline(self) -> None:
        if self.pipeline is not None:
            self.pipeline.close()
            self.pipeline = None

    def create_inputs(self) -> None:
        self.humans_pub = self.result_publisher(self._human_array_type(), "humans")
        self.markers_pub = self.result_publisher(MarkerArray, "human_markers")
        self.debug_pub = self.result_publisher(Image, "debug/image") if self.params["debug_image"] else None
        if getattr(self, "hri_out", None) is None:
            self.hri_out = hri.HriOutput.from_params(self, LAYOUT, self.params)
        self.subscribe(CameraInfo, "camera_info", self._on_camera_info)
        if self.params["use_depth"]:
            self.synchronise(
                [(Image, "image"), (Image, "depth/image")],
                lambda im, d: self.submit((im, d)),
                slop_s=self.params["sync_slop_s"],
            )
        else:
            self.subscribe(Image, "image", lambda im: self.submit((im, None)))

    @staticmethod
    def _human_array_type():
        from pose_perception_msgs.msg import HumanArray

        return HumanArray

    # ---- inputs --------------------------------------------------------------------------------------
    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._intrinsics = camera_info_to_intrinsics(msg)  # raises on an uncalibrated camera: reported

    def process(self, frame) -> None:
        pipeline = self.pipeline
        if pipeline is None:  # cleaned up while this frame waited
            return
        image_msg, depth_msg = frame
        rgb = image_to_rgb(image_msg)
        H, W = rgb.shape[:2]
        stamp_s = stamp_to_s(image_msg.header.stamp)
        intrinsics = self._intrinsics
        if intrinsics is None:
            if self.params["lift_3d"] or self.params["head_pose"]:
                self.report_error(
                    "no camera_info received on 'camera_info' yet: publishing 2D keypoints only", key="no_camera_info"
                )
        elif (intrinsics.width, intrinsics.height) != (W, H):
            self.report_error(
                f"camera_info is for {intrinsics.width}x{intrinsics.height} but the image is {W}x{H}: "
                f"publishing 2D keypoints only",
                key="camera_info_size",
            )
            intrinsics = None
        depth_m = None
        if depth_msg is not None:
            depth_m = depth_to_m(depth_msg)
            if depth_m.shape != (H, W):
                self.report_error(
                    f"depth is {depth_m.shape[1]}x{depth_m.shape[0]} but the image is {W}x{H}: register "
                    f"depth to colour; this frame is lifted without depth",
                    key="depth_size",
                )
                depth_m = None
            else:
                depth_m, problem = validate_depth(
                    depth_m,
                    DepthRange(
                        self.params["min_depth_m"], self.params["max_depth_m"], self.params["min_valid_depth_fraction"]
                    ),
                )
                if depth_m is None:
                    # no 3D from this frame at all: the world-landmark fallback would publish the person at a
                    # guessed distance (2.0 m -> 1.15 m) as if measured
                    self.report_error(f"{problem}: this frame's people are published in 2D only", key="depth_invalid")
                    intrinsics = None
        humans, timing = pipeline.process(rgb, depth_m, intrinsics, stamp_s, with_mesh=False)
        with self._stage_lock:
            for k, v in timing.items():
                if k in self._stage_ms and k != "mesh":
                    self._stage_ms[k].append(v)
        humans = self.attach_meshes(humans, stamp_s)
        self._publish(image_msg, rgb, humans)

    # ---- outputs -------------------------------------------------------------------------------------
    def _publish(self, image_msg: Image, rgb: np.ndarray, humans: list[HumanPose]) -> None:
        header = image_msg.header
        self.humans_pub.publish(humans_to_msg(header, humans, LAYOUT))
        markers = skeleton_markers(header, humans, LAYOUT, min_confidence=self.params["min_joint_confidence"])
        for h in humans:
            if h.mesh is not None:
                markers.append(mesh_triangle_marker(header, h.mesh.vertices, h.mesh.faces, int(h.track_id)))
            anchor = h.T_sensor_body[:3, 3] if h.T_sensor_body is not None else None
            if anchor is not None and np.all(np.isfinite(anchor)):
                markers.append(text_marker(header, f"id {h.track_id}", anchor + [0.0, -0.9, 0.0], int(h.track_id)))
        self.markers_pub.publish(marker_array(header, markers))
        if self.params["publish_tf"]:
            extra = self.hri_out.frames(header.frame_id, humans) if self.hri_out is not None else []
            self.tf.publish(header.stamp, self._frames(header.frame_id, humans) + extra)
        if self.hri_out is not None:
            self.hri_out.publish(header, rgb.shape[1], rgb.shape[0], humans)
        if self.debug_pub is not None:
            from pose_perception.core.overlay import draw_humans

            self.debug_pub.publish(numpy_to_image(draw_humans(rgb, humans, LAYOUT), "rgb8", header))

    def _frames(self, parent: str, humans: list[HumanPose]) -> list[tuple[str, str, np.ndarray]]:
        """ROS4HRI names: body_<id> (pelvis), head_<id>, and <joint>_<id> at 3D keypoints (camera axes)."""
        frames, prefix = [], self.params["frame_prefix"]
        for h in humans:
            if h.T_sensor_body is not None:
                frames.append((parent, f"{prefix}body_{h.track_id}", h.T_sensor_body))
            if h.T_sensor_head is not None:
                frames.append((parent, f"{prefix}head_{h.track_id}", h.T_sensor_head))
            if h.keypoints_3d is not None:
                for name in self.joint_frames:
                    i = LAYOUT.index(name)
                    p = h.keypoints_3d[i]
                    if np.all(np.isfinite(p)) and h.confidence[i] >= self.params["min_joint_confidence"]:
                        frames.append((parent, f"{prefix}{name}_{h.track_id}", make_T(np.eye(3), p)))
        return frames

    def _publish_stage_timing(self) -> None:
        """Per-stage pipeline time (mean / p95 ms over the last 100 frames) as a second /diagnostics status."""
        with self._stage_lock:
            values = []
            for k, d in self._stage_ms.items():
                if d:
                    a = np.asarray(d)
                    values += [
                        KeyValue(key=f"{k}_mean_ms", value=f"{a.mean():.2f}"),
                        KeyValue(key=f"{k}_p95_ms", value=f"{np.percentile(a, 95):.2f}"),
                    ]
        if not values:
            return
        status = DiagnosticStatus(
            level=DiagnosticStatus.OK,
            name=f"{self.get_name()}/stages",
            message="ok",
            hardware_id=self.get_fully_qualified_name(),
            values=values,
        )
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._stage_pub.publish(msg)

    def _record_mesh_ms(self, ms: float) -> None:
        with self._stage_lock:
            self._stage_ms["mesh"].append(ms)


def main(args=None) -> int:
    return run_node(HumanPoseNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
