"""Evaluation of pose_perception: simulators, synthetic data, training, metrics, baselines, samples and the bench / eval / demo commands (not needed on a robot)."""
