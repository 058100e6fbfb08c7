"""Radar simulator: the humanoid forward kinematics equals pybullet's, clip splits, ground truth and sensor effects
(all data here is SYNTHETIC)."""
import json
from pathlib import Path

import numpy as np
import pytest

from pose_perception.radar import simulator as sim


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
        h = pybullet.loadURDF("humanoid/humanoid.urdf", [0, 0, 0], globalScaling=0.25, useFixedBase=True,
                              flags=pybullet.URDF_MAINTAIN_LINK_ORDER, physicsClientId=cid)
        pybullet.resetBasePositionAndOrientation(h, frame[1:4], [frame[5], frame[6], frame[7], frame[4]], physicsClientId=cid)
        joint_of = {pybullet.getJointInfo(h, j, physicsClientId=cid)[12].decode(): j
                    for j in range(pybullet.getNumJoints(h, physicsClientId=cid))}
        col = 8
        for joint, n in sim.MOTION_JOINTS:
            if n == 4:
                q = frame[col:col + 4]
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
    on_disk = {p.stem for p in motions.glob("humanoid3d_*.txt")} | {f"walker/{p.stem}" for p in (motions / "walker").glob("*.txt")}
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
