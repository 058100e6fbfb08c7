"""A 3-person frame for multi-person tests and benchmarks: real photos that ship offline (scikit-image), cropped
to portraits and placed side by side; a composite, not a real group photo (one person: samples.streams).
"""
from __future__ import annotations

import numpy as np


def three_person_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """(height, width, 3) uint8: astronaut (NASA, public domain), cameraman (public domain) and the mirrored
    astronaut, each a full-height portrait crop in one third of the frame, so the people are camera-sized
    (samples.streams.people_photos letterboxes the three whole photos into a strip instead)."""
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
