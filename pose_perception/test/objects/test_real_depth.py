"""What the estimator does for real sensors (issue 15): flying pixels, several support planes, colour edges on the
silhouette contour, the size prefilter, the batched 6x6 solver, class-restricted boxes, and the REAL-data eval."""

import numpy as np
import pytest

from pose_perception.core.camera import CameraIntrinsics
from pose_perception.core.realdata import realdata_dir
from pose_perception.objects.detections import Detection2D, valid_detections
from pose_perception.objects.edges import EdgeConfig, contour_support, image_edges
from pose_perception.objects.estimator import ObjectPoseEstimator
from pose_perception.objects.prefilter import SegmentShape, could_be_part, fits_alone, is_flat, segment_shape
from pose_perception.objects.registration import solve_spd_batched
from pose_perception.objects.segmentation import SegmentationConfig, remove_flying_pixels, remove_support_plane

K = np.array([[600.0, 0, 319.5], [0, 600.0, 239.5], [0, 0, 1]])
INTR = CameraIntrinsics(K, 640, 480)
REAL_DIR = realdata_dir("objects")


def test_flying_pixels_between_two_surfaces_are_dropped_and_the_surfaces_kept():
    depth = np.full((60, 80), 1.5, np.float32)
    depth[:, :40] = 0.5  # an object's face in front of the background
    depth[:, 40] = 1.0  # a streak of in-between depths along its silhouette
    depth[10, 10] = np.nan
    out = remove_flying_pixels(depth)
    assert np.isnan(out[:, 40]).all()
    assert np.isfinite(out[:, :40]).sum() == 60 * 40 - 1 and np.isfinite(out[:, 41:]).all()
    # pixels at a junction with neighbours on their own surface stay when asked to
    kept = remove_flying_pixels(depth, max_same_fraction=0.25)
    assert np.isnan(kept[:, 40]).all()  # a 1-px streak has no own surface
    depth[:, 39:42] = 1.0  # a 3-px band: a real surface
    assert np.isfinite(remove_flying_pixels(depth, max_same_fraction=0.25)[5:55, 40]).all()


def _plane_points(z_of_xy, x_range, y_range, step=0.02):
    x, y = np.meshgrid(np.arange(*x_range, step), np.arange(*y_range, step))
    return np.stack([x.ravel(), y.ravel(), z_of_xy(x, y).ravel()], axis=1)


def test_a_second_support_surface_is_removed_but_not_an_object_face():
    """A table (1 m away, facing the camera) and a raised 40 x 40 cm tablet parallel to it: both go. A 12 x 12 cm box
    top standing on the table at the tablet's offset is an object's face, and stays."""
    table = _plane_points(lambda x, y: np.full_like(x, 1.0), (-0.6, 0.6), (-0.5, 0.5))
    # sampled finer than the clustering distance (2 cm), as a depth image samples them
    tablet = _plane_points(lambda x, y: np.full_like(x, 0.8), (-0.5, -0.1), (-0.4, 0.0), step=0.01)
    box_top = _plane_points(lambda x, y: np.full_like(x, 0.8), (0.2, 0.32), (0.1, 0.22), step=0.01)
    pts = np.concatenate([table, tablet, box_top]).astype(np.float32)
    keep, plane = remove_support_plane(pts, SegmentationConfig())
    assert plane is not None and abs(plane[2]) > 0.99
    n_t, n_tab = len(table), len(tablet)
    assert not keep[:n_t].any() and not keep[n_t : n_t + n_tab].any()
    assert keep[n_t + n_tab :].all()
    keep_one, _ = remove_support_plane(pts, SegmentationConfig(max_extra_planes=0))
    assert keep_one[n_t : n_t + n_tab].all()


def _square_image(x0, y0, size=100):
    rgb = np.full((480, 640, 3), 90, np.uint8)
    rgb[y0 : y0 + size, x0 : x0 + size] = (220, 60, 40)
    return rgb


def test_a_contour_on_the_image_outline_is_supported_and_one_inside_a_plain_region_is_not():
    edges = image_edges(_square_image(200, 150))
    u, v = np.arange(0, 640, 2, dtype=np.float32), np.arange(0, 480, 2, dtype=np.float32)
    uu, vv = np.meshgrid(u, v)
    on = (uu >= 200) & (uu < 300) & (vv >= 150) & (vv < 250)
    inside = (uu >= 400) & (uu < 500) & (vv >= 300) & (vv < 400)  # flat grey: no edge under its outline
    _, supported, frac = contour_support(edges, np.stack([on, inside]), u, v)
    assert frac[0] > 0.9 and frac[1] < 0.05
    assert supported[0].any() and not supported[1].any()
    # an outline at the right place but turned 45 degrees agrees only where its direction matches
    diamond = np.abs(uu - 250) + np.abs(vv - 200) < 60
    assert contour_support(edges, diamond[None], u, v)[2][0] < 0.5


