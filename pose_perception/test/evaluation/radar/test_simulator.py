"""Radar simulator: the humanoid forward kinematics equals pybullet's, clip splits, ground truth and sensor effects
(all data here is SYNTHETIC)."""

import json
from pathlib import Path

import numpy as np
import pytest

from pose_perception.evaluation.radar import simulator as sim


@pytest.fixture(scope="module")
def skeleton():
    return sim.load_skeleton()


def test_forward_kinematics_matches_pybullet(skeleton):
    pybullet = pytest.importorskip("pybullet")
    import pybullet_data

    name, k = "humanoid3d_dance_b", 37
    frame = np.asarray(json.loads(sim.clip_path(name).read_text())["Frames"])[k]
    cid = pybullet.connect(pybullet.DIRECT)
    try:
        pybullet.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=cid)
        h = pybullet.loadURDF(
            "humanoid/humanoid.urdf",
            [0, 0, 0],
            globalScaling=0.25,
            useFixedBase=True,
            flags=pybullet.URDF_MAINTAIN_LINK_ORDER,
            physicsClientId=cid,
        )
        pybullet.resetBasePositionAndOrientation(
            h, frame[1:4], [frame[5], frame[6], frame[7], frame[4]], physicsClientId=cid
        )
        joint_of = {
            pybullet.getJointInfo(h, j, physicsClientId=cid)[12].decode(): j
            for j in range(pybullet.getNumJoints(h, physicsClientId=cid))
        }
        col = 8
        for joint, n in sim.MOTION_JOINTS:
            if n == 4:
                q = frame[col : col + 4]
                pybullet.resetJointStateMultiDof(h, joint_of[joint], [q[1], q[2], q[3], q[0]], physicsClientId=cid)
            else:
                pybullet.resetJointState(h, joint_of[joint], frame[col], physicsClientId=cid)
            col += n
        clip = sim.load_clip(name)
        _, p = sim.forward_kinematics(skeleton, clip, np.array([clip.times_s[k]]))
        for li, link in enumerate(sim.LINKS[1:], 1):
            ref = sim.R_ZUP_FROM_NATIVE @ np.asarray(pybullet.getLinkState(h, joint_of[link], physicsClientId=cid)[4])
            np.testing.assert_allclose(p[0, li], ref, atol=1e-6, err_msg=link)
    finally:
        pybullet.disconnect(cid)


def test_train_and_eval_clips_are_disjoint_and_cover_every_humanoid_clip():
    assert not set(sim.TRAIN_CLIPS) & set(sim.EVAL_CLIPS)
    motions = sim.pybullet_data_path() / "data" / "motions"
    on_disk = {p.stem for p in motions.glob("humanoid3d_*.txt")} | {
        f"walker/{p.stem}" for p in (motions / "walker").glob("*.txt")
    }
    assert on_disk == set(sim.TRAIN_CLIPS) | set(sim.EVAL_CLIPS)


def test_ground_truth_skeleton_is_an_upright_human(skeleton):
    clip = sim.load_clip("humanoid3d_walk")
    R, p = sim.forward_kinematics(skeleton, clip, np.array([0.0]))
    j = sim.coco17_from_fk(R, p)[0]
    assert j[0, 2] > j[5, 2] > j[11, 2] > j[13, 2] > j[15, 2]  # nose > shoulder > hip > knee > ankle
    assert 0.35 < np.linalg.norm(j[11] - j[13]) < 0.5  # thigh length
    assert j[5, 1] > j[6, 1]  # facing +x, the left shoulder is at +y (REP-103 y left)
    assert j[1, 1] > j[2, 1] and j[0, 0] > j[3, 0]  # left eye left of right eye; nose in front of ears


def test_mirrored_person_keeps_bone_lengths_and_swaps_sides(skeleton):
    rng = np.random.default_rng(0)
    clip = sim.load_clip("humanoid3d_punch")
    a = sim.random_person(rng, skeleton, [clip], np.array([3.0, 0.0]), allow_mirror=False)
    b = sim.SimPerson(a.clip, a.shape, a.surface, a.t0_s, a.position_xy, a.yaw_rad, mirror=True)
    ja = a.observe(skeleton, np.array([0.4]), 1.0)[0][3]
    jb = b.observe(skeleton, np.array([0.4]), 1.0)[0][3]
    np.testing.assert_allclose(np.linalg.norm(ja[9] - ja[7]), np.linalg.norm(jb[10] - jb[8]), rtol=1e-9)


def test_a_still_person_gives_far_fewer_points_than_a_moving_one(skeleton):
    rng = np.random.default_rng(1)
    clip = sim.load_clip("humanoid3d_run")
    person = sim.random_person(rng, skeleton, [clip], np.array([3.0, 0.0]), allow_mirror=False)
    person.yaw_rad = np.pi  # running towards the radar: large radial velocity
    person.t0_s = 0.0
    pts, nrm, vel, _ = person.observe(skeleton, np.array([0.05]), 1.0)[0]
    model = sim.RadarModel(ghosts_per_frame=0.0)
    moving = np.mean([len(sim.radar_frame([(pts, nrm, vel)], model, rng)[0]) for _ in range(10)])
    still = np.mean([len(sim.radar_frame([(pts, nrm, np.zeros_like(vel))], model, rng)[0]) for _ in range(10)])
    assert moving > 20
    assert still < 0.2 * moving


