"""radar_pose_node: mmWave radar PointCloud2 in, tracked COCO body 17 skeletons out (HumanArray, source radar),
with markers, TF `body_<id>` and /diagnostics. All the work happens in radar.pipeline.RadarPosePipeline.
"""
from __future__ import annotations

import dataclasses

from sensor_msgs.msg import PointCloud2
from visualization_msgs.msg import MarkerArray

from pose_perception.core.keypoints import COCO_WHOLEBODY_133
from pose_perception.core.pointcloud import check_plausible_xyz
from pose_perception.core.stamps import StampGuard
from pose_perception.radar.clustering import ClusterConfig
from pose_perception.radar.pipeline import RadarPipelineConfig, RadarPosePipeline
from pose_perception.radar.points import AXES, FieldNames, StampOrderError, parse_structured
from pose_perception.radar.tracking import TrackerConfig
from pose_perception.ros.base_node import PerceptionNode, run_node
from pose_perception.ros.conversions import humans_to_msg, pointcloud2_to_array, stamp_to_s
from pose_perception.ros.markers import marker_array, mesh_triangle_marker, skeleton_markers, text_marker
from pose_perception.ros.mesh_thread import MeshThread
from pose_perception.ros.params import ParamSpec

PARAMS = (
    ParamSpec("cloud_topic", "radar/points", "PointCloud2 topic of the radar driver."),
    ParamSpec("field_x", "x", "Point field holding x."),
    ParamSpec("field_y", "y", "Point field holding y."),
    ParamSpec("field_z", "z", "Point field holding z."),
    ParamSpec("field_velocity", "velocity,doppler", "Comma-separated candidates for the radial-velocity field (m/s)."),
    ParamSpec("field_intensity", "intensity,snr", "Comma-separated candidates for the intensity / SNR field."),
    ParamSpec("axes", "rep103", "Axes of the incoming points: rep103 (x forward, y left, z up) or ti "
              "(TI mmWave native: x right, y forward, z up).", choices=AXES),
    ParamSpec("radar_height_m", 1.0, "Mounting height of the radar above the floor (m).", min=0.0, max=10.0),
    ParamSpec("window_frames", 4, "Newest radar frames clustered into people (the network also sees the older "
              "frames its weights were trained with as context).", min=1, max=20),
    ParamSpec("max_window_s", 0.6, "Oldest frame age used, for clustering and as network context (s).",
              min=0.01, max=5.0),
    ParamSpec("max_points", 10000, "Frames with more points are refused (wrong topic?).", min=10, max=10_000_000),
    ParamSpec("suppress_clutter", True, "Remove static reflections that persist in place."),
    ParamSpec("cluster_eps_m", 0.35, "DBSCAN radius (m).", min=0.05, max=2.0),
    ParamSpec("cluster_min_points", 6, "Smallest cluster that can be a person.", min=1, max=1000),
    ParamSpec("track_gate_m", 1.0, "Largest jump of a person between frames (m).", min=0.1, max=5.0),
    ParamSpec("track_max_coast_s", 2.0, "How long a person without points is kept (s).", min=0.0, max=60.0),
    ParamSpec("smoothing", True, "One-Euro filter per person on the joints."),
    ParamSpec("smooth_min_cutoff_hz", 2.0, "One-Euro cutoff at rest (Hz; lower = smoother, more lag).", min=0.01, max=100.0),
    ParamSpec("smooth_beta", 1.0, "One-Euro cutoff increase per m/s of joint speed.", min=0.0, max=100.0),
    ParamSpec("weights_path", "", "Network weights (.pt); empty = the weights shipped with the package.", read_only=True),
    ParamSpec("device", "auto", "Torch device.", choices=("auto", "cpu", "cuda")),
    ParamSpec("publish_tf", True, "Publish TF body_<id> at each person's pelvis."),
    ParamSpec("frame_prefix", "", "Prefix of the TF frame names (e.g. 'radar_' next to a camera human node)."),
    ParamSpec("mesh", False, "Fit a body mesh per person (needs pose_perception.human.body_mesh)."),
    ParamSpec("mesh_model", "anny", "Body model of the mesh fitter.", choices=("anny", "smplx")),
    ParamSpec("mesh_rate_hz", 2.0, "Most mesh fits per second (on their own thread: skeletons never wait).",
              min=0.1, max=30.0),
    ParamSpec("mesh_max_faces", 5000, "Faces of the published mesh (decimated; 0 = full, ~27k faces).",
              min=0, max=100000),
    ParamSpec("marker_min_confidence", 0.2, "Joints below this confidence are not drawn.", min=0.0, max=1.0),
    ParamSpec("stamp_tolerance_s", 0.25, "A frame whose stamp differs by more from what its arrival implies is "
              "refused on its own (tracks kept).", min=0.01, max=60.0),
    ParamSpec("stamp_rebase_frames", 3, "Frames in a row on one new clock (source restarted, bag looped) after which "
              "the node follows that clock, keeping its tracks.", min=1, max=1000),
)


