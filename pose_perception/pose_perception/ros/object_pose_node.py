"""object_pose_node: 6D poses of known-mesh objects from synchronised RGB-D, estimated then tracked.

Publishes ObjectPoseArray, TF `<object>_<instance>`, mesh markers and /diagnostics; services add/remove/reset.
"""

from __future__ import annotations

import warnings

import numpy as np
from sensor_msgs.msg import CameraInfo, Image
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from pose_perception.objects.estimator import EstimatorConfig
from pose_perception.objects.tracker import ObjectTracker, ObjectTrackerConfig
from pose_perception.ros import moveit as optional_outputs
from pose_perception.ros.base_node import PerceptionNode, run_node
from pose_perception.ros.conversions import (
    camera_info_to_intrinsics,
    depth_to_m,
    detections_from_msg,
    image_to_numpy,
    image_to_rgb,
    objects_to_detections_msg,
    objects_to_msg,
    stamp_to_s,
)
from pose_perception.ros.markers import color_for_id, marker_array, text_marker
from pose_perception.ros.object_onboarding import ONBOARDING_PARAMS, OnboardingService
from pose_perception.ros.params import ParamSpec, config_from_params, config_param

try:  # published only where vision_msgs exists (real ROS installs; setup_env.sh builds it, no wheel on PyPI)
    from vision_msgs.msg import Detection3DArray
except ImportError:
    Detection3DArray = None

PARAMS = (
    ParamSpec(
        "objects",
        [],
        'Objects to load at start, each "NAME=PATH" (PATH may be ycb:<object> or pybullet_data:<file>).',
        read_only=True,
    ),
    ParamSpec("mesh_units", "m", "Units of the start-up meshes.", choices=("m", "mm"), read_only=True),
    ParamSpec(
        "symmetry",
        "auto",
        'Symmetry of the start-up meshes: "none", "auto", "continuous:<axis>", '
        '"discrete:<axis>:<order>[,<axis>:<order>...]".',
        read_only=True,
    ),
    ParamSpec("cache_dir", "", "Feature cache directory (empty: ~/.cache/pose_perception/objects).", read_only=True),
    ParamSpec(
        "device",
        "cpu",
        "Where hypothesis scoring and the ICPs' nearest-sample searches run; auto picks CUDA when torch sees one.",
        choices=("cpu", "cuda", "auto"),
        read_only=True,
    ),
    # Applied at run time (on_parameters_changed -> ObjectTracker.configure).
    config_param(
        EstimatorConfig,
        "score_threshold",
        "Verification score below which nothing is reported.",
        min=0.0,
        max=1.0,
        read_only=False,
    ),
    config_param(
        ObjectTrackerConfig, "track", "Track from the previous poses between full estimations.", read_only=False
    ),
    config_param(
        ObjectTrackerConfig,
        "redetect_period_s",
        "Seconds between the end of one background search for "
        "new objects and the start of the next while tracking (a lost object or an empty scene starts one "
        "at once).",
        min=0.0,
        max=3600.0,
        read_only=False,
    ),
    ParamSpec(
        "use_masks",
        False,
        "Also subscribe `masks` (label image, 0 = background, each other value one "
        "object) synchronised with the RGB-D frames.",
        read_only=True,
    ),
    ParamSpec(
        "use_detections",
        False,
        "Also subscribe `detections` (vision_msgs/Detection2DArray: per detection the "
        "object name as class_id of its first hypothesis, empty for any, and a box in pixels) synchronised with "
        "the RGB-D frames: each box is searched for its object only.",
        read_only=True,
    ),
    ParamSpec(
        "slop_s", 0.03, "Maximum stamp difference between synchronised inputs.", min=0.0, max=1.0, read_only=True
    ),
    *ONBOARDING_PARAMS,
    *optional_outputs.PARAMS,  # collision_object output, mesh markers for remote RViz: ros/moveit.py
)


