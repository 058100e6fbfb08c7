"""Exact depth rendering of object meshes by ray casting (open3d RaycastingScene, headless on CPU).

Used for verification (model depth at a hypothesis) and for synthetic scenes with ground truth.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pose_perception.core.camera import CameraIntrinsics


class RenderError(ValueError):
    """Inputs that cannot be rendered (bad pose, empty mesh list entry, bad region)."""


def _as_T(T: np.ndarray) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise RenderError(f"pose must be a finite (4, 4) matrix, got shape {T.shape}")
    return T


def pixel_rays(
    intrinsics: CameraIntrinsics, roi_xyxy=None, stride: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera-frame ray directions with z = 1 through pixel centres.

    roi_xyxy: integer [u0, v0, u1, v1) region (default: whole image). Returns (dirs (h*w, 3) float32, u (w,), v (h,)).
    OpenCV puts pixel centres at integer (u, v), so rays pass through (u, v) exactly: the RaycastingScene
    helper would need +0.5 on cx, cy for the same; building the rays here avoids that pitfall.
    """
    if roi_xyxy is None:
        roi_xyxy = (0, 0, intrinsics.width, intrinsics.height)
    u0, v0, u1, v1 = (int(x) for x in roi_xyxy)
    u0, v0 = max(u0, 0), max(v0, 0)
    u1, v1 = min(u1, intrinsics.width), min(v1, intrinsics.height)
    if u1 <= u0 or v1 <= v0:
        raise RenderError(f"empty render region {roi_xyxy} for a {intrinsics.width}x{intrinsics.height} image")
    u = np.arange(u0, u1, stride, dtype=np.float32)
    v = np.arange(v0, v1, stride, dtype=np.float32)
    uu, vv = np.meshgrid(u, v)
    dirs = np.stack(
        [(uu - intrinsics.cx) / intrinsics.fx, (vv - intrinsics.cy) / intrinsics.fy, np.ones_like(uu)], axis=-1
    ).reshape(-1, 3)
    return dirs.astype(np.float32), u, v


def cast_model(scene, T_cam_obj: np.ndarray, dirs_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cast camera rays (z = 1 directions) at one model's scene posed at T_cam_obj.

    The rays are moved into the object frame instead of moving the mesh, so the scene's BVH is built once per
    model. Returns depth_m (N,) float32 (NaN on miss) and normals_cam (N, 3) float32 (unit, camera frame).
    """
    import open3d as o3d

    T = _as_T(T_cam_obj)
    R, t = T[:3, :3], T[:3, 3]
    origin_obj = (-R.T @ t).astype(np.float32)
    dirs_obj = (dirs_cam @ R).astype(np.float32)  # R^T d for each row
    rays = np.empty((len(dirs_cam), 6), dtype=np.float32)
    rays[:, :3] = origin_obj
    rays[:, 3:] = dirs_obj
    hit = scene.cast_rays(o3d.core.Tensor(rays), nthreads=0)
    t_hit = hit["t_hit"].numpy()  # in units of the direction length; directions have z = 1 -> depth
    depth = np.where(np.isfinite(t_hit), t_hit, np.nan).astype(np.float32)
    normals = hit["primitive_normals"].numpy() @ R.T.astype(np.float32)
    return depth, normals.astype(np.float32)


def render_depth(
    models_and_poses: Sequence[tuple[object, np.ndarray]],
    intrinsics: CameraIntrinsics,
    roi_xyxy=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Render several posed meshes into one depth image.

    models_and_poses: [(ObjectModel | trimesh.Trimesh | (vertices (V, 3), faces (F, 3)), T_cam_obj (4, 4))].
    Returns depth_m (H, W) float32 (NaN where empty) and instance_ids (H, W) int32 (index into the list, -1 empty).
    With roi_xyxy, the outputs cover only that region.
    """
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    for i, (model, T) in enumerate(models_and_poses):
        T = _as_T(T)
        if hasattr(model, "vertices") and hasattr(model, "faces"):
            V, F = np.asarray(model.vertices), np.asarray(model.faces)
        else:
            try:
                V, F = (np.asarray(a) for a in model)
            except (TypeError, ValueError):
                raise RenderError(f"entry {i}: expected an ObjectModel, a trimesh or (vertices, faces)") from None
        if V.ndim != 2 or V.shape[1] != 3 or F.ndim != 2 or F.shape[1] != 3 or len(F) == 0:
            raise RenderError(f"entry {i}: mesh needs (V, 3) vertices and (F>0, 3) faces, got {V.shape}, {F.shape}")
        V_cam = (V.astype(np.float64) @ T[:3, :3].T + T[:3, 3]).astype(np.float32)
        gid = scene.add_triangles(
            o3d.t.geometry.TriangleMesh(o3d.core.Tensor(V_cam), o3d.core.Tensor(F.astype(np.int32)))
        )
        if gid != i:  # ids are assigned in insertion order; the mapping below relies on it
            raise RenderError("unexpected geometry id order in RaycastingScene")
    dirs, u, v = pixel_rays(intrinsics, roi_xyxy)
    rays = np.concatenate([np.zeros_like(dirs), dirs], axis=1)
    hit = scene.cast_rays(o3d.core.Tensor(rays), nthreads=0)
    t_hit = hit["t_hit"].numpy().reshape(len(v), len(u))
    ids = hit["geometry_ids"].numpy().reshape(len(v), len(u)).astype(np.int64)
    hit_mask = np.isfinite(t_hit)
    depth = np.where(hit_mask, t_hit, np.nan).astype(np.float32)
    instance_ids = np.where(hit_mask, ids, -1).astype(np.int32)
    return depth, instance_ids