class RadarPoseNode(PerceptionNode):
    def __init__(self, **kwargs):
        super().__init__("radar_pose_node", PARAMS, **kwargs)
        self.pipeline: RadarPosePipeline | None = None
        self.mesh_thread: MeshThread | None = None

    def load_pipeline(self) -> None:
        p = self.params
        self.fields = FieldNames(
            x=p["field_x"], y=p["field_y"], z=p["field_z"],
            velocity=tuple(s.strip() for s in p["field_velocity"].split(",") if s.strip()),
            intensity=tuple(s.strip() for s in p["field_intensity"].split(",") if s.strip()),
        )
        config = RadarPipelineConfig(
            window_frames=int(p["window_frames"]), max_window_s=float(p["max_window_s"]),
            max_points=int(p["max_points"]), suppress_clutter=bool(p["suppress_clutter"]),
            cluster=dataclasses.replace(ClusterConfig(), eps_m=float(p["cluster_eps_m"]),
                                        min_points=int(p["cluster_min_points"])),
            tracker=dataclasses.replace(TrackerConfig(), gate_m=float(p["track_gate_m"]),
                                        max_coast_s=float(p["track_max_coast_s"])),
            weights_path=p["weights_path"] or None, device=p["device"], radar_height_m=float(p["radar_height_m"]),
            smoothing=bool(p["smoothing"]), smooth_min_cutoff_hz=float(p["smooth_min_cutoff_hz"]),
            smooth_beta=float(p["smooth_beta"]),
        )
        self.pipeline = RadarPosePipeline(config)
        self._stamps = StampGuard(p["stamp_tolerance_s"], p["stamp_rebase_frames"])
        self.get_logger().info(f"radar network on {self.pipeline.regressor.device}, weights commit "
                               f"{self.pipeline.regressor.meta.get('commit', 'unknown')[:12]}")
        if p["mesh"]:
            try:
                from pose_perception.human.body_mesh import BodyMeshFitter
            except ImportError as exc:
                self.get_logger().warning(f"mesh:=true but the body mesh fitter is unavailable ({exc}); "
                                          "publishing skeletons without meshes")
            else:
                fitter = BodyMeshFitter(device=p["device"], model=p["mesh_model"], max_faces=p["mesh_max_faces"] or None)
                self.mesh_thread = MeshThread(fitter, p["mesh_rate_hz"],
                                              lambda message: self.report_error(message, key="mesh"))

    def release_pipeline(self) -> None:
        self.pipeline = None
        if self.mesh_thread is not None:
            self.mesh_thread.stop()
        self.mesh_thread = None

    def create_inputs(self) -> None:
        self.humans_pub = self.result_publisher(self._human_array_type(), "radar/humans")
        self.markers_pub = self.result_publisher(MarkerArray, "radar/markers")
        self.subscribe(PointCloud2, self.params["cloud_topic"], self.submit)
        if self.mesh_thread is not None:
            self.mesh_thread.start()

    def on_deactivate(self, state):
        if self.mesh_thread is not None:
            self.mesh_thread.stop()
        return super().on_deactivate(state)

    def shutdown_worker(self) -> None:
        if self.mesh_thread is not None:
            self.mesh_thread.stop()
        super().shutdown_worker()

    @staticmethod
    def _human_array_type():
        from pose_perception_msgs.msg import HumanArray

        return HumanArray

    def process(self, msg: PointCloud2) -> None:
        cloud = pointcloud2_to_array(msg).ravel()
        check_plausible_xyz(cloud, (self.fields.x, self.fields.y, self.fields.z), bool(msg.is_bigendian))
        points = parse_structured(cloud, self.fields, self.params["axes"], self.pipeline.config.max_points)
        stamp_s = stamp_to_s(msg.header.stamp)
        verdict = self._stamps.check(msg.header.frame_id, stamp_s, self.frame_arrival_s)  # per sensor
        if verdict.stamp_s is None:
            raise StampOrderError(verdict.message)
        if verdict.message:
            self.report_error(verdict.message, key="stamp_rebase")
        humans = self.pipeline.process(verdict.stamp_s, points)
        if self.mesh_thread is not None:
            humans = self.mesh_thread.attach(humans, stamp_s)
        header = msg.header
        self.humans_pub.publish(humans_to_msg(header, humans, COCO_WHOLEBODY_133))
        markers = skeleton_markers(header, humans, COCO_WHOLEBODY_133, ns="radar_skeleton",
                                   min_confidence=self.params["marker_min_confidence"])
        markers += [text_marker(header, f"radar {h.track_id}", h.keypoints_3d[0] + [0.0, 0.0, 0.25], h.track_id,
                                ns="radar_ids") for h in humans]
        markers += [mesh_triangle_marker(header, h.mesh.vertices, h.mesh.faces, h.track_id, ns="radar_mesh")
                    for h in humans if h.mesh is not None]
        self.markers_pub.publish(marker_array(header, markers, namespaces=("radar_skeleton", "radar_ids", "radar_mesh")))
        if self.params["publish_tf"]:
            self.tf.publish(header.stamp, [(header.frame_id, f"{self.params['frame_prefix']}body_{h.track_id}", h.T_sensor_body)
                                           for h in humans if h.T_sensor_body is not None])

def main(args=None) -> int:
    return run_node(RadarPoseNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
