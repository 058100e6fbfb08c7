"""Training / evaluation helpers of the radar network (SYNTHETIC data from the simulator)."""

import numpy as np
import torch

from pose_perception.evaluation.radar import simulator as sim
from pose_perception.radar.network import RadarPoseRegressor
from pose_perception.evaluation.radar.training import DatasetConfig, evaluate_error_split, generate_dataset

torch.set_num_threads(1)


def test_error_split_finds_the_person_and_orders_its_shares():
    res = evaluate_error_split(
        RadarPoseRegressor(device="cpu"), ("humanoid3d_dance_b",), sequences_per_clip=2, frames_per_sequence=16
    )["humanoid3d_dance_b"]
    assert res["frames"] == 2 * 13 and res["one_cluster"] > 0.7 and res["person_points_in_cluster"] > 0.8
    assert 0 < res["centroid_to_pelvis_cm"] < 50
    # A perfect heading (yaw 0 is among the candidates) can only remove error.
    assert res["centred_best_yaw_cm"] <= res["centred_cm"] + 1e-6
    assert 0 < res["centred_best_yaw_cm"] < res["mpjpe_cm"]


def test_training_data_is_seeded_and_augmentation_changes_it():
    cfg = DatasetConfig(sequences=2, frames_per_sequence=6, seed=3, orientation_prob=1.0, speed_range=(0.6, 1.6))
    a = generate_dataset(sim.TRAIN_CLIPS, cfg, log=None)
    b = generate_dataset(sim.TRAIN_CLIPS, cfg, log=None)
    np.testing.assert_array_equal(a["features"], b["features"])
    plain = generate_dataset(sim.TRAIN_CLIPS, DatasetConfig(sequences=2, frames_per_sequence=6, seed=3), log=None)
    assert a["joints"].shape[1:] == (17, 3)
    assert not (a["joints"].shape == plain["joints"].shape and np.allclose(a["joints"], plain["joints"]))