def test_edges_adapt_to_a_noisy_frame():
    """High-gain noise makes gradients everywhere: the threshold rises with the median, the outline stays."""
    rng = np.random.default_rng(0)
    rgb = np.clip(_square_image(200, 150).astype(int) + rng.integers(-60, 60, (480, 640, 3)), 0, 255).astype(np.uint8)
    fixed = image_edges(rgb, EdgeConfig(magnitude_over_median=0.0))
    adaptive = image_edges(rgb)
    assert adaptive.any_edge.mean() < 0.5 * fixed.any_edge.mean()
    assert adaptive.any_edge[150:250, 198:203].mean() > 0.9


def test_batched_cholesky_solves_as_numpy():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(7, 6, 30))
    H = A @ A.transpose(0, 2, 1) + 1e-9 * np.eye(6)
    g = rng.normal(size=(7, 6))
    assert np.allclose(solve_spd_batched(H, g), np.linalg.solve(H, g[..., None])[..., 0], atol=1e-9)


class _Box:
    def __init__(self, dims, diameter):
        self.bbox_size_m = np.asarray(dims)
        self.diameter_m = diameter


def test_prefilter_keeps_what_can_fit_and_demotes_what_only_a_merged_segment_could_hold():
    marker = _Box([0.12, 0.02, 0.02], 0.121)
    pitcher = _Box([0.24, 0.15, 0.145], 0.26)
    small = SegmentShape(np.array([0.10, 0.02, 0.01]), 0.11)  # a standing marker's visible side
    assert fits_alone(marker, small) and not could_be_part(pitcher, small)
    wide = SegmentShape(np.array([0.40, 0.20, 0.10]), 0.25)  # wider than either: objects merged
    assert not fits_alone(marker, wide) and could_be_part(marker, wide)
    assert not fits_alone(pitcher, wide) and could_be_part(pitcher, wide)


def test_flat_segment_is_searched_only_for_models_that_fit_alone(load_ycb):
    """A flat surface larger than every model (REAL ycb_realsense/000004: a table edge 0.82 x 0.15 x 0.014 m) gets no
    model at all; as long a segment that is thick (objects merged) gets the fallback group."""
    est = ObjectPoseEstimator([load_ycb("005_tomato_soup_can"), load_ycb("003_cracker_box")])
    rng = np.random.default_rng(0)
    flat = np.c_[rng.uniform(-0.41, 0.41, 4000), rng.uniform(-0.07, 0.07, 4000), 1.0 + rng.uniform(0, 0.012, 4000)]
    assert is_flat(segment_shape(flat, None))
    assert est._models_for(est._index, flat.astype(np.float32), None) == [[]]
    thick = flat.copy()
    thick[:, 2] = 1.0 + rng.uniform(0, 0.12, 4000)
    assert not is_flat(segment_shape(thick, None))
    groups = est._models_for(est._index, thick.astype(np.float32), None)
    assert groups[0] == [] and len(groups[1]) >= 1


def test_boxes_with_class_names_search_only_that_model(load_ycb):
    est = ObjectPoseEstimator([load_ycb("005_tomato_soup_can")])
    depth = np.full((480, 640), 1.0, np.float32)
    rgb = np.zeros((480, 640, 3), np.uint8)
    box = np.array([100, 100, 200, 200])
    assert est.estimate(rgb, depth, INTR, masks=[Detection2D(box, "not_loaded")]) == []


def test_detections_outside_the_image_or_of_unknown_objects_are_dropped_with_a_reason():
    dets = [
        Detection2D(np.array([10, 10, 50, 60]), "mug"),
        Detection2D(np.array([700, 10, 800, 60]), "mug"),
        Detection2D(np.array([-20, 400, 30, 520]), None),
        Detection2D(np.array([0, 0, np.nan, 5]), "mug"),
        Detection2D(np.array([10, 10, 50, 60]), "teapot"),
    ]
    kept, problems = valid_detections(dets, 640, 480, known=["mug"])
    assert [k.name for k in kept] == ["mug", None]
    assert np.allclose(kept[1].box_xyxy, [0, 400, 30, 480])
    assert len(problems) == 3 and any("teapot" in p for p in problems) and any("outside" in p for p in problems)


