"""Parametric body models reduced to what keypoint fitting needs: a posable, shape-interpolated skinned mesh.

Builds `BodyModelData` from anny (default, ships in its wheel) or SMPL-X (user-supplied licensed files), cached on disk.

The reduction: every model bone is assigned to one of a few *groups* (pelvis, thighs, shins, feet, two spine
segments, neck, head, clavicles, upper arms, forearms); bones we cannot observe from body keypoints (fingers,
toes, twist bones) move rigidly with their group. Everything is expressed in the model's *reference pose*
(identity pose parameters), so a group's pose is one world-axis rotation relative to that pose, SMPL style:
`H_j = H_parent(j) @ D_j`, posed head `J_j = J_parent + H_parent @ (Jref_j - Jref_parent)` and posed vertex
`v = sum_j S_vj (H_j @ (vref - Jref_j) + J_j)`. Shape is a multilinear interpolation over a small grid of
phenotype values (anny: gender x height x proportions; SMPL-X: the first betas, for which it is exact).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from pose_perception.core.keypoints import COCO_BODY_17_NAMES, FEET_6_NAMES, LIMB_12_NAMES

logger = logging.getLogger(__name__)

# Keypoints the fitter uses, in this order: COCO body 17 then the 6 foot points (COCO-WholeBody order).
MODEL_KEYPOINT_NAMES: tuple[str, ...] = COCO_BODY_17_NAMES + FEET_6_NAMES

# Group order is topological (a parent precedes its children). Names are the model-independent roles.
GROUP_NAMES: tuple[str, ...] = (
    "pelvis",
    "thigh_l",
    "thigh_r",
    "spine_low",
    "shin_l",
    "shin_r",
    "spine_high",
    "foot_l",
    "foot_r",
    "neck",
    "clavicle_l",
    "clavicle_r",
    "head",
    "upperarm_l",
    "upperarm_r",
    "forearm_l",
    "forearm_r",
)
GROUP_PARENTS: tuple[int, ...] = (
    -1,
    0,
    0,
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    6,
    6,
    9,
    10,
    11,
    13,
    14,
)

# Model bone that carries each group, per model.
ANNY_GROUP_BONES = {
    "pelvis": "root",
    "thigh_l": "upperleg01.L",
    "thigh_r": "upperleg01.R",
    "shin_l": "lowerleg01.L",
    "shin_r": "lowerleg01.R",
    "foot_l": "foot.L",
    "foot_r": "foot.R",
    "spine_low": "spine04",
    "spine_high": "spine02",
    "neck": "neck01",
    "head": "head",
    "clavicle_l": "clavicle.L",
    "clavicle_r": "clavicle.R",
    "upperarm_l": "upperarm01.L",
    "upperarm_r": "upperarm01.R",
    "forearm_l": "lowerarm01.L",
    "forearm_r": "lowerarm01.R",
}
SMPLX_GROUP_BONES = {
    "pelvis": "pelvis",
    "thigh_l": "left_hip",
    "thigh_r": "right_hip",
    "shin_l": "left_knee",
    "shin_r": "right_knee",
    "foot_l": "left_ankle",
    "foot_r": "right_ankle",
    "spine_low": "spine1",
    "spine_high": "spine3",
    "neck": "neck",
    "head": "head",
    "clavicle_l": "left_collar",
    "clavicle_r": "right_collar",
    "upperarm_l": "left_shoulder",
    "upperarm_r": "right_shoulder",
    "forearm_l": "left_elbow",
    "forearm_r": "right_elbow",
}

# anny shape grid: phenotype values at the grid nodes (age, weight, muscle stay at anny's default 0.5).
ANNY_SHAPE_AXES: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("gender", (0.0, 0.5, 1.0)),
    ("height", (0.0, 0.5, 1.0)),
    ("proportions", (0.0, 0.5, 1.0)),
)
SMPLX_NUM_BETAS = 3
SMPLX_BETA_RANGE = (-2.0, 2.0)

_CACHE_VERSION = 1


class BodyModelError(RuntimeError):
    """A body model could not be built (bad files, unexpected model layout)."""


class BodyModelUnavailableError(BodyModelError):
    """The requested body model needs a package or licensed files that are not present here."""


@dataclass(frozen=True)
class BodyModelData:
    """A reduced, shape-interpolated skinned body model (all arrays numpy; metres; model frame of the reference pose).

    faces: (F, 3) int32; skin_weights: (V, J) float32 rows sum to 1 over the groups of GROUP_NAMES;
    keypoint_weights: (K, V) float32 rows sum to 1, regressing MODEL_KEYPOINT_NAMES from vertices;
    shape_axes: names of the shape parameters; shape_nodes: per axis, the parameter values of the grid nodes;
    node_vertices: (N, V, 3) float32 reference-pose vertices at each grid node (C order over the axes);
    node_heads: (N, J, 3) float32 reference-pose rotation centres of the groups.
    """

    name: str
    faces: np.ndarray
    skin_weights: np.ndarray
    keypoint_weights: np.ndarray
    shape_axes: tuple[str, ...]
    shape_nodes: tuple[np.ndarray, ...]
    node_vertices: np.ndarray
    node_heads: np.ndarray

    @property
    def num_vertices(self) -> int:
        return int(self.node_vertices.shape[1])

    @property
    def default_shape(self) -> np.ndarray:
        """Centre of the shape box, (S,) float64."""
        return np.array([0.5 * (n[0] + n[-1]) for n in self.shape_nodes])

    def shape_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([n[0] for n in self.shape_nodes]), np.array([n[-1] for n in self.shape_nodes]))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # per process: concurrent builders never clash
        np.savez(
            tmp,
            name=self.name,
            faces=self.faces,
            skin_weights=self.skin_weights,
            keypoint_weights=self.keypoint_weights,
            shape_axes=np.array(self.shape_axes),
            node_vertices=self.node_vertices,
            node_heads=self.node_heads,
            **{f"shape_nodes_{i}": n for i, n in enumerate(self.shape_nodes)},
        )
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file

    @staticmethod
    def load(path: Path) -> "BodyModelData":
        with np.load(path) as z:
            axes = tuple(str(a) for a in z["shape_axes"])
            return BodyModelData(
                name=str(z["name"]),
                faces=z["faces"],
                skin_weights=z["skin_weights"],
                keypoint_weights=z["keypoint_weights"],
                shape_axes=axes,
                shape_nodes=tuple(z[f"shape_nodes_{i}"] for i in range(len(axes))),
                node_vertices=z["node_vertices"],
                node_heads=z["node_heads"],
            )


def anny_bone_rotations(group_rotvecs: np.ndarray) -> dict[str, np.ndarray]:
    """Group rotations (J, 3) rotvec -> {anny bone: (3, 3)} "local-ref" rotations (e.g. for synthetic.AnnyPoser.pose).

    Exact: each group is carried by one anny bone (ANNY_GROUP_BONES), the others stay at identity.
    """
    from scipy.spatial.transform import Rotation

    R = Rotation.from_rotvec(np.asarray(group_rotvecs, dtype=np.float64).reshape(len(GROUP_NAMES), 3)).as_matrix()
    return {ANNY_GROUP_BONES[g]: R[j] for j, g in enumerate(GROUP_NAMES)}


def default_cache_dir() -> Path:
    from pose_perception.core.cache import cache_dir

    return cache_dir("body_mesh")


def _group_of_bones(bone_names: list[str], bone_parents: list[int], group_bones: dict[str, str]) -> np.ndarray:
    """(B,) index of the group each model bone moves with: its own or its nearest grouped ancestor's."""
    bone_to_group = {}
    for g, role in enumerate(GROUP_NAMES):
        name = group_bones[role]
        if name not in bone_names:
            raise BodyModelError(f"model has no bone '{name}' for group '{role}'; bones: {bone_names[:8]}...")
        bone_to_group[bone_names.index(name)] = g
    out = np.zeros(len(bone_names), dtype=np.int64)
    for b in range(len(bone_names)):
        a = b
        while a >= 0 and a not in bone_to_group:
            a = bone_parents[a]
        out[b] = bone_to_group.get(a, 0)  # bones above the root group (none in practice) follow the pelvis
    return out


