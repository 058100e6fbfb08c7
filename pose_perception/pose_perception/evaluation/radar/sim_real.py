"""SYNTHETIC radar made to match the REAL TI IWR1443 of MARS, driven by recorded Kinect V2 motion.

The body is capsules between Kinect joints; the radar is `simulator.radar_frame` with a sensor model fitted to
the MARS recordings, then the real sensor's quirks are applied: at most 64 points per frame, ~20 % of the points
on the zero-azimuth bin (y exactly 0), Doppler in 0.356 m/s steps, static body parts returning points, the real
intensity distribution (quantile-mapped), and outliers spread over the room. `sensor_statistics` prints the
same statistics for real and simulated recordings so the match can be checked (docs/radar.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from pose_perception.evaluation.radar import simulator as sim
from pose_perception.evaluation.radar.mars import (
    DOPPLER_STEP_MPS,
    FRAME_PERIOD_S,
    KINECT_25_NAMES,
    MarsRecording,
    radar_height_from_skeletons,
)
from pose_perception.radar.points import INTENSITY, VELOCITY

_J = {n: i for i, n in enumerate(KINECT_25_NAMES)}
# (joint a, joint b, radius m): a capsule per body segment between Kinect joints.
CAPSULES: tuple[tuple[int, int, float], ...] = tuple(
    (_J[a], _J[b], r)
    for a, b, r in (
        ("SpineBase", "SpineMid", 0.14),
        ("SpineMid", "SpineShoulder", 0.15),
        ("SpineShoulder", "Neck", 0.06),
        ("Neck", "Head", 0.10),
        ("SpineShoulder", "ShoulderLeft", 0.06),
        ("SpineShoulder", "ShoulderRight", 0.06),
        ("ShoulderLeft", "ElbowLeft", 0.05),
        ("ShoulderRight", "ElbowRight", 0.05),
        ("ElbowLeft", "WristLeft", 0.04),
        ("ElbowRight", "WristRight", 0.04),
        ("WristLeft", "HandTipLeft", 0.04),
        ("WristRight", "HandTipRight", 0.04),
        ("SpineBase", "HipLeft", 0.09),
        ("SpineBase", "HipRight", 0.09),
        ("HipLeft", "KneeLeft", 0.07),
        ("HipRight", "KneeRight", 0.07),
        ("KneeLeft", "AnkleLeft", 0.05),
        ("KneeRight", "AnkleRight", 0.05),
        ("AnkleLeft", "FootLeft", 0.04),
        ("AnkleRight", "FootRight", 0.04),
    )
)
MAX_POINTS_PER_FRAME = 64  # the MARS recordings never hold more (the TI demo's output cap)


@dataclass(frozen=True)
class RealSensorConfig:
    """Statistics of the real sensor the simulation is matched to (defaults: measured on MARS subjects 1 and 3
    with `sensor_statistics`, docs/radar.md). zero_azimuth_frac: points put on the zero-azimuth bin;
    outliers_per_frame: Poisson mean of points spread over the room (range 1-3.4 m, the radar's view)."""

    points_at_ref: float = 24.0
    static_keep_prob: float = 0.35  # of the points in the zero-Doppler bin
    doppler_sigma_mps: float = 0.3
    zero_azimuth_frac: float = 0.2
    outliers_per_frame: float = 3.0
    quantise_doppler: bool = True
    cap_points: bool = True
    intensity_quantiles: tuple[float, ...] = ()  # empty: keep the simulator's SNR (dB)
    # Elevation angle quantiles (rad) of the real sensor's body points; each simulated recording's body points
    # are mapped by rank onto them. Empty: keep the simulator's geometric elevation. Why: on MARS the real
    # points' heights have the same distribution for subjects 10 cm apart in height (5/50/95 %: 0.68 / 1.24 /
    # 1.69 m above the floor) and hardly any come from the legs, while the capsule body puts them from the
    # feet to the head (0.07 / 0.95 / 1.47 m for subject 3's motion).
    elevation_quantiles: tuple[float, ...] = ()


def _basis(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C, 3) unit axes -> two (C, 3) unit vectors perpendicular to them (smooth in the axis)."""
    ref = np.where(np.abs(axis[:, 2:3]) < 0.9, np.array([[0.0, 0.0, 1.0]]), np.array([[1.0, 0.0, 0.0]]))
    u = np.cross(axis, ref)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return u, np.cross(axis, u)


class CapsuleSampler:
    """Fixed surface samples on the Kinect capsules (capsule, t along the axis, angle) so the same material
    point can be followed from frame to frame (its velocity drives the Doppler)."""

    def __init__(self, rng: np.random.Generator, points_per_m2: float = 4000.0, scale: float = 1.0):
        area = np.array([2 * np.pi * r * 0.4 for _, _, r in CAPSULES])  # ~0.4 m long on average
        n = np.maximum(8, (area * points_per_m2).astype(int))
        self.capsule = np.repeat(np.arange(len(CAPSULES)), n)
        self.t = rng.random(len(self.capsule))
        self.angle = rng.uniform(0, 2 * np.pi, len(self.capsule))
        self.radius = np.array([CAPSULES[c][2] for c in self.capsule]) * scale

    def surface(self, joints_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(25, 3) joints -> surface points (S, 3), outward normals (S, 3)."""
        a = joints_m[[CAPSULES[c][0] for c in range(len(CAPSULES))]]
        b = joints_m[[CAPSULES[c][1] for c in range(len(CAPSULES))]]
        axis = b - a
        axis = axis / np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), 1e-6)
        u, v = _basis(axis)
        c = self.capsule
        normal = u[c] * np.cos(self.angle)[:, None] + v[c] * np.sin(self.angle)[:, None]
        centre = a[c] + (b[c] - a[c]) * self.t[:, None]
        return centre + normal * self.radius[:, None], normal


