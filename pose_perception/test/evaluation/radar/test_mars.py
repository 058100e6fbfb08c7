"""MARS reader (TI axes -> REP-103, Kinect -> COCO), the REAL evaluation helpers and training samples.

Tests on the real recordings skip when ../shared/realdata/radar/mars is not beside the repository.
"""

import gzip

import numpy as np
import pytest

from pose_perception.core.keypoints import COCO_BODY_17_NAMES, LIMB_12
from pose_perception.evaluation.radar import mars
from pose_perception.evaluation.radar import mars_eval as me
from pose_perception.evaluation.radar.mars_training import mirror_samples
from pose_perception.radar.pipeline import RadarPipelineConfig, gate_field_of_view

MARS_DIR = mars.default_mars_dir()
needs_mars = pytest.mark.skipif(not MARS_DIR.is_dir(), reason=f"MARS recordings not found at {MARS_DIR}")


def _write_split(root, subject, split, radar_rows, kinect_rows):
    d = root / "woutlier" / f"subject{subject}"
    d.mkdir(parents=True, exist_ok=True)
    with gzip.open(d / f"radar_data_{split}.csv.gz", "wt") as f:
        f.write("Frame #,# Obj,X,Y,Z,Doppler,Intensity,Abs Time\n")
        for r in radar_rows:
            f.write(",".join(map(str, r)) + "\n")
    with gzip.open(d / f"kinect_data_{split}.csv.gz", "wt") as f:
        f.write(",".join(f"{n}_{a}" for a in "XYZ" for n in mars.KINECT_25_NAMES) + "\n")
        for r in kinect_rows:
            f.write(",".join(map(str, r)) + "\n")


def test_reader_converts_ti_axes_and_kinect_joints(tmp_path):
    # A point 0.3 m to the radar's right, 2 m ahead, 0.1 m up; then two points in the next frame.
    radar = [
        (10, 1, 0.3, 2.0, 0.1, 0.356, 20, 1.6e9),
        (11, 2, 0.0, 1.5, -0.2, 0, 7, 1.6e9),
        (11, 2, -0.1, 1.6, 0.0, -0.712, 9, 1.6e9),
    ]
    joints = np.arange(25 * 3, dtype=float).reshape(3, 25) / 100  # X row, Y row, Z row
    kinect = [np.concatenate(joints), np.concatenate(joints) + 1]
    _write_split(tmp_path, 7, "test", radar, kinect)
    assert mars.list_recordings(tmp_path) == [(7, "test")]
    rec = mars.read_recording(tmp_path, 7, "test")
    assert rec.stamps_s == pytest.approx([1.0, 1.1])
    assert [len(f) for f in rec.frames] == [1, 2]
    np.testing.assert_allclose(rec.frames[0][0], [2.0, -0.3, 0.1, 0.356, 20], rtol=1e-6)
    j = mars.KINECT_25_NAMES.index("ElbowRight")
    np.testing.assert_allclose(rec.kinect_m[0, j], [joints[1, j], -joints[0, j], joints[2, j]], rtol=1e-6)
    coco = rec.coco17_m
    assert coco.shape == (2, 17, 3)
    np.testing.assert_allclose(coco[0, COCO_BODY_17_NAMES.index("right_elbow")], rec.kinect_m[0, j])


def test_reader_refuses_mismatched_files(tmp_path):
    _write_split(tmp_path, 1, "test", [(1, 1, 0, 1, 0, 0, 1, 0)], [np.zeros(75), np.zeros(75)])
    with pytest.raises(mars.MarsDataError, match="1 frames but"):
        mars.read_recording(tmp_path, 1, "test")
    with pytest.raises(mars.MarsDataError, match="not found"):
        mars.read_recording(tmp_path, 2, "test")


def test_metrics_and_template():
    gt = np.zeros((2, 12, 3))
    pred = gt.copy()
    pred[0, :, 0] = 0.05
    pred[1, :, 2] = -0.2
    m = me.joint_metrics(pred, gt)
    assert m["mpjpe_cm"] == pytest.approx(12.5) and m["pck10"] == pytest.approx(0.5)
    assert m["mae_x_cm"] == pytest.approx(2.5) and m["mae_z_cm"] == pytest.approx(10.0)
    assert m["mae_cm"] == pytest.approx(12.5 / 3)


