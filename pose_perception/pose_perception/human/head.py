"""Head orientation from the 68 iBUG face landmarks: PnP against a generic 3D face template.

Gives T_cam_head for the `head_<id>` TF frame (REP-155 axes: x forward out of the face, y left, z up).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from pose_perception.core.frames import make_T


class HeadPoseError(ValueError):
    """Face landmarks or intrinsics of the wrong shape."""


def _face_template_68_mm() -> np.ndarray:
    """The generic template in millimetres as (lateral a: subject's left +, up b, forward c) per iBUG point.

    Built in this module (no third-party data): a parametric average adult face whose main distances are
    the adult means of Farkas, "Anthropometry of the Head and Face" (1994): eye fissure ~30 mm, inner eye
    corners ~35 mm apart, mouth width ~50 mm, face width at the jaw angles ~140 mm, eye line to chin ~120 mm,
    nose tip ~30 mm in front of the eye corners. iBUG point 0 is on the subject's right (image left when the
    face looks at the camera).
    """
    pts = np.zeros((68, 3))
    # Jaw 0-16: from the right ear to the left along a curve that comes forward at the chin.
    phi = np.linspace(0.0, np.pi, 17)
    pts[0:17] = np.stack([-70.0 * np.cos(phi), -5.0 - 115.0 * np.sin(phi), -75.0 + 70.0 * np.sin(phi)], axis=1)
    # Brows 17-21 (right, outer to inner) and 22-26 (left, inner to outer).
    brow_a = np.array([-55.0, -45.0, -34.0, -23.0, -12.0])
    brow_b = np.array([20.0, 25.0, 27.0, 26.0, 23.0])
    brow_c = np.array([-16.0, -6.0, 0.0, 3.0, 5.0])
    pts[17:22] = np.stack([brow_a, brow_b, brow_c], axis=1)
    pts[22:27] = np.stack([-brow_a[::-1], brow_b[::-1], brow_c[::-1]], axis=1)
    # Nose bridge 27-30 (30 = tip) and nostrils 31-35.
    pts[27:31] = np.stack([np.zeros(4), [8.0, -7.0, -22.0, -37.0], [2.0, 10.0, 19.0, 30.0]], axis=1)
    pts[31:36] = np.stack([[-15.0, -8.0, 0.0, 8.0, 15.0], np.full(5, -45.0), [12.0, 16.0, 20.0, 16.0, 12.0]], axis=1)
    # Eyes: right 36 outer, 37-38 upper lid, 39 inner, 40-41 lower lid; left 42 inner ... 45 outer.
    right_eye = np.array(
        [
            [-47.0, 0.0, -8.0],
            [-39.0, 5.0, -2.0],
            [-27.0, 5.0, -1.0],
            [-18.0, 0.0, -2.0],
            [-27.0, -4.0, -1.0],
            [-39.0, -4.0, -2.0],
        ]
    )
    pts[36:42] = right_eye
    left_eye = right_eye[[3, 2, 1, 0, 5, 4]] * np.array([-1.0, 1.0, 1.0])
    pts[42:48] = left_eye
    # Mouth outer 48-59 from the right corner over the upper lip; inner 60-67.
    outer_a = np.array([-25.0, -15.0, -6.0, 0.0, 6.0, 15.0, 25.0, 15.0, 6.0, 0.0, -6.0, -15.0])
    outer_b = np.array([-72.0, -66.0, -63.0, -64.0, -63.0, -66.0, -72.0, -79.0, -82.0, -83.0, -82.0, -79.0])
    outer_c = 15.0 - 10.0 * (np.abs(outer_a) / 25.0) ** 2
    pts[48:60] = np.stack([outer_a, outer_b, outer_c], axis=1)
    inner_a = np.array([-20.0, -7.0, 0.0, 7.0, 20.0, 7.0, 0.0, -7.0])
    inner_b = np.array([-72.0, -69.0, -69.0, -69.0, -72.0, -75.0, -75.0, -75.0])
    pts[60:68] = np.stack([inner_a, inner_b, 12.0 - 6.0 * (np.abs(inner_a) / 20.0) ** 2], axis=1)
    return pts


def face_template_68_m() -> np.ndarray:
    """(68, 3) float64 metres in the REP-155 head frame: x forward out of the face, y to the subject's left,
    z up; origin between the eyes (the midpoint of the inner eye corners' line, on the eye plane)."""
    mm = _face_template_68_mm()
    return np.stack([mm[:, 2], mm[:, 0], mm[:, 1]], axis=1) / 1000.0


FACE_TEMPLATE_68_M = face_template_68_m()


def head_pose_from_face(
    face_uv: np.ndarray,
    face_conf: np.ndarray,
    K: np.ndarray,
    dist: Optional[np.ndarray] = None,
    min_conf: float = 0.3,
    min_points: int = 6,
) -> Optional[np.ndarray]:
    """T_cam_head (4, 4) float64 from face_uv (68, 2) pixels in iBUG-68 order with face_conf (68,), K (3, 3),
    dist: OpenCV distortion coefficients or None.

    cv2.solvePnP (EPnP start, iterative Levenberg-Marquardt refinement) against FACE_TEMPLATE_68_M using the
    landmarks with confidence >= min_conf. None with fewer than min_points such landmarks, a solution behind
    the camera, a face turned away from the camera, or a reprojection error above 15 % of the face size.
    Translation is only as good as the generic template's scale (a real face differs by ~10 %).
    """
    import cv2

    uv = np.asarray(face_uv, dtype=np.float64)
    conf = np.nan_to_num(np.asarray(face_conf, dtype=np.float64), nan=0.0)
    if uv.shape != (68, 2) or conf.shape != (68,):
        raise HeadPoseError(f"face_uv must be (68, 2) and face_conf (68,), got {uv.shape} and {conf.shape}")
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    dist = np.zeros(5) if dist is None else np.asarray(dist, dtype=np.float64).ravel()
    use = (conf >= min_conf) & np.all(np.isfinite(uv), axis=1)
    if np.count_nonzero(use) < min_points:
        return None
    obj = FACE_TEMPLATE_68_M[use]
    img = uv[use]
    ok, rvec, tvec = cv2.solvePnP(obj, img, K, dist, flags=cv2.SOLVEPNP_EPNP)
    if not ok:
        return None
    ok, rvec, tvec = cv2.solvePnP(obj, img, K, dist, rvec, tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok or not np.all(np.isfinite(tvec)) or tvec[2, 0] <= 0:
        return None
    R, _ = cv2.Rodrigues(rvec)
    # The landmarks are visible, so the face (head x axis) cannot point away from the camera.
    if R[:, 0] @ (tvec[:, 0] / np.linalg.norm(tvec)) > 0.3:
        return None
    reproj, _ = cv2.projectPoints(obj, rvec, tvec, K, dist)
    err = np.linalg.norm(reproj.reshape(-1, 2) - img, axis=1)
    face_size = float(np.linalg.norm(np.ptp(img, axis=0)))
    if np.median(err) > 0.15 * max(face_size, 1.0):
        return None
    return make_T(R, tvec[:, 0])
