"""Onboarding a CAD mesh: geometry, features, units, symmetry, cache and the errors users hit."""
import warnings

import numpy as np
import pytest
import trimesh

from scenes import pybullet_path, ycb_path
from pose_perception.objects.model import (
    MeshUnitsWarning,
    ModelParams,
    ObjectModelError,
    load_object_model,
    symmetry_transforms_for,
)


def test_ycb_mug_is_onboarded_with_features_and_plausible_size(load_ycb):
    m = load_ycb("025_mug")
    assert 0.10 < m.diameter_m < 0.15  # a mug is ~12 cm across
    assert m.points.shape[1] == 3 and m.normals.shape == m.points.shape
    assert m.features.shape == (len(m.points), 33 * len(m.params.fpfh_radii_voxels))
    assert np.allclose(np.linalg.norm(m.dense_normals, axis=1), 1, atol=1e-3)
    assert len(m.dense_points) > len(m.points)
    assert m.mesh_uri.startswith("file://") and m.mesh_uri.endswith("025_mug.stl")
    assert m.symmetry == "none"  # the handle breaks the rotational symmetry


def test_can_symmetry_is_detected_as_continuous_about_its_axis(load_ycb):
    m = load_ycb("002_master_chef_can")
    assert m.symmetry == "continuous:z"
    # every symmetry transform maps the surface onto itself
    from scipy.spatial import cKDTree

    tree = cKDTree(m.dense_points)
    for T in m.symmetry_transforms[::9]:
        moved = m.dense_points @ T[:3, :3].T + T[:3, 3]
        assert tree.query(moved)[0].mean() < 0.01 * m.diameter_m


def test_declared_symmetry_is_used_and_bad_specs_are_refused(tmp_path):
    m = load_object_model("box", ycb_path("003_cracker_box"), symmetry="discrete:z:2", cache_dir=tmp_path)
    assert m.symmetry == "discrete:z:2" and len(m.symmetry_transforms) == 2
    for bad in ("mirror", "continuous:w", "discrete:z:1", "discrete:z:two"):
        with pytest.raises(ObjectModelError):
            symmetry_transforms_for(bad, np.zeros(3))


def test_cache_is_written_once_and_reused(tmp_path):
    a = load_object_model("duck", pybullet_path("duck.obj"), cache_dir=tmp_path, units="m")
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    b = load_object_model("duck", pybullet_path("duck.obj"), cache_dir=tmp_path, units="m")
    assert list(tmp_path.glob("*.npz")) == files
    assert np.array_equal(a.features, b.features)
    # other units are another cache entry
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MeshUnitsWarning)
        load_object_model("duck", pybullet_path("duck.obj"), cache_dir=tmp_path, units="mm")
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_wrong_units_warn_with_the_likely_fix(tmp_path):
    with pytest.warns(MeshUnitsWarning, match="are the units 'm'"):
        m = load_object_model("mug", ycb_path("025_mug"), units="mm", cache_dir=tmp_path)
    assert m.diameter_m < 0.001
    mesh = trimesh.load(ycb_path("025_mug"), force="mesh")
    mesh.apply_scale(1000.0)
    mesh.export(tmp_path / "mug_mm.stl")
    with pytest.warns(MeshUnitsWarning, match="are the units 'mm'"):
        load_object_model("mug", tmp_path / "mug_mm.stl", units="m", cache_dir=tmp_path)
    m = load_object_model("mug", tmp_path / "mug_mm.stl", units="mm", cache_dir=tmp_path)
    assert 0.10 < m.diameter_m < 0.15


def test_obj_quads_are_triangulated(tmp_path):
    # open3d's OBJ reader drops quads; trimesh splits them into triangles.
    verts = "\n".join(f"v {x} {y} {z}" for x in (0, 0.05) for y in (0, 0.05) for z in (0, 0.05))
    quads = "f 1 2 4 3\nf 5 7 8 6\nf 1 5 6 2\nf 3 4 8 7\nf 1 3 7 5\nf 2 6 8 4"
    (tmp_path / "cube.obj").write_text(verts + "\n" + quads + "\n")
    m = load_object_model("cube", tmp_path / "cube.obj", cache_dir=tmp_path)
    assert len(m.faces) == 12
    assert np.allclose(m.bbox_size_m, 0.05)


@pytest.mark.parametrize(
    "filename, content, match",
    [
        ("missing.stl", None, "does not exist"),
        ("broken.stl", b"solid x\nfacet normal garbage\n", "cannot read|no triangles"),
        ("empty.obj", b"# nothing here\n", "no triangles|cannot read"),
        ("points.ply", b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                       b"property float z\nend_header\n0 0 0\n1 0 0\n0 1 0\n", "no triangles|cannot read"),
        ("mesh.xyz", b"0 0 0\n", "unsupported type"),
    ],
)
def test_unusable_files_raise_a_clear_error(tmp_path, filename, content, match):
    path = tmp_path / filename
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ObjectModelError, match=match):
        load_object_model("x", path, cache_dir=tmp_path)


def test_huge_meshes_and_bad_names_are_refused(tmp_path):
    with pytest.raises(ObjectModelError, match="decimate"):
        load_object_model("mug", ycb_path("025_mug"), cache_dir=tmp_path, params=ModelParams(max_faces=1000))
    with pytest.raises(ObjectModelError, match="name"):
        load_object_model("my mug", ycb_path("025_mug"), cache_dir=tmp_path)
    with pytest.raises(ObjectModelError, match="units"):
        load_object_model("mug", ycb_path("025_mug"), units="cm", cache_dir=tmp_path)
