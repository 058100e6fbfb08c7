"""6D pose of known-mesh ("unseen", never trained on) objects in RGB-D frames: estimate from scratch
(segment -> FPFH/RANSAC hypotheses -> ICP -> render-and-compare verification) and track frame to frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from pose_perception.core.camera import CameraIntrinsics, backproject
from pose_perception.core.depth import sanitize_depth_m
from pose_perception.core.device import resolve_device
from pose_perception.core.frames import invert_T
from pose_perception.core.threads import one_blas_thread
from pose_perception.core.types import ObjectPose
from pose_perception.objects.edges import EdgeConfig, image_edges
from pose_perception.objects.model import ObjectModel
from pose_perception.objects.prefilter import (
    PrefilterConfig,
    could_be_part,
    fits_alone,
    is_flat,
    off_the_plane,
    segment_shape,
    size_rank,
)
from pose_perception.objects.registration import (
    ModelIndex,
    RegistrationConfig,
    ScenePatch,
    compatibility_hypotheses,
    distinct_poses,
    free_space_consistency_batch,
    prepare_patch,
    refine_icp,
    refine_icp_visible,
)
from pose_perception.objects.segmentation import (
    Segment,
    SegmentationConfig,
    cluster_points,
    remove_flying_pixels,
    segment_depth,
)
from pose_perception.objects.verification import VerificationConfig, projected_bbox, verify_hypotheses


class EstimatorInputError(ValueError):
    """RGB-D input that cannot be used: wrong shapes, sizes that disagree with the camera, no valid depth."""


class UnknownObjectError(KeyError):
    """An object name that is not loaded."""


class EstimationCancelled(Exception):
    """estimate() stopped early because its `cancelled` callback said so; it has no result."""


@dataclass(frozen=True)
class EstimatorConfig:
    """score_threshold: verification score below which nothing is reported (estimate);
    detection_score_threshold: score_threshold for an object searched in a detector's box that names it (masks given
    as objects/detections.Detection2D with a name): the detector already says it is there, verification confirms the
    pose. On the REAL dev frames with the reference boxes the wrong best poses in such a box (the upside-down mugs)
    scored at most 0.14, the right ones 0.50-1.0 (the shiny potted-meat can 0.50): 0.4 lies between
    (docs/objects-real.md);
    track_score_threshold: below it a tracked object counts as lost and is re-detected;
    max_instances_per_segment: instances searched in one segment (touching objects merge into one segment);
    min_rest_fraction / min_rest_points: after an instance is found, each connected part of the segment's unexplained
    rest is searched again when it holds at least this fraction of the segment's points and min_rest_points;
    min_segment_fraction: segments smaller than this fraction of a model's diameter are not tried for it;
    duplicate_fraction: same-name poses whose centres are closer than this * diameter are one instance;
    edges: colour-edge settings of the verification's contour test (None: colour unused);
    prefilter: the size test that decides which models a segment is searched for (None: every model);
    time_budget_s: estimate() starts no new model search after this many seconds (None: no limit); the segments
    and, within each, the likeliest models by size come first, so an exhausted budget drops the unlikely searches.
    What was skipped is in last_stats.
    good_enough_score: a segment's search over the catalogue stops at the first model whose pose scores at least this
    (the models are tried likeliest first by size); on the 6 REAL dev frames no wrong pose scored above 0.71, the
    true ones 0.72-1.0 (0.8-0.9: the drill lying on the cracker box, the Xtion frame's mustard bottle and pitcher, the
    marker), and the later models of such a search cost a third of the frame's time (docs/objects-real.md). 1.0:
    only a perfect score stops it.
    min_explained_retry: a segment in which nothing was found is searched once more without the points that the
    instances found in other segments explain, when these are at least this fraction of it.
    max_refined_models: in each group of a segment's search every model gets the cheap coarse stage (features,
    hypotheses, coarse ICP), and the costly two-way ICP and verification only those whose coarse rank led when they
    were ranked, and the max_refined_models best ranked: on the REAL dev frames the model found was always among
    the 3 best ranked of up to 21.
    min_coarse_rank: a model's search ends before the costly two-way ICP and verification when its best coarse pose
    explains less than this (fraction of segment points on the model x free-space consistency): on the REAL dev
    frames no such search scored above 0.25, and the lowest coarse rank of a pose that was found was 0.45 (a drill
    in a segment merged with the box it lies on). 0: never."""

    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    registration: RegistrationConfig = field(default_factory=RegistrationConfig)
    verification: VerificationConfig = field(default_factory=VerificationConfig)
    score_threshold: float = 0.7
    detection_score_threshold: float = 0.4
    track_score_threshold: float = 0.6
    max_instances_per_segment: int = 3
    min_segment_fraction: float = 0.25
    duplicate_fraction: float = 0.3
    min_rest_fraction: float = 0.03
    min_rest_points: int = 60
    track_icp_voxels: tuple[float, ...] = (2.0, 1.0)
    track_stride: int = 3
    redetect_on_loss: bool = True
    seed: int = 0
    edges: EdgeConfig | None = field(default_factory=EdgeConfig)
    prefilter: PrefilterConfig | None = field(default_factory=PrefilterConfig)
    time_budget_s: float | None = None
    good_enough_score: float = 0.8
    min_explained_retry: float = 0.1
    max_refined_models: int = 4
    min_coarse_rank: float = 0.3
    area_margin: float = 0.8


def canonical_symmetric_pose(
    model: ObjectModel, T_cam_obj: np.ndarray, reference: np.ndarray | None = None
) -> np.ndarray:
    """Among the symmetry-equivalent poses T @ S, the one closest in rotation to `reference` (default: the
    camera axes), so symmetric objects get a stable, reproducible orientation."""
    if len(model.symmetry_transforms) == 1:
        return T_cam_obj
    R_ref = np.eye(3) if reference is None else reference[:3, :3]
    cands = T_cam_obj[None] @ model.symmetry_transforms
    traces = np.einsum("bij,ij->b", cands[:, :3, :3], R_ref)
    return cands[int(np.argmax(traces))]


@dataclass
class _Candidate:
    index: ModelIndex
    T_cam_obj: np.ndarray
    score: float

    @property
    def model(self) -> ObjectModel:
        return self.index.model


@dataclass
class _Coarse:
    """One model's coarse stage in a segment: its prepared patch, best coarse poses (K, 4, 4), their best rank."""

    index: ModelIndex
    patch: ScenePatch
    poses: np.ndarray
    rank: float
    tau: float