def simulate_recording(
    joints_m: np.ndarray, rng: np.random.Generator, config: RealSensorConfig = RealSensorConfig(), name: str = "sim"
) -> MarsRecording:
    """(T, 25, 3) Kinect joints in the radar frame (REP-103), 0.1 s apart -> a MarsRecording of SYNTHETIC radar
    frames with those skeletons as truth. The body's surface moves with the joints; consecutive frames that
    jump more than 0.5 m (a cut between takes) get zero velocity."""
    # Every visible surface may reflect (static_velocity 0); the Doppler is noisy (limbs' micro-motion, 10 Hz
    # Kinect motion is smooth), and after quantisation the demo's clutter removal thins the zero bin.
    model = sim.RadarModel(
        points_at_ref=config.points_at_ref,
        static_keep_prob=1.0,
        static_velocity_mps=0.0,
        fov_elevation_deg=35.0,
        range_sigma_m=float(rng.uniform(0.02, 0.05)),
        azimuth_sigma_deg=float(rng.uniform(1.0, 3.0)),
        elevation_sigma_deg=float(rng.uniform(2.0, 5.0)),
        velocity_sigma_mps=config.doppler_sigma_mps,
        ghosts_per_frame=float(rng.uniform(0.5, 2.0)),
    )
    sampler = CapsuleSampler(rng)
    body = []
    for k in range(len(joints_m)):
        p, n = sampler.surface(joints_m[k])
        nxt = joints_m[min(k + 1, len(joints_m) - 1)]
        if np.max(np.linalg.norm(nxt - joints_m[k], axis=1)) > 0.5:
            nxt = joints_m[k]
        p2, _ = sampler.surface(nxt)
        vel = (p2 - p) / FRAME_PERIOD_S
        body.append(sim.radar_frame([(p, n, vel)], model, rng)[0])
    if config.elevation_quantiles:
        body = map_elevation(body, np.asarray(config.elevation_quantiles, np.float64))
    frames = []
    quant = np.asarray(config.intensity_quantiles, np.float64)
    for pts in body:
        m = rng.poisson(config.outliers_per_frame)
        if m:
            r = rng.uniform(1.0, 3.4, m)
            az = np.radians(rng.uniform(-60, 60, m))
            el = np.radians(rng.uniform(-35, 35, m))
            out = np.zeros((m, 5), np.float32)
            out[:, :3] = np.column_stack([r * np.cos(el) * np.cos(az), r * np.cos(el) * np.sin(az), r * np.sin(el)])
            out[:, VELOCITY] = rng.choice([-1, 0, 0, 1], m) * DOPPLER_STEP_MPS
            out[:, INTENSITY] = rng.normal(8, 3, m)
            pts = np.concatenate([pts, out])
        if config.cap_points and len(pts) > MAX_POINTS_PER_FRAME:
            pts = pts[rng.choice(len(pts), MAX_POINTS_PER_FRAME, replace=False)]
        pts = pts.copy()
        if config.zero_azimuth_frac > 0:
            pts[rng.random(len(pts)) < config.zero_azimuth_frac, 1] = 0.0
        if config.quantise_doppler:
            pts[:, VELOCITY] = np.round(pts[:, VELOCITY] / DOPPLER_STEP_MPS) * DOPPLER_STEP_MPS
            pts = pts[(pts[:, VELOCITY] != 0) | (rng.random(len(pts)) < config.static_keep_prob)]
        if len(quant) and len(pts):
            # The simulator's SNR (dB, ~N(mu, sigma)) mapped by rank onto the real intensity distribution.
            z = (pts[:, INTENSITY] - np.median(pts[:, INTENSITY])) / max(float(np.std(pts[:, INTENSITY])), 1e-3)
            q = np.clip(0.5 * (1 + erf(z / np.sqrt(2))), 0, 1)
            pts[:, INTENSITY] = np.interp(q, np.linspace(0, 1, len(quant)), quant)
        frames.append(pts.astype(np.float32))
    stamps = np.arange(len(joints_m)) * FRAME_PERIOD_S
    return MarsRecording(name, 0, "sim", "synthetic", stamps, tuple(frames), joints_m.astype(np.float32))


def _elevation_rad(xyz: np.ndarray) -> np.ndarray:
    return np.arctan2(xyz[:, 2], np.linalg.norm(xyz[:, :2], axis=1))


