"""object_pose_node: 6D poses of known-mesh objects from synchronised RGB-D, estimated then tracked.

Publishes ObjectPoseArray, TF `<object>_<instance>`, mesh markers and /diagnostics; services add/remove/reset.
"""
from __future__ import annotations

import threading
import time
import warnings

import numpy as np
from sensor_msgs.msg import CameraInfo, Image
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

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
from pose_perception.ros.params import ParamSpec

try:  # published only where vision_msgs exists (real ROS installs; setup_env.sh builds it, no wheel on PyPI)
    from vision_msgs.msg import Detection3DArray
except ImportError:
    Detection3DArray = None

PARAMS = (
    ParamSpec("objects", [], 'Objects to load at start, each "NAME=PATH" (PATH may be ycb:<object> or '
              "pybullet_data:<file>).", read_only=True),
    ParamSpec("mesh_units", "m", "Units of the start-up meshes.", choices=("m", "mm"), read_only=True),
    ParamSpec("symmetry", "auto", 'Symmetry of the start-up meshes: "none", "auto", "continuous:<axis>", '
              '"discrete:<axis>:<order>[,<axis>:<order>...]".', read_only=True),
    ParamSpec("cache_dir", "", "Feature cache directory (empty: ~/.cache/pose_perception/objects).", read_only=True),
    ParamSpec("device", "cpu", "Where hypothesis scoring and the ICPs' nearest-sample searches run; auto picks CUDA "
              "when torch sees one.",
              choices=("cpu", "cuda", "auto"), read_only=True),
    ParamSpec("score_threshold", 0.7, "Verification score below which nothing is reported.", min=0.0, max=1.0),
    ParamSpec("track", True, "Track from the previous poses between full estimations."),
    ParamSpec("redetect_period_s", 2.0, "Seconds between the end of one background search for new objects and the "
              "start of the next while tracking (a lost object or an empty scene starts one at once).",
              min=0.0, max=3600.0),
    ParamSpec("use_masks", False, "Also subscribe `masks` (label image, 0 = background, each other value one "
              "object) synchronised with the RGB-D frames.", read_only=True),
    ParamSpec("use_detections", False, "Also subscribe `detections` (vision_msgs/Detection2DArray: per detection the "
              "object name as class_id of its first hypothesis, empty for any, and a box in pixels) synchronised with "
              "the RGB-D frames: each box is searched for its object only.", read_only=True),
    ParamSpec("slop_s", 0.03, "Maximum stamp difference between synchronised inputs.", min=0.0, max=1.0),
    *ONBOARDING_PARAMS,
)

PARAMS = PARAMS + optional_outputs.PARAMS  # collision_object output, mesh markers for remote RViz: ros/moveit.py


