"""Low-light frames: a photometric normalisation for the person models only, chosen from the frame's own statistics.

MediaPipe's detector and landmark models were trained on normally exposed photos: in a near-black frame (the
brightest pixels at 5-10 of 255, as in ExLPose's low-light set) every input value is close to the model's zero
and nobody is found. A frame counts as dark when even its highlights are dark (the `percentile` of luminance
under `dark_below`); it is then stretched so that percentile lands at `target` and the mid-tones are lifted by a
gamma, the same for every pixel, so geometry is untouched and keypoints found on the normalised frame are the
keypoints of the original. Normally exposed frames (highlights far above `dark_below`) are returned unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LowLightConfig:
    """dark_below: a frame whose luminance `percentile` is under this (0-255) is normalised (0: never);
    target: where that percentile is brought; gamma: applied after the stretch (< 1 lifts mid-tones);
    max_gain: the most the stretch multiplies by (beyond it the frame is noise)."""

    dark_below: float = 48.0
    percentile: float = 99.5
    target: float = 230.0
    gamma: float = 0.7
    max_gain: float = 60.0


def highlight_level(rgb: np.ndarray, percentile: float = 99.5) -> float:
    """Luminance (0-255) at `percentile` of an (H, W, 3) uint8 image, on a grid subsample of at most ~20k pixels
    (its 99.5th percentile still rests on ~100 of them; the check costs 1-1.5 ms per frame on the loaded 2-core
    machine, 640x480 or 1920x1080)."""
    step = max(1, int(np.ceil(np.sqrt(rgb.shape[0] * rgb.shape[1] / 20_000))))
    sub = rgb[::step, ::step].reshape(-1, 3).astype(np.float32)
    lum = sub @ np.array([0.299, 0.587, 0.114], np.float32)
    k = min(lum.size - 1, int(round(percentile / 100.0 * (lum.size - 1))))
    return float(np.partition(lum, k)[k])


def normalise_low_light(rgb: np.ndarray, config: LowLightConfig = LowLightConfig()) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W, 3) uint8: the input itself when the frame is not dark (or the rule is off),
    else the stretched and gamma-lifted frame (a 256-entry lookup table per pixel value)."""
    if config.dark_below <= 0 or rgb.size == 0:
        return rgb
    level = highlight_level(rgb, config.percentile)
    if level >= config.dark_below:
        return rgb
    gain = min(config.max_gain, config.target / max(level, 1.0))
    v = np.clip(np.arange(256, dtype=np.float32) * gain, 0.0, 255.0) / 255.0
    lut = np.round(255.0 * v**config.gamma).astype(np.uint8)
    return lut[rgb]
