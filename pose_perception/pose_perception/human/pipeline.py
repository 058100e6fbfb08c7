"""The human pose pipeline: one RGB(-D) frame in, tracked whole-body 3D people out, with per-stage timings.

Stages: person proposals -> keypoint backend per person -> 3D lifting (depth, else world landmarks) ->
tracking -> head pose -> optional body mesh. Used by the CLI, the ROS node and the benchmark alike.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from pose_perception.core.camera import CameraIntrinsics
from pose_perception.core.depth import sanitize_depth_m
from pose_perception.core.frames import body_frame
from pose_perception.core.keypoints import BODY, COCO_WHOLEBODY_133, FACE
from pose_perception.core.types import HumanPose, Source
from pose_perception.human.backends import (
    KeypointEstimate,
    MediaPipeHolisticBackend,
    OnnxWholeBodyBackend,
    estimate_all,
)
from pose_perception.human.lowlight import LowLightConfig, normalise_low_light
from pose_perception.human.proposals import (
    MediaPipeFaceProposer,
    OnnxPersonDetector,
    PersonProposal,
    grey_out_boxes,
    mask_other_depths,
)
from pose_perception.human.tracking import box_iou

# finder_pose / finder_face / finder_box: the part of "proposals" the fused finder's person, face and whole-body
# person-box detectors took.
STAGES = ("proposals", "finder_pose", "finder_face", "finder_box", "keypoints", "lifting", "tracking", "head", "mesh")


class PipelineConfigError(ValueError):
    """The pipeline configuration names something that does not exist or cannot be loaded."""


class HumanInputError(ValueError):
    """An image, depth image or camera model handed to the pipeline cannot be used."""


@dataclass(frozen=True)
class HumanPipelineConfig:
    """Everything the pipeline needs; the node's parameters and the CLI flags map onto these fields."""

    backend: str = "roi"  # "roi" (MediaPipe's landmark models on ROIs chosen here) | "mediapipe" (Holistic) | "onnx"
    model_path: str = ""  # ONNX whole-body model (backend "onnx")
    device: str = "auto"  # "cpu" | "cuda" | "auto" for ONNX models and the mesh fitter
    proposer: str = "fused"  # "fused" (PersonFinder) | "face" (MediaPipe face detector) | "onnx" | "none"
    detector_model_path: str = ""  # ONNX person detector (proposer "onnx")
    max_people: int = 3
    min_person_score: float = 0.3  # mean body-17 confidence below which an estimate is dropped
    face_min_confidence: float = 0.5
    finder_budget_ms: float = 0.0  # proposer "fused": detector time per proposal round (0: all windows at once)
    finder_tile_fractions: tuple = (0.6, 0.35)  # proposer "fused": tile sides / the image's shorter side
    finder_palms: bool = False  # proposer "fused": also the palm detector (no gain on the dev photos, +20 % time)
    finder_person_boxes: bool = True  # proposer "fused": also the SSDLite whole-body person detector
    full_frame_search: bool = True  # after the proposals, look for more people with found ones greyed out
    search_period: int = 1  # propose and search every N frames (video: last frame's people are followed)
    finder_overlap: bool = True  # video: a proposal round runs on its own thread while last frame's people are
    # followed (their keypoints), instead of after them
    max_search_backoff: int = 1  # video: fruitless searches stretch search_period up to this factor (1: never)
    search_calls_per_frame: int = 0  # most backend calls one search makes (0: all candidates, for single images)
    min_strip_fraction: float = 0.15  # narrowest uncovered strip (of the image width) searched for a person
    workers: int = 0  # people whose keypoints are estimated concurrently (0: one per CPU core)
    follow_min_iou: float = 0.5  # a followed person seen without a face must overlap last frame's box this much
    duplicate_iou: float = 0.4  # estimates whose keypoint boxes overlap more are the same person
    depth_band_m: float = 0.6  # depth difference that separates a person from others / background
    low_light_below: float = 48.0  # frames whose 99.5th luminance percentile is darker are brightened for the
    # person models only (human/lowlight.py; 0: never); results and overlays keep the original image
    max_image_side_px: int = 1920  # larger images are downscaled first (results are in input pixels)
    min_image_side_px: int = 32  # smaller images cannot show a person: empty result
    lift_3d: bool = True
    depth_window_px: int = 5
    min_depth_body_keypoints: int = 6  # fewer body keypoints with depth -> use the world landmarks instead
    bone_lengths: bool = True
    tracking: bool = True
    head_pose: bool = True
    mesh: bool = False
    mesh_model: str = "anny"
    smplx_model_path: str = ""
    mesh_max_faces: int = 0  # 0: the full mesh; nodes publish a decimated one
    mesh_fit: str = "image"  # "image": the body model reprojected onto the 2D keypoints through the camera (3D
    # keypoints start it, depth pulls too); "keypoints3d": fitted to the 3D keypoints only (needs both hips)


