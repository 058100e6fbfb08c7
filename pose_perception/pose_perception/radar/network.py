"""Skeleton regression from one person's accumulated radar points: a small PointNet (torch) that maps
person-centred points to COCO body 17 joints (metres) with a per-joint confidence; CUDA when present.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pose_perception.core.device import resolve_device
from pose_perception.core.keypoints import COCO_BODY_17_MIRROR
from pose_perception.radar.points import INTENSITY, VELOCITY

DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "radar" / "radar_pose_net.pt"
# Trained on REAL TI IWR1443 recordings (MARS, MIT licence; docs/radar.md): for TI IWR1443-class sensors at ~10 Hz.
MARS_WEIGHTS = DEFAULT_WEIGHTS.with_name("radar_pose_net_mars.pt")
# Names accepted wherever a weights path is: the shipped files.
SHIPPED_WEIGHTS = {"simulator": DEFAULT_WEIGHTS, "mars": MARS_WEIGHTS}
NUM_JOINTS = 17
NUM_FEATURES = 8  # dx, dy, dz, velocity, snr, age, range, height above the floor (see prepare_input)
AGE_SCALE_S = 0.2  # feature 5 is age_s / AGE_SCALE_S


class RadarModelError(RuntimeError):
    """The radar network weights are missing, unreadable or of another architecture."""


@dataclass(frozen=True)
class NetConfig:
    """num_points: points per person the network takes; widths / head_width: layer sizes.

    context_frames: radar frames of points the network was trained to see (the newest `window_frames` of the
    pipeline are clustered; older frames up to this many only add context points, see people_from_cloud).
    time_slots_s: upper point-age bounds (s) of the pooling slots: features are pooled separately per slot
    (newest frames, a little older, ...) so the head can compare where the body is now with where it was;
    () pools all points together (the original PointNet).
    """

    num_points: int = 128
    widths: tuple[int, ...] = (48, 96, 192)
    head_width: int = 192
    context_frames: int = 4
    time_slots_s: tuple[float, ...] = ()
    # Intensity feature: False = intensity / 10 (the simulator's SNR in dB); True = log10(1 + intensity), for
    # sensors that report a linear intensity with a long tail (the TI IWR1443 in MARS: 2-1200, median 20).
    intensity_log: bool = False
    # Feature 8: 1 for points on the radar's zero-azimuth bin (y exactly 0 in the radar frame). The TI IWR1443
    # puts ~20 % of its points there (REAL MARS) whatever their true angle; the flag lets the network discount them.
    azimuth_bin_feature: bool = False
    # Oldest context frame (s) the weights were trained with; the pipeline keeps frames this old (at least its
    # own max_window_s). 0: the pipeline's max_window_s.
    context_max_age_s: float = 0.0
    # Trained on mirror-symmetric data (the simulator): the regressor may average each person with its mirror
    # image. REAL MARS is not symmetric (the points sit ~0.15 m to the radar's left of the Kinect body in both
    # sessions), so weights trained on it set this False and are run once.
    mirror_symmetric: bool = True

    @property
    def num_features(self) -> int:
        return NUM_FEATURES + int(self.azimuth_bin_feature)


class RadarPoseNet(nn.Module):
    """PointNet: shared per-point MLP, masked max + mean pooling (per age slot when config.time_slots_s),
    MLP head.

    forward(x (B, N, 8) float32, mask (B, N) bool) -> joints (B, 17, 3) metres in the person frame,
    confidence logits (B, 17).
    """

    def __init__(self, config: NetConfig = NetConfig()):
        super().__init__()
        self.config = config
        layers, c = [], config.num_features
        for w in config.widths:
            layers += [nn.Linear(c, w), nn.ReLU()]  # no normalisation: 3x cheaper per point on a CPU
            c = w
        self.point_mlp = nn.Sequential(*layers)
        slots = max(1, len(config.time_slots_s))
        self.head = nn.Sequential(
            nn.Linear(2 * c * slots, config.head_width),
            nn.LayerNorm(config.head_width),
            nn.GELU(),
            nn.Linear(config.head_width, config.head_width),
            nn.GELU(),
            nn.Linear(config.head_width, NUM_JOINTS * 4),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.point_mlp(x)
        b, n, c = f.shape
        bounds = self.config.time_slots_s
        slots = max(1, len(bounds))
        if bounds:
            age_s = x[..., 5] * AGE_SCALE_S
            slot = torch.bucketize(age_s, torch.tensor(bounds, dtype=age_s.dtype, device=x.device)).clamp(max=slots - 1)
        else:
            slot = torch.zeros(b, n, dtype=torch.long, device=x.device)
        # Padding goes to an extra slot per sample that is dropped: one scatter pools every slot of the batch.
        slot = torch.where(mask, slot, torch.full_like(slot, slots))
        group = (torch.arange(b, device=x.device).unsqueeze(1) * (slots + 1) + slot).reshape(-1)
        flat = f.reshape(-1, c)
        f_max = flat.new_zeros(b * (slots + 1), c).scatter_reduce(
            0, group.unsqueeze(1).expand(-1, c), flat, "amax", include_self=False
        )  # empty slot: 0
        f_sum = flat.new_zeros(b * (slots + 1), c).index_add(0, group, flat)
        count = flat.new_zeros(b * (slots + 1)).index_add(0, group, flat.new_ones(b * n))
        f_mean = f_sum / count.clamp(min=1).unsqueeze(1)
        pooled = torch.cat([f_max.view(b, slots + 1, c), f_mean.view(b, slots + 1, c)], dim=-1)[:, :slots]
        out = self.head(pooled.reshape(b, -1)).view(-1, NUM_JOINTS, 4)
        return out[..., :3], out[..., 3]


def person_frame(centroid_m: np.ndarray) -> np.ndarray:
    """(3,) cluster centroid in the radar frame -> R (3, 3) radar-from-person rotation about z whose x axis
    points from the radar to the person (the network sees every person from the same side)."""
    az = float(np.arctan2(centroid_m[1], centroid_m[0]))
    c, s = np.cos(az), np.sin(az)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def prepare_input(
    points: np.ndarray,
    age_s: np.ndarray,
    centroid_m: np.ndarray,
    num_points: int,
    rng: np.random.Generator | None = None,
    radar_height_m: float = 1.0,
    intensity_log: bool = False,
    azimuth_bin_feature: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """One person's points (M, 5) radar frame, their frame age_s (M,), centroid (3,) ->
    features (num_points, 8) float32 and mask (num_points,) bool.

    Features: position relative to the centroid in the person frame (m), radial velocity (m/s), SNR/10 (dB) (log10(1 + intensity) with intensity_log),
    age/0.2 (s) (or log10(1 + intensity) with intensity_log), range/5 (m), height of the centroid above the floor (m; radar_height_m is the radar's mounting
    height, which tells the network where the feet can be). More points than num_points are subsampled
    (randomly with rng, else evenly).
    """
    R = person_frame(centroid_m)
    m = len(points)
    if m > num_points:
        idx = (
            rng.choice(m, num_points, replace=False)
            if rng is not None
            else np.linspace(0, m - 1, num_points).astype(int)
        )
        points, age_s = points[idx], age_s[idx]
        m = num_points
    feats = np.zeros((num_points, NUM_FEATURES + int(azimuth_bin_feature)), np.float32)
    feats[:m, :3] = (points[:, :3] - centroid_m) @ R
    feats[:m, 3] = points[:, VELOCITY]
    feats[:m, 4] = (
        np.log10(1.0 + np.maximum(points[:, INTENSITY], 0.0)) if intensity_log else points[:, INTENSITY] / 10.0
    )
    feats[:m, 5] = age_s / AGE_SCALE_S
    feats[:m, 6] = np.linalg.norm(centroid_m[:2]) / 5.0
    feats[:m, 7] = centroid_m[2] + radar_height_m
    if azimuth_bin_feature:
        feats[:m, 8] = points[:, 1] == 0.0
    mask = np.zeros(num_points, bool)
    mask[:m] = True
    return feats, mask


def pick_device(device: str = "auto") -> torch.device:
    """The torch device for a `device` name (core.device.resolve_device's rule). Raises DeviceError."""
    return torch.device(resolve_device(device))


class RadarPoseRegressor:
    """Loads RadarPoseNet weights and runs batched inference for all people of a frame.

    weights_path: a .pt file, or "simulator" (the default) / "mars" (trained on the real TI IWR1443) for the
    shipped ones.
    mirror_average: also run every person mirrored left/right (person-frame y -> -y) and average the two
    estimates mapped back (left/right joints swapped). The training data is mirror-symmetric, so both are
    estimates of the same skeleton with partly independent errors; it costs a batch twice as large.
    """

    def __init__(
        self,
        weights_path: str | Path | None = None,
        device: str = "auto",
        radar_height_m: float = 1.0,
        mirror_average: bool = True,
    ):
        path = SHIPPED_WEIGHTS.get(str(weights_path), Path(weights_path)) if weights_path else DEFAULT_WEIGHTS
        self.device = pick_device(device)
        self.net, self.meta = load_weights(path, self.device)
        self.num_points = self.net.config.num_points
        self.radar_height_m = radar_height_m  # mounting height above the floor, metres
        self.mirror_average = mirror_average and self.net.config.mirror_symmetric

    @torch.inference_mode()
    def predict(self, people: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """people: per person (points (M, 5), age_s (M,), centroid (3,)) in the radar frame ->
        joints (P, 17, 3) float32 metres in the radar frame, confidence (P, 17) float32 in [0, 1]."""
        if not people:
            return np.zeros((0, NUM_JOINTS, 3), np.float32), np.zeros((0, NUM_JOINTS), np.float32)
        feats, masks = zip(
            *(
                prepare_input(
                    p,
                    a,
                    c,
                    self.num_points,
                    radar_height_m=self.radar_height_m,
                    intensity_log=self.net.config.intensity_log,
                    azimuth_bin_feature=self.net.config.azimuth_bin_feature,
                )
                for p, a, c in people
            )
        )
        x = torch.from_numpy(np.stack(feats)).to(self.device)
        mask = torch.from_numpy(np.stack(masks)).to(self.device)
        if self.mirror_average:
            x_m = x.clone()
            x_m[..., 1] = -x_m[..., 1]  # person-frame y of every point (see prepare_input)
            joints, logits = self.net(torch.cat([x, x_m]), torch.cat([mask, mask]))
            n = len(x)
            flip = torch.tensor([1.0, -1.0, 1.0], device=joints.device)
            joints = 0.5 * (joints[:n] + joints[n:][:, list(COCO_BODY_17_MIRROR)] * flip)
            logits = 0.5 * (logits[:n] + logits[n:][:, list(COCO_BODY_17_MIRROR)])
        else:
            joints, logits = self.net(x, mask)
        joints = joints.float().cpu().numpy()
        conf = torch.sigmoid(logits).float().cpu().numpy()
        out = np.empty_like(joints)
        for i, (_, _, c) in enumerate(people):
            out[i] = joints[i] @ person_frame(c).T + c
        return out.astype(np.float32), conf.astype(np.float32)


def save_weights(net: RadarPoseNet, path: Path, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().half() for k, v in net.state_dict().items()}  # fp16 halves the file
    torch.save({"config": asdict(net.config), "state_dict": state}, path)
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")


def load_weights(path: Path, device: torch.device = torch.device("cpu")) -> tuple[RadarPoseNet, dict]:
    """-> (network in eval mode on device, metadata dict from the JSON next to the weights)."""
    if not path.is_file():
        raise RadarModelError(
            f"radar network weights '{path}' not found; train them with `pose-perception radar train` or pass "
            "the path of a trained .pt file"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        cfg = blob["config"]
        net = RadarPoseNet(
            NetConfig(
                num_points=int(cfg["num_points"]),
                widths=tuple(cfg["widths"]),
                head_width=int(cfg["head_width"]),
                # weights from before these fields saw 4 frames pooled together
                context_frames=int(cfg.get("context_frames", 4)),
                time_slots_s=tuple(float(t) for t in cfg.get("time_slots_s", ())),
                intensity_log=bool(cfg.get("intensity_log", False)),
                azimuth_bin_feature=bool(cfg.get("azimuth_bin_feature", False)),
                context_max_age_s=float(cfg.get("context_max_age_s", 0.0)),
                mirror_symmetric=bool(cfg.get("mirror_symmetric", True)),
            )
        )
        net.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    except (RuntimeError, KeyError, TypeError, ValueError, EOFError, OSError, pickle.UnpicklingError) as exc:
        raise RadarModelError(f"cannot load radar network weights '{path}': {exc}") from exc
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return net.to(device).eval(), meta