def _check_group_tree(bone_parents: list[int], group_bone_index: list[int], group_of_bone: np.ndarray) -> None:
    for g, b in enumerate(group_bone_index):
        p = bone_parents[b]
        parent_group = int(group_of_bone[p]) if p >= 0 else -1
        if g > 0 and parent_group != GROUP_PARENTS[g]:
            raise BodyModelError(
                f"group '{GROUP_NAMES[g]}' hangs under '{GROUP_NAMES[parent_group]}' in the model, "
                f"expected '{GROUP_NAMES[GROUP_PARENTS[g]]}'"
            )


def _cache_path(cache_dir: Path, kind: str, key: dict) -> Path:
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{kind}_{digest}.npz"


def load_anny_model_data(cache_dir: Optional[Path] = None) -> BodyModelData:
    """anny reduced to the fitting groups over ANNY_SHAPE_AXES; built once (minutes on a cold anny cache), then read."""
    from importlib import metadata

    try:
        anny_version = metadata.version("anny")  # not `import anny`: that initialises warp, seconds we need not spend
    except metadata.PackageNotFoundError as exc:  # pragma: no cover - anny is a pinned dependency
        raise BodyModelUnavailableError("the anny body model is not installed; pip install anny==0.6.2") from exc
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    key = {"v": _CACHE_VERSION, "anny": anny_version, "axes": ANNY_SHAPE_AXES, "groups": ANNY_GROUP_BONES}
    path = _cache_path(cache_dir, "anny", key)
    if path.exists():
        try:
            return BodyModelData.load(path)
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("ignoring unreadable body model cache %s (%s); rebuilding", path, exc)
    data = _build_anny_model_data()
    data.save(path)
    return data