@dataclass(frozen=True)
class _Followed:
    """A person found in the last frame: crop_box (4,) where to look next, keypoint_box (4,) where they were,
    masked: found with the others greyed out, lane: the backend lane that follows them, had_face: their face
    was found, confirmed_at: frame index of the last detection (not lane tracking) that found them,
    head_box: (4,) where their head was (region backends keep a lane on this person with it)."""

    crop_box: np.ndarray
    keypoint_box: np.ndarray
    masked: bool
    lane: int
    had_face: bool
    confirmed_at: int
    head_box: Optional[np.ndarray] = None


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Any common image array -> (H, W, 3) uint8 RGB: grey (H, W) / (H, W, 1), RGBA, uint16, float 0-1."""
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
        raise HumanInputError(
            f"expected an (H, W[, C]) image array, got {getattr(image, 'shape', type(image).__name__)}"
        )
    img = image
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype.kind == "f":
        img = (np.clip(np.nan_to_num(img), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise HumanInputError(f"image dtype {img.dtype} is not supported: use uint8, uint16 or float in [0, 1]")
    if img.ndim == 2:
        img = img[:, :, None]
    channels = img.shape[2]
    if channels == 1:
        img = np.repeat(img, 3, axis=2)
    elif channels == 4:
        img = img[:, :, :3]
    elif channels != 3:
        raise HumanInputError(f"image has {channels} channels: expected 1, 3 or 4")
    return np.ascontiguousarray(img)


def check_depth(depth_m: Optional[np.ndarray], height: int, width: int) -> Optional[np.ndarray]:
    """(H, W) float metres matching the image -> float32 with NaN for invalid; raises HumanInputError."""
    if depth_m is None:
        return None
    depth = np.asarray(depth_m)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    if depth.shape != (height, width):
        raise HumanInputError(
            f"depth is {depth.shape[:2]} but the image is {(height, width)}: depth must be registered to the colour "
            f"image at the same resolution"
        )
    return sanitize_depth_m(depth)


def _load_stage(module: str, names: tuple[str, ...], flag: str):
    import importlib

    try:
        mod = importlib.import_module(module)
        return tuple(getattr(mod, n) for n in names)
    except (ImportError, AttributeError) as exc:
        raise PipelineConfigError(
            f"{module} ({', '.join(names)}) is not available in this build ({exc}); set {flag}=false to run without it"
        ) from exc


class HumanPosePipeline:
    """Stateful (tracking, mesh per track) pipeline for one camera stream. Not thread-safe: one caller at a time,
    except fit_meshes, which may run on another thread."""

    def __init__(self, config: HumanPipelineConfig = HumanPipelineConfig()) -> None:
        self.config = config
        if config.search_period < 1:
            raise PipelineConfigError(f"search_period must be >= 1, got {config.search_period}")
        if config.workers < 0:
            raise PipelineConfigError(f"workers must be >= 0 (0: one per CPU core), got {config.workers}")
        if config.max_people < 1:
            raise PipelineConfigError(f"max_people must be >= 1, got {config.max_people}")
        if config.mesh_fit not in ("image", "keypoints3d"):
            raise PipelineConfigError(f"mesh_fit must be 'image' or 'keypoints3d', got '{config.mesh_fit}'")
        if config.backend == "roi":
            from pose_perception.human.landmarks import RoiWholeBodyBackend

            self.backend = RoiWholeBodyBackend()
        elif config.backend == "mediapipe":
            self.backend = MediaPipeHolisticBackend()
        elif config.backend == "onnx":
            self.backend = OnnxWholeBodyBackend(config.model_path, device=config.device)
        else:
            raise PipelineConfigError(f"backend must be 'roi', 'mediapipe' or 'onnx', got '{config.backend}'")
        if config.proposer == "fused":
            from pose_perception.human.finder import FinderConfig, PersonFinder

            self.proposer = PersonFinder(
                FinderConfig(
                    face_min_score=config.face_min_confidence,
                    tile_fractions=tuple(config.finder_tile_fractions),
                    budget_ms=config.finder_budget_ms,
                    palms=config.finder_palms,
                    person_boxes=config.finder_person_boxes,
                    depth_band_m=config.depth_band_m,
                )
            )
        elif config.proposer == "face":
            self.proposer = MediaPipeFaceProposer(config.face_min_confidence, config.depth_band_m)
        elif config.proposer == "onnx":
            self.proposer = OnnxPersonDetector(
                config.detector_model_path, device=config.device, depth_band_m=config.depth_band_m
            )
        elif config.proposer == "none":
            self.proposer = None
        else:
            raise PipelineConfigError(f"proposer must be 'fused', 'face', 'onnx' or 'none', got '{config.proposer}'")
        if config.proposer == "none" and not config.full_frame_search:
            raise PipelineConfigError("proposer 'none' needs full_frame_search=true, else nobody is ever searched")
        self._lift = None
        if config.lift_3d:
            self._lift = _load_stage(
                "pose_perception.human.lifting",
                ("lift_with_depth", "lift_with_world_landmarks", "enforce_bone_lengths"),
                "lift_3d",
            )
        self.tracker = None
        if config.tracking:
            (HumanTracker,) = _load_stage("pose_perception.human.tracking", ("HumanTracker",), "tracking")
            self.tracker = HumanTracker()
        self._head = None
        if config.head_pose:
            (self._head,) = _load_stage("pose_perception.human.head", ("head_pose_from_face",), "head_pose")
        self.mesh_fitter = None
        if config.mesh:
            (BodyMeshFitter,) = _load_stage("pose_perception.human.body_mesh", ("BodyMeshFitter",), "mesh")
            self.mesh_fitter = BodyMeshFitter(
                device=config.device,
                model=config.mesh_model,
                smplx_model_path=config.smplx_model_path or None,
                max_faces=config.mesh_max_faces or None,
            )
        workers = config.workers or os.cpu_count() or 1
        self._pool = (
            ThreadPoolExecutor(min(workers, config.max_people)) if min(workers, config.max_people) > 1 else None
        )
        # One thread for the proposer: its round overlaps the following of last frame's people.
        self._finder_pool = ThreadPoolExecutor(1) if config.finder_overlap and self.proposer is not None else None
        self._proposal_wall_ms = 0.0  # time the current frame waited for proposals (the rest of the round overlapped)
        self._pending = None  # the round started on the finder's thread, until its frame takes the result
        self._followed: list[_Followed] = []  # last frame's people, looked for first in the next frame
        self._next_lane = 0
        self._frame_index = 0
        self._frames_since_proposals = 10**9  # the first frame runs the proposer
        self._frames_since_search = 10**9  # the first frame searches
        self._search_cursor = 0
        self._search_misses = 0  # backend runs of searches that found nobody, since the last find
        self._search_backoff = 1  # search_period multiplier, doubled after each fruitless full round
        # Proposals nobody was found for: head box (whole-body box for a box without a head), frame from which to
        # try again, frames waited the last time.
        self._failed: list[tuple[np.ndarray, int, int]] = []
        self._finder_ms: dict[str, float] = {}  # the finder's detector times in the current frame

    def reset(self) -> None:
        """Forget everything carried between frames (followed people, their lanes, tracks, search state): the
        next frame is treated as a new still image / the start of a new stream."""
        for tr in self._followed:
            self.backend.release_lane(tr.lane)
        self._followed = []
        self._frames_since_proposals = self._frames_since_search = 10**9
        self._search_cursor = self._search_misses = 0
        self._search_backoff = 1
        self._failed = []
        if self.tracker is not None:
            self.tracker.reset()
        if self.mesh_fitter is not None:  # else the next photo's person i starts from (or falls back to) this one's
            self.mesh_fitter.reset()

    def close(self) -> None:
        for pool in (self._pool, self._finder_pool):
            if pool is not None:
                pool.shutdown()
        for part in (self.backend, self.proposer):
            if part is not None and hasattr(part, "close"):
                part.close()

    # ---- stages -------------------------------------------------------------------------------------------

    def find_people(self, rgb: np.ndarray, depth_m: Optional[np.ndarray]) -> tuple[list[KeypointEstimate], float]:
        """Last frame's people first (each in its own backend lane, concurrently), then proposals for new people
        (every search_period frames, or every frame while nobody is followed), then the greyed-out full-frame
        search. Returns estimates and the proposal time in ms (the rest is keypoint time)."""
        cfg = self.config
        found: list[KeypointEstimate] = []
        found_with: list[tuple[Optional[np.ndarray], bool, Optional[int]]] = []  # crop box, others greyed, lane
        confirmed: dict[int, int] = {}  # index in found -> frame of the last detection that saw the person
        self._frame_index += 1

        def accept(
            est: Optional[KeypointEstimate],
            box: Optional[np.ndarray] = None,
            searched: bool = False,
            masked: bool = False,
            lane: Optional[int] = None,
        ) -> bool:
            if est is None or est.score < cfg.min_person_score or not np.all(np.isfinite(est.bbox_xyxy)):
                return False
            # The pose detector hallucinates people in background clutter when pushed into crops; a person found
            # by the search must also have a face the face-landmark model accepted.
            if searched and not _has_face(est):
                return False
            if any(same_estimate(est, f, cfg.duplicate_iou) for f in found) or inside_another(est, found):
                return False
            found.append(est)
            found_with.append((box, masked, lane))
            return True

        # A proposal round due this frame starts now, on its own thread, while last frame's people are followed
        # (the keypoint models and the detectors release the GIL): a core that following leaves idle (one person
        # on two cores) runs it. (Rounds every frame while a core is idle were tried: slower, docs/human-real.md.)
        period = cfg.search_period
        if self._pending is not None:
            # A frame that failed after starting its round left it running: the finder is not thread-safe, so
            # wait for it (its result is stale) before this frame uses the finder.
            concurrent.futures.wait([self._pending])
            self._pending = None
        pending = None
        if self._finder_pool is not None and self._followed and self._frames_since_proposals + 1 >= period:
            known = [tr.keypoint_box for tr in self._followed]
            pending = self._pending = self._finder_pool.submit(self._timed_propose, rgb, depth_m, known)

        # Top-down video tracking: each person is looked for again with the crop that found them, in the lane
        # that followed them, so people facing away stay found and MediaPipe skips its detector.
        requests = []
        for i, tr in enumerate(self._followed):
            image = rgb
            if tr.masked:  # found with the others greyed out: look again the same way
                image = grey_out_boxes(
                    rgb, [_pad_box(o.keypoint_box, 0.1) for k, o in enumerate(self._followed) if k != i]
                )
            requests.append(
                (image, tr.crop_box, tr.lane) + ((tr.head_box,) if hasattr(self.backend, "estimate_roi") else ())
            )
        for tr, est, (image, box, lane, *hint) in zip(
            self._followed, estimate_all(self.backend, requests, self._pool), requests
        ):
            # A lane can go on following a stale region into clutter (the person left, the scene cut). A person
            # seen without a face is re-confirmed by a fresh detection on the same crop: at once when they had
            # a face last frame, else at least every search_period frames.
            confirmed_at = tr.confirmed_at
            if est is not None and _has_face(est):
                confirmed_at = self._frame_index  # the face-landmark model accepted a face: a person is there
            elif (
                est is not None
                and not hasattr(self.backend, "estimate_roi")
                and (tr.had_face or self._frame_index - tr.confirmed_at >= cfg.search_period)
            ):
                # (A region backend's lane checks presence and head continuity itself, every frame.)
                est, confirmed_at = self.backend.estimate(image, box, None, *hint), self._frame_index
            # Without a face, only continuity says it is the same person: people do not jump between frames.
            if est is not None and not _has_face(est) and box_iou(est.bbox_xyxy, tr.keypoint_box) < cfg.follow_min_iou:
                est = None
            if accept(est, tr.crop_box, masked=tr.masked, lane=lane):
                confirmed[len(found) - 1] = confirmed_at
            else:
                self.backend.release_lane(lane)
        if len(found) < len(self._followed):
            self._search_backoff = 1  # someone was lost: look around again soon

        t0 = time.perf_counter()
        self._frames_since_proposals += 1
        self._finder_ms = {}
        proposals: list[PersonProposal] = []
        t_prop = 0.0
        if pending is not None:
            self._pending = None
            proposals, t_prop, self._finder_ms = pending.result()
            self._frames_since_proposals = 0
        elif self.proposer is not None and (not found or self._frames_since_proposals >= period):
            self._frames_since_proposals = 0
            proposals, t_prop, self._finder_ms = self._timed_propose(rgb, depth_m, [f.bbox_xyxy for f in found])
        self._proposal_wall_ms = (time.perf_counter() - t0) * 1e3
        self._failed = [f for f in self._failed if f[1] > self._frame_index - 64]  # forgotten after 64 frames
        for p in proposals:
            if len(found) >= cfg.max_people:
                break
            # A proposal is known by its head box, a whole-body box (no head) by itself.
            key = p.head_xyxy if p.head_xyxy is not None else (p.bbox_xyxy if p.source == "box" else None)
            failed = (
                None if key is None else next((k for k, f in enumerate(self._failed) if box_iou(key, f[0]) > 0.5), None)
            )
            if failed is not None and self._failed[failed][1] > self._frame_index:
                continue  # nobody was found there lately (video: the same false detection would cost every round)
            if any(_covers(f, p) for f in found):
                continue  # a person already found (saves a backend run)
            image = rgb
            if depth_m is not None and np.isfinite(p.depth_m):
                image = mask_other_depths(rgb, depth_m, p.depth_m, cfg.depth_band_m)
            est = self._estimate_proposal(image, p)
            if est is not None and not belongs_to(est, p) and p.head_xyxy is None:
                est = None  # a whole-body box whose region gave someone else: no head to look for again
            elif est is not None and not belongs_to(est, p):
                # The keypoint model took a neighbour inside the crop (it keeps its detector's best person):
                # look again with every other head in the crop greyed out, so only this person's head is left.
                others = [
                    q.head_xyxy
                    for q in proposals
                    if q is not p and q.head_xyxy is not None and not _same_box(q.head_xyxy, p.head_xyxy)
                ]
                others += [_head_box(f) for f in found]
                est = self.backend.estimate(grey_out_boxes(image, [b for b in others if b is not None]), p.bbox_xyxy)
                if est is not None and not belongs_to(est, p):
                    est = None
            if not accept(est, p.bbox_xyxy) and key is not None:
                # Wait before trying there again, twice as long after each fruitless try (at most 32 frames).
                wait = cfg.search_period * cfg.max_search_backoff
                if failed is not None:
                    wait = min(2 * self._failed.pop(failed)[2], 32)
                self._failed.append((key, self._frame_index + wait, wait))

        self._frames_since_search += 1
        if (
            cfg.full_frame_search
            and len(found) < cfg.max_people
            and self._frames_since_search >= cfg.search_period * self._search_backoff
        ):
            self._frames_since_search = 0
            self._search(rgb, found, accept)
        keep = [i for i, f in enumerate(found) if not inside_another(f, found)]
        for i in set(range(len(found))) - set(keep):
            if found_with[i][2] is not None:
                self.backend.release_lane(found_with[i][2])
        found, found_with = [found[i] for i in keep], [found_with[i] for i in keep]
        confirmed = {k: confirmed[i] for k, i in enumerate(keep) if i in confirmed}
        # Next frame's crop: the box that found the person (MediaPipe's detector is sensitive to the crop, the
        # box that worked is the best bet), grown to cover where they are now.
        followed = []
        for f, (box, masked, lane) in zip(found, found_with):
            if lane is None:
                lane, self._next_lane = self._next_lane, self._next_lane + 1
                if hasattr(self.backend, "adopt"):
                    self.backend.adopt(f, lane)  # the lane follows this person from where they were found
            crop = _pad_box(f.bbox_xyxy, 0.2) if box is None else _union(box, _pad_box(f.bbox_xyxy, 0.2))
            followed.append(
                _Followed(
                    crop,
                    f.bbox_xyxy,
                    masked,
                    lane,
                    _has_face(f),
                    confirmed.get(len(followed), self._frame_index),
                    head_hint(f),
                )
            )
        self._followed = followed
        return found, t_prop

    def _timed_propose(
        self, rgb: np.ndarray, depth_m: Optional[np.ndarray], known_boxes: list
    ) -> tuple[list[PersonProposal], float, dict]:
        """One proposal round, its duration in ms and the finder's stage times; known_boxes: [(4,)] people
        already found (the fused finder looks there last)."""
        t0 = time.perf_counter()
        if self.config.proposer == "fused":
            proposals = self.proposer.propose(rgb, depth_m, known_boxes=known_boxes)
        else:
            proposals = self.proposer.propose(rgb, depth_m)
        return proposals, (time.perf_counter() - t0) * 1e3, dict(getattr(self.proposer, "last_timing_ms", {}))

    def _estimate_proposal(self, image: np.ndarray, p: PersonProposal) -> Optional[KeypointEstimate]:
        """Keypoints of a proposal's person: in the detector's own region when the proposal has alignment
        points and the backend takes regions (no second detection, so no neighbour can be picked instead), else
        the backend on the proposal's box (told the head to look for when it can use that); a whole-body box
        (source "box") in which the person detector finds nobody, in the upright region around the box."""
        if hasattr(self.backend, "estimate_roi"):
            if p.alignment_uv is not None:
                from pose_perception.human.landmarks import roi_from_alignment

                roi = roi_from_alignment(p.alignment_uv[0], p.alignment_uv[1])
                if roi is not None:
                    return self.backend.estimate_roi(image, roi)
            est = self.backend.estimate(image, p.bbox_xyxy, head_xyxy=p.head_xyxy)
            if est is None and p.source == "box":
                # A whole-body box the person detector finds no head in (a large face, a head turned away):
                # the landmark model on the box's own region.
                from pose_perception.human.landmarks import roi_from_box

                roi = roi_from_box(p.bbox_xyxy)
                if roi is not None:
                    return self.backend.estimate_roi(image, roi)
            return est
        return self.backend.estimate(image, p.bbox_xyxy)

    def _search(self, rgb: np.ndarray, found: list[KeypointEstimate], accept) -> None:
        """Look for people the proposals missed (facing away, in profile).

        MediaPipe's pose detector finds one person per call and does best on a person-sized crop, so the
        candidates are: the whole frame when nobody is found yet; else the vertical strips between the people
        found (each also a second time, wider: the detector is sensitive to the crop), then the whole frame,
        always with the found people greyed out. At most search_calls_per_frame candidates are tried per frame
        (0: all), continuing where the last search stopped, so video frames pay a bounded, rotating cost.
        """
        cfg = self.config
        H, W = rgb.shape[:2]
        if not found:
            candidates: list[tuple[Optional[np.ndarray], bool]] = [(None, False)]
        else:
            candidates = []
            for x0, x1 in uncovered_strips([f.bbox_xyxy for f in found], W, cfg.min_strip_fraction * W):
                strip = np.array([x0, 0, x1, H], np.float32)
                candidates += [(strip, True), (_pad_box(strip, 0.15), True)]
            candidates.append((None, True))
        budget = cfg.search_calls_per_frame or len(candidates)
        masked = grey_out_boxes(rgb, [_pad_box(f.bbox_xyxy, 0.1) for f in found])
        start = self._search_cursor % len(candidates)
        tried, n_before = 0, len(found)
        for box, searched in candidates[start:] + candidates[:start]:
            if tried >= budget or len(found) >= cfg.max_people:
                break
            tried += 1
            if box is not None and any(
                box_iou(box, f.bbox_xyxy) > 0 and is_same_person(box, f.bbox_xyxy, 0.5) for f in found
            ):
                continue  # someone found earlier in this search already fills this strip
            if accept(self.backend.estimate(masked, box), box, searched=searched, masked=bool(found)):
                masked = grey_out_boxes(masked, [_pad_box(found[-1].bbox_xyxy, 0.1)])
        self._search_cursor += tried
        # Nobody new after a full round of candidates: search half as often (up to max_search_backoff times less).
        if len(found) > n_before:
            self._search_misses, self._search_backoff = 0, 1
        else:
            self._search_misses += tried
            if self._search_misses >= len(candidates):
                self._search_misses = 0
                self._search_backoff = min(2 * self._search_backoff, cfg.max_search_backoff)

    def lift(
        self, est: KeypointEstimate, depth_m: Optional[np.ndarray], intrinsics: Optional[CameraIntrinsics]
    ) -> tuple[Optional[np.ndarray], np.ndarray, Source]:
        """3D keypoints (133, 3) metres in the camera frame (or None), confidence (133,), source."""
        conf = est.confidence
        if self._lift is None or intrinsics is None:
            return None, conf, Source.RGB
        lift_with_depth, lift_with_world, enforce_bones = self._lift
        kp3d, source = None, Source.RGB
        if depth_m is not None:
            d3, dconf = lift_with_depth(
                est.keypoints_uv, conf, depth_m, intrinsics.K, window_px=self.config.depth_window_px
            )
            if np.count_nonzero(np.all(np.isfinite(d3[BODY]), axis=1)) >= self.config.min_depth_body_keypoints:
                kp3d, conf, source = d3, dconf, Source.RGBD
        if kp3d is None and est.keypoints_world_m is not None:
            kp3d, conf = lift_with_world(est.keypoints_uv, conf, est.keypoints_world_m, intrinsics.K)
        if kp3d is not None and self.config.bone_lengths:
            kp3d, conf = enforce_bones(kp3d, conf, COCO_WHOLEBODY_133)
        return kp3d, conf, source

    def fit_meshes(
        self,
        humans: list[HumanPose],
        stamp_s: float,
        intrinsics: Optional[CameraIntrinsics] = None,
        confidence_2d: Optional[list[np.ndarray]] = None,
    ) -> list[HumanPose]:
        """Body meshes (slow: the node runs this at a lower rate on its own thread). With intrinsics (of the input
        image) and mesh_fit 'image', fitted to each person's 2D keypoints by reprojection, else to their 3D
        keypoints. confidence_2d: per human, its 2D keypoint confidence when known (HumanPose.confidence is the
        lifted one)."""
        if self.mesh_fitter is None:
            return humans
        from pose_perception.human.body_mesh import fit_meshes, fit_meshes_image

        if intrinsics is not None and self.config.mesh_fit == "image":
            return fit_meshes_image(
                self.mesh_fitter, humans, stamp_s, intrinsics.K, confidence_2d, (intrinsics.width, intrinsics.height)
            )
        return fit_meshes(self.mesh_fitter, humans, stamp_s)

    def _set_mesh_camera(self, intrinsics: Optional[CameraIntrinsics]) -> None:
        """The fitter learns this frame's camera, so that a mesh thread calling body_mesh.fit_meshes on these
        humans (the node's) fits them by reprojection too (mesh_fit 'image'), or by their 3D keypoints."""
        if self.mesh_fitter is not None:
            image = intrinsics is not None and self.config.mesh_fit == "image"
            self.mesh_fitter.set_camera(
                intrinsics.K if image else None, (intrinsics.width, intrinsics.height) if image else None
            )

    # ---- the whole frame ----------------------------------------------------------------------------------

    def process(
        self,
        rgb: np.ndarray,
        depth_m: Optional[np.ndarray],
        intrinsics: Optional[CameraIntrinsics],
        stamp_s: float,
        with_mesh: bool = True,
    ) -> tuple[list[HumanPose], dict[str, float]]:
        """rgb: (H, W[, C]) image; depth_m: (H, W) metres registered to rgb or None; intrinsics of rgb or None
        (then no 3D). Returns humans (pixels in the input image, 3D in the camera frame) and timing_ms per stage
        plus 'total'. with_mesh=False leaves the mesh to a separate fit_meshes call (the node's mesh thread)."""
        t_start = time.perf_counter()
        timing = {s: 0.0 for s in STAGES}
        rgb = as_rgb(rgb)
        H, W = rgb.shape[:2]
        depth = check_depth(depth_m, H, W)
        if intrinsics is not None and (intrinsics.width, intrinsics.height) != (W, H):
            raise HumanInputError(
                f"camera info is for {intrinsics.width}x{intrinsics.height} but the image is "
                f"{W}x{H}: use the camera_info of this image stream"
            )
        if min(H, W) < self.config.min_image_side_px:
            timing["total"] = (time.perf_counter() - t_start) * 1e3
            return [], timing
        scale = min(1.0, self.config.max_image_side_px / max(H, W))
        work_rgb, work_depth, work_K = rgb, depth, intrinsics
        if scale < 1.0:
            import cv2

            size = (max(1, round(W * scale)), max(1, round(H * scale)))
            work_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            if depth is not None:
                work_depth = cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST)
            if intrinsics is not None:
                work_K = intrinsics.scaled(size[0] / W, size[1] / H)

        t0 = time.perf_counter()
        # Near-black frames: the finder and landmark models see a brightened copy (photometry only, same pixels).
        seen_rgb = normalise_low_light(work_rgb, LowLightConfig(dark_below=self.config.low_light_below))
        estimates, timing["proposals"] = self.find_people(seen_rgb, work_depth)
        timing["finder_pose"] = self._finder_ms.get("pose_ms", 0.0)
        timing["finder_face"] = self._finder_ms.get("face_ms", 0.0)
        timing["finder_box"] = self._finder_ms.get("box_ms", 0.0)
        # Keypoints: the frame's time less what it waited for proposals (a round that overlapped the following
        # of last frame's people shows in "proposals" with its own length, not in the frame's).
        timing["keypoints"] = (time.perf_counter() - t0) * 1e3 - self._proposal_wall_ms

        t0 = time.perf_counter()
        humans = []
        for est in estimates:
            kp3d, conf, source = self.lift(est, work_depth, work_K)
            humans.append(
                HumanPose(
                    track_id=-1,
                    score=est.score,
                    keypoints_uv=(est.keypoints_uv / scale).astype(np.float32),
                    confidence=conf.astype(np.float32),
                    keypoints_3d=kp3d,
                    bbox_xyxy=(est.bbox_xyxy / scale).astype(np.float32),
                    source=source,
                )
            )
        timing["lifting"] = (time.perf_counter() - t0) * 1e3

        t0 = time.perf_counter()
        if self.tracker is not None:
            humans = self.tracker.update(stamp_s, humans)
        else:
            humans = [replace(h, track_id=i) for i, h in enumerate(humans)]
        timing["tracking"] = (time.perf_counter() - t0) * 1e3

        t0 = time.perf_counter()
        humans = [self._frames(h, intrinsics) for h in humans]
        timing["head"] = (time.perf_counter() - t0) * 1e3

        self._set_mesh_camera(intrinsics)
        if self.mesh_fitter is not None and with_mesh:
            t0 = time.perf_counter()
            # Untracked, humans[i] is estimates[i]: its 2D confidence is known (lifting rescales HumanPose's).
            conf_2d = [est.confidence for est in estimates] if self.tracker is None else None
            humans = self.fit_meshes(humans, stamp_s, intrinsics, conf_2d)
            timing["mesh"] = (time.perf_counter() - t0) * 1e3
        timing["total"] = (time.perf_counter() - t_start) * 1e3
        return humans, timing

    def _frames(self, h: HumanPose, intrinsics: Optional[CameraIntrinsics]) -> HumanPose:
        """Body (pelvis) and head frames of one human, in the camera frame."""
        T_body = T_head = None
        if self._lift is not None and h.keypoints_3d is not None:
            T_body = body_frame(h.keypoints_3d)
        if self._head is not None and intrinsics is not None:
            T_head = self._head(h.keypoints_uv[FACE], h.confidence[FACE], intrinsics.K, intrinsics.dist)
        return replace(h, T_sensor_body=T_body, T_sensor_head=T_head)


