"""Onboarding a CAD mesh: geometry, features, units, symmetry, cache and the errors users hit."""

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
    for bad in (
        "mirror",
        "continuous:w",
        "discrete:z:1",
        "discrete:z:two",
        "discrete:z:2,w:2",
        "discrete:z:2,",
        "discrete:z:3,y:3",
    ):  # the last: two perpendicular third turns generate no finite group
        with pytest.raises(ObjectModelError):
            symmetry_transforms_for(bad, np.zeros(3))


def _is_group(transforms: np.ndarray) -> bool:
    """Closed under composition, identity first, no element twice."""

    def index_of(T):
        return [i for i, E in enumerate(transforms) if np.allclose(T, E, atol=1e-9)]

    return (
        np.allclose(transforms[0], np.eye(4))
        and all(len(index_of(T)) == 1 for T in transforms)
        and all(len(index_of(A @ B)) == 1 for A in transforms for B in transforms)
    )


def test_a_discrete_set_gives_the_group_its_rotations_generate():
    centre = np.array([0.01, -0.02, 0.05])
    box = symmetry_transforms_for("discrete:x:2,y:2", centre)  # D2: the identity and three half turns
    assert len(box) == 4 and _is_group(box)
    half_turn_z = np.diag([-1.0, -1.0, 1.0])
    assert any(np.allclose(T[:3, :3], half_turn_z) for T in box)
    assert all(np.allclose(T[:3, :3] @ centre + T[:3, 3], centre) for T in box)  # all axes pass through centre
    assert len(symmetry_transforms_for("discrete:z:3,x:2", centre)) == 6  # a triangular prism: D3
    assert len(symmetry_transforms_for("discrete:x:4,y:4", centre)) == 24  # a cube


def test_box_symmetry_is_detected_as_its_whole_group(tmp_path):
    """SYNTHETIC: trimesh primitives. A box's half turns about all three axes, a cube's 24 rotations."""
    import trimesh

    for extents, n_rotations in (((0.21, 0.16, 0.07), 4), ((0.1, 0.1, 0.1), 24)):
        path = tmp_path / f"box_{n_rotations}.stl"
        box = trimesh.creation.box(extents=extents)
        box.export(path)
        m = load_object_model(path.stem, str(path), symmetry="auto", cache_dir=tmp_path)
        assert m.symmetry.startswith("discrete:") and len(m.symmetry_transforms) == n_rotations, m.symmetry
        assert _is_group(m.symmetry_transforms)
        corners = np.asarray(box.vertices)
        for T in m.symmetry_transforms:  # each maps the box's corners onto its corners
            moved = corners @ T[:3, :3].T + T[:3, 3]
            assert {tuple(c) for c in np.round(moved, 6)} == {tuple(c) for c in np.round(corners, 6)}


def test_cache_is_written_once_and_reused(tmp_path):
    a = load_object_model("duck", pybullet_path("duck.obj"), cache_dir=tmp_path, units="m")
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    b = load_object_model("duck", pybullet_path("duck.obj"), cache_dir=tmp_path, units="m")
    assert list(tmp_path.glob("*.npz")) == files
    assert np.array_equal(a.features, b.features)
    # another symmetry is another cache entry
    load_object_model("duck", pybullet_path("duck.obj"), cache_dir=tmp_path, units="m", symmetry="discrete:z:2")
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_wrong_units_are_refused_with_the_likely_fix(tmp_path):
    # a mug read in the wrong units is 0.12 mm or 120 m across: a units mistake, refused with the fix
    with pytest.raises(ObjectModelError, match="are the units 'm'"):
        load_object_model("mug", ycb_path("025_mug"), units="mm", cache_dir=tmp_path)
    mesh = trimesh.load(ycb_path("025_mug"), force="mesh")
    mesh.apply_scale(1000.0)
    mesh.export(tmp_path / "mug_mm.stl")
    with pytest.raises(ObjectModelError, match="are the units 'mm'"):
        load_object_model("mug", tmp_path / "mug_mm.stl", units="m", cache_dir=tmp_path)
    m = load_object_model("mug", tmp_path / "mug_mm.stl", units="mm", cache_dir=tmp_path)
    assert 0.10 < m.diameter_m < 0.15
    with pytest.raises(ObjectModelError, match="units must be 'm' or 'mm', got ''"):
        load_object_model("mug", ycb_path("025_mug"), units="", cache_dir=tmp_path)


def test_sizes_between_plausible_and_absurd_warn(tmp_path):
    mesh = trimesh.load(ycb_path("025_mug"), force="mesh")
    mesh.apply_scale(40.0)  # about 5 m across: a large object, not a units mistake
    mesh.export(tmp_path / "big.stl")
    with pytest.warns(MeshUnitsWarning, match="implausible for a graspable object"):
        m = load_object_model("big", tmp_path / "big.stl", units="m", cache_dir=tmp_path)
    assert 4.0 < m.diameter_m < 6.0
    mesh.apply_scale(1e3)  # 5 km
    mesh.export(tmp_path / "huge.stl")
    with pytest.raises(ObjectModelError, match="outside the 0.002-10 m"):
        load_object_model("huge", tmp_path / "huge.stl", units="m", cache_dir=tmp_path)


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
        (
            "points.ply",
            b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
            b"property float z\nend_header\n0 0 0\n1 0 0\n0 1 0\n",
            "no triangles|cannot read",
        ),
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
