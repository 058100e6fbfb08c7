"""Recorded TI IWR1443 radar frames with Kinect V2 skeletons in the MARS layout (SizheAn/MARS, MIT licence):
reading, axes, joint mapping. ROS-free.

Layout of a MARS directory (as in ../shared/realdata/radar/mars):
  <variant>/subject<k>/radar_data_<split>.csv.gz   Frame #, # Obj, X, Y, Z, Doppler (m/s), Intensity, Abs Time
  <variant>/subject<k>/kinect_data_<split>.csv.gz  one row per radar frame in file order: 25 joints' X, then Y, then Z
variant: `woutlier` (as recorded) or `wooutlier` (outlier points removed by the dataset's authors).
Both files use TI's native axes (x right, y forward from the radar, z up; metres, origin at the radar).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pose_perception.core.keypoints import COCO_BODY_17_NAMES
from pose_perception.core.realdata import realdata_dir
from pose_perception.radar.points import NUM_COLUMNS, R_REP103_FROM_TI

FRAME_PERIOD_S = 0.1  # the IWR1443 in MARS runs at 10 Hz; Abs Time is too coarse (1e5 s resolution) to use
DOPPLER_STEP_MPS = 0.356  # the recordings' radial velocity resolution (values are multiples of it)
VARIANTS = ("woutlier", "wooutlier")

KINECT_25_NAMES: tuple[str, ...] = (
    "SpineBase",
    "SpineMid",
    "Neck",
    "Head",
    "ShoulderLeft",
    "ElbowLeft",
    "WristLeft",
    "HandLeft",
    "ShoulderRight",
    "ElbowRight",
    "WristRight",
    "HandRight",
    "HipLeft",
    "KneeLeft",
    "AnkleLeft",
    "FootLeft",
    "HipRight",
    "KneeRight",
    "AnkleRight",
    "FootRight",
    "SpineShoulder",
    "HandTipLeft",
    "ThumbLeft",
    "HandTipRight",
    "ThumbRight",
)
# Kinect labels joints from the subject's point of view, as COCO does (checked on the data: the subject faces
# the radar, and ShoulderLeft is on the radar's right, +x in TI axes). The 12 limb joints map one to one; the
# head keypoints of COCO have no Kinect counterpart and all take the Kinect head (used only as training targets).
COCO_FROM_KINECT: dict[str, str] = {
    "nose": "Head",
    "left_eye": "Head",
    "right_eye": "Head",
    "left_ear": "Head",
    "right_ear": "Head",
    "left_shoulder": "ShoulderLeft",
    "right_shoulder": "ShoulderRight",
    "left_elbow": "ElbowLeft",
    "right_elbow": "ElbowRight",
    "left_wrist": "WristLeft",
    "right_wrist": "WristRight",
    "left_hip": "HipLeft",
    "right_hip": "HipRight",
    "left_knee": "KneeLeft",
    "right_knee": "KneeRight",
    "left_ankle": "AnkleLeft",
    "right_ankle": "AnkleRight",
}
COCO17_FROM_KINECT25 = np.array([KINECT_25_NAMES.index(COCO_FROM_KINECT[n]) for n in COCO_BODY_17_NAMES])
_FEET = [KINECT_25_NAMES.index(n) for n in ("FootLeft", "FootRight", "AnkleLeft", "AnkleRight")]


class MarsDataError(ValueError):
    """A MARS directory or file that is missing or does not follow the documented layout."""


@dataclass(frozen=True)
class MarsRecording:
    """One split of one subject: T radar frames and the Kinect skeleton of each, REP-103 radar frame.

    stamps_s (T,) float64: Frame # x 0.1 s (gaps between takes stay gaps); frames: T arrays (N_i, 5) float32
    [x, y, z, doppler m/s, intensity]; kinect_m (T, 25, 3) float32 (KINECT_25_NAMES); coco17_m (T, 17, 3).
    """

    name: str
    subject: int
    split: str
    variant: str
    stamps_s: np.ndarray
    frames: tuple[np.ndarray, ...]
    kinect_m: np.ndarray

    @property
    def coco17_m(self) -> np.ndarray:
        return self.kinect_m[:, COCO17_FROM_KINECT25]

    def __len__(self) -> int:
        return len(self.stamps_s)


def ti_to_rep103(xyz_ti: np.ndarray) -> np.ndarray:
    """(..., 3) TI axes (x right, y forward, z up) -> REP-103 (x forward, y left, z up)."""
    return np.asarray(xyz_ti, np.float32) @ R_REP103_FROM_TI.T


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    try:
        with gzip.open(path, "rt") as f:
            header = f.readline().strip().split(",")
            data = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    except (OSError, ValueError, EOFError) as exc:
        raise MarsDataError(f"cannot read MARS file '{path}': {exc}") from exc
    if data.shape[1] != len(header):
        raise MarsDataError(f"'{path}': {data.shape[1]} columns but the header names {len(header)}")
    return header, data


def read_radar_csv(path: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """radar_data_*.csv.gz -> frame numbers (T,) int64 in file order and T frames (N_i, 5) float32 REP-103."""
    header, data = _read_csv(path)
    want = ["Frame #", "# Obj", "X", "Y", "Z", "Doppler", "Intensity"]
    if header[: len(want)] != want:
        raise MarsDataError(f"'{path}' header {header} does not start with {want}")
    if len(data) == 0:
        return np.zeros(0, np.int64), []
    frame_no = data[:, 0].astype(np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(frame_no)) + 1]
    numbers = frame_no[starts]
    pts = np.empty((len(data), NUM_COLUMNS), np.float32)
    pts[:, :3] = ti_to_rep103(data[:, 2:5])
    pts[:, 3] = data[:, 5]
    pts[:, 4] = data[:, 6]
    return numbers, np.split(pts, starts[1:])


def read_kinect_csv(path: Path) -> np.ndarray:
    """kinect_data_*.csv.gz -> (T, 25, 3) float32 joints in REP-103 axes (KINECT_25_NAMES order)."""
    header, data = _read_csv(path)
    expected = [f"{n}_{a}" for a in "XYZ" for n in KINECT_25_NAMES]
    if header != expected:
        raise MarsDataError(f"'{path}' columns are not the 25 Kinect joints' X, then Y, then Z: {header[:4]}...")
    xyz_ti = data.reshape(len(data), 3, 25).transpose(0, 2, 1)
    return ti_to_rep103(xyz_ti)


def read_recording(root: str | Path, subject: int, split: str, variant: str = "woutlier") -> MarsRecording:
    """One subject's split with radar and Kinect. Raises MarsDataError when files are missing or disagree."""
    d = Path(root) / variant / f"subject{subject}"
    radar, kinect = d / f"radar_data_{split}.csv.gz", d / f"kinect_data_{split}.csv.gz"
    for p in (radar, kinect):
        if not p.is_file():
            raise MarsDataError(f"MARS file '{p}' not found")
    numbers, frames = read_radar_csv(radar)
    joints = read_kinect_csv(kinect)
    if len(joints) != len(frames):
        raise MarsDataError(f"'{radar}' has {len(frames)} frames but '{kinect}' {len(joints)} skeletons")
    if np.any(np.diff(numbers) <= 0):
        raise MarsDataError(f"'{radar}': frame numbers are not increasing in file order")
    return MarsRecording(
        f"{variant}/subject{subject}/{split}",
        subject,
        split,
        variant,
        numbers.astype(np.float64) * FRAME_PERIOD_S,
        tuple(frames),
        joints,
    )