def _head_points(est: KeypointEstimate) -> np.ndarray:
    """(N, 2) confident head points of an estimate: nose, eyes, ears and the face landmarks."""
    head = np.concatenate(
        [est.keypoints_uv[:5][est.confidence[:5] > 0.3], est.keypoints_uv[FACE][est.confidence[FACE] > 0]]
    )
    return head[np.all(np.isfinite(head), axis=1)]


def _head_box(est: KeypointEstimate) -> Optional[np.ndarray]:
    """(4,) box of an estimate's head points, padded by a fifth; None without two head points."""
    head = _head_points(est)
    if len(head) < 2:
        return None
    lo, hi = head.min(axis=0), head.max(axis=0)
    return _pad_box(np.array([lo[0], lo[1], hi[0], hi[1]], np.float32), 0.2)


def _same_box(a: Optional[np.ndarray], b: Optional[np.ndarray]) -> bool:
    return a is not None and b is not None and bool(np.allclose(a, b))


def head_hint(est: KeypointEstimate) -> Optional[np.ndarray]:
    """(4,) box around where an estimate's head is: the centre of the body model's head points (nose, eyes, ears,
    whatever their visibility), a head wide (a seventh of the box height, at least their spread)."""
    pts = est.keypoints_uv[:5]
    if not np.all(np.isfinite(pts)):
        return None
    c = pts.mean(axis=0)
    r = 0.5 * max((est.bbox_xyxy[3] - est.bbox_xyxy[1]) / 7.0, float(np.max(pts.max(axis=0) - pts.min(axis=0))), 4.0)
    return np.array([c[0] - r, c[1] - r, c[0] + r, c[1] + r], np.float32)