def test_mirroring_twice_is_identity():
    rng = np.random.default_rng(0)
    f, j = rng.normal(size=(3, 10, 8)).astype(np.float32), rng.normal(size=(3, 17, 3)).astype(np.float32)
    f1, j1 = mirror_samples(f, j)
    assert not np.allclose(j1, j)
    f2, j2 = mirror_samples(f1, j1)
    np.testing.assert_array_equal(f2, f)
    np.testing.assert_array_equal(j2, j)


def test_field_of_view_gate_drops_points_beside_and_above_the_radar():
    pts = np.array([[2, 0, 0, 0, 1], [0.1, 2, 0, 0, 1], [1, 0, 1.5, 0, 1], [2, 1, -0.5, 0, 1]], np.float32)
    kept = gate_field_of_view(pts, RadarPipelineConfig())
    np.testing.assert_array_equal(kept, pts[[0, 3]])
    assert len(gate_field_of_view(pts, RadarPipelineConfig(fov_azimuth_deg=None, fov_elevation_deg=None))) == 4


@needs_mars
def test_real_recording_is_in_front_and_faces_the_radar():
    rec = mars.read_recording(MARS_DIR, 1, "test", "woutlier")
    assert len(rec) > 1000
    coco = rec.coco17_m
    pelvis_x = np.median(0.5 * (coco[:, 11, 0] + coco[:, 12, 0]))
    assert 1.5 < pelvis_x < 2.5  # ~2 m ahead on REP-103 x
    # Facing the radar: the subject's left is on the radar's right (REP-103 y < 0).
    assert np.median(coco[:, 5, 1] - coco[:, 6, 1]) < -0.2
    assert 0.85 < mars.radar_height_from_skeletons(rec.kinect_m) < 1.05
    pts = np.concatenate(rec.frames)
    assert np.median(pts[:, 0]) == pytest.approx(pelvis_x, abs=0.3)
    # The sensor's quantisation: Doppler in 0.356 m/s steps.
    np.testing.assert_allclose(
        pts[:, 3] / mars.DOPPLER_STEP_MPS, np.round(pts[:, 3] / mars.DOPPLER_STEP_MPS), atol=0.01
    )


@needs_mars
@needs_mars
def test_one_person_is_one_person_on_real_frames_with_outliers_kept():
    # REAL, as recorded: multipath ghosts (side-wall reflections 1-2.5 m from the subject, 1.5-10x fewer points than
    # a person at their range) must not become people. Frames 600-1200 of subject 1's test split: without the
    # ghost rules 0.71 of them have exactly one person, with them 0.99 (the network does not change the count).
    from dataclasses import replace

    rec = mars.read_recording(MARS_DIR, 1, "test", "woutlier")
    part = replace(rec, stamps_s=rec.stamps_s[500:1200], frames=rec.frames[500:1200], kinect_m=rec.kinect_m[500:1200])
    people = me.run_pipeline(part, RadarPipelineConfig(weights_path="mars", device="cpu")).people_per_frame[100:]
    assert np.mean(people == 1) >= 0.95, np.bincount(people)
    assert people.max() <= 2


@needs_mars
def test_template_baseline_on_real_frames_is_in_the_expected_range():
    rec = mars.read_recording(MARS_DIR, 3, "test", "wooutlier")
    other = mars.read_recording(MARS_DIR, 1, "test", "wooutlier")
    pred = me.template_predictions(me.fit_template([other]), rec)
    m = me.summarise(pred, rec.coco17_m)
    assert 20 < m["mpjpe_cm"] < 45, m  # a fixed pose: far from the joints, but near the person
    assert list(LIMB_12) == list(range(5, 17))