def list_recordings(root: str | Path, variant: str = "woutlier") -> list[tuple[int, str]]:
    """(subject, split) of every radar + Kinect pair under root/variant, sorted."""
    out = []
    for radar in sorted((Path(root) / variant).glob("subject*/radar_data_*.csv.gz")):
        split = radar.name[len("radar_data_") : -len(".csv.gz")]
        if radar.with_name(f"kinect_data_{split}.csv.gz").is_file():
            out.append((int(radar.parent.name[len("subject") :]), split))
    return out


def read_subject(root: str | Path, subject: int, variant: str = "woutlier") -> list[MarsRecording]:
    """Every radar + Kinect split of one subject."""
    recs = [read_recording(root, s, split, variant) for s, split in list_recordings(root, variant) if s == subject]
    if not recs:
        raise MarsDataError(f"no radar + Kinect recordings of subject {subject} under '{Path(root) / variant}'")
    return recs


def read_kinect_motion(root: str | Path, subjects: list[int], variant: str = "woutlier") -> list[np.ndarray]:
    """Every kinect_data_*.csv.gz of these subjects under root/variant (including Kinect-only splits) -> list of
    (T, 25, 3) REP-103."""
    return [
        read_kinect_csv(p)
        for s in subjects
        for p in sorted((Path(root) / variant / f"subject{s}").glob("kinect_data_*.csv.gz"))
    ]


def radar_height_from_skeletons(kinect_m: np.ndarray) -> float:
    """Radar mounting height above the floor (m) from skeletons in the radar frame: the floor is the median,
    over frames, of the lowest foot/ankle joint (Kinect's foot joint sits ~on the floor)."""
    low = np.nanmin(kinect_m[:, _FEET, 2], axis=1)
    return float(-np.nanmedian(low))


def default_mars_dir() -> Path:
    """The REAL MARS recordings: `<realdata>/radar/mars` (core/realdata.py says where that is)."""
    return realdata_dir("radar", "mars")