def belongs_to(est: KeypointEstimate, p: PersonProposal) -> bool:
    """Whether an estimate is the person a proposal was made for: the centre of its head points lies in the
    proposal's head box grown by its own size on each side (head boxes of MediaPipe's detectors are tight);
    a whole-body box (source "box") holds the estimate's keypoint box (IoU >= 0.3: else the landmark model took a
    neighbour the box only touches); another proposal without a head box accepts any estimate."""
    if p.head_xyxy is None:
        return p.source != "box" or box_iou(est.bbox_xyxy, p.bbox_xyxy) >= 0.3
    head = _head_points(est)
    if len(head) == 0:
        return False
    c = head.mean(axis=0)
    b = _pad_box(np.asarray(p.head_xyxy, np.float32), 1.0)
    return bool(b[0] <= c[0] <= b[2] and b[1] <= c[1] <= b[3])


def same_estimate(a: KeypointEstimate, b: KeypointEstimate, iou_threshold: float) -> bool:
    """Two estimates are one person when their heads coincide (same_head), their boxes nearly coincide (IoU > 0.6)
    unless each sees its own head a head or more away from the other's (heads_apart: an embrace), or their
    confident body keypoints coincide (OKS-like similarity > 0.4, also with one skeleton mirrored: two looks at a
    person seen from behind may swap left and right), or, with too few shared keypoints to tell and no two heads,
    when their boxes are the same person's (is_same_person). Boxes alone would merge people who overlap in a
    crowd."""
    from pose_perception.core.keypoints import COCO_BODY_17_MIRROR
    from pose_perception.human.tracking import keypoint_similarity

    if same_head(a, b):
        return True
    apart = heads_apart(a, b)
    if not apart and box_iou(a.bbox_xyxy, b.bbox_xyxy) > 0.6:
        return True
    ok = (a.confidence[:17] > 0.3) & (b.confidence[:17] > 0.3)
    if np.count_nonzero(ok) >= 4:
        mirror = np.asarray(COCO_BODY_17_MIRROR)
        return (
            max(
                keypoint_similarity(a.keypoints_uv[:17], a.confidence[:17], uv, c, b.bbox_xyxy, min_conf=0.3)
                for uv, c in (
                    (b.keypoints_uv[:17], b.confidence[:17]),
                    (b.keypoints_uv[:17][mirror], b.confidence[:17][mirror]),
                )
            )
            > 0.4
        )
    return not apart and is_same_person(a.bbox_xyxy, b.bbox_xyxy, iou_threshold)


