"""Keypoint layouts: the one table of names, index ranges and skeleton edges used everywhere.

COCO-WholeBody 133 is the wire layout for every human source (radar fills the body 17).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COCO_BODY_17_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)

FEET_6_NAMES: tuple[str, ...] = (
    "left_big_toe",
    "left_small_toe",
    "left_heel",
    "right_big_toe",
    "right_small_toe",
    "right_heel",
)

# iBUG 300-W 68-point order: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67.
FACE_68_NAMES: tuple[str, ...] = tuple(f"face_{i}" for i in range(68))

_HAND_PARTS = (
    "wrist",
    "thumb_cmc",
    "thumb_mcp",
    "thumb_ip",
    "thumb_tip",
    "index_mcp",
    "index_pip",
    "index_dip",
    "index_tip",
    "middle_mcp",
    "middle_pip",
    "middle_dip",
    "middle_tip",
    "ring_mcp",
    "ring_pip",
    "ring_dip",
    "ring_tip",
    "pinky_mcp",
    "pinky_pip",
    "pinky_dip",
    "pinky_tip",
)
LEFT_HAND_21_NAMES: tuple[str, ...] = tuple(f"left_hand_{p}" for p in _HAND_PARTS)
RIGHT_HAND_21_NAMES: tuple[str, ...] = tuple(f"right_hand_{p}" for p in _HAND_PARTS)

# Index of each body keypoint's left/right counterpart (itself on the midline): mirroring a skeleton.
COCO_BODY_17_MIRROR: tuple[int, ...] = tuple(
    COCO_BODY_17_NAMES.index(n.replace("left", "#").replace("right", "left").replace("#", "right"))
    for n in COCO_BODY_17_NAMES
)

COCO_BODY_17_EDGES: tuple[tuple[int, int], ...] = (
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 12),
    (5, 11),
    (6, 12),
    (5, 6),
    (5, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (1, 2),
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
)
_FEET_EDGES_LOCAL = ((15, 17), (15, 18), (15, 19), (16, 20), (16, 21), (16, 22))
_HAND_EDGES_LOCAL = (
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 4),
    (0, 5),
    (5, 6),
    (6, 7),
    (7, 8),
    (0, 9),
    (9, 10),
    (10, 11),
    (11, 12),
    (0, 13),
    (13, 14),
    (14, 15),
    (15, 16),
    (0, 17),
    (17, 18),
    (18, 19),
    (19, 20),
)
_FACE_CHAINS = ((0, 17), (17, 22), (22, 27), (27, 31), (31, 36), (36, 42), (42, 48), (48, 60), (60, 68))


@dataclass(frozen=True)
class KeypointLayout:
    """A named keypoint layout: names in wire order and the skeleton edges between them."""

    name: str
    keypoint_names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    def index(self, keypoint_name: str) -> int:
        try:
            return self.keypoint_names.index(keypoint_name)
        except ValueError:
            raise KeyError(f"keypoint '{keypoint_name}' is not in layout '{self.name}'") from None


def _chain_edges(offset: int) -> tuple[tuple[int, int], ...]:
    edges = []
    for start, stop in _FACE_CHAINS:
        edges += [(offset + i, offset + i + 1) for i in range(start, stop - 1)]
    return tuple(edges)


# Index ranges inside COCO-WholeBody 133.
BODY = slice(0, 17)
FEET = slice(17, 23)
FACE = slice(23, 91)
LEFT_HAND = slice(91, 112)
RIGHT_HAND = slice(112, 133)

COCO_BODY_17 = KeypointLayout("coco_body_17", COCO_BODY_17_NAMES, COCO_BODY_17_EDGES)

COCO_WHOLEBODY_133 = KeypointLayout(
    "coco_wholebody_133",
    COCO_BODY_17_NAMES + FEET_6_NAMES + FACE_68_NAMES + LEFT_HAND_21_NAMES + RIGHT_HAND_21_NAMES,
    COCO_BODY_17_EDGES
    + _FEET_EDGES_LOCAL
    + _chain_edges(FACE.start)
    + tuple((LEFT_HAND.start + a, LEFT_HAND.start + b) for a, b in _HAND_EDGES_LOCAL)
    + tuple((RIGHT_HAND.start + a, RIGHT_HAND.start + b) for a, b in _HAND_EDGES_LOCAL)
    # Wrists of the body connect to the hand roots.
    + ((9, LEFT_HAND.start), (10, RIGHT_HAND.start)),
)

LAYOUTS = {layout.name: layout for layout in (COCO_BODY_17, COCO_WHOLEBODY_133)}

# The 12 limb joints used for radar and mesh accuracy figures.
LIMB_12 = tuple(range(5, 17))
LIMB_12_NAMES = tuple(COCO_BODY_17_NAMES[i] for i in LIMB_12)


def get_layout(name: str) -> KeypointLayout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise KeyError(f"unknown keypoint layout '{name}'; known: {sorted(LAYOUTS)}") from None


def pelvis(keypoints_xyz: np.ndarray) -> np.ndarray:
    """Midpoint of the hips. keypoints_xyz: (>=17, D) in COCO order. Returns (D,); NaN if a hip is NaN."""
    return 0.5 * (keypoints_xyz[11] + keypoints_xyz[12])
