"""Which catalogue models can explain a segment at all: a cheap size test before the costly search.

With a catalogue of tens of meshes the search (features, hypotheses, ICP, verification per model and segment) is
what costs; most models cannot fit a given segment (a pitcher in a 3 cm high clamp, a marker in a cereal box), and
the visible points already bound the object's size from below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PrefilterConfig:
    """A model of diameter d and bounding-box extents D1 >= D2 >= D3 can explain a segment whose robust extent (2-98
    percentiles along its principal axes) is e1 >= e2 >= e3 and whose height above the support plane is h when
    - e1 <= max_extent_factor * d + slack_m (the visible part is never larger than the object),
    - e2 <= max_extent_factor * hypot(D2, D3) + slack_m (nor wider across its longest axis than its cross-section),
    - e1 * e2 >= min_area_factor * D1 * D2 (some view shows at least this much of it, even when partly hidden:
      0.25 leaves room for half the object hidden in both directions),
    - with a support plane, min_height_factor * D3 - height_slack_m <= h <= D1 + height_slack_m (resting on the plane
      it stands at most D1 and, lying flat, at least D3 high; an object on top of another is part of a merged
      segment, which the fallback below covers).
    The lower bounds (area, least height) hold for a segment in which touching objects merged too: a model failing
    them is never searched. The upper bounds fail for merged segments: a model failing only them is searched after
    the others, and only when none of those explained the segment (fits_alone / could_be_part).
    flat_max_m: a segment at most this thick (e3) is searched only for the models that alone can explain it, never
    as a merged one (could_be_part): touching objects that merged into one segment stand out of a common plane, while
    a flat segment larger than any model is a surface (a table edge, a wall, a chair's seat). On the 6 REAL dev frames
    the merged segments were 0.12-0.15 m thick, the flat background ones 0.006-0.023 m, and the flat segments that
    held an object (a box face, a clamp, a marker, a tuna can, a bleach bottle) were each found by a model that fits
    alone. Two flat boxes side by side, seen from above, would merge into a flat segment that only the fallback
    could split: this rule gives them up to save the search of every model in every flat background segment."""

    max_extent_factor: float = 1.15
    min_area_factor: float = 0.25
    min_height_factor: float = 0.8
    slack_m: float = 0.02
    height_slack_m: float = 0.015
    flat_max_m: float = 0.025


@dataclass(frozen=True)
class SegmentShape:
    """extents_m (3,) robust principal extents, largest first; height_m: height of its top above the support
    plane (NaN without a plane)."""

    extents_m: np.ndarray
    height_m: float
    bottom_m: float = float("nan")  # height of its lowest part (2nd percentile) above the plane


def segment_shape(points_m: np.ndarray, plane: np.ndarray | None) -> SegmentShape:
    """points_m (N, 3) camera-frame points of a segment; plane (4,) support plane or None."""
    p = np.asarray(points_m, dtype=np.float64)
    sub = p[:: max(1, len(p) // 3000)]
    c = sub - sub.mean(axis=0)
    _, _, Vt = np.linalg.svd(c, full_matrices=False)
    proj = c @ Vt.T
    lo, hi = np.percentile(proj, [2, 98], axis=0)
    ext = np.sort(hi - lo)[::-1]
    height = bottom = float("nan")
    if plane is not None:
        bottom, height = (float(v) for v in np.percentile(sub @ plane[:3] + plane[3], [2, 98]))
    return SegmentShape(ext, height, bottom)


def model_extents(model) -> np.ndarray:
    """(3,) bounding-box extents of an ObjectModel, largest first."""
    return np.sort(np.asarray(model.bbox_size_m, dtype=np.float64))[::-1]


def could_be_part(model, shape: SegmentShape, config: PrefilterConfig = PrefilterConfig()) -> bool:
    """The lower bounds: the segment is large and tall enough to hold (a partly hidden view of) the model."""
    D = model_extents(model)
    if shape.extents_m[0] * shape.extents_m[1] < config.min_area_factor * D[0] * D[1]:
        return False
    h = shape.height_m
    return not (np.isfinite(h) and h < config.min_height_factor * D[2] - config.height_slack_m)


def fits_alone(model, shape: SegmentShape, config: PrefilterConfig = PrefilterConfig()) -> bool:
    """could_be_part and the upper bounds: the model alone can explain the whole segment."""
    D = model_extents(model)
    if shape.extents_m[0] > config.max_extent_factor * model.diameter_m + config.slack_m:
        return False
    if shape.extents_m[1] > config.max_extent_factor * float(np.hypot(D[1], D[2])) + config.slack_m:
        return False
    h = shape.height_m
    if np.isfinite(h) and h > D[0] + config.height_slack_m:
        return False
    return could_be_part(model, shape, config)


def off_the_plane(models, shape: SegmentShape, config: PrefilterConfig = PrefilterConfig()) -> SegmentShape:
    """The shape without its height when even its lowest part is higher above the support plane than any of the models
    (ObjectModel sequence) is tall: whatever it is does not rest on that plane (REAL ycbv_clutter: the plane found
    is the floor, the objects lie on a chair 0.4-0.9 m above it), so the height bounds say nothing about it."""
    tallest = max(float(model_extents(m)[0]) for m in models)
    if np.isfinite(shape.bottom_m) and shape.bottom_m > tallest + config.height_slack_m:
        return SegmentShape(shape.extents_m, float("nan"), float("nan"))
    return shape


def is_flat(shape: SegmentShape, config: PrefilterConfig = PrefilterConfig()) -> bool:
    """True when the segment is at most flat_max_m thick (e3): one object's face, or background, never objects that
    merged (PrefilterConfig.flat_max_m)."""
    return bool(shape.extents_m[2] <= config.flat_max_m)


def size_rank(model, shape: SegmentShape) -> float:
    """Lower is likelier: how far the segment's largest extent is from what a view of the model usually shows."""
    return abs(float(np.log(max(shape.extents_m[0], 1e-3) / (0.8 * model_extents(model)[0]))))