class ObjectPoseNode(PerceptionNode):
    def __init__(self, **kwargs):
        super().__init__("object_pose_node", PARAMS, **kwargs)
        self.estimator = None
        self._lock = threading.Lock()  # estimator + tracks: shared by the worker and the service callbacks
        self._tracks: list = []
        self._search = _BackgroundSearch()
        self._object_services = []

    # ---- lifecycle ------------------------------------------------------------------------------------
    def load_pipeline(self) -> None:
        from dataclasses import replace

        from pose_perception.objects.estimator import EstimatorConfig, ObjectPoseEstimator

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
                f"~/add_object")
        config = replace(EstimatorConfig(), score_threshold=self.params["score_threshold"])
        self.estimator = ObjectPoseEstimator(models, config, device=self.params["device"])
        if not self._object_services:
            from pose_perception_msgs.srv import AddObject, RemoveObject

            self._object_services = [
                OnboardingService(self, AddObject, "~/add_object"),
                self.create_service(RemoveObject, "~/remove_object", self._on_remove),
                self.create_service(Trigger, "~/reset", self._on_reset),
            ]
        self.get_logger().info(f"objects loaded: {sorted(self.estimator.models)} (device {self.estimator.device})")

    def release_pipeline(self) -> None:
        with self._lock:
            self.estimator = None
            self._tracks = []

    def create_inputs(self) -> None:
        self.objects_pub = self.result_publisher(self._objects_msg_type(), "objects")
        self.marker_pub = self.result_publisher(MarkerArray, "object_markers")
        self.detections_pub = self.result_publisher(Detection3DArray, "detections_3d") if Detection3DArray else None
        if Detection3DArray is None:
            self.get_logger().warning("vision_msgs is not importable: no detections_3d output (install "
                                      "ros-jazzy-vision-msgs)")
        models = lambda: self.estimator.models if self.estimator is not None else {}  # noqa: E731
        self.collision_out = optional_outputs.CollisionObjectOutput.from_params(self, models, self.params)
        self.mesh_markers = optional_outputs.MeshMarkers(models, self.params["mesh_markers"],
                                                         self.params["collision_mesh_max_faces"])
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
        """Tracking at camera rate; full estimations (new objects, lost ones) run on a background thread and
        their finds join the tracks at the next frame, so a 1-2 s search never stalls the published poses."""
        image_msg, depth_msg, info_msg = frame[:3]
        rgb = image_to_rgb(image_msg)
        depth_m = depth_to_m(depth_msg)
        intrinsics = camera_info_to_intrinsics(info_msg)
        masks = None
        extra = list(frame[3:])
        if self.params["use_masks"]:
            labels = image_to_numpy(extra.pop(0))
            masks = [labels == k for k in np.unique(labels) if k != 0]
        with self._lock:
            estimator = self.estimator
            if estimator is None:
                return
            if self.params["use_detections"]:
                masks = (masks or []) + self._detections(extra.pop(0), rgb.shape[1], rgb.shape[0], estimator.models)
            estimator.config = _node_config(estimator.config, self.params["score_threshold"])
            if not self.params["track"]:
                poses = estimator.estimate(rgb, depth_m, intrinsics, masks)
            else:
                tracks = self._tracks
                self._search.add_frame((depth_m, intrinsics, masks))
                found = self._search.take()
                if isinstance(found, Exception):
                    self.report_error(f"object search failed: {found}", key="search")
                elif found:
                    tracks = estimator.merge(tracks, [p for p in found if p.name in estimator.models])
                poses = estimator.track(rgb, depth_m, intrinsics, tracks, masks=masks) if tracks else []
                due = (len(poses) < len(tracks) or not poses
                       or self._search.seconds_since_finished() >= self.params["redetect_period_s"])
                if due and not self._search.busy():
                    self._search.start(
                        lambda cancelled: estimator.estimate(rgb, depth_m, intrinsics, masks, explained=poses,
                                                             cancelled=cancelled),
                        _follow_with(estimator),
                    )
                self._tracks = poses
            scales = {name: (1e-3 if m.units == "mm" else 1.0) for name, m in estimator.models.items()}
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
            markers.append(text_marker(header, f"{p.name}_{p.instance} {p.score:.2f}", label_pos, i, ns="labels",
                                       height_m=0.03))
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
            model = load_object_model(name, path, units=units, symmetry=symmetry or "auto",
                                      cache_dir=self.params["cache_dir"] or None,
                                      params=ModelParams(max_faces=limits.max_faces), limits=limits.mesh)
        for w in caught:
            self.get_logger().warning(str(w.message))
        return model

    def add_model(self, model) -> None:
        """Called by OnboardingService (on its worker thread) with a model it loaded."""
        with self._lock:
            if self.estimator is None:
                raise RuntimeError("node is not configured")
            self.estimator.add_model(model)

    def _on_remove(self, request, response):
        from pose_perception.objects.estimator import UnknownObjectError

        with self._lock:
            try:
                if self.estimator is None:
                    raise UnknownObjectError("node is not configured")
                self.estimator.remove_model(request.name)
                self._tracks = [p for p in self._tracks if p.name != request.name]
                response.success, response.message = True, f"removed '{request.name}'"
            except UnknownObjectError as exc:
                response.success, response.message = False, str(exc.args[0])
        return response

    def _on_reset(self, request, response):
        with self._lock:
            n = len(self._tracks)
            self._tracks = []
            self._search.discard()  # what a search under way finds was seen before the reset: not wanted
        response.success, response.message = True, f"forgot {n} tracked object(s)"
        return response


