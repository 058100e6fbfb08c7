"""Model-based refinement of radar skeletons: a few gradient steps that move the network's COCO body 17 joints
so that a capsule body built on them explains the person's newest radar points, with a prior towards the
network's estimate (weighted by its confidence) and the network's bone lengths kept.

All people of a frame are fitted as one torch batch. Units: metres; every array is in one frame (the radar's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Capsules on COCO body 17 joints: (joint a, joint b, radius m). Radii of an average adult, as the simulator's
# body (evaluation/radar/simulator.py CAPSULES); the torso runs from the mid-hip to the mid-shoulder point.
L_SHO, R_SHO, L_ELB, R_ELB, L_WRI, R_WRI, L_HIP, R_HIP, L_KNE, R_KNE, L_ANK, R_ANK = range(5, 17)
LIMB_CAPSULES = (
    (L_SHO, L_ELB, 0.05),
    (R_SHO, R_ELB, 0.05),
    (L_ELB, L_WRI, 0.04),
    (R_ELB, R_WRI, 0.04),
    (L_HIP, L_KNE, 0.075),
    (R_HIP, R_KNE, 0.075),
    (L_KNE, L_ANK, 0.055),
    (R_KNE, R_ANK, 0.055),
    (L_SHO, R_SHO, 0.07),
    (L_HIP, R_HIP, 0.11),
)
BONES = (
    (L_SHO, L_ELB),
    (R_SHO, R_ELB),
    (L_ELB, L_WRI),
    (R_ELB, R_WRI),
    (L_HIP, L_KNE),
    (R_HIP, R_KNE),
    (L_KNE, L_ANK),
    (R_KNE, R_ANK),
    (L_SHO, R_SHO),
    (L_HIP, R_HIP),
    (L_SHO, L_HIP),
    (R_SHO, R_HIP),
)
TORSO_RADIUS_M = 0.13
HEAD_RADIUS_M = 0.1


@dataclass(frozen=True)
class FitConfig:
    """steps / lr_m: gradient steps (Adam) and their size in metres; robust_scale: point-to-surface distance (in
    units of the point noise, whose sigmas along range, azimuth and elevation follow) beyond which a point stops
    pulling (ghosts, noise, another limb); prior_floor_m: smallest prior sigma of a joint (its sigma follows the
    network's confidence, trained as exp(-(error / 10 cm)^2)); bone_weight: how strongly the bone lengths of the
    network's estimate are kept; max_age_s: only points this recent are fitted (older ones lag behind a moving
    limb); girth: radius factor of the capsules. Chosen on training clips (docs/radar.md), never on held-out ones."""

    steps: int = 8
    lr_m: float = 0.02
    robust_scale: float = 3.0  # in units of the point noise
    # Point noise of a TI IWR1443/6843-class radar after the driver: the middle of the simulator's ranges.
    range_sigma_m: float = 0.03
    azimuth_sigma_deg: float = 1.4
    elevation_sigma_deg: float = 2.8
    prior_floor_m: float = 0.05
    bone_weight: float = 100.0
    prior_weight: float = 1.0
    max_age_s: float = 0.075
    girth: float = 1.05


def _surface_residuals(joints: torch.Tensor, x: torch.Tensor, girth: float) -> torch.Tensor:
    """Vectors (P, M, K, 3) from the nearest point of each capsule surface of the body on joints (P, 17, 3) to
    the points x (P, M, 3); K = the limb capsules, the torso and the head."""
    ia, ib, r = zip(*LIMB_CAPSULES)
    head = joints[:, :5].mean(1, keepdim=True)
    a = torch.cat([joints[:, list(ia)], 0.5 * (joints[:, [L_HIP]] + joints[:, [R_HIP]]), head], 1)
    b = torch.cat([joints[:, list(ib)], 0.5 * (joints[:, [L_SHO]] + joints[:, [R_SHO]]), head], 1)
    radius = torch.tensor(list(r) + [TORSO_RADIUS_M, HEAD_RADIUS_M], dtype=x.dtype, device=x.device) * girth
    ab = b - a
    t = ((x[:, :, None] - a[:, None]) * ab[:, None]).sum(-1) / (ab * ab).sum(-1).clamp(min=1e-6)[:, None]
    axis_point = a[:, None] + t.clamp(0, 1)[..., None] * ab[:, None]
    v = x[:, :, None] - axis_point
    dist = torch.linalg.norm(v, dim=-1, keepdim=True).clamp(min=1e-6)
    return v - v / dist * radius[None, None, :, None]


def _sensor_axes(x: torch.Tensor) -> torch.Tensor:
    """Unit vectors (P, M, 3, 3) along range, azimuth and elevation of points x (P, M, 3) seen from the radar
    at the origin (the frame of the points)."""
    u_r = x / torch.linalg.norm(x, dim=-1, keepdim=True).clamp(min=1e-6)
    up = torch.zeros_like(x)
    up[..., 2] = 1.0
    u_az = torch.linalg.cross(up, u_r)
    u_az = u_az / torch.linalg.norm(u_az, dim=-1, keepdim=True).clamp(min=1e-6)
    return torch.stack([u_r, u_az, torch.linalg.cross(u_r, u_az)], -2)


def refine_skeletons(
    joints: np.ndarray,
    confidence: np.ndarray,
    people_points: list[np.ndarray],
    people_age_s: list[np.ndarray],
    config: FitConfig = FitConfig(),
) -> np.ndarray:
    """joints (P, 17, 3) m and confidence (P, 17) from the network, per person points (M_p, >=3) m and their
    age (M_p,) s, all in one frame -> refined joints (P, 17, 3) float32 in that frame."""
    if len(joints) == 0:
        return joints
    sel = [p[a <= config.max_age_s, :3] for p, a in zip(people_points, people_age_s)]
    m = max(1, max(len(s) for s in sel))
    pts = np.ones((len(sel), m, 3), np.float32)  # padding: any finite point away from the radar (weight 0)
    mask = np.zeros((len(sel), m), np.float32)
    for i, s in enumerate(sel):
        pts[i, : len(s)] = s
        mask[i, : len(s)] = 1.0
    with torch.enable_grad():
        j0 = torch.from_numpy(np.asarray(joints, np.float32))
        x = torch.from_numpy(pts)
        w = torch.from_numpy(mask)
        conf = torch.from_numpy(np.asarray(confidence, np.float32)).clamp(1e-4, 1 - 1e-4)
        sigma = (0.1 * torch.sqrt(-torch.log(conf))).clamp(min=config.prior_floor_m)
        bones = list(zip(*BONES))
        length0 = torch.linalg.norm(j0[:, list(bones[0])] - j0[:, list(bones[1])], dim=-1)
        j = j0.clone().requires_grad_(True)
        opt = torch.optim.Adam([j], lr=config.lr_m)
        c2 = config.robust_scale**2
        # Noise of each point along range, azimuth and elevation (m): the residuals are weighed in units of
        # the sensor's noise, so the fit trusts a point's range and doubts its elevation.
        rng_m = torch.linalg.norm(x, dim=-1, keepdim=True)
        sigma_pt = torch.cat(
            [
                torch.full_like(rng_m, config.range_sigma_m),
                rng_m * np.radians(config.azimuth_sigma_deg),
                rng_m * np.radians(config.elevation_sigma_deg),
            ],
            -1,
        ).clamp(min=1e-3)  # (P, M, 3)
        axes = _sensor_axes(x)
        for _ in range(config.steps):
            res = _surface_residuals(j, x, config.girth)  # (P, M, K, 3)
            comp = torch.einsum("pmkc,pmac->pmka", res, axes) / sigma_pt[:, :, None]
            m2 = (comp * comp).sum(-1).amin(-1)  # squared Mahalanobis distance to the nearest capsule
            data = ((m2 / (m2 + c2)) * w).sum(1)
            prior = config.prior_weight * 0.5 * (((j - j0) / sigma[..., None]) ** 2).sum((1, 2))
            length = torch.linalg.norm(j[:, list(bones[0])] - j[:, list(bones[1])], dim=-1)
            bone = config.bone_weight * ((length - length0) ** 2).sum(1)
            loss = (data + prior + bone).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return j.detach().numpy().astype(np.float32)