def test_simulated_real_sensor_has_the_real_quirks():
    from pose_perception.evaluation.radar import sim_real

    # A person standing 2 m ahead waving an arm: Kinect-like joints built from a fixed pose.
    rng = np.random.default_rng(0)
    base = np.zeros((25, 3))
    for name, xyz in {
        "SpineBase": (2, 0, -0.1),
        "SpineMid": (2, 0, 0.15),
        "SpineShoulder": (2, 0, 0.4),
        "Neck": (2, 0, 0.48),
        "Head": (2, 0, 0.6),
        "ShoulderLeft": (2, -0.18, 0.38),
        "ShoulderRight": (2, 0.18, 0.38),
        "ElbowLeft": (2, -0.2, 0.1),
        "ElbowRight": (2, 0.2, 0.1),
        "WristLeft": (2, -0.2, -0.15),
        "WristRight": (2, 0.2, -0.15),
        "HandTipLeft": (2, -0.2, -0.25),
        "HandTipRight": (2, 0.2, -0.25),
        "HipLeft": (2, -0.1, -0.15),
        "HipRight": (2, 0.1, -0.15),
        "KneeLeft": (2, -0.1, -0.5),
        "KneeRight": (2, 0.1, -0.5),
        "AnkleLeft": (2, -0.1, -0.85),
        "AnkleRight": (2, 0.1, -0.85),
        "FootLeft": (1.9, -0.1, -0.93),
        "FootRight": (1.9, 0.1, -0.93),
    }.items():
        base[mars.KINECT_25_NAMES.index(name)] = xyz
    joints = np.repeat(base[None], 30, axis=0)
    w = mars.KINECT_25_NAMES.index("WristLeft")
    joints[:, w, 2] += 0.3 * np.sin(np.arange(30) * 0.8)
    rec = sim_real.simulate_recording(joints, rng)
    stats = sim_real.sensor_statistics([rec])
    assert 10 <= stats["points_per_frame"] <= sim_real.MAX_POINTS_PER_FRAME
    assert stats["doppler_on_steps"] == 1.0
    assert 0.1 < stats["zero_azimuth"] < 0.3
    assert max(len(f) for f in rec.frames) <= sim_real.MAX_POINTS_PER_FRAME
    pts = np.concatenate(rec.frames)
    assert np.median(pts[:, 0]) == pytest.approx(2.0, abs=0.25)


def test_elevation_matching_gives_the_real_elevations_and_keeps_range_azimuth_and_order():
    from pose_perception.evaluation.radar import sim_real

    rng = np.random.default_rng(0)
    frames = [
        np.column_stack(
            [rng.uniform(1.5, 2.5, n), rng.uniform(-0.5, 0.5, n), rng.uniform(-0.9, 0.6, n), rng.normal(size=(n, 2))]
        )
        for n in (30, 0, 45)
    ]
    target = np.radians(np.linspace(0.0, 20.0, 101))  # the real sensor: 0-20 degrees up, uniform
    out = sim_real.map_elevation(frames, target)
    assert [len(f) for f in out] == [30, 0, 45]
    before, after = np.concatenate(frames), np.concatenate(out)
    el = np.degrees(np.arctan2(after[:, 2], np.linalg.norm(after[:, :2], axis=1)))
    assert el.min() >= 0.0 and el.max() <= 20.0 and np.median(el) == pytest.approx(10.0, abs=1.0)
    np.testing.assert_allclose(np.linalg.norm(after[:, :3], axis=1), np.linalg.norm(before[:, :3], axis=1), rtol=1e-5)
    np.testing.assert_allclose(np.arctan2(after[:, 1], after[:, 0]), np.arctan2(before[:, 1], before[:, 0]), atol=1e-5)
    np.testing.assert_array_equal(
        np.argsort(after[:, 2] / np.linalg.norm(after[:, :2], axis=1)),
        np.argsort(before[:, 2] / np.linalg.norm(before[:, :2], axis=1)),
    )
    np.testing.assert_allclose(after[:, 3:], before[:, 3:], rtol=1e-6)  # Doppler, intensity unchanged


@needs_mars
def test_real_elevations_do_not_follow_body_height():
    # Subjects 1 and 3 differ by ~10 cm in height, their radar points' heights do not: why the simulator's
    # elevations are mapped onto the real ones (sim_real.RealSensorConfig.elevation_quantiles).
    from pose_perception.evaluation.radar import sim_real

    q = {s: np.array(sim_real.elevation_quantiles(mars.read_subject(MARS_DIR, s, "wooutlier"))) for s in (1, 3)}
    shoulders = {s: np.mean([r.coco17_m[:, 5, 2].mean() for r in mars.read_subject(MARS_DIR, s)]) for s in (1, 3)}
    assert shoulders[1] - shoulders[3] > 0.07
    assert np.degrees(np.abs(q[1][[5, 50, 95]] - q[3][[5, 50, 95]])).max() < 1.0


@needs_mars
def test_demo_real_panel_reads_a_recorded_frame_and_runs_the_pipeline():
    from pose_perception.evaluation.samples.pictures import real_radar_frame

    r = real_radar_frame(MARS_DIR, frame=80)
    assert r is not None and "MARS" in r["name"]
    assert r["truth"].shape == (17, 3) and len(r["points"]) > 10
    assert len(r["estimates"]) == 1  # one person is one person
    assert np.linalg.norm(r["estimates"][0][11:13].mean(0)[:2] - r["truth"][11:13].mean(0)[:2]) < 0.6


