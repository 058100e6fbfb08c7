"""Real photos of people that ship offline with scikit-image, framed like a 640x480 camera: one person
(astronaut, NASA, public domain) and a 3-person composite (astronaut, cameraman, mirrored astronaut; public
domain) placed side by side: a composite, not a real group photo.
"""

from __future__ import annotations

import numpy as np


def _letterbox(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to fit width x height without distortion, pad with grey."""
    import cv2

    h, w = rgb.shape[:2]
    s = min(width / w, height / h)
    resized = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    out = np.full((height, width, 3), 114, np.uint8)
    y0, x0 = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    out[y0 : y0 + resized.shape[0], x0 : x0 + resized.shape[1]] = resized
    return out


def one_person_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """(height, width, 3) uint8: the astronaut photo letterboxed."""
    from skimage import data

    return _letterbox(data.astronaut(), width, height)


def three_person_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """(height, width, 3) uint8: astronaut (NASA, public domain), cameraman (public domain) and the mirrored
    astronaut, each a full-height portrait crop in one third of the frame, so the people are camera-sized
    """
    import cv2
    from skimage import data

    astronaut = data.astronaut()
    cameraman = np.repeat(data.camera()[:, :, None], 3, axis=2)
    # Portrait crops (x0, x1) of each 512x512 photo that keep one whole person.
    crops = ((astronaut, 70, 297), (cameraman, 110, 337), (astronaut[:, ::-1], 215, 442))
    out = np.empty((height, width, 3), np.uint8)
    edges = np.linspace(0, width, 4).round().astype(int)
    for (img, x0, x1), a, b in zip(crops, edges[:-1], edges[1:]):
        out[:, a:b] = cv2.resize(np.ascontiguousarray(img[:, x0:x1]), (b - a, height), interpolation=cv2.INTER_AREA)
    return out