def test_points_lie_on_the_person_and_have_radial_velocity(skeleton):
    rng = np.random.default_rng(2)
    clip = sim.load_clip("humanoid3d_walk")
    person = sim.random_person(rng, skeleton, [clip], np.array([2.5, 0.5]), allow_mirror=False)
    scene = sim.SimScene([person], skeleton, sim.RadarModel(ghosts_per_frame=0.0))
    points, labels, joints = scene.frames(np.array([0.3]), rng)[0]
    assert len(points) > 10 and np.all(labels == 0)
    centre = joints[0].mean(axis=0)
    assert np.all(np.linalg.norm(points[:, :2] - centre[:2], axis=1) < 1.2)
    assert np.all(np.abs(points[:, 3]) < 8.0)


def test_missing_clip_is_a_clear_error():
    with pytest.raises(sim.SimulatorError, match="cannot read mocap clip"):
        sim.load_clip("nope", Path("/nonexistent/clip.txt"))


def test_orientation_augment_turns_the_body_about_the_pelvis_and_keeps_it_on_the_floor(skeleton):
    rng = np.random.default_rng(3)
    clip = sim.load_clip("humanoid3d_walk")
    upright = sim.random_person(rng, skeleton, [clip], np.array([3.0, 0.0]), allow_mirror=False)
    assert upright.orientation is None and upright.speed == 1.0  # evaluation draws no augmentation
    t = np.array([0.0, 0.3])
    R0, p0 = upright.pose(skeleton, t, 0.0)
    flip = np.diag([1.0, -1.0, -1.0])  # upside down (180 degrees about x)
    upside = sim.SimPerson(
        upright.clip,
        upright.shape,
        upright.surface,
        upright.t0_s,
        upright.position_xy,
        upright.yaw_rad,
        orientation=sim.OrientationAugment(flip, np.zeros(3), grounded=True),
    )
    R1, p1 = upside.pose(skeleton, t, 0.0)
    j0, j1 = sim.coco17_from_fk(R0, p0, upright.shape), sim.coco17_from_fk(R1, p1, upright.shape)
    np.testing.assert_allclose(
        np.linalg.norm(j1[:, 13] - j1[:, 15], axis=1), np.linalg.norm(j0[:, 13] - j0[:, 15], axis=1)
    )
    assert np.all(j1[:, 0, 2] < j1[:, 11, 2]) and np.all(j1[:, 15, 2] > j1[:, 5, 2])  # head below hips, feet up
    np.testing.assert_allclose(p1[..., 2].min(axis=1), sim.OrientationAugment.FLOOR_CLEARANCE_M * upright.shape.scale)
    np.testing.assert_allclose(np.linalg.det(R1), 1.0)


def test_tumbling_body_turns_at_the_given_rate_and_never_goes_through_the_floor(skeleton):
    rng = np.random.default_rng(4)
    clip = sim.load_clip("humanoid3d_run")
    person = sim.random_person(rng, skeleton, [clip], np.array([3.0, 0.0]), allow_mirror=False, speed_range=(1.0, 1.0))
    person.speed, person.yaw_rad = 0.0, 0.0  # frozen clip: only the tumble moves the body
    t = np.array([0.0, 0.5, 1.0])
    R_still, _ = person.pose(skeleton, t, 0.0)
    person.orientation = sim.OrientationAugment(np.eye(3), np.array([0.0, np.pi, 0.0]), grounded=False)  # half a turn/s
    R, p = person.pose(skeleton, t, 0.0)
    for k, angle in enumerate(np.pi * t):  # the pelvis turned by rate * t about the world y axis
        c, s = np.cos(angle), np.sin(angle)
        np.testing.assert_allclose(R[k, 0], np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]) @ R_still[k, 0], atol=1e-9)
    assert np.all(p[..., 2] >= sim.OrientationAugment.FLOOR_CLEARANCE_M * person.shape.scale - 1e-9)


def test_random_orientations_are_proper_rotations_and_speed_varies_playback(skeleton):
    rng = np.random.default_rng(5)
    augs = [sim.random_orientation_augment(rng) for _ in range(200)]
    tilts = np.stack([a.tilt for a in augs])
    np.testing.assert_allclose(np.linalg.det(tilts), 1.0)
    np.testing.assert_allclose(tilts @ tilts.transpose(0, 2, 1), np.broadcast_to(np.eye(3), tilts.shape), atol=1e-9)
    assert abs(np.mean(tilts[:, 2, 2])) < 0.15  # uniform on SO(3): the body's up axis points anywhere
    assert 0.3 < np.mean([np.any(a.rate_radps) for a in augs]) < 0.7
    clip = sim.load_clip("humanoid3d_punch")
    people = [
        sim.random_person(rng, skeleton, [clip], np.array([3.0, 0.0]), orientation_prob=0.5, speed_range=(0.6, 1.6))
        for _ in range(40)
    ]
    assert 0.2 < np.mean([p.orientation is not None for p in people]) < 0.8
    assert min(p.speed for p in people) >= 0.6 and max(p.speed for p in people) <= 1.6


def test_source_balanced_weights_give_the_walker_folder_the_weight_of_one_clip():
    w = sim.source_balanced_weights(sim.TRAIN_CLIPS)
    walker = np.array([n.startswith("walker/") for n in sim.TRAIN_CLIPS])
    assert abs(w.sum() - 1) < 1e-12 and walker.sum() == 5
    np.testing.assert_allclose(w[walker].sum(), w[sim.TRAIN_CLIPS.index("humanoid3d_walk")])
