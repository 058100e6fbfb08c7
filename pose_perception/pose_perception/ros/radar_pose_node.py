"""radar_pose_node: mmWave radar PointCloud2 in, tracked COCO body 17 skeletons out (HumanArray, source radar),
with markers, TF `body_<id>` and /diagnostics. All the work happens in radar.pipeline.RadarPosePipeline.
"""

from __future__ import annotations

from sensor_msgs.msg import PointCloud2
from visualization_msgs.msg import MarkerArray

from pose_perception.core.keypoints import COCO_WHOLEBODY_133
from pose_perception.core.pointcloud import check_plausible_xyz
from pose_perception.core.stamps import StampGuard
from pose_perception.radar.pipeline import RadarPipelineConfig, RadarPosePipeline
from pose_perception.radar.points import AXES, FieldNames, StampOrderError, parse_structured
from pose_perception.ros.base_node import MESH_PARAMS, PerceptionNode, run_node
from pose_perception.ros.conversions import humans_to_msg, pointcloud2_to_array, stamp_to_s
from pose_perception.ros.markers import marker_array, mesh_triangle_marker, skeleton_markers, text_marker
from pose_perception.ros.params import ParamSpec, config_from_params, config_param, split_list

_C, _F = RadarPipelineConfig, FieldNames
# One table: fields of RadarPipelineConfig and FieldNames (default from the dataclass unless the node needs another;
# read-only: the pipeline is built at configure), then the node's own. Run-time changes of the others apply at the
# next frame.
PARAMS = (
    ParamSpec("cloud_topic", "radar/points", "PointCloud2 topic of the radar driver.", read_only=True),
    config_param(_F, "field_x", "Point field holding x.", "x"),
    config_param(_F, "field_y", "Point field holding y.", "y"),
    config_param(_F, "field_z", "Point field holding z.", "z"),
    # One string (a parameter file edits it more easily than a list); no "v" / "power" guesses by default.
    config_param(
        _F,
        "field_velocity",
        "Comma-separated candidates for the radial-velocity field (m/s).",
        "velocity",
        default="velocity,doppler",
        to_config=split_list,
    ),
    config_param(
        _F,
        "field_intensity",
        "Comma-separated candidates for the intensity / SNR field.",
        "intensity",
        default="intensity,snr",
        to_config=split_list,
    ),
    ParamSpec(
        "axes",
        "rep103",
        "Axes of the incoming points: rep103 (x forward, y left, z up) or ti "
        "(TI mmWave native: x right, y forward, z up).",
        choices=AXES,
    ),
    config_param(_C, "radar_height_m", "Mounting height of the radar above the floor (m).", min=0.0, max=10.0),
    config_param(
        _C,
        "window_frames",
        "Newest radar frames clustered into people (the network also sees the older "
        "frames its weights were trained with as context).",
        min=1,
        max=20,
    ),
    config_param(
        _C, "max_window_s", "Oldest frame age used, for clustering and as network context (s).", min=0.01, max=5.0
    ),
    config_param(_C, "max_points", "Frames with more points are refused (wrong topic?).", min=10, max=10_000_000),
    config_param(_C, "suppress_clutter", "Remove static reflections that persist in place."),
    config_param(_C, "cluster_eps_m", "DBSCAN radius (m).", "cluster.eps_m", min=0.05, max=2.0),
    config_param(
        _C, "cluster_min_points", "Smallest cluster that can be a person.", "cluster.min_points", min=1, max=1000
    ),
    config_param(
        _C, "track_gate_m", "Largest jump of a person between frames (m).", "tracker.gate_m", min=0.1, max=5.0
    ),
    config_param(
        _C,
        "track_max_coast_s",
        "How long a person without points is kept (s).",
        "tracker.max_coast_s",
        min=0.0,
        max=60.0,
    ),
    config_param(_C, "smoothing", "One-Euro filter per person on the joints."),
    config_param(
        _C, "smooth_min_cutoff_hz", "One-Euro cutoff at rest (Hz; lower = smoother, more lag).", min=0.01, max=100.0
    ),
    config_param(_C, "smooth_beta", "One-Euro cutoff increase per m/s of joint speed.", min=0.0, max=100.0),
    config_param(
        _C,
        "weights_path",
        "Network weights (.pt); empty = the weights shipped with the package.",
        default="",
        to_config=lambda path: path or None,
    ),
    config_param(_C, "device", "Torch device.", choices=("auto", "cpu", "cuda")),
    ParamSpec("publish_tf", True, "Publish TF body_<id> at each person's pelvis."),
    ParamSpec("frame_prefix", "", "Prefix of the TF frame names (e.g. 'radar_' next to a camera human node)."),
    *MESH_PARAMS,
    ParamSpec("marker_min_confidence", 0.2, "Joints below this confidence are not drawn.", min=0.0, max=1.0),
    ParamSpec(
        "stamp_tolerance_s",
        0.25,
        "A frame whose stamp differs by more from what its arrival implies is refused on its own (tracks kept).",
        min=0.01,
        max=60.0,
        read_only=True,
    ),
    ParamSpec(
        "stamp_rebase_frames",
        3,
        "Frames in a row on one new clock (source restarted, bag looped) after "
        "which the node follows that clock, keeping its tracks.",
        min=1,
        max=1000,
        read_only=True,
    ),
)


