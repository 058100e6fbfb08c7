"""Synthetic (labelled synthetic) RGB-D test scenes: real CAD meshes on a support plane, rendered with
objects.render.render_depth, with RGB-D-like noise. Test helper only.

The package's own pieces are used wherever they exist: the camera is the eval scenes' (synthetic.SceneConfig),
mesh shorthands resolve through model.resolve_mesh_path, the camera placement is synthetic's look-at and ADD-S is
metrics.adds_error. What stays here is make_scene: it lays out ANY meshes (test primitives, onboarded ObjectModels)
in a fixed row with a chosen viewing distance and elevation, which the eval generator's random, catalogue-only
layouts (synthetic.make_scene) cannot give the unit tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from pose_perception.evaluation.objects.metrics import adds_error
from pose_perception.objects.model import resolve_mesh_path
from pose_perception.objects.render import render_depth
from pose_perception.evaluation.objects.synthetic import SceneConfig

INTRINSICS = SceneConfig().intrinsics()  # 640x480, fx = fy = 615 px, principal point at the image centre


def ycb_path(name: str) -> str:
    return str(resolve_mesh_path(f"ycb:{name}"))


def pybullet_path(name: str) -> str:
    return str(resolve_mesh_path(f"pybullet_data:{name}"))


@dataclass
class Scene:
    depth_m: np.ndarray  # (H, W) float32, NaN invalid
    rgb: np.ndarray  # (H, W, 3) uint8 (grey shading; meshes have no texture)
    instance_ids: np.ndarray
    T_cam_world: np.ndarray
    poses: list  # T_cam_obj per placed mesh, in the order given


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """T_cam_world for a camera at `eye` looking at `target` (world z up; camera x right, y down, z forward)."""
    from pose_perception.core.frames import invert_T
    from pose_perception.evaluation.objects.synthetic import _look_at_T_world_cam

    return invert_T(_look_at_T_world_cam(np.asarray(eye, float), np.asarray(target, float)))


def make_scene(
    meshes, rng: np.random.Generator, distance_m=0.7, elevation_deg=45.0, noise=True, gap_m=0.05, intrinsics=INTRINSICS
) -> Scene:
    """Place each (vertices, faces)-like mesh upright on a table (world z = 0), in a row along x with a random
    yaw, gap_m between their bounding circles (never interpenetrating), and look at the row from `distance_m`.
    Noise: Gaussian depth noise 1.5 mm * z^2 and 2 % dropout."""
    placed, T_world, radii = [], [], []
    for mesh in meshes:
        V = np.asarray(mesh.vertices, dtype=np.float64)
        R = Rotation.from_euler("z", rng.uniform(0, 2 * np.pi)).as_matrix()
        Vr = V @ R.T
        c = 0.5 * (Vr.min(0) + Vr.max(0))
        radii.append(float(np.linalg.norm(Vr[:, :2] - c[:2], axis=1).max()))
        T = np.eye(4)
        T[:3, :3] = R
        T[:3, 3] = [-c[0], -c[1], -Vr[:, 2].min()]
        T_world.append(T)
        placed.append(mesh)
    x = 0.0
    for i, T in enumerate(T_world):
        if i:
            x += radii[i - 1] + gap_m + radii[i]
        T[0, 3] += x
    for T in T_world:
        T[0, 3] -= x / 2
    el = np.radians(elevation_deg)
    az = rng.uniform(-0.4, 0.4)
    eye = distance_m * np.array([np.cos(el) * np.sin(az), -np.cos(el) * np.cos(az), np.sin(el)])
    T_cam_world = look_at(eye, np.array([0, 0, 0.04]))
    plane = (np.array([[-2, -2, 0], [2, -2, 0], [2, 2, 0], [-2, 2, 0]], float), np.array([[0, 1, 2], [0, 2, 3]]))
    items = [(m, T_cam_world @ T) for m, T in zip(placed, T_world)] + [(plane, T_cam_world)]
    depth, ids = render_depth(items, intrinsics)
    if noise:
        depth = depth + rng.normal(0, 1, depth.shape).astype(np.float32) * 0.0015 * depth**2
        depth[rng.random(depth.shape) < 0.02] = np.nan
    shade = np.where(ids >= 0, 80 + 40 * (ids + 1) % 170, 0).astype(np.uint8)
    rgb = np.repeat(shade[..., None], 3, axis=2)
    return Scene(depth.astype(np.float32), rgb, ids, T_cam_world, [T_cam_world @ T for T in T_world])


def add_s_m(model_points: np.ndarray, T_est: np.ndarray, T_gt: np.ndarray) -> float:
    """ADD-S (metres) in the argument order these tests use: metrics.adds_error."""
    return adds_error(T_est, T_gt, model_points)
