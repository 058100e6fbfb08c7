"""Each node's one parameter table: config-dataclass fields with their defaults, the shipped parameter files
(config/*.yaml) agreeing with it, load-time parameters read-only."""

from pathlib import Path

import pytest
import yaml

from pose_perception.ros.base_node import COMMON_PARAMS, MESH_PARAMS
from pose_perception.ros.human_pose_node import PARAMS as HUMAN
from pose_perception.ros.object_pose_node import PARAMS as OBJECT
from pose_perception.ros.params import config_default, config_from_params
from pose_perception.ros.radar_pose_node import PARAMS as RADAR

CONFIG_DIR = Path(__file__).parents[2] / "config"
TABLES = {
    "human_pose_node": (HUMAN, "human_pose.yaml"),
    "object_pose_node": (OBJECT, "object_pose.yaml"),
    "radar_pose_node": (RADAR, "radar_pose.yaml"),
}
# Values the shipped files set on purpose to something other than the default (an example a user edits).
EXAMPLES = {("human_pose_node", "joint_frames"), ("object_pose_node", "objects")}


@pytest.mark.parametrize("node", sorted(TABLES))
def test_table_fills_its_configs_and_names_are_unique(node):
    table = tuple(COMMON_PARAMS) + TABLES[node][0]
    names = [s.name for s in table]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    defaults = {s.name: s.default for s in table}
    for config_cls in {s.config for s in table if s.config is not None}:
        config = config_from_params(config_cls, table, defaults)
        for spec in (s for s in table if s.config is config_cls):
            value = config
            for part in spec.field.split("."):
                value = getattr(value, part)
            expected = spec.to_config(spec.default) if spec.to_config else spec.default
            assert value == expected, (spec.name, value, expected)
            field_default = config_default(config_cls, spec.field)
            if spec.to_config is None:  # the parameter's type is the field's
                assert type(spec.default) is type(field_default), (spec.name, spec.default, field_default)


@pytest.mark.parametrize("node", sorted(TABLES))
def test_shipped_parameter_files_agree_with_the_table(node):
    table, filename = TABLES[node]
    by_name = {s.name: s for s in tuple(COMMON_PARAMS) + table}
    section = yaml.safe_load((CONFIG_DIR / filename).read_text())[f"/**/{node}"]["ros__parameters"]
    for name, value in section.items():
        assert name in by_name, f"{filename}: '{name}' is not a parameter of {node}"
        spec = by_name[name]
        if isinstance(spec.default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        assert spec.check(value) is None, f"{filename}: {spec.check(value)}"
        if (node, name) not in EXAMPLES:
            assert value == spec.default, f"{filename}: {name}: {value!r}, but the node's default is {spec.default!r}"


def test_load_time_parameters_are_read_only():
    """A parameter used only when the node configures or activates would accept a change and do nothing."""
    live = {
        "error_throttle_s",  # common
        "publish_tf",
        "frame_prefix",
        "min_joint_confidence",
        "min_depth_m",
        "max_depth_m",
        "min_valid_depth_fraction",  # human, per frame
        "score_threshold",
        "track",
        "redetect_period_s",  # object: ObjectTracker.configure
        "axes",
        "marker_min_confidence",
    }  # radar, per frame
    for table in (COMMON_PARAMS, HUMAN, OBJECT, RADAR):
        for spec in table:
            assert spec.read_only == (spec.name not in live), spec.name
            assert spec.descriptor().read_only == spec.read_only
    for name in ("cluster_eps_m", "max_people", "model_path", "weights_path", "mesh_rate_hz"):
        assert any(s.name == name and s.read_only for s in HUMAN + RADAR + MESH_PARAMS), name