def test_demo_real_panel_is_skipped_without_data(tmp_path):
    from pose_perception.evaluation.samples.pictures import real_radar_frame

    assert real_radar_frame(tmp_path / "missing") is None


def test_weights_of_another_architecture_or_truncated_are_clear_errors(tmp_path):
    import torch

    from pose_perception.radar.network import NetConfig, RadarModelError, RadarPoseNet, RadarPoseRegressor, save_weights

    path = tmp_path / "w.pt"
    save_weights(RadarPoseNet(NetConfig(intensity_log=True, azimuth_bin_feature=True)), path, {"commit": "x"})
    reg = RadarPoseRegressor(path, device="cpu")
    assert reg.net.config.azimuth_bin_feature and reg.net.config.num_features == 9
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(RadarModelError, match="cannot load"):
        RadarPoseRegressor(truncated, device="cpu")
    # Same file layout, other architecture: 9 input features stored, the config says 8.
    blob = torch.load(path, weights_only=True)
    blob["config"]["azimuth_bin_feature"] = False
    torch.save(blob, tmp_path / "other.pt")
    with pytest.raises(RadarModelError, match="cannot load"):
        RadarPoseRegressor(tmp_path / "other.pt", device="cpu")


def test_shipped_mars_weights_are_small_and_record_their_real_data():
    from pose_perception.radar.network import MARS_WEIGHTS, RadarPoseRegressor

    assert MARS_WEIGHTS.stat().st_size < 5e6
    reg = RadarPoseRegressor("mars", device="cpu")
    assert "MARS" in reg.meta["description"] and "MIT" in reg.meta["data_licence"]
    assert reg.meta["train_subjects"] == [1, 3]  # never subject 4
    assert not reg.mirror_average and reg.net.config.intensity_log


def test_train_on_recordings_caches_samples_and_fine_tunes(tmp_path, capsys):
    """`radar train --mars` on a small recording: the prepared samples are cached and reused, online augmentation
    and the bone loss run, and --init fine-tunes the weights it is given (their architecture kept)."""
    import json
    import shutil

    from pose_perception.cli.main import main

    rng = np.random.default_rng(0)
    radar, kinect = [], []
    for f in range(30):
        # A body ~2 m ahead (TI: y forward, x right, z up relative to the radar), its points moving.
        for _ in range(25):
            x, y, z = rng.uniform(-0.2, 0.2), 2.0 + rng.uniform(-0.1, 0.1), rng.uniform(-0.8, 0.7)
            radar.append((f, 25, x, y, z, rng.choice([-0.356, 0.356]), rng.uniform(5, 50), 0))
        joints = np.stack(
            [rng.uniform(-0.25, 0.25, 25), 2.0 + rng.uniform(-0.05, 0.05, 25), rng.uniform(-0.9, 0.8, 25)]
        )
        kinect.append(np.concatenate(joints))
    _write_split(tmp_path, 7, "train", radar, kinect)
    shutil.copytree(tmp_path / "woutlier", tmp_path / "wooutlier")
    cache, w = tmp_path / "cache", tmp_path / "w.pt"
    args = ["radar", "train", "--mars", str(tmp_path), "--epochs", "1", "--data-cache", str(cache)]
    aug = ["--aug-yaw", "10", "--aug-scale", "0.9", "1.1", "--aug-doppler", "0.1", "--bone-loss", "1"]
    assert main([*args, "--out", str(w), *aug]) == 0
    cached = sorted(p.name for p in cache.iterdir())
    assert cached and all(n.startswith("real_") for n in cached)
    assert main([*args, "--out", str(tmp_path / "w2.pt"), "--init", str(w), "--no-azimuth-flag"]) == 0
    assert sorted(p.name for p in cache.iterdir()) == cached  # same samples (the architecture comes from --init)
    meta = json.loads((tmp_path / "w2.json").read_text())
    assert meta["fine_tuned_from"]["weights"] == str(w) and meta["net"]["azimuth_bin_feature"]
    assert meta["train"]["bone_weight"] == 0.0
    assert json.loads(w.with_suffix(".json").read_text())["train"]["yaw_deg"] == 10.0
    assert main([*args, "--out", str(tmp_path / "w3.pt"), "--init", str(tmp_path / "missing.pt")]) == 2
    assert "not found" in capsys.readouterr().err
