"""Lifting 2D whole-body keypoints to metric 3D in the camera frame: from a registered depth image, or from
MediaPipe's metric world landmarks placed by solving for the camera-frame translation; plus bone clean-up.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from pose_perception.core import keypoints as kp
from pose_perception.core.camera import backproject, project


class LiftingError(ValueError):
    """Inputs to 3D lifting that cannot belong together (shapes, sizes)."""


class DepthSizeError(LiftingError):
    """The depth image does not have the size of the colour image it must be registered to."""


# Skin-to-joint-centre offset (metres) per COCO body keypoint, added along the viewing ray: depth sensors see
# the surface in front of a joint, the skeleton joint is inside the limb. Values are adult joint depths below
# the skin (hip joint ~10 cm, shoulder ~6 cm, knee ~6 cm, elbow ~4 cm, wrist and ankle 3-4.5 cm); they were
# cross-checked against the median surface-to-joint distance of anny's COCO joints on SYNTHETIC renders:
# `pose-perception eval human-3d --seed 12345 --surface-offsets [--poses random]` (the reported evaluation
# uses seed 0).
# Face points lie on the skin; toes are on the surface, heels are seen through the foot from the front.
_BODY_SURFACE_OFFSET_M = np.array(
    [
        0.005,
        0.007,
        0.007,
        0.01,
        0.01,  # nose, eyes, ears
        0.06,
        0.06,
        0.04,
        0.04,
        0.03,
        0.03,  # shoulders, elbows, wrists
        0.10,
        0.10,
        0.06,
        0.06,
        0.045,
        0.045,
    ],  # hips, knees, ankles
    dtype=np.float64,
)
_FEET_SURFACE_OFFSET_M = np.array([0.0, 0.0, 0.055, 0.0, 0.0, 0.055])  # big toe, small toe, heel (L, R)


def surface_offsets_m(num_keypoints: int) -> np.ndarray:
    """(K,) metres from the visible surface to the keypoint for COCO body 17 or COCO-WholeBody 133."""
    offsets = np.zeros(num_keypoints)
    offsets[: min(17, num_keypoints)] = _BODY_SURFACE_OFFSET_M[: min(17, num_keypoints)]
    if num_keypoints >= kp.COCO_WHOLEBODY_133.num_keypoints:
        offsets[kp.FEET] = _FEET_SURFACE_OFFSET_M
        offsets[kp.LEFT_HAND] = 0.008
        offsets[kp.RIGHT_HAND] = 0.008
    return offsets


def _check_keypoints(keypoints_uv: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uv = np.asarray(keypoints_uv, dtype=np.float64)
    conf = np.asarray(confidence, dtype=np.float64)
    if uv.ndim != 2 or uv.shape[1] != 2:
        raise LiftingError(f"keypoints_uv must be (K, 2) pixels, got shape {uv.shape}")
    if conf.shape != (uv.shape[0],):
        raise LiftingError(f"confidence must be ({uv.shape[0]},) to match keypoints_uv, got shape {conf.shape}")
    return uv, np.nan_to_num(np.clip(conf, 0.0, 1.0), nan=0.0)


def lift_with_depth(
    keypoints_uv: np.ndarray,
    confidence: np.ndarray,
    depth_m: np.ndarray,
    K: np.ndarray,
    window_px: int = 5,
    *,
    image_size_wh: Optional[tuple[int, int]] = None,
    background_margin_m: float = 0.8,
    front_margin_m: float = 1.2,
    cluster_gap_m: float = 0.08,
    add_surface_offset: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Robust per-keypoint depth lookup and back-projection.

    keypoints_uv: (K, 2) pixels in the colour image; confidence: (K,) in [0, 1]; depth_m: (H, W) float metres
    registered to colour (NaN or 0 invalid); K: (3, 3) colour intrinsics; window_px: side of the square window.
    image_size_wh: (W, H) of the colour image; if given, a depth image of another size raises DepthSizeError.

    Per keypoint: the valid depths in the window are split at gaps > cluster_gap_m and the cluster with the
    most centre-weighted support is taken (rejects background and neighbouring limbs at silhouette edges);
    its median is the surface depth. Keypoints whose surface depth lies more than background_margin_m behind
    (or front_margin_m in front of) the person's median are rejected as background / occluder. The
    surface-to-joint offset is added along the ray.

    Returns keypoints_3d (K, 3) float32 metres in the camera frame (NaN where unknown) and confidence (K,)
    float32 = 2D confidence x depth evidence (fraction of window supporting the depth, spread of the depth).
    """
    uv, conf = _check_keypoints(keypoints_uv, confidence)
    depth = np.asarray(depth_m)
    if depth.ndim != 2:
        raise LiftingError(f"depth_m must be a (H, W) image in metres, got shape {depth.shape}")
    H, W = depth.shape
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    if image_size_wh is not None and (int(image_size_wh[0]), int(image_size_wh[1])) != (W, H):
        raise DepthSizeError(
            f"depth image is {W}x{H} but the colour image is {image_size_wh[0]}x{image_size_wh[1]}: depth must be "
            "registered to colour (same size); enable depth registration in the camera driver"
        )
    if not (0.0 <= K[0, 2] <= W and 0.0 <= K[1, 2] <= H):
        raise DepthSizeError(
            f"depth image is {W}x{H} but the principal point ({K[0, 2]:.1f}, {K[1, 2]:.1f}) lies outside it: the "
            "depth is not registered to the colour camera these intrinsics describe"
        )

    n = uv.shape[0]
    r = max(int(window_px) // 2, 0)
    surface = np.full(n, np.nan)
    evidence = np.zeros(n)
    inside = np.all(np.isfinite(uv), axis=1) & (conf > 0)
    cols = np.round(np.nan_to_num(uv[:, 0], nan=-1.0)).astype(int)
    rows = np.round(np.nan_to_num(uv[:, 1], nan=-1.0)).astype(int)
    inside &= (cols >= 0) & (cols < W) & (rows >= 0) & (rows < H)
    window_area = (2 * r + 1) ** 2
    idx = np.flatnonzero(inside)
    if idx.size:
        # All windows at once: (N, S) with S = window_area, NaN outside the image and where depth is invalid.
        dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
        wr = rows[idx, None] + dy.ravel()[None]
        wc = cols[idx, None] + dx.ravel()[None]
        outside = (wr < 0) | (wr >= H) | (wc < 0) | (wc >= W)
        win = depth[np.clip(wr, 0, H - 1), np.clip(wc, 0, W - 1)].astype(np.float64)
        win[outside | ~(win > 0) | ~np.isfinite(win)] = np.nan
        # Pixels near the keypoint count more: the keypoint lies on its own limb, a neighbouring limb or the
        # background may fill the window's corners.
        centre_weight = np.exp(-0.5 * (dx**2 + dy**2).ravel() / max(r / 1.5, 0.5) ** 2)
        order = np.argsort(win, axis=1)  # NaN sorts last
        z = np.take_along_axis(win, order, axis=1)
        w = np.where(np.isfinite(z), centre_weight[order], 0.0)
        # Clusters separated by depth jumps (a limb in front of the wall, an arm in front of the chest); the one
        # with the most centre-weighted support is the keypoint's surface, the nearer one on a tie.
        jumps = np.diff(z, axis=1) > cluster_gap_m
        label = np.concatenate([np.zeros((len(idx), 1), dtype=int), np.cumsum(jumps, axis=1)], axis=1)
        support = np.zeros((len(idx), window_area))
        np.add.at(support, (np.repeat(np.arange(len(idx)), window_area), label.ravel()), w.ravel())
        best = np.argmax(support >= support.max(axis=1, keepdims=True) * 0.999, axis=1)
        in_cluster = (label == best[:, None]) & np.isfinite(z)
        has = in_cluster.any(axis=1)
        cluster = np.where(in_cluster, z, np.nan)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no depth there
                med = np.nanmedian(cluster, axis=1)
                spread = np.nanmedian(np.abs(cluster - med[:, None]), axis=1)
        count = in_cluster.sum(axis=1)
        surface[idx[has]] = med[has]
        evidence[idx[has]] = (count[has] / window_area) ** 0.5 * np.exp(-spread[has] / 0.05)

    found = np.isfinite(surface)
    body = found.copy()
    body[min(17, n) :] = False
    ref = surface[body] if np.count_nonzero(body) >= 3 else surface[found]
    if ref.size:
        person_z = float(np.median(ref))
        outlier = found & ((surface > person_z + background_margin_m) | (surface < person_z - front_margin_m))
        surface[outlier] = np.nan
        evidence[outlier] = 0.0

    points = backproject(uv, surface, K)
    if add_surface_offset:
        offsets = surface_offsets_m(n)
        rng = np.linalg.norm(points, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            points = points * ((rng + offsets) / rng)[:, None]
    valid = np.all(np.isfinite(points), axis=1)
    points[~valid] = np.nan
    out_conf = np.where(valid, conf * evidence, 0.0)
    return points.astype(np.float32), out_conf.astype(np.float32)


# Points of each group with no world landmark are placed at the depth of this anchor keypoint.
def _world_anchor(num_keypoints: int) -> np.ndarray:
    anchor = np.arange(num_keypoints)
    if num_keypoints >= kp.COCO_WHOLEBODY_133.num_keypoints:
        anchor[kp.FACE] = 0
        anchor[kp.LEFT_HAND] = 9
        anchor[kp.RIGHT_HAND] = 10
        anchor[17:20] = 15
        anchor[20:23] = 16
    return anchor


def solve_translation(
    points_m: np.ndarray,
    uv: np.ndarray,
    weights: np.ndarray,
    K: np.ndarray,
    iterations: int = 10,
    robust_scale_px: float = 5.0,
) -> Optional[np.ndarray]:
    """Translation t (3,) such that project(points_m + t) ~ uv, robust to a few wrong keypoints.

    A weighted linear solve of the pinhole equations (linear in t once multiplied by depth) starts
    Gauss-Newton on the pixel residuals with soft-L1 weights at robust_scale_px (iteratively re-weighted:
    3x3 solves, ~0.2 ms, where a general solver took ~7 ms). points_m (N, 3), uv (N, 2), weights (N,).
    Returns None with fewer than 3 usable points or a solution behind the camera."""
    ok = np.all(np.isfinite(points_m), axis=1) & np.all(np.isfinite(uv), axis=1) & (weights > 0)
    if np.count_nonzero(ok) < 3:
        return None
    P, q, w = points_m[ok], uv[ok], np.sqrt(weights[ok])
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    du, dv = q[:, 0] - cx, q[:, 1] - cy
    # fx*tx - du*tz = du*Z - fx*X ; fy*ty - dv*tz = dv*Z - fy*Y
    zeros = np.zeros_like(du)
    A = np.concatenate(
        [
            np.stack([np.full_like(du, fx), zeros, -du], axis=1),
            np.stack([zeros, np.full_like(dv, fy), -dv], axis=1),
        ]
    )
    b = np.concatenate([du * P[:, 2] - fx * P[:, 0], dv * P[:, 2] - fy * P[:, 1]])
    ww = np.concatenate([w, w])
    t, *_ = np.linalg.lstsq(A * ww[:, None], b * ww, rcond=None)
    if not np.all(np.isfinite(t)) or t[2] + np.min(P[:, 2]) <= 0.05:
        return None
    for _ in range(iterations):
        X, Y, Z = (P + t).T
        if np.min(Z) <= 1e-3:
            break
        r = np.concatenate([fx * X / Z + cx - q[:, 0], fy * Y / Z + cy - q[:, 1]]) * ww
        J = np.zeros((r.size, 3))
        n = len(Z)
        J[:n, 0], J[:n, 2] = fx / Z, -fx * X / Z**2
        J[n:, 1], J[n:, 2] = fy / Z, -fy * Y / Z**2
        J *= ww[:, None]
        robust = 1.0 / np.sqrt(1.0 + (r / robust_scale_px) ** 2)  # soft-L1 weight of each residual
        step = np.linalg.solve(J.T @ (J * robust[:, None]) + 1e-9 * np.eye(3), -J.T @ (robust * r))
        if not np.all(np.isfinite(step)):
            break
        t = t + step
        if np.linalg.norm(step) < 1e-6:
            break
    if t[2] + np.min(P[:, 2]) <= 0.05:
        return None
    return t


def lift_with_world_landmarks(
    keypoints_uv: np.ndarray, confidence: np.ndarray, keypoints_world_m: np.ndarray, K: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Metric 3D without depth: MediaPipe's hip-centred world landmarks (camera-aligned axes) placed in the
    camera frame by the translation that best reprojects them onto the 2D keypoints.

    keypoints_uv (K, 2) pixels; confidence (K,); keypoints_world_m (K, 3) metres, NaN where none; K (3, 3).
    Keypoints without a world landmark (face, hands) are back-projected at the depth of their anchor (nose,
    wrist, ankle) with half the confidence. Confidence also drops with the reprojection residual.
    Returns keypoints_3d (K, 3) float32 camera frame metres (NaN where unknown), confidence (K,) float32;
    all NaN / zero when the translation cannot be solved (fewer than 3 usable keypoints).
    """
    uv, conf = _check_keypoints(keypoints_uv, confidence)
    world = np.asarray(keypoints_world_m, dtype=np.float64)
    if world.shape != (uv.shape[0], 3):
        raise LiftingError(f"keypoints_world_m must be ({uv.shape[0]}, 3) metres, got shape {world.shape}")
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    n = uv.shape[0]
    out = np.full((n, 3), np.nan)
    out_conf = np.zeros(n)
    t = solve_translation(world, uv, conf, K)
    if t is None:
        return out.astype(np.float32), out_conf.astype(np.float32)

    has_world = np.all(np.isfinite(world), axis=1)
    out[has_world] = world[has_world] + t
    reproj = project(np.where(has_world[:, None], out, 1.0), K)
    residual_px = np.linalg.norm(reproj - uv, axis=1)
    ok_uv = np.all(np.isfinite(uv), axis=1)
    spread = uv[ok_uv & (conf > 0)]
    scale_px = max(5.0, 0.05 * float(np.linalg.norm(np.ptp(spread, axis=0)))) if len(spread) else 5.0
    fit = np.exp(-0.5 * (np.nan_to_num(residual_px, nan=np.inf) / scale_px) ** 2)
    out_conf[has_world] = (conf * fit)[has_world]

    anchor = _world_anchor(n)
    need = ~has_world & ok_uv & (conf > 0) & has_world[anchor]
    if np.any(need):
        out[need] = backproject(uv[need], out[anchor[need], 2], K)
        out_conf[need] = 0.5 * conf[need] * out_conf[anchor[need]]
    bad = ~np.all(np.isfinite(out), axis=1)
    out[bad] = np.nan
    out_conf[bad] = 0.0
    return out.astype(np.float32), out_conf.astype(np.float32)


# Limb chains of COCO body 17 (root, middle, end) with the typical adult bone lengths root-middle and
# middle-end (metres, joint centre to joint centre; the scale is fitted per person so only ratios matter).
_LIMB_CHAINS: tuple[tuple[int, int, int, float, float], ...] = (
    (5, 7, 9, 0.29, 0.25),
    (6, 8, 10, 0.29, 0.25),  # arms
    (11, 13, 15, 0.42, 0.41),
    (12, 14, 16, 0.42, 0.41),  # legs
)
_TORSO_BONES: tuple[tuple[int, int, float], ...] = (
    (5, 6, 0.35),
    (11, 12, 0.22),
    (5, 11, 0.50),
    (6, 12, 0.50),
)
# Groups whose points must stay close to an anchor: (slice, anchor keypoint, max distance m, max depth spread).
_GROUPS_133 = (
    (kp.FACE, 0, 0.25, 0.15),
    (kp.LEFT_HAND, 9, 0.30, 0.15),
    (kp.RIGHT_HAND, 10, 0.30, 0.15),
)
_FOOT_MAX_M = 0.28  # ankle to toe or heel, adult, with margin
_FOOT_TYPICAL_M = 0.13


def _slide_along_ray(point: np.ndarray, anchors: list[tuple[np.ndarray, float]], slack_m: float = 0.05) -> np.ndarray:
    """Moves point along its camera ray to the range that best gives the wanted distances to the anchors.

    A depth camera sees the first surface on the ray, so the joint cannot be in front of its measured range
    (minus slack_m): the search runs from there to 1.5 m behind it (1 cm grid, then 1 mm around the best)."""
    rng = float(np.linalg.norm(point))
    d = point / rng

    def cost(t: np.ndarray) -> np.ndarray:
        p = t[:, None] * d[None]
        return sum((np.linalg.norm(p - c, axis=1) - length) ** 2 for c, length in anchors)

    coarse = np.arange(max(rng - slack_m, 0.1), rng + 1.5, 0.01)
    t0 = coarse[int(np.argmin(cost(coarse)))]
    fine = np.arange(max(t0 - 0.01, 0.1), t0 + 0.01, 0.001)
    return d * float(fine[int(np.argmin(cost(fine)))])


def enforce_bone_lengths(
    keypoints_3d: np.ndarray,
    confidence: np.ndarray,
    layout: kp.KeypointLayout = kp.COCO_WHOLEBODY_133,
    tolerance: float = 1.4,
) -> tuple[np.ndarray, np.ndarray]:
    """Bone-length-consistent clean-up of camera-frame keypoints (metres; the camera at the origin).

    The person's scale is the median of (measured / typical) over the torso and limb bones. In each limb
    chain (shoulder-elbow-wrist, hip-knee-ankle) a bone is implausible when its length is off by more than
    `tolerance` (ratio) from scale x typical. Both bones off: the middle joint is wrong; only the outer bone
    off: the end joint is wrong. The wrong joint slides along its camera ray (its 2D position is kept: depth
    is what goes wrong, mostly through occlusion) to the depth that restores the bone lengths, never in front
    of the measured surface, at half confidence; if no depth fits, a grossly wrong joint (a bone off by more
    than 2x) is dropped (NaN, confidence 0) and a mildly wrong one kept at 0.3x confidence. Face and hand
    points far from their anchor joint or off the group's depth are moved to the group's median depth along
    their ray; toes and heels too far from their ankle slide along their ray to a foot's length (half
    confidence). Torso joints are
    not moved; inconsistent torso bones or upper bones only halve their joints' confidence.

    keypoints_3d (K, 3), confidence (K,) for layout (COCO body 17 or COCO-WholeBody 133). Returns new arrays
    (float32), inputs untouched.
    """
    pts = np.array(keypoints_3d, dtype=np.float64)
    conf = np.nan_to_num(np.array(confidence, dtype=np.float64), nan=0.0)
    n = layout.num_keypoints
    if pts.shape != (n, 3) or conf.shape != (n,):
        raise LiftingError(
            f"keypoints_3d must be ({n}, 3) and confidence ({n},) for layout {layout.name}, "
            f"got {pts.shape} and {conf.shape}"
        )
    finite = np.all(np.isfinite(pts), axis=1) & (conf > 0)

    def length(a: int, b: int) -> float:
        return float(np.linalg.norm(pts[a] - pts[b])) if finite[a] and finite[b] else np.nan

    bones = (
        list(_TORSO_BONES)
        + [(r, m, l1) for r, m, _, l1, _ in _LIMB_CHAINS]
        + [(m, e, l2) for _, m, e, _, l2 in _LIMB_CHAINS]
    )
    ratios = np.array([length(a, b) / typ for a, b, typ in bones])
    ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
    if ratios.size < 3:
        return pts.astype(np.float32), conf.astype(np.float32)
    scale = float(np.clip(np.median(ratios), 0.5, 1.3))

    def off(a: int, b: int, typ: float) -> bool:
        ratio = length(a, b) / (scale * typ)
        return bool(np.isfinite(ratio) and not (1 / tolerance <= ratio <= tolerance))

    for a, b, typ in _TORSO_BONES:
        if off(a, b, typ):
            conf[[a, b]] *= 0.5

    for r, m, e, l1, l2 in _LIMB_CHAINS:
        upper, lower = off(r, m, l1), off(m, e, l2)
        if not (upper or lower):
            continue
        if upper and not lower and finite[e]:
            conf[[r, m]] *= 0.5  # the shoulder / hip is off; torso joints are not moved
            continue
        # Candidates: the middle joint (fits both bones) or, with only the outer bone off, the end joint.
        candidates = [(m, [(pts[r], scale * l1)] + ([(pts[e], scale * l2)] if finite[e] else []))]
        if lower and not upper:
            candidates.append((e, [(pts[m], scale * l2)]))
        tried = []
        for joint, anchors in candidates:
            moved = _slide_along_ray(pts[joint], anchors)
            cost = sum(np.log(np.linalg.norm(moved - c) / length) ** 2 for c, length in anchors)
            # Equal fits: the joint with the weaker evidence is the one to move.
            tried.append(((round(cost, 3), conf[joint]), joint, moved))
        tried.sort(key=lambda item: item[0])
        for _, joint, moved in tried:
            old = pts[joint].copy()
            pts[joint] = moved
            if not (off(r, m, l1) or off(m, e, l2)):
                conf[joint] *= 0.5
                break
            pts[joint] = old
        else:
            # No depth on either ray fits. The nearer joint is the suspect (an occluder in front of a joint
            # makes it look nearer, nothing makes it look farther); it is dropped when grossly wrong (a bone off
            # by more than 2x), else kept at 0.3x confidence.
            joint = min((j for _, j, _ in tried), key=lambda j: float(pts[j, 2]))
            ratios = [length(a, b) / (scale * typ) for a, b, typ in ((r, m, l1), (m, e, l2)) if joint in (a, b)]
            if max(abs(np.log(x)) for x in ratios if np.isfinite(x)) > np.log(2.0):
                pts[joint] = np.nan
                conf[joint] = 0.0
                finite[joint] = False
            else:
                conf[joint] *= 0.3

    if n >= kp.COCO_WHOLEBODY_133.num_keypoints:
        # Face and hands (many points): outliers go to the group's median depth along their ray.
        for group, anchor, max_dist, max_spread in _GROUPS_133:
            idx = np.arange(n)[group]
            ok = idx[finite[idx]]
            if ok.size < 5:
                continue
            z_med = float(np.median(pts[ok, 2]))
            far = np.abs(pts[ok, 2] - z_med) > max_spread
            if finite[anchor]:
                far |= np.linalg.norm(pts[ok] - pts[anchor], axis=1) > max_dist
            for j in ok[far]:
                pts[j] = pts[j] * (z_med / pts[j, 2])
                conf[j] *= 0.5
        # Feet (three points each): a point too far from its ankle slides along its ray to a foot's length.
        for group, ankle in ((slice(17, 20), 15), (slice(20, 23), 16)):
            if not finite[ankle]:
                continue
            for j in np.arange(n)[group]:
                if finite[j] and np.linalg.norm(pts[j] - pts[ankle]) > _FOOT_MAX_M * scale:
                    pts[j] = _slide_along_ray(pts[j], [(pts[ankle], _FOOT_TYPICAL_M * scale)])
                    conf[j] *= 0.5
    bad = ~np.all(np.isfinite(pts), axis=1)
    pts[bad] = np.nan
    conf[bad] = 0.0
    return pts.astype(np.float32), conf.astype(np.float32)
