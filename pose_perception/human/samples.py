"""Real people photos that ship offline (scikit-image data: astronaut, cameraman), sized for demos, tests and
benchmarks. The 3-person frame is a composite of real photos side by side, not a real group photo.
"""
from __future__ import annotations

import numpy as np


def astronaut_rgb() -> np.ndarray:
    """(512, 512, 3) uint8: Eileen Collins, NASA portrait (public domain), upper body facing the camera."""
    from skimage import data

    return data.astronaut()


def cameraman_rgb() -> np.ndarray:
    """(512, 512, 3) uint8 grey replicated to RGB: the classic 'cameraman' photo (scikit-image, MIT-licensed
    collection), a standing man looking through a camera."""
    from skimage import data

    return np.repeat(data.camera()[:, :, None], 3, axis=2)


def one_person_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """(height, width, 3) uint8: the astronaut photo letterboxed into a camera-sized frame (real photo)."""
    import cv2

    img = astronaut_rgb()
    s = min(width / img.shape[1], height / img.shape[0])
    w, h = round(img.shape[1] * s), round(img.shape[0] * s)
    out = np.full((height, width, 3), 90, np.uint8)
    x0, y0 = (width - w) // 2, (height - h) // 2
    out[y0:y0 + h, x0:x0 + w] = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return out


# Portrait crops (x0, x1) of each photo that keep one whole person, for the composite.
_CROPS = ((astronaut_rgb, 70, 297), (cameraman_rgb, 110, 337), (lambda: astronaut_rgb()[:, ::-1], 215, 442))


def three_person_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """(height, width, 3) uint8: three real photos (astronaut, cameraman, mirrored astronaut) cropped to
    portraits and placed side by side: a synthetic composite of real people, one per third of the frame."""
    import cv2

    out = np.empty((height, width, 3), np.uint8)
    edges = np.linspace(0, width, 4).round().astype(int)
    for (load, x0, x1), a, b in zip(_CROPS, edges[:-1], edges[1:]):
        out[:, a:b] = cv2.resize(load()[:, x0:x1], (b - a, height), interpolation=cv2.INTER_AREA)
    return out