def map_elevation(frames: list[np.ndarray], quantiles_rad: np.ndarray) -> list[np.ndarray]:
    """Points (N, 5) of one recording's frames with their elevation angles mapped by rank, over the whole
    recording, onto quantiles_rad (Q,) ascending; range and azimuth are kept. New arrays."""
    counts = [len(f) for f in frames]
    if not sum(counts):
        return [f.copy() for f in frames]
    pts = np.concatenate(frames).astype(np.float64)
    el = _elevation_rad(pts[:, :3])
    rank = (np.argsort(np.argsort(el, kind="stable"), kind="stable") + 0.5) / len(el)
    el_new = np.interp(rank, np.linspace(0, 1, len(quantiles_rad)), quantiles_rad)
    r = np.linalg.norm(pts[:, :3], axis=1)
    az = np.arctan2(pts[:, 1], pts[:, 0])
    pts[:, 0] = r * np.cos(el_new) * np.cos(az)
    pts[:, 1] = r * np.cos(el_new) * np.sin(az)
    pts[:, 2] = r * np.sin(el_new)
    return [p.astype(np.float32) for p in np.split(pts, np.cumsum(counts)[:-1])]


def random_sequences(
    motions: list[np.ndarray],
    sequences: int,
    frames: int,
    rng: np.random.Generator,
    config: RealSensorConfig = RealSensorConfig(),
) -> list[MarsRecording]:
    """`sequences` SYNTHETIC recordings of `frames` consecutive Kinect frames from random places in the motions,
    each body scaled about the floor (x0.88-1.12) and moved by up to +-0.3 m (x, y)."""
    out = []
    for s in range(sequences):
        m = motions[int(rng.integers(len(motions)))]
        k0 = int(rng.integers(0, max(1, len(m) - frames)))
        j = m[k0 : k0 + frames].astype(np.float64)
        floor = -radar_height_from_skeletons(m)
        scale = rng.uniform(0.88, 1.12)
        centre = np.array([*j[:, 0, :2].mean(0), floor])
        j = (j - centre) * scale + centre + np.array([*rng.uniform(-0.3, 0.3, 2), 0.0])
        out.append(simulate_recording(j, rng, config, name=f"sim{s}"))
    return out


def sensor_statistics(recordings: list[MarsRecording]) -> dict[str, float]:
    """Points per frame (median), fraction of points on the zero-azimuth bin, with zero Doppler, on
    0.356 m/s steps, intensity median / 95th percentile."""
    pts = np.concatenate([f for r in recordings for f in r.frames])
    counts = np.array([len(f) for r in recordings for f in r.frames])
    v = pts[:, VELOCITY]
    return {
        "points_per_frame": float(np.median(counts)),
        "zero_azimuth": float(np.mean(pts[:, 1] == 0)),
        "zero_doppler": float(np.mean(v == 0)),
        "doppler_on_steps": float(np.mean(np.abs(v / DOPPLER_STEP_MPS - np.round(v / DOPPLER_STEP_MPS)) < 1e-3)),
        "intensity_median": float(np.median(pts[:, INTENSITY])),
        "intensity_p95": float(np.percentile(pts[:, INTENSITY], 95)),
        **{f"elevation_p{q}_deg": float(np.degrees(np.percentile(_elevation_rad(pts[:, :3]), q))) for q in (5, 50, 95)},
    }


def elevation_quantiles(
    recordings: list[MarsRecording], n: int = 101, max_elevation_deg: float = 35.0, max_azimuth_deg: float = 60.0
) -> tuple[float, ...]:
    """Elevation angle quantiles (rad) of the points inside the radar's field of view (the pipeline's gate);
    give it recordings without outliers (MARS `wooutlier`): the body's points."""
    pts = np.concatenate([f[:, :3] for r in recordings for f in r.frames])
    el = _elevation_rad(pts)
    az = np.arctan2(pts[:, 1], pts[:, 0])
    keep = (np.abs(el) <= np.radians(max_elevation_deg)) & (np.abs(az) <= np.radians(max_azimuth_deg))
    return tuple(float(x) for x in np.percentile(el[keep], np.linspace(0, 100, n)))


def intensity_quantiles(recordings: list[MarsRecording], n: int = 101) -> tuple[float, ...]:
    pts = np.concatenate([f[:, INTENSITY] for r in recordings for f in r.frames])
    return tuple(float(x) for x in np.percentile(pts, np.linspace(0, 100, n)))


def matched_dataset(
    motions: list[np.ndarray],
    sequences: int,
    net_config,
    pipeline_config,
    seed: int = 0,
    config: RealSensorConfig = RealSensorConfig(),
    frames: int = 20,
) -> dict[str, np.ndarray]:
    """SYNTHETIC training samples from `sequences` simulated recordings of the Kinect motions, through the
    pipeline's front end like the REAL ones (mars_training.real_dataset)."""
    from pose_perception.evaluation.radar.mars_training import RealDataConfig, real_dataset

    recs = random_sequences(motions, sequences, frames, np.random.default_rng([seed, 17]), config)
    return real_dataset(
        recs,
        net_config,
        pipeline_config,
        RealDataConfig(mirror=net_config.mirror_symmetric, seed=seed + 1, scale_range=None),
    )
