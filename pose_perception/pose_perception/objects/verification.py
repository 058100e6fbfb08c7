"""Hypothesis verification: render the model at each pose and score it against the observed depth with a
visibility-aware, VSD-like test plus normal consistency; batched (numpy on CPU, torch on CUDA).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose_perception.core.camera import CameraIntrinsics, project
from pose_perception.objects.model import ObjectModel
from pose_perception.objects.render import cast_model, pixel_rays


@dataclass(frozen=True)
class VerificationConfig:
    """tau: depth agreement tolerance max(tau_min_m, tau_diameter_fraction * d). A rendered pixel is
    - matched when observed depth is within tau and the surface normals agree (cos > normal_cos),
    - occluded when the observation is closer than rendered - tau (something in front: not counted),
    - violating when the observation is farther than rendered + tau (we see through the model),
    - missing when the observation is missing where depth is expected: the model's surface faces the camera
      (cos of the viewing angle > missing_cos) with no edge of the model and no occluder within missing_edge_px;
      other missing pixels are ignored.
    fit = matched / (matched + violating_weight * violating + normal_penalty * depth-close-but-normal-wrong
                     + missing_weight * missing).
    Sensors drop depth at silhouettes, at grazing angles and beside occluders, so missing depth counts only where
    none of these applies: there a surface in range usually returns depth, and a pose whose surface lies over
    nothing the sensor can see (beyond its range, e.g. a bottle fitted upright on a lying mug, its top over the
    far background) must not pass on the pixels that do match. Dark or shiny objects also lose depth: lower
    missing_weight for them.
    visible_fraction = matched / rendered.
    Boundary test (rejects a model fitted into part of a larger surface, which the tests above cannot see):
    in a ring from ring_gap_px to ring_px outside the rendered silhouette (the gap absorbs the few pixels of
    residual pose error) the observed surface should end, i.e. be farther than
    the adjacent model depth + tau (background) or closer (occluder); ring pixels continuing the model's
    surface, and not lying on the support plane, are continuations. boundary = 1 - continuations /
    (continuations + background).
    Support: with a support plane, a model sinking into it (more than plane_penetration_m) is physically
    impossible and lets the plane "occlude" the model for free; support = 1 - fraction of the model's surface
    samples below the plane / max_below_fraction, clipped to [0, 1].
    score = fit_term * min(1, visible_fraction / full_visibility) * min(1, boundary / full_boundary) * support,
    fit_term = clip((fit - fit_zero) / (fit_full - fit_zero), 0, 1).
    With the colour image's edges (objects/edges.py), the silhouette contour must lie on image edges of the same
    orientation: edge = supported / usable contour pixels (those not behind an occluder), and the score is also
    multiplied by clip((edge - edge_zero) / (edge_full - edge_zero), 0, 1); a model fitted into part of a larger
    surface, or onto texture-less depth artefacts, has its contour where the image has no edge. Ring pixels that
    continue the surface next to a supported contour pixel count less against the boundary, by
    clip((edge - a) / (b - a), 0, 1) for edge_forgives_boundary = (a, b) (None: not at all): two objects touching at
    the same depth (a drill lying on a box) are told apart by colour where depth cannot, when the outline is
    confirmed nearly all round. A continuation is forgiven only where the colour across it changes (the ring pixel's
    colour differs from the model-side pixel it continues by more than forgive_min_colour_diff, in the blurred
    image): two touching objects differ in colour, while a shape-alike fitted into
    part of one object (a can into a mug's body, whose rim or the rest of the body continues the surface) has an
    image edge on its outline from the label or shading, but the same colour on both sides (None: not required).
    The colour distance is objects/verification.colour_distance (of chromaticities).
    Hollow objects (hollow_aware, for models whose concave_fraction exceeds cavity_min_fraction): in the pixels where
    the model's ray enters a cavity (its surface lies well behind its convex hull, _cavity_pixels), an observation
    counts only when it matches: behind or just in front of the rendered inside, or at its depth with another
    normal, it does not count against the pose, nor does missing depth there: the mesh's inside is unreliable
    and the sensor sees into the real one at any depth.
    Embedded: a rendered pixel whose observation lies in front of it by less than max(embed_m, 2 tau) puts the model's
    surface just inside an observed surface (a can fitted inside a bottle, a banana sunk into a chair's back): solid
    objects do not interpenetrate, and a real occluder stands clear in front, so such pixels weigh embedded_weight in
    the fit's denominator instead of counting as occluded.
    In image: objects largely outside the image cannot be verified (their boundary and most of their surface are
    not seen): the score is multiplied by clip((f - in_image_zero) / (in_image_full - in_image_zero), 0, 1), f the
    share of the model's surface samples that project into the image.
    Missing depth is forgiven in proportion to how well the contour lies on edges, clip((edge - a) / (b - a), 0, 1)
    for edge_explains_missing = (a, b): where the image confirms the outline, the object is there and its surface
    (shiny metal lids, dark plastic) returned no depth; a pose over beyond-range background has no such outline.
    Seeing through the model (violating) weighs more than a match: any surface at the right depth matches, but the
    background behind the model contradicts it. On SYNTHETIC YCB scenes with sensor noise, true poses mostly reach
    fit 0.88-0.99; another object's surface mostly stays below 0.85, and those above are told apart by the boundary
    and support tests. The weights and the fit_zero/fit_full ramp were chosen on eval seeds 0-2 and checked on seeds
    3-4 (docs/objects.md); the edge, missing-depth, solidity and in-image settings on the 6 REAL dev frames
    (docs/objects-real.md)."""

    tau_min_m: float = 0.01
    tau_diameter_fraction: float = 0.06
    normal_cos: float = 0.5
    normal_step_px: int = 4
    violating_weight: float = 1.5
    normal_penalty: float = 1.0
    missing_weight: float = 1.0
    missing_cos: float = 0.5
    missing_edge_px: int = 4
    full_visibility: float = 0.3
    full_boundary: float = 0.9
    fit_zero: float = 0.5
    fit_full: float = 0.92
    plane_penetration_m: float = 0.015
    max_below_fraction: float = 0.1
    ring_gap_px: int = 4
    ring_px: int = 10
    stride: int = 2
    margin_px: int = 12
    edge_zero: float = 0.35
    edge_full: float = 0.65
    edge_explains_missing: tuple[float, float] = (0.7, 0.95)
    embed_m: float = 0.03
    embedded_weight: float = 1.0
    in_image_zero: float = 0.6
    in_image_full: float = 0.9
    edge_forgives_boundary: tuple[float, float] | None = (0.8, 0.95)
    forgive_min_colour_diff: float | None = 0.06
    hollow_aware: bool = True
    cavity_min_fraction: float = 0.1


@dataclass(frozen=True)
class Verification:
    """Scores of one hypothesis; counts are over the rendered pixels of the (strided) region."""

    score: float
    fit: float
    visible_fraction: float
    n_rendered: int
    n_matched: int
    n_violating: int
    n_occluded: int
    boundary: float = 1.0
    support: float = 1.0
    n_wrong_normal: int = 0
    n_missing: int = 0
    edge: float | None = None  # None: no colour image, or no contour pixel could vote
    n_embedded: int = 0
    in_image: float = 1.0


def projected_bbox(model: ObjectModel, T_cam_obj: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray | None:
    """Pixel box [u0, v0, u1, v1) of the model's 3D bounding box at T_cam_obj, clipped; None if not in view."""
    corners = np.array(np.meshgrid([0, 1], [0, 1], [0, 1])).reshape(3, -1).T * model.bbox_size_m + model.bbox_min_m
    pc = corners @ T_cam_obj[:3, :3].T + T_cam_obj[:3, 3]
    if np.any(pc[:, 2] <= 1e-3):
        return None
    uv = project(pc, intrinsics.K)
    lo, hi = np.floor(uv.min(axis=0)), np.ceil(uv.max(axis=0)) + 1
    box = np.array([lo[0], lo[1], hi[0], hi[1]])
    box = np.clip(box, 0, [intrinsics.width, intrinsics.height, intrinsics.width, intrinsics.height]).astype(np.int64)
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    return box


def _edge_aware_difference(P: np.ndarray, axis: int, step: int, max_jump_m: float) -> np.ndarray:
    """Tangent (h, w, 3) of an organised point grid along `axis`, NaN where unknown.

    Central difference where both neighbours lie on the same surface; at a depth discontinuity (a silhouette, an
    occluder's edge, a dropout hole) the one-sided difference towards the neighbour on this pixel's own surface,
    i.e. the one with the smaller depth change. NaN when both sides jump by more than max_jump_m."""
    n = P.shape[axis]
    fwd = np.full_like(P, np.nan)
    bwd = np.full_like(P, np.nan)
    if n > step:
        hi = [slice(None)] * 3
        lo = [slice(None)] * 3
        hi[axis], lo[axis] = slice(step, None), slice(None, -step)
        d = P[tuple(hi)] - P[tuple(lo)]
        fwd[tuple(lo)] = d  # P[i + step] - P[i]
        bwd[tuple(hi)] = d  # P[i] - P[i - step]
    with np.errstate(invalid="ignore"):
        jf = np.abs(fwd[..., 2])
        jb = np.abs(bwd[..., 2])
        jf = np.where(np.isfinite(jf), jf, np.inf)
        jb = np.where(np.isfinite(jb), jb, np.inf)
        both_ok = (jf <= max_jump_m) & (jb <= max_jump_m)
        one_sided = np.where((jf <= jb)[..., None], fwd, bwd)
        t = np.where(both_ok[..., None], 0.5 * (fwd + bwd), one_sided)
        t[np.minimum(jf, jb) > max_jump_m] = np.nan
    return t


def observed_normals(points_hw3: np.ndarray, step: int = 1, max_jump_m: float = np.inf) -> np.ndarray:
    """Normals (h, w, 3) of an organised camera-frame point grid (h, w, 3), facing the camera; NaN where unknown.

    Differences over +-step cells: a wider baseline than neighbouring pixels keeps depth quantisation
    (millimetres at 1 m, in steps) from turning the normals of flat surfaces into noise. With a finite
    max_jump_m the differences never straddle a depth discontinuity (see _edge_aware_difference): a normal
    computed across an object's silhouette belongs to no surface, and on small objects such pixels are a
    large share of the silhouette."""
    P = points_hw3
    du = _edge_aware_difference(P, 1, step, max_jump_m)
    dv = _edge_aware_difference(P, 0, step, max_jump_m)
    n = np.cross(du, dv)
    n /= np.linalg.norm(n, axis=-1, keepdims=True) + 1e-12
    flip = np.sum(n * points_hw3, axis=-1) > 0  # must point against the viewing ray
    n[flip] *= -1
    return n


def colour_distance(a: np.ndarray, b: np.ndarray, dark: float = 30.0) -> np.ndarray:
    """Distance (N,) between the chromaticities of colours a, b (N, C) on the 8-bit scale: each colour divided by
    its channel sum (plus `dark`, so that the noisy hue of dark pixels counts less). A shading change of one surface
    (a side in shadow: same hue, 0.7 x as bright) stays small; another object's hue differs."""
    sa, sb = a.sum(-1, keepdims=True) + dark, b.sum(-1, keepdims=True) + dark
    return np.linalg.norm((a + dark / a.shape[-1]) / sa - (b + dark / b.shape[-1]) / sb, axis=-1)


def boundary_scores(
    dr_grid,
    pts_grid,
    normals_grid,
    plane,
    tau: float,
    gap_cells: int,
    ring_cells: int,
    plane_tol_m: float,
    min_informative: float = 0.25,
    contour_on_edge=None,
    forgive=None,
    colour_grid=None,
    min_colour_diff: float | None = None,
) -> np.ndarray:
    """dr_grid (B, h, w) rendered model depth (NaN off the model); pts_grid (h, w, 3) observed camera-frame
    points (NaN invalid); normals_grid (h, w, 3) observed normals; plane (4,) or None -> boundary score (B,) in [0, 1].

    A ring pixel continues the surface seen at q, its nearest visible model pixel (observed depth = rendered
    depth), when it lies within tau of the observed tangent plane at q and within 3 tau in depth: a surface that
    goes on smoothly (flat or gently curved) where the model says the object ends. A real object edge is a depth
    jump or a crease. Only ring pixels whose q is about as near as the silhouette count: next to an occluded part
    of the model the occluder is what is seen. Ring pixels that are missing, on the support plane or closer than
    q (occluders) say nothing. 1 when nothing is said.
    contour_on_edge (B, h, w) bool or None: silhouette contour pixels lying on an image edge; a continuation whose
    nearest contour pixel is one of them counts only 1 - forgive[b] (forgive (B,) in [0, 1], default 1): the image
    shows the object ending there; with colour_grid (h, w, C) and min_colour_diff, only where the ring pixel's colour
    differs from q's by more than min_colour_diff (colour_distance: another object, not more of the same surface).
    boundary = 1 - continuations / max(informative pixels, min_informative * ring pixels)."""
    from scipy import ndimage

    valid = np.isfinite(pts_grid[..., 2])
    on_plane = np.zeros(valid.shape, bool)
    if plane is not None:
        with np.errstate(invalid="ignore"):
            on_plane = np.abs(pts_grid @ plane[:3] + plane[3]) < plane_tol_m
    out = np.ones(len(dr_grid))
    for b, dr in enumerate(dr_grid):
        mask = np.isfinite(dr)
        if not mask.any():
            out[b] = 0.0
            continue
        inner = ndimage.binary_dilation(mask, iterations=gap_cells) if gap_cells > 0 else mask
        ring_all = ndimage.binary_dilation(mask, iterations=ring_cells) & ~inner
        ring = ring_all & valid & ~on_plane
        if not ring.any():
            continue
        # q: the nearest model pixel that is actually seen (observed depth = rendered depth). The silhouette
        # pixels themselves are grazing views of the model, whose rendered depth rarely matches the observation;
        # next to an occluded part of the model the nearest seen pixel is far, and the ring pixel says nothing.
        with np.errstate(invalid="ignore"):
            seen = mask & (np.abs(pts_grid[..., 2] - dr) < tau)
        if not seen.any():
            continue
        d_sil = ndimage.distance_transform_edt(~mask)
        d_seen, (iy, ix) = ndimage.distance_transform_edt(~seen, return_indices=True)
        ry, rx = np.nonzero(ring & (d_seen <= d_sil + 2.0))
        qy, qx = iy[ry, rx], ix[ry, rx]
        P, Q, nQ = pts_grid[ry, rx], pts_grid[qy, qx], normals_grid[qy, qx]
        with np.errstate(invalid="ignore"):
            # No normal at q (a depth jump on both sides of it): the depth step alone tells a continuation.
            d_plane = np.where(
                np.isfinite(nQ).all(axis=1), np.abs(np.sum(nQ * (P - Q), axis=1)), np.abs(P[:, 2] - Q[:, 2])
            )
            d_depth = P[:, 2] - Q[:, 2]
            cont = (d_plane < tau) & (np.abs(d_depth) < 3 * tau)
            background = ~cont & (d_depth > 0)
        if contour_on_edge is not None and cont.any():
            edge_b = contour_on_edge[b]
            contour_b = mask & ~ndimage.binary_erosion(mask, border_value=0)
            _, (cy, cx) = ndimage.distance_transform_edt(~contour_b, return_indices=True)
            f = 1.0 if forgive is None else float(forgive[b])
            forgiven = edge_b[cy[ry, rx], cx[ry, rx]]
            if colour_grid is not None and min_colour_diff is not None:
                forgiven &= colour_distance(colour_grid[ry, rx], colour_grid[qy, qx]) > min_colour_diff
            cont_w = np.where(forgiven, 1.0 - f, 1.0) * cont
        else:
            cont_w = cont.astype(np.float64)
        # A handful of informative pixels (most of the ring on the table or missing) must not decide alone.
        n = max(cont.sum() + background.sum(), min_informative * ring_all.sum())
        out[b] = 1.0 - cont_w.sum() / n if n > 0 else 1.0
    return out


def _where_depth_expected(
    dr, nr, dirs, do, grid_hw: tuple[int, int], tau: float, cfg: VerificationConfig
) -> np.ndarray:
    """dr (B, N) rendered depth, nr (B, N, 3) rendered normals, dirs (N, 3) pixel rays, do (N,) observed depth, all on
    an (h, w) grid -> (B, N) bool: the rendered pixels where a sensor would normally return depth, i.e. where the
    model's surface faces the camera (|cos| of the viewing angle > missing_cos) and is smooth within
    missing_edge_px (no silhouette, no self-occlusion edge: no rendered depth jump over 2 tau), and no occluder is
    seen within missing_edge_px (sensors drop depth along the edges of whatever is in front)."""
    from scipy import ndimage

    unit = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    facing = np.abs(np.einsum("bnk,nk->bn", np.nan_to_num(nr), unit)) > cfg.missing_cos
    side = 2 * round(cfg.missing_edge_px / cfg.stride) + 1
    window = (1, side, side)  # image space only, per hypothesis
    grid = dr.reshape(len(dr), *grid_hw)
    filled = np.where(np.isfinite(grid), grid, 1e3)  # off the model counts as a jump: the silhouette is an edge
    smooth = ndimage.maximum_filter(filled, window) - ndimage.minimum_filter(filled, window) < 2 * tau
    with np.errstate(invalid="ignore"):
        occluder = do.reshape(grid_hw)[None] < grid - tau
    near_occluder = ndimage.maximum_filter(occluder, window)
    return facing & (smooth & ~near_occluder).reshape(len(dr), -1)


def _scores_numpy(dr, nr, do, no, tau, cfg: VerificationConfig, cavity=None):
    """dr (B, N) rendered depth, nr (B, N, 3) rendered normals, do (N,), no (N, 3) observed; cavity (B, N) bool or
    None: pixels that count only when they match (_cavity_pixels)."""
    rendered = np.isfinite(dr)
    both = rendered & np.isfinite(do)[None]
    with np.errstate(invalid="ignore"):
        diff = do[None] - dr
        close = both & (np.abs(diff) < tau)
        occluded = both & (diff < -tau)
        violating = both & (diff > tau)
        embedded = occluded & (diff > -max(cfg.embed_m, 2.0 * tau))
    cos = np.abs(np.nan_to_num(np.einsum("bnk,nk->bn", np.nan_to_num(nr), np.nan_to_num(no))))
    unknown = ~np.isfinite(no).all(axis=1)[None]  # no observed normal: the depth test alone decides
    matched = close & ((cos > cfg.normal_cos) | unknown)
    wrong_normal = close & ~matched
    if cavity is not None:
        violating &= ~cavity
        embedded &= ~cavity
        wrong_normal &= ~cavity
    n_r, n_m, n_v, n_o = rendered.sum(1), matched.sum(1), violating.sum(1), occluded.sum(1)
    n_w = wrong_normal.sum(1)
    return n_r, n_m, n_v, n_o, n_w, embedded.sum(1)


def _scores_torch(dr, nr, do, no, tau, cfg: VerificationConfig, device: str, cavity=None):
    import torch

    dr_t = torch.as_tensor(dr, device=device)
    nr_t = torch.nan_to_num(torch.as_tensor(nr, device=device))
    do_t = torch.as_tensor(do, device=device)[None]
    no_t = torch.nan_to_num(torch.as_tensor(no, device=device))
    rendered = torch.isfinite(dr_t)
    both = rendered & torch.isfinite(do_t)
    diff = torch.nan_to_num(do_t - dr_t, nan=0.0)
    close = both & (diff.abs() < tau)
    occluded = both & (diff < -tau)
    violating = both & (diff > tau)
    embedded = occluded & (diff > -max(cfg.embed_m, 2.0 * tau))
    cos = torch.einsum("bnk,nk->bn", nr_t, no_t).abs()
    unknown = ~torch.isfinite(torch.as_tensor(no, device=device)).all(dim=1)[None]
    matched = close & ((cos > cfg.normal_cos) | unknown)
    wrong_normal = close & ~matched
    if cavity is not None:
        keep = ~torch.as_tensor(cavity, device=device)
        violating, embedded, wrong_normal = violating & keep, embedded & keep, wrong_normal & keep
    out = [x.sum(1).cpu().numpy() for x in (rendered, matched, violating, occluded, wrong_normal, embedded)]
    return tuple(out)


def _cavity_pixels(model: ObjectModel, poses, dirs, dr, tau: float, config: VerificationConfig) -> np.ndarray | None:
    """(B, N) bool: rendered pixels whose ray enters a cavity of the model (a mug's or bowl's inside): it hits the
    mesh more than max(CAVITY_DEPTH_FRACTION x diameter, 2 tau) behind the convex hull. None when the model has no
    cavity worth the extra ray cast (concave_fraction <= config.cavity_min_fraction) or hollow_aware is off.

    Scanned meshes model the inside of a container poorly (the YCB mug's has a false floor halfway down), and
    sensors see into it at depths no pose can promise: a mug posed upright on the REAL dev frames saw through its
    own inside on 20-45 % of its pixels and scored 0.1-0.25, so only its upside-down poses were left."""
    from pose_perception.objects.model import CAVITY_DEPTH_FRACTION

    if not config.hollow_aware or model.hull_scene is None or model.concave_fraction <= config.cavity_min_fraction:
        return None
    dh = np.empty_like(dr)
    for i, T in enumerate(poses):
        dh[i], _ = cast_model(model.hull_scene, T, dirs)
    with np.errstate(invalid="ignore"):
        return np.isfinite(dr) & (dr > dh + max(CAVITY_DEPTH_FRACTION * model.diameter_m, 2.0 * tau))


def verify_hypotheses(
    model: ObjectModel,
    poses: list[np.ndarray],
    depth_m: np.ndarray,
    intrinsics: CameraIntrinsics,
    config: VerificationConfig = VerificationConfig(),
    roi_xyxy: np.ndarray | None = None,
    device: str = "cpu",
    plane: np.ndarray | None = None,
    plane_tol_m: float = 0.015,
    min_score: float = 0.0,
    edges=None,
) -> list[Verification]:
    """Score each T_cam_obj in `poses` against depth_m (H, W) float32 metres (NaN invalid).

    All hypotheses are rendered over one region (the union of their projected boxes and roi_xyxy, plus a
    margin) so the scoring is one batched computation; on device "cuda" the per-pixel tests run in torch.
    plane: support plane (4,) [n, d] in the camera frame (n . p + d = 0), whose points never count as continuations.
    min_score: the missing-depth and boundary tests (the costliest parts, which can only lower a score) are skipped
    for hypotheses whose score stays below min_score without them; their score is that upper bound, their boundary
    NaN and n_missing 0. With min_score = the caller's threshold, every decision against it is unchanged.
    edges: ImageEdges of the colour image (objects/edges.py) or None (no contour test).
    """
    boxes = [b for b in (projected_bbox(model, T, intrinsics) for T in poses) if b is not None]
    if roi_xyxy is not None:
        boxes.append(np.asarray(roi_xyxy))
    empty = Verification(0.0, 0.0, 0.0, 0, 0, 0, 0)
    if not boxes:
        return [empty for _ in poses]
    b = np.stack(boxes)
    m = config.margin_px
    roi = np.array([b[:, 0].min() - m, b[:, 1].min() - m, b[:, 2].max() + m, b[:, 3].max() + m])
    roi = np.clip(roi, 0, [intrinsics.width, intrinsics.height, intrinsics.width, intrinsics.height])
    roi[:2] -= roi[:2] % config.stride  # one pixel grid for every call: scores do not depend on the region
    dirs, u, v = pixel_rays(intrinsics, roi, config.stride)
    do_grid = depth_m[np.ix_(v.astype(np.int64), u.astype(np.int64))].astype(np.float32)
    do_grid = np.where(do_grid > 0, do_grid, np.nan)
    pts_grid = dirs.reshape(len(v), len(u), 3) * do_grid[..., None]
    tau = max(config.tau_min_m, config.tau_diameter_fraction * model.diameter_m)
    no = observed_normals(pts_grid, max(1, round(config.normal_step_px / config.stride)), tau).reshape(-1, 3)
    do = do_grid.ravel()
    dr = np.empty((len(poses), len(do)), dtype=np.float32)
    nr = np.empty((len(poses), len(do), 3), dtype=np.float32)
    for i, T in enumerate(poses):
        dr[i], nr[i] = cast_model(model.scene, T, dirs)
    cavity = _cavity_pixels(model, poses, dirs, dr, tau, config)
    if device.startswith("cuda"):
        n_r, n_m, n_v, n_o, n_w, n_e = _scores_torch(dr, nr, do, no, tau, config, device, cavity)
    else:
        n_r, n_m, n_v, n_o, n_w, n_e = _scores_numpy(dr, nr, do, no, tau, config, cavity)
    support = np.ones(len(poses))
    if plane is not None:
        for i, T in enumerate(poses):
            pts = model.dense_points @ T[:3, :3].T.astype(np.float32) + T[:3, 3].astype(np.float32)
            below = np.mean(pts @ plane[:3] + plane[3] < -config.plane_penetration_m)
            support[i] = float(np.clip(1.0 - below / config.max_below_fraction, 0.0, 1.0))
    visible = n_m / np.maximum(n_r, 1)
    grid_hw = (len(v), len(u))
    edge = np.full(len(poses), np.nan)
    edge_term = np.ones(len(poses))
    on_edge = None
    if edges is not None:
        from pose_perception.objects.edges import contour_support

        inside = np.isfinite(dr).reshape(len(poses), *grid_hw)
        with np.errstate(invalid="ignore"):
            hidden = (do[None] < dr - tau).reshape(len(poses), *grid_hw)  # an occluder's edge is seen there
        _, on_edge, edge = contour_support(edges, inside, u, v, usable=~hidden)
        if config.edge_full > config.edge_zero:
            edge_term = np.where(
                np.isfinite(edge),
                np.clip((edge - config.edge_zero) / (config.edge_full - config.edge_zero), 0.0, 1.0),
                1.0,
            )

    in_image = np.ones(len(poses))
    if config.in_image_full > config.in_image_zero:
        for i, T in enumerate(poses):
            pc = model.points @ T[:3, :3].T.astype(np.float32) + T[:3, 3].astype(np.float32)
            with np.errstate(invalid="ignore", divide="ignore"):
                uv = project(pc, intrinsics.K)
                inside_img = (
                    (uv[:, 0] >= 0) & (uv[:, 0] < intrinsics.width) & (uv[:, 1] >= 0) & (uv[:, 1] < intrinsics.height)
                )
            in_image[i] = np.clip(
                (inside_img.mean() - config.in_image_zero) / (config.in_image_full - config.in_image_zero), 0.0, 1.0
            )
    missing_weight = np.full(len(poses), config.missing_weight)
    if edges is not None:
        a, b = config.edge_explains_missing
        missing_weight *= 1.0 - np.clip((np.nan_to_num(edge, nan=0.0) - a) / max(b - a, 1e-9), 0.0, 1.0)

    def score_bound(n_x):  # the score with a perfect boundary, and the fit
        denom = (
            n_m
            + config.violating_weight * n_v
            + config.normal_penalty * n_w
            + missing_weight * n_x
            + config.embedded_weight * n_e
        )
        fit = np.where(denom > 0, n_m / np.maximum(denom, 1e-12), 0.0)
        fit_term = np.clip((fit - config.fit_zero) / (config.fit_full - config.fit_zero), 0.0, 1.0)
        return fit_term * np.minimum(1.0, visible / config.full_visibility) * support * edge_term * in_image, fit

    # Missing depth can only lower a score: it is counted (a costlier test) where the score can still reach min_score.
    n_x = np.zeros(len(poses), dtype=np.int64)
    todo = np.flatnonzero((n_r > 0) & (score_bound(n_x)[0] >= min_score) & (np.isfinite(dr) & ~np.isfinite(do)).any(1))
    if len(todo) and config.missing_weight > 0:
        expected = _where_depth_expected(dr[todo], nr[todo], dirs, do, grid_hw, tau, config)
        if cavity is not None:
            expected &= ~cavity[todo]
        n_x[todo] = (expected & ~np.isfinite(do)[None]).sum(1)
    bound, fit = score_bound(n_x)
    boundary = np.full(len(poses), np.nan)
    todo = np.flatnonzero((n_r > 0) & (bound >= min_score))
    if len(todo):
        ring_cells = max(2, round(config.ring_px / config.stride))
        gap_cells = min(ring_cells - 1, round(config.ring_gap_px / config.stride))
        boundary[todo] = boundary_scores(
            dr[todo].reshape(len(todo), len(v), len(u)),
            pts_grid,
            no.reshape(len(v), len(u), 3),
            plane,
            tau,
            gap_cells,
            ring_cells,
            plane_tol_m,
            contour_on_edge=on_edge[todo] if (on_edge is not None and config.edge_forgives_boundary) else None,
            colour_grid=None
            if (edges is None or edges.colour is None)
            else edges.colour[np.ix_(v.astype(np.int64), u.astype(np.int64))],
            min_colour_diff=config.forgive_min_colour_diff,
            forgive=None
            if config.edge_forgives_boundary is None
            else np.clip(
                (np.nan_to_num(edge[todo], nan=0.0) - config.edge_forgives_boundary[0])
                / (config.edge_forgives_boundary[1] - config.edge_forgives_boundary[0]),
                0.0,
                1.0,
            ),
        )
    results = []
    for i in range(len(poses)):
        if n_r[i] == 0:
            results.append(empty)
            continue
        score = float(bound[i])
        if np.isfinite(boundary[i]):
            score *= min(1.0, boundary[i] / config.full_boundary)
        results.append(
            Verification(
                score,
                float(fit[i]),
                float(visible[i]),
                int(n_r[i]),
                int(n_m[i]),
                int(n_v[i]),
                int(n_o[i]),
                float(boundary[i]),
                float(support[i]),
                int(n_w[i]),
                int(n_x[i]),
                float(edge[i]) if np.isfinite(edge[i]) else None,
                int(n_e[i]),
                float(in_image[i]),
            )
        )
    return results
