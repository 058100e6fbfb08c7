"""RadarPosePipeline with the shipped weights: bad frames give clear errors or nothing, good frames give tracked
COCO-17 skeletons close to the SYNTHETIC ground truth of a held-out clip."""

import numpy as np
import pytest
import torch

from pose_perception.core.keypoints import BODY, COCO_WHOLEBODY_133, LIMB_12, pelvis
from pose_perception.core.types import Source
from pose_perception.evaluation.radar import simulator as sim
from pose_perception.radar.network import DEFAULT_WEIGHTS, RadarModelError, RadarPoseRegressor
from pose_perception.radar.clustering import ClusterConfig
from pose_perception.radar.pipeline import RadarPipelineConfig, RadarPosePipeline, people_from_cloud
from pose_perception.radar.points import RadarInputError, StampOrderError, TooManyPointsError
from pose_perception.evaluation.radar.training import random_sequence

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def regressor():
    return RadarPoseRegressor(device="cpu")


def test_shipped_weights_are_small_and_record_their_recipe(regressor):
    assert DEFAULT_WEIGHTS.stat().st_size < 5e6
    assert regressor.meta["training_command"].startswith("pose-perception radar train")
    assert len(regressor.meta["commit"]) >= 40
    assert set(regressor.meta["train_clips"]) == set(sim.TRAIN_CLIPS)


def test_missing_or_broken_weights_are_clear_errors(tmp_path):
    with pytest.raises(RadarModelError, match="not found"):
        RadarPoseRegressor(tmp_path / "none.pt", device="cpu")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(RadarModelError, match="cannot load"):
        RadarPoseRegressor(bad, device="cpu")


def test_empty_and_all_invalid_frames_give_no_people(regressor):
    pipe = RadarPosePipeline(regressor=regressor)
    assert pipe.process(0.0, np.zeros((0, 5), np.float32)) == []
    assert pipe.process(0.05, np.full((20, 5), np.nan, np.float32)) == []
    assert pipe.process(0.10, np.full((20, 5), np.inf, np.float32)) == []


def test_bad_frames_raise_and_leave_the_state_untouched(regressor):
    pipe = RadarPosePipeline(regressor=regressor)
    pipe.process(1.0, np.zeros((3, 5), np.float32))
    with pytest.raises(TooManyPointsError):
        pipe.process(1.1, np.zeros((100_000, 5), np.float32))
    with pytest.raises(StampOrderError):
        pipe.process(0.5, np.zeros((3, 5), np.float32))
    with pytest.raises(RadarInputError):
        pipe.process(1.2, np.zeros((3, 4), np.float32))  # missing column
    with pytest.raises(StampOrderError):
        pipe.process(float("nan"), np.zeros((3, 5), np.float32))
    assert pipe.accumulator.last_stamp_s == 1.0
    assert pipe.process(1.3, np.zeros((3, 5), np.float32)) == []


def test_held_out_clip_gives_one_tracked_person_close_to_ground_truth(regressor):
    rng = np.random.default_rng(11)
    skeleton = sim.load_skeleton()
    clip = sim.load_clip("humanoid3d_dance_b")  # never trained on
    errors, ids = [], set()
    for _ in range(3):
        frames = random_sequence(rng, skeleton, [clip], 30, allow_mirror=False)
        pipe = RadarPosePipeline(RadarPipelineConfig(), regressor=regressor)
        for k, (points, _, joints) in enumerate(frames):
            humans = pipe.process(k / 20.0, points)
            for h in humans:
                d = np.linalg.norm(pelvis(h.keypoints_3d[:17])[:2] - pelvis(joints[0])[:2])
                if d < 0.6:
                    errors.append(
                        np.linalg.norm(h.keypoints_3d[list(LIMB_12)] - joints[0][list(LIMB_12)], axis=1).mean()
                    )
        ids |= {h.track_id for h in humans}
    assert len(errors) > 40  # detected in most frames after the tracker confirms
    # The shipped weights (f5047f0) with mirror averaging give 0.242 m here, untrained weights ~0.53 m;
    # `pose-perception radar eval` gives the real figures.
    assert np.mean(errors) < 0.28


