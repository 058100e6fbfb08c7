"""How far the collision meshes object_pose_node sends to MoveIt (objects/collision.py simplified_mesh) lie from the
original meshes: distance of each original surface sample (ObjectModel.dense_points) to the simplified mesh.

    PYTHONPATH=pose_perception bash tools/with_env.sh python tools/collision_mesh_error.py [--max-faces 2000]
"""

import argparse
import tempfile

import numpy as np
import open3d as o3d

from pose_perception.core.machine import machine_description
from pose_perception.objects.collision import simplified_mesh
from pose_perception.objects.model import load_object_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-faces", type=int, default=2000)
    parser.add_argument("--objects", nargs="+", default=["006_mustard_bottle", "025_mug", "003_cracker_box"])
    args = parser.parse_args()
    print(f"machine: {machine_description()}")
    for name in args.objects:
        m = load_object_model(name, f"ycb:{name}", symmetry="none", cache_dir=tempfile.mkdtemp())
        v, f = simplified_mesh(m.vertices, m.faces, args.max_faces)
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(o3d.core.Tensor(v.astype(np.float32)), o3d.core.Tensor(f.astype(np.uint32)))
        d = scene.compute_distance(o3d.core.Tensor(np.asarray(m.dense_points, np.float32))).numpy()
        print(
            f"{name}: {len(m.faces)} -> {len(f)} faces; original surface to collision mesh: mean {d.mean() * 1e3:.2f}"
            f" mm, p99 {np.percentile(d, 99) * 1e3:.2f} mm, max {d.max() * 1e3:.2f} mm "
            f"(object diameter {m.diameter_m * 1e3:.0f} mm)"
        )


if __name__ == "__main__":
    main()