def _head_size(a: KeypointEstimate, b: KeypointEstimate) -> float:
    """A head of the smaller of two estimates: a seventh of its box's longer side (a person lying down is long)."""
    return (
        min(
            max(a.bbox_xyxy[2] - a.bbox_xyxy[0], a.bbox_xyxy[3] - a.bbox_xyxy[1]),
            max(b.bbox_xyxy[2] - b.bbox_xyxy[0], b.bbox_xyxy[3] - b.bbox_xyxy[1]),
        )
        / 7.0
    )


def heads_apart(a: KeypointEstimate, b: KeypointEstimate) -> bool:
    """Both estimates see a head of their own (face landmarks, or 3 of nose, eyes and ears confident) and the two
    lie more than a head apart: two people, however much their boxes overlap (a couple in an embrace)."""
    centres = []
    for e in (a, b):
        ok = e.confidence[:5] > 0.5
        if not (_has_face(e) or np.count_nonzero(ok) >= 3):
            return False
        pts = _head_points(e)
        if len(pts) < 2:
            return False
        centres.append(pts.mean(axis=0))
    return bool(np.hypot(*(centres[0] - centres[1])) > max(_head_size(a, b), 2.0))


def same_head(a: KeypointEstimate, b: KeypointEstimate) -> bool:
    """Two people cannot have their heads in one place: the centres of the body models' head points (nose, eyes,
    ears, whatever their visibility) closer than 0.7 of a head (a head: a seventh of the body's length, the longer
    side of the smaller box; a person lying down is long, not tall). Two real heads side by side are about a head
    apart, centre to centre."""
    ha, hb = a.keypoints_uv[:5], b.keypoints_uv[:5]
    if not (np.all(np.isfinite(ha)) and np.all(np.isfinite(hb))):
        return False
    size = _head_size(a, b)
    return bool(np.hypot(*(ha.mean(axis=0) - hb.mean(axis=0))) < max(0.7 * size, 2.0))


