"""`pose-perception up`: which nodes a parameter file starts, and refusals of bad files."""

import pytest

from pose_perception.cli.up import NODE_MODULES, ConfigError, build_specs, nodes_in_config


def test_parameter_file_names_the_nodes_to_start(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("radar_pose_node:\n  ros__parameters:\n    mesh: false\n/human_pose_node:\n  ros__parameters: {}\n")
    assert nodes_in_config(cfg) == ["radar_pose_node", "human_pose_node"]
    (name, argv), _ = build_specs([str(cfg)], ["image:=/camera/color/image_raw"], ["use_sim_time:=true"])
    assert name == "radar_pose_node"
    assert argv[argv.index("-m") + 1] == NODE_MODULES["radar_pose_node"]
    assert "--params-file" in argv and "image:=/camera/color/image_raw" in argv and "use_sim_time:=true" in argv


@pytest.mark.parametrize(
    "text,match",
    [
        ("nope_node:\n  ros__parameters: {}\n", "unknown node"),
        ("human_pose_node: 3\n", "ros__parameters"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_bad_parameter_files_are_refused(tmp_path, text, match):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=match):
        nodes_in_config(cfg)
    with pytest.raises(ConfigError, match="not found"):
        build_specs([str(tmp_path / "missing.yaml")], [], [])


def test_a_parameter_can_target_one_node(tmp_path):
    cfg = tmp_path / "two.yaml"
    cfg.write_text("radar_pose_node:\n  ros__parameters: {}\nhuman_pose_node:\n  ros__parameters: {}\n")
    specs = dict(build_specs([str(cfg)], [], ["radar_pose_node:frame_prefix:=radar_", "use_sim_time:=true"]))
    assert "frame_prefix:=radar_" in specs["radar_pose_node"] and "use_sim_time:=true" in specs["radar_pose_node"]
    assert not any("frame_prefix" in a for a in specs["human_pose_node"])
    assert "use_sim_time:=true" in specs["human_pose_node"]


def test_foxglove_allowed_origins_are_checked():
    from pose_perception.cli.main import build_parser
    from pose_perception.cli.up import allowed_foxglove_origins

    args = build_parser().parse_args(
        [
            "up",
            "--foxglove",
            "--foxglove-allow-origin",
            "http://LOCALHOST:8080/",
            "--foxglove-allow-origin",
            "https://app.foxglove.dev",
        ]
    )
    assert allowed_foxglove_origins(args.foxglove_allow_origin) == ("https://app.foxglove.dev", "http://localhost:8080")
    for bad in ("app.example", "*", "https://a.example/path"):
        with pytest.raises(ValueError, match="SCHEME://HOST"):
            allowed_foxglove_origins([bad])