class ObjectPoseNode(PerceptionNode):
    def __init__(self, **kwargs):
        super().__init__("object_pose_node", PARAMS, **kwargs)
        self.tracker: ObjectTracker | None = None
        self._object_services = []

    @property
    def estimator(self):
        """The tracker's ObjectPoseEstimator (its models), None while unconfigured."""
        tracker = self.tracker
        return tracker.estimator if tracker is not None else None

    # ---- lifecycle ------------------------------------------------------------------------------------
    def load_pipeline(self) -> None:
        models = []
        for entry in self.params["objects"] or []:
            name, sep, path = str(entry).partition("=")
            if not sep:
                raise ValueError(f'objects entry "{entry}" must be NAME=PATH')
            models.append(self._load(name, path, self.params["mesh_units"], self.params["symmetry"]))
        if not models:  # e.g. a params file keyed for another namespace: rclpy applies nothing and says nothing
            self.get_logger().warning(
                f"no objects to look for: parameter 'objects' is empty for {self.get_fully_qualified_name()} (a "
                f"params file's section must match this node: key it '/**/object_pose_node:'); add some with "
                f"~/add_object"
            )
        if self.tracker is not None:
            self.tracker.close()
        self.tracker = ObjectTracker(
            models,
            config_from_params(EstimatorConfig, PARAMS, self.params),
            config_from_params(ObjectTrackerConfig, PARAMS, self.params),
            device=self.params["device"],
            on_search_error=lambda exc: self.report_error(f"object search failed: {exc}", key="search"),
        )
        if not self._object_services:
            from pose_perception_msgs.srv import AddObject, RemoveObject

            self._object_services = [
                OnboardingService(self, AddObject, "~/add_object"),
                self.create_service(RemoveObject, "~/remove_object", self._on_remove),
                self.create_service(Trigger, "~/reset", self._on_reset),
            ]
        self.get_logger().info(f"objects loaded: {sorted(self.tracker.models)} (device {self.tracker.device})")

    def on_parameters_changed(self, names: set[str]) -> None:
        tracker = self.tracker
        if tracker is not None and names & {"score_threshold", "track", "redetect_period_s"}:
            tracker.configure(
                config_from_params(ObjectTrackerConfig, PARAMS, self.params, base=tracker.config),
                score_threshold=self.params["score_threshold"],
            )

    def release_pipeline(self) -> None:
        tracker, self.tracker = self.tracker, None
        if tracker is not None:
            tracker.close()

    def create_inputs(self) -> None:
        self.objects_pub = self.result_publisher(self._objects_msg_type(), "objects")
        self.marker_pub = self.result_publisher(MarkerArray, "object_markers")
        self.detections_pub = self.result_publisher(Detection3DArray, "detections_3d") if Detection3DArray else None
        if Detection3DArray is None:
            self.get_logger().warning(
                "vision_msgs is not importable: no detections_3d output (install ros-jazzy-vision-msgs)"
            )

        def models():
            return self.tracker.models if self.tracker is not None else {}

        self.collision_out = optional_outputs.CollisionObjectOutput.from_params(self, models, self.params)
        self.mesh_markers = optional_outputs.MeshMarkers(
            models, self.params["mesh_markers"], self.params["collision_mesh_max_faces"]
        )
        topics = [(Image, "image"), (Image, "depth/image"), (CameraInfo, "camera_info")]
        if self.params["use_masks"]:
            topics.append((Image, "masks"))
        if self.params["use_detections"]:
            from vision_msgs.msg import Detection2DArray  # built by the set-up where vision_msgs is missing

            topics.append((Detection2DArray, "detections"))
        self.synchronise(topics, lambda *msgs: self.submit(msgs), slop_s=self.params["slop_s"])

    def _detections(self, msg, width: int, height: int, known) -> list:
        """Usable detections of a Detection2DArray; bad ones (unknown object, box outside the image) are reported
        and skipped, the others still searched."""
        from pose_perception.objects.detections import valid_detections

        kept, problems = valid_detections(detections_from_msg(msg), width, height, list(known))
        for p in problems:
            self.report_error(f"bad detection: {p}", key="detections")
        return kept

    @staticmethod
    def _objects_msg_type():
        from pose_perception_msgs.msg import ObjectPoseArray

        return ObjectPoseArray

    # ---- per frame ------------------------------------------------------------------------------------
    def process(self, frame) -> None:
        """Convert, step the tracker (tracking at camera rate; its searches run on their own thread), publish."""
        image_msg, depth_msg, info_msg = frame[:3]
        tracker = self.tracker
        if tracker is None:
            return
        rgb = image_to_rgb(image_msg)
        depth_m = depth_to_m(depth_msg)
        intrinsics = camera_info_to_intrinsics(info_msg)
        masks = None
        extra = list(frame[3:])
        if self.params["use_masks"]:
            labels = image_to_numpy(extra.pop(0))
            masks = [labels == k for k in np.unique(labels) if k != 0]
        if self.params["use_detections"]:
            masks = (masks or []) + self._detections(extra.pop(0), rgb.shape[1], rgb.shape[0], tracker.models)
        poses = tracker.step(rgb, depth_m, intrinsics, masks)
        scales = {name: (1e-3 if m.units == "mm" else 1.0) for name, m in tracker.models.items()}
        self._publish(depth_msg.header, poses, scales)

    def _publish(self, header, poses, scales) -> None:
        self.objects_pub.publish(objects_to_msg(header, self.mesh_markers.with_ros_uris(poses)))
        self.tf.publish(header.stamp, [(header.frame_id, f"{p.name}_{p.instance}", p.T_cam_obj) for p in poses])
        markers = []
        for i, p in enumerate(poses):
            colour = color_for_id(_stable_id(p.name, p.instance), 0.8)
            mesh = self.mesh_markers.marker(header, p, i, colour, scale=scales.get(p.name, 1.0))
            if mesh is not None:
                markers.append(mesh)
            label_pos = p.T_cam_obj[:3, 3] + np.array([0.0, -0.5 * float(np.max(p.bbox_size_m)) - 0.03, 0.0])
            markers.append(
                text_marker(header, f"{p.name}_{p.instance} {p.score:.2f}", label_pos, i, ns="labels", height_m=0.03)
            )
        self.marker_pub.publish(marker_array(header, markers, namespaces=("objects", "labels")))
        if self.detections_pub is not None:
            self.detections_pub.publish(objects_to_detections_msg(header, poses))
        if self.collision_out is not None:
            self.collision_out.publish(header, stamp_to_s(header.stamp), poses)

    # ---- services -------------------------------------------------------------------------------------
    def _load(self, name: str, path: str, units: str, symmetry: str):
        from pose_perception.objects.model import MeshUnitsWarning, ModelParams, load_object_model
        from pose_perception.ros.object_onboarding import onboarding_limits

        limits = onboarding_limits(self.params)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MeshUnitsWarning)
            model = load_object_model(
                name,
                path,
                units=units,
                symmetry=symmetry or "auto",
                cache_dir=self.params["cache_dir"] or None,
                params=ModelParams(max_faces=limits.max_faces),
                limits=limits.mesh,
            )
        for w in caught:
            self.get_logger().warning(str(w.message))
        return model

    def add_model(self, model) -> None:
        """Called by OnboardingService (on its worker thread) with a model it loaded."""
        tracker = self.tracker
        if tracker is None:
            raise RuntimeError("node is not configured")
        tracker.add_model(model)

    def _on_remove(self, request, response):
        from pose_perception.objects.estimator import UnknownObjectError

        tracker = self.tracker
        try:
            if tracker is None:
                raise UnknownObjectError("node is not configured")
            tracker.remove_model(request.name)
            response.success, response.message = True, f"removed '{request.name}'"
        except UnknownObjectError as exc:
            response.success, response.message = False, str(exc.args[0])
        return response

    def _on_reset(self, request, response):
        tracker = self.tracker
        n = tracker.reset() if tracker is not None else 0
        response.success, response.message = True, f"forgot {n} tracked object(s)"
        return response


def _stable_id(name: str, instance: int) -> int:
    import zlib

    return zlib.crc32(f"{name}_{instance}".encode()) % 1000


def main(args=None) -> int:
    return run_node(ObjectPoseNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