class RadarPoseNode(PerceptionNode):
    def __init__(self, **kwargs):
        super().__init__("radar_pose_node", PARAMS, **kwargs)
        self.pipeline: RadarPosePipeline | None = None

    def load_pipeline(self) -> None:
        p = self.params
        self.fields = config_from_params(FieldNames, PARAMS, p)
        config = config_from_params(RadarPipelineConfig, PARAMS, p)
        self.pipeline = RadarPosePipeline(config)
        self._stamps = StampGuard(p["stamp_tolerance_s"], p["stamp_rebase_frames"])
        self.get_logger().info(
            f"radar network on {self.pipeline.regressor.device}, weights commit "
            f"{self.pipeline.regressor.meta.get('commit', 'unknown')[:12]}"
        )
        if p["mesh"]:
            try:
                from pose_perception.human.body_mesh import BodyMeshFitter
            except ImportError as exc:
                self.get_logger().warning(
                    f"mesh:=true but the body mesh fitter is unavailable ({exc}); publishing skeletons without meshes"
                )
            else:
                self.start_meshes(
                    BodyMeshFitter(device=p["device"], model=p["mesh_model"], max_faces=p["mesh_max_faces"] or None)
                )

    def release_pipeline(self) -> None:
        self.pipeline = None

    def create_inputs(self) -> None:
        self.humans_pub = self.result_publisher(self._human_array_type(), "radar/humans")
        self.markers_pub = self.result_publisher(MarkerArray, "radar/markers")
        self.subscribe(PointCloud2, self.params["cloud_topic"], self.submit)

    @staticmethod
    def _human_array_type():
        from pose_perception_msgs.msg import HumanArray

        return HumanArray

    def process(self, msg: PointCloud2) -> None:
        pipeline = self.pipeline
        if pipeline is None:  # cleaned up while this frame waited
            return
        cloud = pointcloud2_to_array(msg).ravel()
        check_plausible_xyz(cloud, (self.fields.x, self.fields.y, self.fields.z), bool(msg.is_bigendian))
        points = parse_structured(cloud, self.fields, self.params["axes"], pipeline.config.max_points)
        stamp_s = stamp_to_s(msg.header.stamp)
        verdict = self._stamps.check(msg.header.frame_id, stamp_s, self.frame_arrival_s)  # per sensor
        if verdict.stamp_s is None:
            raise StampOrderError(verdict.message)
        if verdict.message:
            self.report_error(verdict.message, key="stamp_rebase")
        humans = pipeline.process(verdict.stamp_s, points)
        humans = self.attach_meshes(humans, stamp_s)
        header = msg.header
        self.humans_pub.publish(humans_to_msg(header, humans, COCO_WHOLEBODY_133))
        markers = skeleton_markers(
            header, humans, COCO_WHOLEBODY_133, ns="radar_skeleton", min_confidence=self.params["marker_min_confidence"]
        )
        markers += [
            text_marker(header, f"radar {h.track_id}", h.keypoints_3d[0] + [0.0, 0.0, 0.25], h.track_id, ns="radar_ids")
            for h in humans
            if h.keypoints_3d is not None
        ]
        markers += [
            mesh_triangle_marker(header, h.mesh.vertices, h.mesh.faces, h.track_id, ns="radar_mesh")
            for h in humans
            if h.mesh is not None
        ]
        self.markers_pub.publish(
            marker_array(header, markers, namespaces=("radar_skeleton", "radar_ids", "radar_mesh"))
        )
        if self.params["publish_tf"]:
            self.tf.publish(
                header.stamp,
                [
                    (header.frame_id, f"{self.params['frame_prefix']}body_{h.track_id}", h.T_sensor_body)
                    for h in humans
                    if h.T_sensor_body is not None
                ],
            )


def main(args=None) -> int:
    return run_node(RadarPoseNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