def test_output_follows_the_wire_layout(regressor):
    rng = np.random.default_rng(5)
    skeleton = sim.load_skeleton()
    frames = random_sequence(rng, skeleton, [sim.load_clip("humanoid3d_spinkick")], 20, allow_mirror=False)
    pipe = RadarPosePipeline(regressor=regressor)
    humans = []
    for k, (points, _, _) in enumerate(frames):
        humans = pipe.process(k / 20.0, points) or humans
    assert humans
    h = humans[0]
    n = COCO_WHOLEBODY_133.num_keypoints
    assert h.source == Source.RADAR
    assert h.keypoints_3d.shape == (n, 3) and h.confidence.shape == (n,) and h.keypoints_uv.shape == (n, 2)
    assert np.all(np.isfinite(h.keypoints_3d[BODY])) and np.all(np.isnan(h.keypoints_3d[17:]))
    assert np.all(h.confidence[17:] == 0) and np.all((h.confidence[BODY] >= 0) & (h.confidence[BODY] <= 1))
    assert np.all(np.isnan(h.keypoints_uv)) and np.all(np.isnan(h.bbox_xyxy))
    assert h.T_sensor_body is not None
    np.testing.assert_allclose(h.T_sensor_body[:3, 3], pelvis(h.keypoints_3d[:17]), atol=1e-5)
    np.testing.assert_allclose(h.T_sensor_body[:3, :3] @ h.T_sensor_body[:3, :3].T, np.eye(3), atol=1e-6)


def test_older_frames_join_the_nearest_person_as_context_without_changing_the_clusters():
    rng = np.random.default_rng(7)

    def person(x, y, n, age):
        pts = np.column_stack(
            [rng.normal([x, y, 0.0], [0.1, 0.1, 0.4], (n, 3)), np.full((n, 1), 0.5), np.full((n, 1), 10.0)]
        ).astype(np.float32)
        return pts, np.full(n, age, np.float32), np.full(n, int(round(age / 0.05)))

    parts = [
        person(3.0, 1.0, 40, 0.0),
        person(3.0, -1.0, 40, 0.05),  # two people in the newest frames
        person(3.3, 1.0, 30, 0.4),
        person(2.9, -1.2, 30, 0.5),  # the same people earlier
        person(6.0, 3.0, 20, 0.3),
    ]  # an old cluster far from both: dropped
    pts, age, back = (np.concatenate(v) for v in zip(*parts))
    recent_only, _ = people_from_cloud(pts[back < 4], age[back < 4], ClusterConfig())
    clusters, inputs = people_from_cloud(pts, age, ClusterConfig(), back, 4)
    assert len(clusters) == len(recent_only) == 2
    for c, r, (p, a, centroid) in zip(clusters, recent_only, inputs):
        np.testing.assert_allclose(c.centroid_m, r.centroid_m)
        np.testing.assert_array_equal(centroid, c.centroid_m)
        assert len(p) == 70 and np.count_nonzero(a > 0.3) == 30  # its 40 recent + its own 30 older points
        assert np.all(np.abs(p[:, 1] - centroid[1]) < 0.8)  # none of the other person's
    # Without cluster_frames everything is clustered together, as with the weights of 4 pooled frames (the far
    # 20-point cluster behind two 70-point ones would be dropped as a multipath ghost: those rules are off here).
    all_frames = ClusterConfig(ghost_range_ratio=np.inf, ghost_compact_ratio=np.inf)
    assert sum(len(c.indices) for c in people_from_cloud(pts, age, all_frames)[0]) > 140


def test_three_simulated_people_keep_their_people_next_to_the_multipath_ghost_rules(regressor):
    # SYNTHETIC: 3 people at 2.5-3.5 m doing held-out clips (bench radar's scene); the middle one is ~1 m farther
    # than its neighbours and on nearly the same bearing, so a ghost rule by bearing and point ratio alone drops it
    # (the previous rule: 2.21 people per frame here).
    from pose_perception.evaluation.cli.bench_radar import simulate_scene

    pipe = RadarPosePipeline(RadarPipelineConfig(), regressor=regressor)
    counts, on_person = [], []
    for k, (t, p, joints) in enumerate(simulate_scene(3, 20.0, 6.0, seed=4, with_truth=True)):
        humans = pipe.process(t, p)
        if k < 10:  # tracks confirm within the first frames
            continue
        counts.append(len(humans))
        truth = joints[:, [11, 12], :2].mean(axis=1)
        on_person += [np.linalg.norm(truth - pelvis(h.keypoints_3d[:17])[:2], axis=1).min() < 1.0 for h in humans]
    assert np.mean(counts) >= 2.6, f"people per frame {np.mean(counts):.2f} for 3 simulated people"
    assert np.mean(on_person) >= 0.9  # and they are the people, not ghosts (0.95 now; the rest: coasting tracks)