def _fraction_inside(b: np.ndarray, c: np.ndarray) -> float:
    """Fraction of box b's area inside box c."""
    iw = min(b[2], c[2]) - max(b[0], c[0])
    ih = min(b[3], c[3]) - max(b[1], c[1])
    area = (b[2] - b[0]) * (b[3] - b[1])
    return float(iw * ih / area) if iw > 0 and ih > 0 and area > 0 else 0.0


def _on_body_of_another(est: KeypointEstimate, others: list[KeypointEstimate]) -> bool:
    """Whether the estimate's head lies on another person's body below their chest line (1.5 head heights, a head
    being a seventh of the box, under their head centre) AND the estimate lies mostly (70 %) inside that person's
    box. A real person in front of someone (lower in the image when the camera looks down) reaches out of the
    other's box with their legs."""
    head = est.keypoints_uv[:5].mean(axis=0)
    if not np.all(np.isfinite(head)):
        return False
    for o in others:
        c = o.bbox_xyxy
        o_head = o.keypoints_uv[:5].mean(axis=0)
        if (
            np.all(np.isfinite(o_head))
            and c[0] <= head[0] <= c[2]
            and o_head[1] + 1.5 * (c[3] - c[1]) / 7.0 < head[1] <= c[3]
            and _fraction_inside(est.bbox_xyxy, c) > 0.7
        ):
            return True
    return False