class ObjectPoseEstimator:
    """Finds and tracks instances of the loaded object models.

    estimate() and track() may run on different threads at once (a node tracks at camera rate while a full search
    runs in the background), and add_model/remove_model may be called meanwhile: each call works on the models
    loaded when it started (the model table is replaced, never changed in place)."""

    def __init__(self, models: list[ObjectModel], config: EstimatorConfig = EstimatorConfig(), device: str = "cpu"):
        self.config = config
        self.device = resolve_device(device)
        self._index: dict[str, ModelIndex] = {}  # name -> index of its model; replaced as a whole, never mutated
        # Support plane of the last full estimation: tracking reuses it (no per-frame plane fit) so that the
        # verification's boundary and support tests see the table as the table.
        self._plane: np.ndarray | None = None
        # What the last estimate() did: segments, model searches run and skipped (by the time budget).
        self.last_stats: dict = {}
        for m in models:
            self.add_model(m)

    # ----- model management -------------------------------------------------------------------------------
    @property
    def models(self) -> dict[str, ObjectModel]:
        return {name: ix.model for name, ix in self._index.items()}

    def add_model(self, model: ObjectModel) -> None:
        """Add or replace (same name) a model. Calls under way keep the models they started with."""
        self._index = {**self._index, model.name: ModelIndex(model, device=self.device)}

    def remove_model(self, name: str) -> None:
        """Calls under way keep the models they started with."""
        if name not in self._index:
            raise UnknownObjectError(f"object '{name}' is not loaded; loaded: {sorted(self._index)}")
        self._index = {n: ix for n, ix in self._index.items() if n != name}

    # ----- input checks ------------------------------------------------------------------------------------
    @staticmethod
    def _check_inputs(rgb, depth_m, intrinsics: CameraIntrinsics) -> np.ndarray:
        depth_m = np.asarray(depth_m)
        if depth_m.ndim != 2:
            raise EstimatorInputError(f"depth must be (H, W) metres, got shape {depth_m.shape}")
        if depth_m.shape != (intrinsics.height, intrinsics.width):
            raise EstimatorInputError(
                f"depth is {depth_m.shape[1]}x{depth_m.shape[0]} but the camera info says "
                f"{intrinsics.width}x{intrinsics.height}: use the camera_info of the depth image (registered depth)"
            )
        if rgb is not None:
            rgb = np.asarray(rgb)
            if rgb.shape[:2] != depth_m.shape:
                raise EstimatorInputError(
                    f"colour image {rgb.shape[1]}x{rgb.shape[0]} and depth {depth_m.shape[1]}x{depth_m.shape[0]} "
                    "differ in size: register depth to colour first"
                )
        depth = sanitize_depth_m(depth_m)
        if not np.isfinite(depth).any():
            raise EstimatorInputError("depth image has no valid pixels (all NaN or zero): is the depth stream running?")
        return depth

    # ----- estimation --------------------------------------------------------------------------------------
    def estimate(
        self,
        rgb: np.ndarray | None,
        depth_m: np.ndarray,
        intrinsics: CameraIntrinsics,
        masks=None,
        explained: Sequence[ObjectPose] = (),
        cancelled: Callable[[], bool] | None = None,
    ) -> list[ObjectPose]:
        """All confidently found instances.

        rgb (H, W, 3) uint8 or None: its edges are checked against each pose's outline (objects/edges.py; None: no
        such check); depth_m (H, W) metres, NaN/0 invalid; masks: optional list of (H, W) bool masks, (4,) pixel
        boxes or objects/detections.Detection2D (a box with the object name searched there: that model only; a name
        that is not loaded searches nothing); explained: poses already known (tracks), whose segments are not
        searched again; cancelled: asked before each segment's search, and True raises EstimationCancelled (a search
        another thread no longer wants then ends within one segment instead of running to its end).
        Returns ObjectPose list sorted by name, instance; T_cam_obj maps model -> camera.
        Runs with numpy's BLAS on one thread (core/threads.py: its spinning workers cost up to a third of the CPU
        time)."""
        with one_blas_thread():
            return self._estimate(rgb, depth_m, intrinsics, masks, explained, cancelled)

    def _estimate(self, rgb, depth_m, intrinsics, masks, explained, cancelled) -> list[ObjectPose]:
        """estimate() (see there), inside its BLAS thread limit."""
        depth = self._check_inputs(rgb, depth_m, intrinsics)
        index = self._index
        if not index:
            return []
        names = None if masks is None else [getattr(m, "name", None) for m in masks]
        scfg = self.config.segmentation
        if scfg.flying_radius_px > 0:  # for the search and its verification alike
            depth = remove_flying_pixels(depth, scfg.flying_radius_px, scfg.flying_min_gap_m, scfg.flying_gap_per_m)
        seg = segment_depth(depth, intrinsics, masks, scfg)
        # Per-frame work done once for every model and segment.
        edges = image_edges(rgb, self.config.edges) if (rgb is not None and self.config.edges is not None) else None
        self._plane = seg.plane
        found: list[_Candidate] = []
        budget = self.config.time_budget_s
        stats: dict[str, Any] = {
            "segments": len(seg.segments),
            "searches": 0,
            "skipped": 0,
            "retried": 0,
            "deadline": None if budget is None else time.monotonic() + budget,
        }
        empty: list[tuple[Segment, dict]] = []
        for segment in seg.segments:
            if cancelled is not None and cancelled():
                raise EstimationCancelled("estimate() was cancelled")
            if any(self._explained_fraction(index.get(p.name), p, segment.points_m) >= 0.7 for p in explained):
                continue  # a tracked object already accounts for this segment: re-detection is for the rest
            searched = index
            if names is not None and segment.source >= 0 and names[segment.source] is not None:
                name = names[segment.source]
                searched = {name: index[name]} if name in index else {}
            if searched:
                new = self._search_segment(
                    searched,
                    segment,
                    depth,
                    intrinsics,
                    seg.plane,
                    edges,
                    stats,
                    named=names is not None and segment.source >= 0 and names[segment.source] is not None,
                )
                found.extend(new)
                if not new:
                    empty.append((segment, searched))
        # Segments that gave nothing, searched once more without what the instances found meanwhile explain: a box
        # from a detector around a box with a drill lying on it holds the drill too, which pulls the box's fit away.
        for segment, searched in empty if found else []:
            if cancelled is not None and cancelled():
                raise EstimationCancelled("estimate() was cancelled")
            keep = np.ones(len(segment.points_m), bool)
            for c in found:
                keep[keep] = self._unexplained_mask(c, segment.points_m[keep])
            if keep.sum() <= (1.0 - self.config.min_explained_retry) * len(keep):
                retry = replace(segment, points_m=segment.points_m[keep], pixel_index=segment.pixel_index[keep])
                stats["retried"] += 1
                found.extend(
                    self._search_segment(
                        searched,
                        retry,
                        depth,
                        intrinsics,
                        seg.plane,
                        edges,
                        stats,
                        named=names is not None and segment.source >= 0 and names[segment.source] is not None,
                    )
                )
        stats.pop("deadline")
        self.last_stats = stats
        return self._assign_instances(self._suppress_duplicates(found), previous=[])

    def _search_segment(
        self,
        index: dict[str, ModelIndex],
        seg: Segment,
        depth: np.ndarray,
        intrinsics: CameraIntrinsics,
        plane,
        edges=None,
        stats: dict | None = None,
        named: bool = False,
    ) -> list[_Candidate]:
        """Instances in one segment: the best model's best pose, then what it leaves unexplained, split again into
        connected parts (touching objects merge into one segment; once one is explained the others come apart),
        each searched the same way, at most max_instances_per_segment searches in all. named: the segment is a
        detector's box with the name of the one model in `index`."""
        cfg = self.config
        # A box from a detector that names the object is evidence that it is there: verification has only to
        # confirm the pose, so a lower score suffices (EstimatorConfig.detection_score_threshold).
        threshold = cfg.score_threshold
        if seg.source >= 0 and len(index) == 1 and named:
            threshold = cfg.detection_score_threshold
        results: list[_Candidate] = []
        todo = [seg.points_m]
        searches = 0
        while todo and searches < cfg.max_instances_per_segment:
            points = todo.pop(0)
            if len(points) < cfg.segmentation.cluster_min_points:
                continue
            best: _Candidate | None = None
            searches += 1
            # Models that alone can explain the segment first; the others (it may hold several touching objects) only
            # when none of those did. Within a group, likeliest size first, every model gets the cheap coarse stage;
            # the costly refinement and verification go to a model at once when its coarse rank leads so far (so
            # that a right first guess ends the search early), and otherwise only to the max_refined_models best
            # ranked of the group once all are ranked.
            K, stride = intrinsics.K, cfg.segmentation.stride
            area_m2 = float(np.sum(points[:, 2].astype(np.float64) ** 2)) * stride**2 / (K[0, 0] * K[1, 1])
            for group in self._models_for(index, points, plane, area_m2):
                if best is not None and best.score >= threshold:
                    break
                ranked: list[tuple[_Coarse, bool]] = []  # (coarse stage, refined already)
                lead = -np.inf
                for model_index in group:
                    if best is not None and best.score >= cfg.good_enough_score:
                        break  # likeliest first: a later model would rarely be right where this one fits so well
                    if self._out_of_time(stats):
                        continue
                    c = self._coarse_search(model_index, points, depth, intrinsics)
                    if c is None:
                        continue
                    now = c.rank > lead
                    lead = max(lead, c.rank)
                    ranked.append((c, now))
                    if now:
                        cand = self._refine_search(c, seg.bbox_xyxy, depth, intrinsics, plane, edges, threshold)
                        best = self._better(best, cand)
                ranked.sort(key=lambda r: -r[0].rank)  # stable: equal ranks keep the likelier size first
                for c, done in ranked[: cfg.max_refined_models]:
                    if best is not None and best.score >= cfg.good_enough_score:
                        break
                    if done or self._out_of_time(stats, count=False):
                        continue
                    cand = self._refine_search(c, seg.bbox_xyxy, depth, intrinsics, plane, edges, threshold)
                    best = self._better(best, cand)
            if best is None or best.score < threshold:
                continue
            results.append(best)
            threshold = cfg.score_threshold  # the detector vouches for one instance, not for more in its box
            # Look for more instances in the rest, part by part; parts too small to be an object (the noise around an
            # explained instance) must not cost a search.
            rest = self._unexplained(best, points)
            min_points = max(cfg.min_rest_points, cfg.min_rest_fraction * len(points))
            for members in cluster_points(rest, cfg.segmentation) if len(rest) >= min_points else []:
                part = rest[members]
                if len(part) >= min_points and np.max(np.ptp(part, axis=0)) >= cfg.segmentation.min_extent_m:
                    todo.append(part)
        return results

    @staticmethod
    def _out_of_time(stats: dict | None, count: bool = True) -> bool:
        """True when the time budget is spent (the search is counted as skipped); else counts a search (count)."""
        if stats is None:
            return False
        if stats["deadline"] is not None and time.monotonic() > stats["deadline"]:
            stats["skipped"] += 1
            return True
        stats["searches"] += count
        return False

    @staticmethod
    def _better(best: _Candidate | None, cand: _Candidate) -> _Candidate:
        return cand if best is None or cand.score > best.score else best  # ties keep the first

    def _models_for(
        self,
        index: dict[str, ModelIndex],
        points: np.ndarray,
        plane,
        area_m2: float = 0.0,
    ) -> list[list[ModelIndex]]:
        """The models worth searching in a segment (points (N, 3), seen area area_m2) as two groups, each likeliest
        first: those that alone can explain it, then those that can only be part of it (EstimatorConfig.prefilter).
        A model whose whole surface is smaller than min_coarse_rank of the segment's area (the area its pixels cover
        facing the camera, which never exceeds the surface they sample) can never pass the coarse stage's rank (the
        fraction of the segment on the model): it is not searched (a wall beside a table, 0.12 m^2, leaves the
        models larger than a cereal box). area_margin leaves room for the inlier distance around the model."""
        cfg = self.config
        extent = float(np.max(points.max(0) - points.min(0)))
        least_area = cfg.area_margin * cfg.min_coarse_rank * area_m2
        cands = [
            ix
            for ix in index.values()
            if extent >= cfg.min_segment_fraction * ix.model.diameter_m and ix.area_m2 >= least_area
        ]
        if cfg.prefilter is None or len(cands) <= 1:
            return [cands]
        shape = off_the_plane([ix.model for ix in index.values()], segment_shape(points, plane), cfg.prefilter)
        cands = sorted(cands, key=lambda ix: size_rank(ix.model, shape))
        alone = [ix for ix in cands if fits_alone(ix.model, shape, cfg.prefilter)]
        if is_flat(shape, cfg.prefilter):
            return [alone]  # one object's face or background, never objects that merged (PrefilterConfig.flat_max_m)
        part = [ix for ix in cands if ix not in alone and could_be_part(ix.model, shape, cfg.prefilter)]
        return [alone, part]

    def _coarse_search(self, index: ModelIndex, points, depth, intrinsics) -> _Coarse | None:
        """The cheap stage of one model's search in a segment (points (N, 3)): features, hypotheses, coarse ICP, and
        the ranking of its poses; None when nothing explains at least min_coarse_rank of the segment."""
        cfg = self.config
        model = index.model
        patch = prepare_patch(points, model, cfg.registration, seed=cfg.seed)
        if patch is None:
            return None
        hyps = compatibility_hypotheses(index, patch, cfg.registration)
        if not hyps:
            return None
        # Coarse one-way ICP for every hypothesis, plus the half turns of the best few about the model's principal
        # axes (near-symmetric shapes: the registration often locks onto the turned pose); those that converged to
        # the same pose are merged; the rest get the two-way ICP that also respects free space (it fixes poses
        # that slid along the flat faces of a partial view, which one-way scene->model ICP cannot see), and are
        # verified. The coarse stage only has to reach the basin of the two-way one: a subsample is enough.
        reg = cfg.registration
        sub = patch.icp_points[:: max(1, -(-len(patch.icp_points) // reg.max_coarse_icp_points))]
        n_it = reg.coarse_icp_iterations
        T0 = np.stack([T for T, _ in hyps])
        T1, fit1, _ = refine_icp(index, sub, T0, reg, voxels=reg.icp_voxels[:1], iterations=n_it)
        best = np.argsort(-fit1, kind="stable")[: reg.n_flipped]
        turned = (T1[best][:, None] @ index.flips[None]).reshape(-1, 4, 4)
        T2, fit2, _ = refine_icp(index, sub, turned, reg, voxels=reg.icp_voxels[:1], iterations=n_it)
        Ts, fits = np.concatenate([T1, T2]), np.concatenate([fit1, fit2])
        Ts, fits = Ts[fits > 0], fits[fits > 0]
        if not len(Ts):
            return None
        keep = distinct_poses(list(Ts), model.diameter_m, 5.0, 0.05)
        Ts, fits = Ts[keep], fits[keep]
        tau = max(cfg.verification.tau_min_m, cfg.verification.tau_diameter_fraction * model.diameter_m)
        rank = -fits * free_space_consistency_batch(index, Ts, depth, intrinsics.K, tau)
        if -rank.min() < cfg.min_coarse_rank:
            return None  # cheap rejection: no coarse pose explains enough of the segment to be worth refining
        chosen = Ts[np.argsort(rank, kind="stable")[: reg.n_refined]]
        return _Coarse(index, patch, chosen, float(-rank.min()), tau)

    def _refine_search(self, c: _Coarse, roi, depth, intrinsics, plane, edges=None, threshold=None) -> _Candidate:
        """The costly stage: two-way ICP and verification of a model's best coarse poses; the best verified one.
        threshold: the score that counts (default score_threshold); the costliest tests are skipped below it."""
        cfg = self.config
        threshold = cfg.score_threshold if threshold is None else threshold
        model = c.index.model
        # The best-ranked hypothesis is refined and verified first: when it scores 1 (the maximum, common for an
        # unoccluded object) no other can beat it, and argmax below would pick it anyway, so the rest are skipped.
        refined: list[np.ndarray] = []
        scores = []
        for batch in (c.poses[:1], c.poses[1:]):
            if not len(batch):
                break
            part = list(
                refine_icp_visible(c.index, c.patch.icp_points, batch, depth, intrinsics.K, cfg.registration, c.tau)
            )
            refined += part
            scores += verify_hypotheses(
                model,
                part,
                depth,
                intrinsics,
                cfg.verification,
                roi_xyxy=roi,
                device=self.device,
                plane=plane,
                plane_tol_m=1.5 * cfg.segmentation.plane_distance_m,
                min_score=threshold,
                edges=edges,
            )
            if scores[0].score >= 1.0:
                break
        i = int(np.argmax([s.score for s in scores]))
        return _Candidate(c.index, canonical_symmetric_pose(model, refined[i]), scores[i].score)

    def _explained_fraction(self, index: ModelIndex | None, pose: ObjectPose, points: np.ndarray) -> float:
        if index is None or len(points) == 0:
            return 0.0
        return 1.0 - len(self._unexplained(_Candidate(index, pose.T_cam_obj, pose.score), points)) / len(points)

    def _unexplained(self, cand: _Candidate, points: np.ndarray) -> np.ndarray:
        """The camera-frame points (M, 3) farther than tau from the candidate's model surface. Asked in the object
        frame of the model's cached index: building a KD-tree of the posed model per call cost more."""
        return points[self._unexplained_mask(cand, points)]

    def _unexplained_mask(self, cand: _Candidate, points: np.ndarray) -> np.ndarray:
        """(M,) bool: which of the points (M, 3) _unexplained keeps."""
        T_obj_cam = invert_T(cand.T_cam_obj)
        points_obj = np.asarray(points, dtype=np.float64) @ T_obj_cam[:3, :3].T + T_obj_cam[:3, 3]
        tau = max(self.config.verification.tau_min_m, 2.0 * cand.model.voxel_m)
        return ~cand.index.within(points_obj, tau)

    def _suppress_duplicates(self, cands: list[_Candidate]) -> list[_Candidate]:
        kept: list[_Candidate] = []
        for c in sorted(cands, key=lambda c: -c.score):
            centre = c.T_cam_obj[:3, :3] @ c.model.centre_m + c.T_cam_obj[:3, 3]
            clash = False
            for k in kept:
                if k.model.name != c.model.name:
                    continue
                kc = k.T_cam_obj[:3, :3] @ k.model.centre_m + k.T_cam_obj[:3, 3]
                if np.linalg.norm(kc - centre) < self.config.duplicate_fraction * c.model.diameter_m:
                    clash = True
                    break
            if not clash:
                kept.append(c)
        return kept

    def _assign_instances(self, cands: list[_Candidate], previous: list[ObjectPose]) -> list[ObjectPose]:
        """Instance numbers: kept from `previous` where given (same name, nearest centre), else the lowest free."""
        used: dict[str, set[int]] = {}
        out: list[ObjectPose] = []
        for c in sorted(cands, key=lambda c: -c.score):
            taken = used.setdefault(c.model.name, set())
            k = 0
            while k in taken:
                k += 1
            taken.add(k)
            out.append(self._to_pose(c, k))
        return sorted(out, key=lambda p: (p.name, p.instance))

    @staticmethod
    def _to_pose(c: _Candidate, instance: int) -> ObjectPose:
        return ObjectPose(
            name=c.model.name,
            instance=instance,
            T_cam_obj=np.asarray(c.T_cam_obj, dtype=np.float64),
            score=float(np.clip(c.score, 0.0, 1.0)),
            bbox_size_m=np.asarray(c.model.bbox_size_m, dtype=np.float64),
            mesh_uri=c.model.mesh_uri,
            bbox_center_m=np.asarray(c.model.centre_m, dtype=np.float64),
        )

    # ----- tracking ----------------------------------------------------------------------------------------
    def track(
        self,
        rgb: np.ndarray | None,
        depth_m: np.ndarray,
        intrinsics: CameraIntrinsics,
        previous: list[ObjectPose],
        redetect: bool = False,
        masks=None,
    ) -> list[ObjectPose]:
        """Follow `previous` poses into this frame: ICP from the previous pose on the depth around it, then the
        verification check. Lost objects (score below track_score_threshold) are re-detected with estimate()
        when config.redetect_on_loss, and always when `redetect` (to pick up objects that appeared); instance
        numbers of kept objects are preserved, new ones get the lowest free number."""
        depth = self._check_inputs(rgb, depth_m, intrinsics)
        cfg = self.config
        index = self._index
        kept: list[ObjectPose] = []
        lost = False
        for prev in previous:
            if prev.name not in index:
                continue  # removed meanwhile
            tracked = self._track_one(index[prev.name], prev, depth, intrinsics)
            if tracked is None:
                lost = True
            else:
                kept.append(tracked)
        if redetect or ((lost or not previous) and cfg.redetect_on_loss):
            fresh = self.estimate(rgb, depth, intrinsics, masks, explained=kept)
            kept = self.merge(kept, fresh)
        return sorted(kept, key=lambda p: (p.name, p.instance))

    def _track_one(self, index: ModelIndex, prev: ObjectPose, depth, intrinsics) -> ObjectPose | None:
        cfg = self.config
        model = index.model
        plane = self._plane  # read once: a search on another thread may replace it
        box = projected_bbox(model, prev.T_cam_obj, intrinsics)
        if box is None:
            return None
        # Observed points around the previous pose (grown box: the object moved), at a coarse stride.
        grow = 0.25 * max(box[2] - box[0], box[3] - box[1])
        u0, v0 = int(max(box[0] - grow, 0)), int(max(box[1] - grow, 0))
        u1, v1 = int(min(box[2] + grow, intrinsics.width)), int(min(box[3] + grow, intrinsics.height))
        s = cfg.track_stride
        sub = depth[v0:v1:s, u0:u1:s]
        vv, uu = np.mgrid[v0:v1:s, u0:u1:s]
        ok = np.isfinite(sub)
        z = sub[ok]
        pts = backproject(np.stack([uu[ok], vv[ok]], axis=1), z, intrinsics.K)
        centre = prev.T_cam_obj[:3, :3] @ model.centre_m + prev.T_cam_obj[:3, 3]
        keep = np.linalg.norm(pts - centre, axis=1) < 0.75 * model.diameter_m
        if plane is not None:  # table points would pull the model into the table
            keep &= pts @ plane[:3] + plane[3] > cfg.segmentation.plane_distance_m
        pts = pts[keep]
        if len(pts) < 20:
            return None
        if len(pts) > cfg.registration.max_icp_points:  # the KD-tree queries dominate the cost: cap them
            step = len(pts) / cfg.registration.max_icp_points
            pts = pts[(np.arange(cfg.registration.max_icp_points) * step).astype(np.int64)]
        T, fitness, _ = refine_icp(index, pts, prev.T_cam_obj, cfg.registration, voxels=cfg.track_icp_voxels)
        if fitness == 0:
            return None
        vcfg = VerificationConfig(**{**cfg.verification.__dict__, "stride": max(cfg.verification.stride, 3)})
        score = verify_hypotheses(
            model,
            [T],
            depth,
            intrinsics,
            vcfg,
            device=self.device,
            plane=plane,
            plane_tol_m=1.5 * cfg.segmentation.plane_distance_m,
            min_score=cfg.track_score_threshold,
        )[0].score
        if score < cfg.track_score_threshold:
            return None
        T = canonical_symmetric_pose(model, T, reference=prev.T_cam_obj)
        return replace(prev, T_cam_obj=T, score=float(score))

    def merge(self, kept: list[ObjectPose], fresh: list[ObjectPose]) -> list[ObjectPose]:
        """Add re-detected instances that no kept track already covers, with new instance numbers. Instances of
        models no longer loaded are dropped."""
        out = list(kept)
        index = self._index
        for f in fresh:
            if f.name not in index:
                continue
            model = index[f.name].model
            fc = f.T_cam_obj[:3, :3] @ model.centre_m + f.T_cam_obj[:3, 3]
            dup = False
            for k in out:
                if k.name != f.name:
                    continue
                kc = k.T_cam_obj[:3, :3] @ model.centre_m + k.T_cam_obj[:3, 3]
                if np.linalg.norm(kc - fc) < self.config.duplicate_fraction * model.diameter_m:
                    dup = True
                    break
            if dup:
                continue
            taken = {k.instance for k in out if k.name == f.name}
            inst = 0
            while inst in taken:
                inst += 1
            out.append(replace(f, instance=inst))
        return out
