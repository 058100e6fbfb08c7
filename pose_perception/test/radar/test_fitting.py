"""Model-based refinement: the capsule body pulls a misplaced limb back onto its points (SYNTHETIC body)."""

import numpy as np
import torch

from pose_perception.evaluation.radar import simulator as sim
from pose_perception.radar.fitting import L_WRI, FitConfig, refine_skeletons

torch.set_num_threads(1)


def test_refinement_pulls_a_misplaced_wrist_back_onto_the_points_and_keeps_the_rest():
    rng = np.random.default_rng(0)
    skeleton = sim.load_skeleton()
    clip = sim.load_clip("humanoid3d_punch")
    R, p = sim.forward_kinematics(skeleton, clip, np.array([0.5]))
    p = p - p[:, :1] + [3.0, 0.5, 0.0]  # the pelvis 3 m in front of the radar (at the origin), 1 m below it
    truth = sim.coco17_from_fk(R, p)[0]
    surface, _ = sim.BodySurface(sim.BodyShape(), rng).world(R[0], p[0])
    points = surface[rng.choice(len(surface), 150, replace=False)]
    points = np.column_stack([points, np.zeros((150, 2))]).astype(np.float32)
    estimate = truth.copy()
    estimate[L_WRI] += [0.0, 0.10, 0.0]  # the network put the left wrist 10 cm to the side (1.4 sigma in azimuth)
    conf = np.full((1, 17), 0.9, np.float32)
    conf[0, L_WRI] = 0.05  # ... and said it was unsure
    out = refine_skeletons(estimate[None], conf, [points], [np.zeros(150, np.float32)], FitConfig(steps=30))[0]
    assert np.linalg.norm(out[L_WRI] - truth[L_WRI]) < 0.7 * 0.10
    others = [k for k in range(5, 17) if k != L_WRI]
    assert np.linalg.norm(out[others] - truth[others], axis=1).mean() < 0.03
    # No points: nothing to fit, the network's estimate stays.
    same = refine_skeletons(estimate[None], conf, [points[:0]], [np.zeros(0, np.float32)])[0]
    np.testing.assert_allclose(same, estimate, atol=1e-6)
