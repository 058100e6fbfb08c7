"""RadarPoseNet and its input: person-frame features, padding/permutation invariance, weights round trip."""

import numpy as np
import pytest
import torch

from pose_perception.core.keypoints import COCO_BODY_17_MIRROR
from pose_perception.radar.network import (
    NUM_FEATURES,
    NetConfig,
    RadarModelError,
    RadarPoseNet,
    RadarPoseRegressor,
    load_weights,
    person_frame,
    prepare_input,
    save_weights,
)

torch.set_num_threads(1)


def _person(rng, n=60):
    return np.column_stack([rng.normal([3.0, 0.0, 0.0], [0.15, 0.2, 0.5], (n, 3)), rng.normal(0, 1, (n, 2))]).astype(
        np.float32
    )


def test_features_are_the_same_for_a_person_seen_at_any_azimuth():
    rng = np.random.default_rng(0)
    pts = _person(rng)
    age = np.zeros(len(pts), np.float32)
    c = np.median(pts[:, :3], axis=0)
    R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # the whole scene turned by 90 degrees
    pts_r = pts.copy()
    pts_r[:, :3] = pts[:, :3] @ R.T
    fa, ma = prepare_input(pts, age, c, 128)
    fb, mb = prepare_input(pts_r, age, R @ c, 128)
    np.testing.assert_allclose(fa, fb, atol=1e-5)
    assert fa.shape == (128, NUM_FEATURES) and ma.sum() == len(pts)
    horizontal = (R @ c) * [1, 1, 0]
    np.testing.assert_allclose(person_frame(R @ c)[:, 0], horizontal / np.linalg.norm(horizontal), atol=1e-9)


def test_more_points_than_the_network_takes_are_subsampled():
    rng = np.random.default_rng(1)
    pts = _person(rng, 500)
    f, m = prepare_input(pts, np.zeros(500, np.float32), np.array([3.0, 0, 0]), 128)
    assert m.all() and f.shape == (128, NUM_FEATURES)


def test_network_ignores_padding_and_point_order():
    torch.manual_seed(0)
    net = RadarPoseNet(NetConfig(num_points=32)).eval()
    x = torch.randn(1, 32, NUM_FEATURES)
    mask = torch.zeros(1, 32, dtype=torch.bool)
    mask[0, :20] = True
    x2 = x.clone()
    x2[0, 20:] = 1e3  # garbage in padded slots
    perm = torch.cat([torch.randperm(20), torch.arange(20, 32)])
    with torch.no_grad():
        j1, c1 = net(x, mask)
        j2, _ = net(x2, mask)
        j3, _ = net(x[:, perm], mask)
    assert j1.shape == (1, 17, 3) and c1.shape == (1, 17)
    torch.testing.assert_close(j1, j2)
    torch.testing.assert_close(j1, j3, atol=1e-5, rtol=1e-5)


def test_weights_round_trip_is_small_and_keeps_the_predictions(tmp_path):
    torch.manual_seed(1)
    net = RadarPoseNet().eval()
    path = tmp_path / "w.pt"
    save_weights(net, path, {"commit": "x" * 40})
    assert path.stat().st_size < 5e6 and path.with_suffix(".json").is_file()
    loaded, meta = load_weights(path)
    assert meta["commit"] == "x" * 40
    rng = np.random.default_rng(2)
    people = [(_person(rng), np.zeros(60, np.float32), np.array([3.0, 0.0, 0.0]))]
    reg = RadarPoseRegressor(path, device="cpu")
    joints, conf = reg.predict(people)
    assert joints.shape == (1, 17, 3) and np.all((conf >= 0) & (conf <= 1))
    assert np.all(np.abs(joints[0, :, 0] - 3.0) < 2.0)  # outputs are put back around the person
    assert reg.predict([])[0].shape == (0, 17, 3)


def test_weights_of_another_architecture_are_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save(
        {"config": {"num_points": 16, "widths": [8], "head_width": 8}, "state_dict": {"nope": torch.zeros(1)}}, path
    )
    with pytest.raises(RadarModelError, match="cannot load"):
        load_weights(path)


def test_mirror_averaging_makes_the_estimate_of_a_mirrored_person_the_mirrored_estimate(tmp_path):
    torch.manual_seed(3)
    path = tmp_path / "w.pt"
    save_weights(RadarPoseNet().eval(), path, {})
    rng = np.random.default_rng(4)
    pts = _person(rng)
    mirrored = pts * np.array([1, -1, 1, 1, 1], np.float32)  # reflected across the radar-person line (y -> -y)
    age, c = np.zeros(len(pts), np.float32), np.array([3.0, 0.0, 0.0])
    swap = list(COCO_BODY_17_MIRROR)
    for average, equal in ((True, True), (False, False)):  # untrained weights are not mirror-symmetric by themselves
        reg = RadarPoseRegressor(path, device="cpu", mirror_average=average)
        (ja, ca), (jb, cb) = reg.predict([(pts, age, c)]), reg.predict([(mirrored, age, c)])
        same = np.allclose(ja[0], jb[0][swap] * [1, -1, 1], atol=1e-5) and np.allclose(ca[0], cb[0][swap], atol=1e-5)
        assert same == equal


def test_age_slots_pool_old_and_new_points_apart():
    torch.manual_seed(5)
    bounds = (0.075, 0.175, 1.0)
    net = RadarPoseNet(NetConfig(num_points=32, context_frames=12, time_slots_s=bounds)).eval()
    x = torch.randn(2, 32, NUM_FEATURES)
    x[:, :, 5] = torch.linspace(0.0, 0.55, 32) / 0.2  # ages 0-0.55 s as prepare_input writes them
    mask = torch.zeros(2, 32, dtype=torch.bool)
    mask[0, :24] = True
    mask[1, 4:10] = True  # the second person has no point in the oldest slot
    with torch.no_grad():
        j, _ = net(x, mask)
        # The same by hand: masked max and mean per age slot (zeros for an empty slot), then the head.
        f, age = net.point_mlp(x), x[..., 5] * 0.2
        pooled, lower = [], -1.0
        for upper in bounds:
            m = (mask & (age > lower) & (age <= upper)).unsqueeze(-1)
            n = m.sum(1)
            pooled += [f.masked_fill(~m, -1e4).amax(1) * (n > 0), (f * m).sum(1) / n.clamp(min=1)]
            lower = upper
        pooled = torch.stack(pooled, 1).view(2, len(bounds), 2, -1).flatten(1)
        expected = net.head(pooled).view(2, 17, 4)[..., :3]
        torch.testing.assert_close(j, expected, atol=1e-5, rtol=1e-5)
        x2 = x.clone()
        x2[0, 24:] = 1e3  # padding ignored
        torch.testing.assert_close(j[0], net(x2, mask)[0][0])
        perm = torch.cat([torch.randperm(24), torch.arange(24, 32)])
        torch.testing.assert_close(j[0], net(x[:1, perm], mask[:1])[0][0], atol=1e-5, rtol=1e-5)


def test_weights_without_context_fields_load_as_four_pooled_frames(tmp_path):
    torch.manual_seed(6)
    net = RadarPoseNet().eval()
    path = tmp_path / "old.pt"
    torch.save(
        {"config": {"num_points": 128, "widths": [48, 96, 192], "head_width": 192}, "state_dict": net.state_dict()},
        path,
    )
    loaded, _ = load_weights(path)
    assert loaded.config.context_frames == 4 and loaded.config.time_slots_s == ()
    x, mask = torch.randn(2, 128, NUM_FEATURES), torch.ones(2, 128, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, mask)[0], net(x, mask)[0])