def inside_another(est: KeypointEstimate, others: list[KeypointEstimate]) -> bool:
    """A faceless estimate made out of another person's body: its box is small and lies mostly inside a bigger
    estimate's box, or it lies on another person's body with its head below their chest line
    (_on_body_of_another). The landmark model, given a region centred on a hand, a foot or a ball, often sees a
    person there."""
    if _has_face(est):
        return False
    if _on_body_of_another(est, [o for o in others if o is not est]):
        return True
    b = est.bbox_xyxy
    area = max((b[2] - b[0]) * (b[3] - b[1]), 1e-6)
    for o in others:
        if o is est:
            continue
        c = o.bbox_xyxy
        iw = min(b[2], c[2]) - max(b[0], c[0])
        ih = min(b[3], c[3]) - max(b[1], c[1])
        if iw > 0 and ih > 0 and iw * ih / area > 0.8 and area < 0.35 * (c[2] - c[0]) * (c[3] - c[1]):
            return True
    return False


def _has_face(est: KeypointEstimate) -> bool:
    return bool(np.any(est.confidence[FACE] > 0))


def _covers(found: KeypointEstimate, p: PersonProposal) -> bool:
    """Whether a found person explains a proposal: its head holds the proposal's face anchor, or (no anchor)
    the proposal box is mostly the person's box."""
    if p.anchor_uv is None:
        return is_same_person(p.bbox_xyxy, found.bbox_xyxy, 0.5)
    head = np.concatenate(
        [found.keypoints_uv[:5][found.confidence[:5] > 0.3], found.keypoints_uv[FACE][found.confidence[FACE] > 0]]
    )
    head = head[np.all(np.isfinite(head), axis=1)]
    if len(head) < 2:
        return False
    lo, hi = head.min(axis=0), head.max(axis=0)
    box = _pad_box(np.array([lo[0], lo[1], hi[0], hi[1]], np.float32), 0.2)
    return bool(box[0] <= p.anchor_uv[0] <= box[2] and box[1] <= p.anchor_uv[1] <= box[3])


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])], np.float32)


