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

from pose_perception.core.keypoints import COCO_BODY_17_MIRROR
from pose_perception.radar.points import INTENSITY, VELOCITY

DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "radar" / "radar_pose_net.pt"
NUM_JOINTS = 17
NUM_FEATURES = 8  # dx, dy, dz, velocity, snr, age, range, height above the floor (see prepare_input)


class RadarModelError(RuntimeError):
    """The radar network weights are missing, unreadable or of another architecture."""


@dataclass(frozen=True)
class NetConfig:
    num_points: int = 128
    widths: tuple[int, ...] = (48, 96, 192)
    head_width: int = 192


class RadarPoseNet(nn.Module):
    """PointNet: shared per-point MLP, masked max + mean pooling, MLP head.

    forward(x (B, N, 8) float32, mask (B, N) bool) -> joints (B, 17, 3) metres in the person frame,
    confidence logits (B, 17).
    """

    def __init__(self, config: NetConfig = NetConfig()):
        super().__init__()
        self.config = config
        layers, c = [], NUM_FEATURES
        for w in config.widths:
            layers += [nn.Linear(c, w), nn.ReLU()]  # no normalisation: 3x cheaper per point on a CPU
            c = w
        self.point_mlp = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Linear(2 * c, config.head_width), nn.LayerNorm(config.head_width), nn.GELU(),
            nn.Linear(config.head_width, config.head_width), nn.GELU(),
            nn.Linear(config.head_width, NUM_JOINTS * 4),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.point_mlp(x)
        m = mask.unsqueeze(-1)
        f_max = f.masked_fill(~m, -1e4).amax(dim=1)
        f_mean = (f * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)
        out = self.head(torch.cat([f_max, f_mean], dim=-1)).view(-1, NUM_JOINTS, 4)
        return out[..., :3], out[..., 3]


def person_frame(centroid_m: np.ndarray) -> np.ndarray:
    """(3,) cluster centroid in the radar frame -> R (3, 3) radar-from-person rotation about z whose x axis
    points from the radar to the person (the network sees every person from the same side)."""
    az = float(np.arctan2(centroid_m[1], centroid_m[0]))
    c, s = np.cos(az), np.sin(az)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def prepare_input(points: np.ndarray, age_s: np.ndarray, centroid_m: np.ndarray, num_points: int,
                  rng: np.random.Generator | None = None, radar_height_m: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """One person's points (M, 5) radar frame, their frame age_s (M,), centroid (3,) ->
    features (num_points, 8) float32 and mask (num_points,) bool.

    Features: position relative to the centroid in the person frame (m), radial velocity (m/s), SNR/10 (dB),
    age/0.2 (s), range/5 (m), height of the centroid above the floor (m; radar_height_m is the radar's mounting
    height, which tells the network where the feet can be). More points than num_points are subsampled
    (randomly with rng, else evenly).
    """
    R = person_frame(centroid_m)
    m = len(points)
    if m > num_points:
        idx = rng.choice(m, num_points, replace=False) if rng is not None else np.linspace(0, m - 1, num_points).astype(int)
        points, age_s = points[idx], age_s[idx]
        m = num_points
    feats = np.zeros((num_points, NUM_FEATURES), np.float32)
    feats[:m, :3] = (points[:, :3] - centroid_m) @ R
    feats[:m, 3] = points[:, VELOCITY]
    feats[:m, 4] = points[:, INTENSITY] / 10.0
    feats[:m, 5] = age_s / 0.2
    feats[:m, 6] = np.linalg.norm(centroid_m[:2]) / 5.0
    feats[:m, 7] = centroid_m[2] + radar_height_m
    mask = np.zeros(num_points, bool)
    mask[:m] = True
    return feats, mask


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class RadarPoseRegressor:
    """Loads RadarPoseNet weights and runs batched inference for all people of a frame.

    mirror_average: also run every person mirrored left/right (person-frame y -> -y) and average the two
    estimates mapped back (left/right joints swapped). The training data is mirror-symmetric, so both are
    estimates of the same skeleton with partly independent errors; it costs a batch twice as large.
    """

    def __init__(self, weights_path: str | Path | None = None, device: str = "auto", radar_height_m: float = 1.0,
                 mirror_average: bool = True):
        path = Path(weights_path) if weights_path else DEFAULT_WEIGHTS
        self.device = pick_device(device)
        self.net, self.meta = load_weights(path, self.device)
        self.num_points = self.net.config.num_points
        self.radar_height_m = radar_height_m  # mounting height above the floor, metres
        self.mirror_average = mirror_average

    @torch.inference_mode()
    def predict(self, people: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """people: per person (points (M, 5), age_s (M,), centroid (3,)) in the radar frame ->
        joints (P, 17, 3) float32 metres in the radar frame, confidence (P, 17) float32 in [0, 1]."""
        if not people:
            return np.zeros((0, NUM_JOINTS, 3), np.float32), np.zeros((0, NUM_JOINTS), np.float32)
        feats, masks = zip(*(prepare_input(p, a, c, self.num_points, radar_height_m=self.radar_height_m)
                             for p, a, c in people))
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
        net = RadarPoseNet(NetConfig(num_points=int(cfg["num_points"]), widths=tuple(cfg["widths"]),
                                     head_width=int(cfg["head_width"])))
        net.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    except (RuntimeError, KeyError, TypeError, ValueError, EOFError, OSError, pickle.UnpicklingError) as exc:
        raise RadarModelError(f"cannot load radar network weights '{path}': {exc}") from exc
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return net.to(device).eval(), meta