def _node_config(config, threshold: float):
    """The estimator config the node runs: its score threshold parameter, and no re-detection inside track()
    (the node searches on its own thread)."""
    from dataclasses import replace

    if config.score_threshold == threshold and not config.redetect_on_loss:
        return config
    return replace(config, score_threshold=threshold, redetect_on_loss=False)


def _follow_with(estimator):
    """follow(found, (depth_m, intrinsics, masks)) for _BackgroundSearch: the finds tracked into a later frame. A
    frame the estimator refuses is skipped; the node reports it when it processes that frame itself."""
    from pose_perception.objects.estimator import EstimatorInputError

    def follow(found, frame):
        depth_m, intrinsics, masks = frame
        try:
            return estimator.track(None, depth_m, intrinsics, found, masks=masks)
        except EstimatorInputError:
            return found

    return follow


class _BackgroundSearch:
    """At most one full estimation at a time on a daemon thread; take() hands over its result once.

    A search takes several frames while the objects (or the camera) move, and tracking from a pose that many frames
    old fails. So the frames that arrive meanwhile are kept (add_frame) and the search's finds are tracked through
    them, in order, before they are handed over: the result is about the newest frame. At most max_frames are kept;
    when full, every other one is dropped (never the first or the newest), so the steps grow but still span the
    whole search."""

    def __init__(self, max_frames: int = 32) -> None:
        self._thread: threading.Thread | None = None
        self._result = None
        self._finished_at = -np.inf
        self._lock = threading.Lock()
        self._frames: list = []
        self._collecting = False
        self._max_frames = max_frames
        self._generation = 0  # discard() moves it on; a search started under another generation hands over nothing

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def seconds_since_finished(self) -> float:
        return time.monotonic() - self._finished_at

    def add_frame(self, frame) -> None:
        """A frame that arrived after the running search's (none running: ignored)."""
        with self._lock:
            if not self._collecting:
                return
            self._frames.append(frame)
            if len(self._frames) > self._max_frames:  # keep the first (the smallest step) and the newest
                self._frames = self._frames[:-1:2] + self._frames[-1:]

    def start(self, search, follow) -> None:
        """search(cancelled) -> poses in the frame it was given, where cancelled() turns True once the search is
        discarded (the search may then stop early, by raising); follow(poses, frame) -> poses tracked into `frame`."""
        def run():
            try:
                result = search(lambda: self._generation != generation)
                while True:
                    with self._lock:
                        if self._generation != generation:
                            return
                        frames, self._frames = self._frames, []
                        if not frames or not result:
                            self._result, self._finished_at, self._collecting = result, time.monotonic(), False
                            return
                    for frame in frames:
                        result = follow(result, frame)
            except Exception as exc:  # noqa: BLE001 - reported by the node at the next frame
                with self._lock:
                    if self._generation == generation:
                        self._result, self._finished_at, self._collecting, self._frames = (
                            exc, time.monotonic(), False, [])

        with self._lock:
            self._frames, self._collecting = [], True
            generation = self._generation
        self._thread = threading.Thread(target=run, name="object_search", daemon=True)
        self._thread.start()

    def discard(self) -> None:
        """Forget the result of the search under way and of any finished one not yet taken. The search under way
        is told (its `cancelled` turns True) and keeps busy() true until it has stopped."""
        with self._lock:
            self._generation += 1
            self._result, self._frames, self._collecting = None, [], False

    def take(self):
        """The last search's poses (or its exception), or None when there is nothing new."""
        with self._lock:
            result, self._result = self._result, None
        return result


def _stable_id(name: str, instance: int) -> int:
    import zlib

    return zlib.crc32(f"{name}_{instance}".encode()) % 1000


def main(args=None) -> int:
    return run_node(ObjectPoseNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