def _build_anny_model_data() -> BodyModelData:
    import anny
    import torch

    logger.info("building the anny body model data (one time; anny builds its own cache first if needed)")
    model = anny.Anny(skinning_method="lbs")  # plain torch skinning: no warp kernel compilation
    bone_names, bone_parents = list(model.bone_labels), list(model.bone_parents)
    group_of_bone = _group_of_bones(bone_names, bone_parents, ANNY_GROUP_BONES)
    group_bone_index = [bone_names.index(ANNY_GROUP_BONES[r]) for r in GROUP_NAMES]
    _check_group_tree(bone_parents, group_bone_index, group_of_bone)

    num_vertices = model.template_vertices.shape[0]
    weights = model.vertex_bone_weights.detach().cpu().numpy()
    indices = model.vertex_bone_indices.detach().cpu().numpy()
    skin = np.zeros((num_vertices, len(GROUP_NAMES)), dtype=np.float64)
    np.add.at(
        skin, (np.repeat(np.arange(num_vertices), indices.shape[1]), group_of_bone[indices].ravel()), weights.ravel()
    )
    skin /= np.maximum(skin.sum(axis=1, keepdims=True), 1e-12)

    regressor = anny.KeypointsRegressor.coco(model)
    labels = list(regressor.labels)
    missing = [n for n in MODEL_KEYPOINT_NAMES if n not in labels]
    if missing:
        raise BodyModelError(f"anny's COCO regressor lacks keypoints {missing}")
    reg = regressor.regression_weights.detach().cpu().numpy()
    keypoint_weights = np.stack([reg[labels.index(n)] for n in MODEL_KEYPOINT_NAMES]).astype(np.float32)

    node_vertices, node_heads = [], []
    grid = [values for _, values in ANNY_SHAPE_AXES]
    with torch.no_grad():
        for node in itertools.product(*grid):
            phenotype = {name: float(v) for (name, _), v in zip(ANNY_SHAPE_AXES, node)}
            out = model(pose_parameters=None, phenotype_kwargs=phenotype)
            node_vertices.append(out["vertices"][0].cpu().numpy())
            node_heads.append(out["bone_poses"][0, group_bone_index, :3, 3].cpu().numpy())
    return BodyModelData(
        name="anny",
        faces=model.faces.detach().cpu().numpy().astype(np.int32),
        skin_weights=skin.astype(np.float32),
        keypoint_weights=keypoint_weights,
        shape_axes=tuple(name for name, _ in ANNY_SHAPE_AXES),
        shape_nodes=tuple(np.asarray(v, dtype=np.float64) for v in grid),
        node_vertices=np.asarray(node_vertices, dtype=np.float32),
        node_heads=np.asarray(node_heads, dtype=np.float32),
    )


# SMPL-X vertex ids of the COCO face and foot points (the `smplx` package's vertex_ids['smplx'] table).
SMPLX_LANDMARK_VERTICES = {
    "nose": 9120,
    "left_eye": 9448,
    "right_eye": 9929,
    "left_ear": 6,
    "right_ear": 616,
    "left_big_toe": 5770,
    "left_small_toe": 5780,
    "left_heel": 8846,
    "right_big_toe": 8463,
    "right_small_toe": 8474,
    "right_heel": 8635,
}
# SMPL-X skeleton joints standing in for the COCO limb points (hips sit lower and wider than COCO's; documented).
SMPLX_JOINT_KEYPOINTS = {name: name for name in LIMB_12_NAMES}  # same joint names in both skeletons
SMPLX_JOINT_NAMES = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)


