"""Parameters: declared with descriptors, validated at start and on change."""

import pytest
import rclpy

from pose_perception.ros.params import ParamSpec, ParameterValueError, declare_parameters
from pose_perception.ros.process import init_ros
from rclpy.parameter import Parameter

SPECS = [
    ParamSpec("rate_hz", 5.0, "Rate.", min=0.5, max=30.0),
    ParamSpec("backend", "mediapipe", "Backend.", choices=("mediapipe", "onnx")),
    ParamSpec("mesh", False, "Mesh."),
]


@pytest.fixture
def ctx():
    context = rclpy.Context()
    init_ros(context=context)
    yield context
    rclpy.try_shutdown(context=context)


def test_defaults_and_runtime_changes_validated(ctx):
    node = rclpy.create_node("params_test", context=ctx)
    values = declare_parameters(node, SPECS)
    assert values == {"rate_hz": 5.0, "backend": "mediapipe", "mesh": False}
    assert node.describe_parameter("rate_hz").floating_point_range[0].to_value == 30.0
    assert node.set_parameters([Parameter("rate_hz", value=10)])[0].successful  # int accepted for a float
    assert values["rate_hz"] == 10.0 and isinstance(values["rate_hz"], float)
    result = node.set_parameters([Parameter("backend", value="yolo")])[0]
    assert not result.successful and "not one of" in result.reason
    assert values["backend"] == "mediapipe"
    assert not node.set_parameters([Parameter("mesh", value="yes")])[0].successful
    node.destroy_node()


def test_bad_startup_override_raises_a_specific_error(ctx):
    node = rclpy.create_node("params_test2", context=ctx, parameter_overrides=[Parameter("backend", value="yolo")])
    with pytest.raises(ParameterValueError, match="backend"):
        declare_parameters(node, SPECS)
    node.destroy_node()


def test_model_weight_and_mesh_paths_cannot_be_changed_at_run_time():
    """Anyone on the DDS domain may call set_parameters: what a node loads from disk is fixed at start."""
    from pose_perception.ros.human_pose_node import PARAMS as HUMAN
    from pose_perception.ros.object_pose_node import PARAMS as OBJECT
    from pose_perception.ros.radar_pose_node import PARAMS as RADAR

    fixed = {
        "model_path",
        "detector_model_path",
        "weights_path",
        "objects",
        "cache_dir",
        "mesh_roots",
        "max_models_mb",
        "max_objects",
        "max_mesh_faces",
        "max_mesh_file_mb",
    }
    seen = set()
    for table in (HUMAN, OBJECT, RADAR):
        for spec in table:
            if spec.name in fixed:
                assert spec.read_only and spec.descriptor().read_only, spec.name
                seen.add(spec.name)
    assert seen == fixed


def test_changes_are_passed_on_and_config_fields_filled_from_the_table(ctx):
    """config_param takes the field's default; config_from_params builds the config; on_changed hears of a
    run-time change with the new value already in place, and a read-only one is refused."""
    from dataclasses import dataclass, field

    from pose_perception.ros.params import config_from_params, config_param

    @dataclass(frozen=True)
    class Inner:
        eps_m: float = 0.35

    @dataclass(frozen=True)
    class Config:
        rate_hz: float = 5.0
        path: str | None = None
        inner: Inner = field(default_factory=Inner)

    specs = [
        config_param(Config, "rate_hz", "Rate.", min=0.5, max=30.0, read_only=False),
        config_param(Config, "path", "Path.", default="", to_config=lambda p: p or None),
        config_param(Config, "eps_m", "Radius.", "inner.eps_m", min=0.05, max=2.0),
    ]
    assert [s.default for s in specs] == [5.0, "", 0.35] and specs[2].read_only
    node = rclpy.create_node("params_test3", context=ctx, parameter_overrides=[Parameter("eps_m", value=0.5)])
    heard = []
    values = declare_parameters(node, specs, on_changed=lambda names: heard.append((names, values["rate_hz"])))
    assert config_from_params(Config, specs, values) == Config(5.0, None, Inner(0.5))
    assert node.set_parameters([Parameter("rate_hz", value=7.5)])[0].successful
    assert heard == [({"rate_hz"}, 7.5)]
    result = node.set_parameters([Parameter("eps_m", value=0.4)])[0]
    assert not result.successful and "read-only" in result.reason and values["eps_m"] == 0.5
    node.destroy_node()