def test_real_eval_says_clearly_when_the_data_is_missing(tmp_path, capsys):
    from pose_perception.cli.main import main

    assert main(["eval", "objects", "--real", str(tmp_path / "nowhere")]) == 2
    assert "not found" in capsys.readouterr().out


@pytest.mark.skipif(
    not (REAL_DIR / "ycb_realsense" / "reference.json").exists(),
    reason=f"REAL dev data not at {REAL_DIR} (../shared/realdata beside the repository)",
)
def test_real_frame_found_with_nothing_false(tmp_path, capsys):
    """REAL RealSense frame 3 with a 4-mesh catalogue: the drill and the wood block are found (silhouette IoU >= 0.5
    with PoseCNN's label masks), the two absent meshes are not reported."""
    import json

    from pose_perception.cli.main import main

    out = tmp_path / "r.json"
    rc = main(
        [
            "eval",
            "objects",
            "--real",
            str(REAL_DIR),
            "--frames",
            "ycb_realsense/000003",
            "--catalogue",
            "035_power_drill",
            "036_wood_block",
            "003_cracker_box",
            "019_pitcher_base",
            "--out-dir",
            str(tmp_path),
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    frame = json.loads(out.read_text())["frames"][0]
    assert sorted(frame["found"]) == ["035_power_drill", "036_wood_block"]
    assert frame["false"] == []
    assert (tmp_path / "ycb_realsense_000003.png").exists()


def test_the_support_plane_fit_gives_the_same_plane_every_run():
    # A table, a second surface nearly parallel to it and clutter: with open3d drawing its RANSAC samples from
    # several threads, the plane chosen depended on their timing (2 different planes in 10 runs in 3 of 4 such
    # clouds; this test failed in 1 of 4 runs with that fit), and with it the segments and what was found.
    import open3d as o3d

    from pose_perception.objects.segmentation import _fit_plane

    rng = np.random.default_rng(0)

    def surface(z0, tilt, n):
        xy = rng.uniform(-0.6, 0.6, (n, 2))
        return np.column_stack([xy, z0 + tilt * xy[:, 0] + rng.normal(0, 0.006, n)])

    threads = o3d.utility.get_max_threads()
    for _ in range(4):
        pts = np.concatenate(
            [
                surface(1.2, 0.3, 30000),
                surface(1.0, 0.28, 12000),
                rng.uniform([-0.5, -0.5, 0.5], [0.5, 0.5, 1.5], (8000, 3)),
            ]
        )
        planes = [_fit_plane(pts, SegmentationConfig(), seed=0)[0] for _ in range(10)]
        assert all(np.array_equal(p, planes[0]) for p in planes)
    assert o3d.utility.get_max_threads() == threads  # restored for the rest of the process


def test_a_continuation_of_the_same_colour_is_not_forgiven_by_an_edge_on_the_outline():
    # A model fitted into part of a larger flat surface: the ring around it continues that surface. An image edge
    # on the outline forgives that only where the colour across it changes (another object touching), not where
    # the same surface goes on in the same colour (a label line, a shading step: a can fitted into a mug's body).
    from pose_perception.objects.verification import boundary_scores, colour_distance

    h, w = 40, 40
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    pts = np.stack([(u - 20) * 0.005, (v - 20) * 0.005, np.ones((h, w))], axis=-1)  # a flat surface at 1 m
    normals = np.zeros((h, w, 3))
    normals[..., 2] = -1.0
    dr = np.full((1, h, w), np.nan)
    dr[0, 12:28, 12:28] = 1.0  # the model covers the middle of it
    on_edge = np.ones((1, h, w), bool)
    same = np.zeros((h, w, 3))
    same[:] = (180, 60, 60)
    same[12:28, 12:28] *= 0.7  # same red, in shadow
    other = same.copy()
    other[:, :] = (60, 160, 60)  # a green object all round
    other[12:28, 12:28] = (180, 60, 60)
    args = (dr, pts, normals, None, 0.01, 2, 5, 0.015)
    kw = dict(contour_on_edge=on_edge, forgive=np.ones(1), min_colour_diff=0.06)
    assert boundary_scores(*args)[0] < 0.1  # no edges: the surface goes on
    assert boundary_scores(*args, colour_grid=same, **kw)[0] < 0.1
    assert boundary_scores(*args, colour_grid=other, **kw)[0] > 0.9
    assert boundary_scores(*args, contour_on_edge=on_edge, forgive=np.ones(1))[0] > 0.9  # no colour: forgiven
    assert colour_distance(np.array([[180.0, 60, 60]]), np.array([[126.0, 42, 42]]))[0] < 0.06