def _pad_box(b: np.ndarray, frac: float) -> np.ndarray:
    w, h = b[2] - b[0], b[3] - b[1]
    return b + np.array([-frac * w, -frac * h, frac * w, frac * h], np.float32)


def is_same_person(a: np.ndarray, b: np.ndarray, iou_threshold: float, containment: float = 0.6) -> bool:
    """Two (4,) keypoint boxes are one person if they overlap by IoU or one lies mostly inside the other."""
    if box_iou(a, b) > iou_threshold:
        return True
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if not (iw > 0 and ih > 0):
        return False
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return bool(smaller > 0 and iw * ih / smaller > containment)


def uncovered_strips(boxes_xyxy: list[np.ndarray], width: int, min_width: float) -> list[tuple[float, float]]:
    """x-intervals [x0, x1) of the image not covered by any box, at least min_width wide, widest first."""
    edges = sorted(
        (max(0.0, float(b[0])), min(float(width), float(b[2]))) for b in boxes_xyxy if np.all(np.isfinite(b))
    )
    strips, x = [], 0.0
    for a, b in edges:
        if a - x >= min_width:
            strips.append((x, a))
        x = max(x, b)
    if width - x >= min_width:
        strips.append((x, float(width)))
    return sorted(strips, key=lambda s: s[0] - s[1])
