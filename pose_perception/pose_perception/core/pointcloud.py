"""Point clouds whose layout parses but whose numbers are garbage: a wrong is_bigendian flag or point_step turns
metres into 1e-38 or 1e+30. ROS-free check on the structured array a PointCloud2 was read into."""

from __future__ import annotations

from typing import Sequence

import numpy as np


class PointLayoutError(ValueError):
    """The declared layout (fields, point_step, endianness) does not describe the data."""


def check_plausible_xyz(
    cloud: np.ndarray,
    fields: Sequence[str],
    declared_big_endian: bool,
    max_abs_m: float = 1000.0,
    tiny_m: float = 1e-20,
) -> None:
    """Raise PointLayoutError when most finite x/y/z values are absurd (beyond max_abs_m or nonzero below tiny_m)
    and saying which fix makes them plausible: the other byte order, or another point_step. cloud: structured (N,)."""
    if cloud.size == 0 or any(f not in (cloud.dtype.names or ()) for f in fields):
        return
    xyz = np.stack([np.asarray(cloud[f], dtype=np.float64) for f in fields], axis=-1)
    finite = np.isfinite(xyz)
    absurd = ~finite | (np.abs(xyz) > max_abs_m) | ((xyz != 0) & (np.abs(xyz) < tiny_m))
    if np.mean(np.any(absurd, axis=1)) <= 0.5:
        return
    hint = "check point_step, the field offsets and is_bigendian"
    if all(cloud.dtype.fields[f][0].kind == "f" for f in fields):
        swapped = np.stack([cloud[f].byteswap().astype(np.float64) for f in fields], axis=-1)
        ok = np.isfinite(swapped) & (np.abs(swapped) <= max_abs_m) & ~((swapped != 0) & (np.abs(swapped) < tiny_m))
        if np.mean(np.all(ok, axis=1)) > 0.9:
            hint = (
                f"the data reads correctly in the other byte order: the cloud says is_bigendian="
                f"{str(declared_big_endian).lower()}, the publisher wrote "
                f"{'little' if declared_big_endian else 'big'}-endian"
            )
    raise PointLayoutError(
        f"{100 * np.mean(np.any(absurd, axis=1)):.0f} % of the points have x/y/z that are not "
        f"finite or not within {max_abs_m:g} m: the declared layout does not match the data ({hint})"
    )