def load_smplx_model_data(
    model_path: str | os.PathLike, gender: str = "neutral", cache_dir: Optional[Path] = None
) -> BodyModelData:
    """SMPL-X from the user's own licensed model files (SMPLX_<GENDER>.npz / .pkl, non-commercial licence).

    Raises BodyModelUnavailableError with what to install or download when the package or files are missing.
    """
    model_path = Path(model_path).expanduser()
    if not model_path.exists():
        raise BodyModelUnavailableError(
            f"SMPL-X model path '{model_path}' does not exist. SMPL-X files are licence-restricted and not "
            "bundled: register at https://smpl-x.is.tue.mpg.de, download the models, and point "
            "smplx_model_path at the folder holding smplx/SMPLX_NEUTRAL.npz (or at that file)."
        )
    try:
        import smplx  # noqa: F401  (imported lazily: optional, and only useful with the licensed files)
    except ImportError as exc:
        raise BodyModelUnavailableError(
            "model='smplx' needs the `smplx` package, which is not installed: pip install smplx==0.1.28 "
            f"(it is not a default dependency) ({exc})"
        ) from exc
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    stat = model_path.stat()
    key = {"v": _CACHE_VERSION, "path": str(model_path.resolve()), "mtime": stat.st_mtime, "gender": gender}
    path = _cache_path(cache_dir, "smplx", key)
    if path.exists():
        return BodyModelData.load(path)
    data = _build_smplx_model_data(model_path, gender)
    data.save(path)
    return data


def _build_smplx_model_data(model_path: Path, gender: str) -> BodyModelData:  # pragma: no cover - needs licensed files
    import smplx
    import torch

    try:
        model = smplx.create(
            str(model_path),
            model_type="smplx",
            gender=gender,
            num_betas=SMPLX_NUM_BETAS,
            use_pca=False,
            ext="npz" if model_path.suffix != ".pkl" else "pkl",
        )
    except Exception as exc:  # smplx raises bare Exceptions/AssertionErrors for wrong layouts
        raise BodyModelError(f"smplx could not load '{model_path}': {exc}") from exc
    parents = [int(p) for p in model.parents.cpu().numpy()]
    names = list(SMPLX_JOINT_NAMES) + [f"joint_{i}" for i in range(len(SMPLX_JOINT_NAMES), len(parents))]
    group_of_bone = _group_of_bones(names, parents, SMPLX_GROUP_BONES)
    group_bone_index = [names.index(SMPLX_GROUP_BONES[r]) for r in GROUP_NAMES]
    _check_group_tree(parents, group_bone_index, group_of_bone)
    lbs = model.lbs_weights.detach().cpu().numpy()
    skin = np.zeros((lbs.shape[0], len(GROUP_NAMES)))
    for b in range(lbs.shape[1]):
        skin[:, group_of_bone[b]] += lbs[:, b]
    skin /= np.maximum(skin.sum(1, keepdims=True), 1e-12)
    J_reg = model.J_regressor.detach().cpu().numpy()
    kw = np.zeros((len(MODEL_KEYPOINT_NAMES), lbs.shape[0]), dtype=np.float32)
    for k, name in enumerate(MODEL_KEYPOINT_NAMES):
        if name in SMPLX_LANDMARK_VERTICES:
            kw[k, SMPLX_LANDMARK_VERTICES[name]] = 1.0
        else:
            kw[k] = J_reg[names.index(SMPLX_JOINT_KEYPOINTS[name])]
    nodes = np.linspace(*SMPLX_BETA_RANGE, 2)
    node_vertices, node_heads = [], []
    with torch.no_grad():
        for node in itertools.product(*([nodes] * SMPLX_NUM_BETAS)):
            out = model(betas=torch.tensor([node], dtype=torch.float32), return_verts=True)
            node_vertices.append(out.vertices[0].numpy())
            node_heads.append(out.joints[0, group_bone_index].numpy())
    return BodyModelData(
        name="smplx",
        faces=model.faces.astype(np.int32),
        skin_weights=skin.astype(np.float32),
        keypoint_weights=kw,
        shape_axes=tuple(f"beta{i}" for i in range(SMPLX_NUM_BETAS)),
        shape_nodes=tuple(nodes.copy() for _ in range(SMPLX_NUM_BETAS)),
        node_vertices=np.asarray(node_vertices, np.float32),
        node_heads=np.asarray(node_heads, np.float32),
    )
