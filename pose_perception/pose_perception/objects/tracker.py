"""Object poses over a stream: track every frame, search for new and lost objects on a background thread, merge
the finds into the tracks. The one owner of that policy; the ROS node only converts, calls step() and publishes.

    tracker = ObjectTracker(models, EstimatorConfig(), ObjectTrackerConfig(), device="cpu")
    poses = tracker.step(rgb, depth_m, intrinsics, masks)   # at camera rate; never waits for a search
    tracker.close()                                        # forget the search under way

A full estimation takes 1-2 s on a CPU; tracking a few tens of ms. So tracking runs on the caller's thread and at
most one full estimation runs on a daemon thread; what it finds joins the tracks at a later step(), after being
tracked through the frames that arrived meanwhile (a find about a frame 1 s old is useless to a tracker).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional, Sequence

import numpy as np

from pose_perception.core.camera import CameraIntrinsics
from pose_perception.core.types import ObjectPose
from pose_perception.objects.estimator import EstimatorConfig, EstimatorInputError, ObjectPoseEstimator
from pose_perception.objects.model import ObjectModel


@dataclass(frozen=True)
class ObjectTrackerConfig:
    """track: follow the previous poses between full estimations (False: a full estimation every frame, on the
    caller's thread); redetect_period_s: seconds between the end of one background search and the start of the
    next while tracking (a lost object or an empty scene starts one at once); max_search_frames: frames kept to
    track a search's finds through (see BackgroundSearch)."""

    track: bool = True
    redetect_period_s: float = 2.0
    max_search_frames: int = 32


class ObjectTracker:
    """Tracks, background search and merging for a set of object models. Thread-safe: step() runs on one thread
    while add_model / remove_model / reset / configure are called from others (they wait for a step under way).

    on_search_error(exc) is called from step() (the caller's thread) with the exception of a search that failed;
    the tracks are kept and the next search starts as usual."""

    def __init__(
        self,
        models: Sequence[ObjectModel],
        estimator_config: EstimatorConfig = EstimatorConfig(),
        config: ObjectTrackerConfig = ObjectTrackerConfig(),
        device: str = "cpu",
        on_search_error: Optional[Callable[[Exception], None]] = None,
    ) -> None:
        # The estimator's own re-detection inside track() is off: this class searches on its own thread.
        self.estimator = ObjectPoseEstimator(list(models), replace(estimator_config, redetect_on_loss=False), device)
        self.config = config
        self._on_search_error = on_search_error
        self._lock = threading.Lock()  # estimator config + tracks
        self._tracks: list[ObjectPose] = []
        self._search = BackgroundSearch(config.max_search_frames)

    # ---- models and settings ------------------------------------------------------------------------------
    @property
    def models(self) -> dict[str, ObjectModel]:
        return self.estimator.models

    @property
    def device(self) -> str:
        return self.estimator.device

    def add_model(self, model: ObjectModel) -> None:
        """Add or replace (same name) a model; it is searched for from the next search on."""
        with self._lock:
            self.estimator.add_model(model)

    def remove_model(self, name: str) -> None:
        """Forget a model and its tracks; raises objects.estimator.UnknownObjectError for a name not loaded."""
        with self._lock:
            self.estimator.remove_model(name)
            self._tracks = [p for p in self._tracks if p.name != name]

    def configure(self, config: Optional[ObjectTrackerConfig] = None, score_threshold: Optional[float] = None) -> None:
        """Change settings at run time (between two steps)."""
        with self._lock:
            if config is not None:
                self.config = config
            if score_threshold is not None and score_threshold != self.estimator.config.score_threshold:
                self.estimator.config = replace(self.estimator.config, score_threshold=float(score_threshold))

    def reset(self) -> int:
        """Forget every track and the result of the search under way (it was seen before the reset); returns the
        number of tracks forgotten."""
        with self._lock:
            n = len(self._tracks)
            self._tracks = []
            self._search.discard()
        return n

    def close(self) -> None:
        """Forget the tracks and tell the search under way to stop (its thread is a daemon and ends by itself)."""
        self.reset()

    def search_busy(self) -> bool:
        return self._search.busy()

    # ---- per frame ------------------------------------------------------------------------------------------
    def step(
        self,
        rgb: Optional[np.ndarray],
        depth_m: np.ndarray,
        intrinsics: CameraIntrinsics,
        masks: Optional[list[Any]] = None,
    ) -> list[ObjectPose]:
        """One frame: rgb (H, W, 3) uint8 or None, depth_m (H, W) metres (NaN / 0 invalid), masks as for
        ObjectPoseEstimator.estimate -> the poses in this frame, sorted by name, instance. Raises
        objects.estimator.EstimatorInputError for a frame it cannot use (the tracks are kept)."""
        with self._lock:
            estimator = self.estimator
            if not self.config.track:
                return estimator.estimate(rgb, depth_m, intrinsics, masks)
            tracks = self._tracks
            self._search.add_frame((depth_m, intrinsics, masks))
            found = self._search.take()
            if isinstance(found, Exception):
                if self._on_search_error is not None:
                    self._on_search_error(found)
            elif found:
                tracks = estimator.merge(tracks, [p for p in found if p.name in estimator.models])
            poses = estimator.track(rgb, depth_m, intrinsics, tracks, masks=masks) if tracks else []
            due = (
                len(poses) < len(tracks)
                or not poses
                or self._search.seconds_since_finished() >= self.config.redetect_period_s
            )
            if due and not self._search.busy():
                explained = poses
                self._search.start(
                    lambda cancelled: estimator.estimate(
                        rgb, depth_m, intrinsics, masks, explained=explained, cancelled=cancelled
                    ),
                    follow_with(estimator),
                )
            self._tracks = poses
            return poses


def follow_with(estimator: ObjectPoseEstimator) -> Callable[[list[ObjectPose], tuple], list[ObjectPose]]:
    """follow(found, (depth_m, intrinsics, masks)) for BackgroundSearch: the finds tracked into a later frame. A
    frame the estimator refuses is skipped; step() reports it when it processes that frame itself."""

    def follow(found: list[ObjectPose], frame: tuple) -> list[ObjectPose]:
        depth_m, intrinsics, masks = frame
        try:
            return estimator.track(None, depth_m, intrinsics, found, masks=masks)
        except EstimatorInputError:
            return found

    return follow


class BackgroundSearch:
    """At most one search at a time on a daemon thread; take() hands over its result once.

    A search takes several frames while the objects (or the camera) move, and tracking from a pose that many frames
    old fails. So the frames that arrive meanwhile are kept (add_frame) and the search's finds are tracked through
    them, in order, before they are handed over: the result is about the newest frame. At most max_frames are kept;
    when full, every other one is dropped (never the first or the newest), so the steps grow but still span the
    whole search."""

    def __init__(self, max_frames: int = 32) -> None:
        self._thread: threading.Thread | None = None
        self._result: Any = None
        self._finished_at = -np.inf
        self._lock = threading.Lock()
        self._frames: list = []
        self._collecting = False
        self._max_frames = max_frames
        self._generation = 0  # discard() moves it on; a search started under another generation hands over nothing

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def seconds_since_finished(self) -> float:
        return time.monotonic() - self._finished_at

    def add_frame(self, frame: Any) -> None:
        """A frame that arrived after the running search's (none running: ignored)."""
        with self._lock:
            if not self._collecting:
                return
            self._frames.append(frame)
            if len(self._frames) > self._max_frames:  # keep the first (the smallest step) and the newest
                self._frames = self._frames[:-1:2] + self._frames[-1:]

    def start(self, search: Callable[[Callable[[], bool]], Any], follow: Callable[[Any, Any], Any]) -> None:
        """search(cancelled) -> poses in the frame it was given, where cancelled() turns True once the search is
        discarded (the search may then stop early, by raising); follow(poses, frame) -> poses tracked into `frame`."""

        def run() -> None:
            try:
                result = search(lambda: self._generation != generation)
                while True:
                    with self._lock:
                        if self._generation != generation:
                            return
                        frames, self._frames = self._frames, []
                        if not frames or not result:
                            self._result, self._finished_at, self._collecting = result, time.monotonic(), False
                            return
                    for frame in frames:
                        result = follow(result, frame)
            except Exception as exc:  # noqa: BLE001 - handed to step(), which reports it
                with self._lock:
                    if self._generation == generation:
                        self._result, self._finished_at, self._collecting, self._frames = (
                            exc,
                            time.monotonic(),
                            False,
                            [],
                        )

        with self._lock:
            self._frames, self._collecting = [], True
            generation = self._generation
        self._thread = threading.Thread(target=run, name="object_search", daemon=True)
        self._thread.start()

    def discard(self) -> None:
        """Forget the result of the search under way and of any finished one not yet taken. The search under way
        is told (its `cancelled` turns True) and keeps busy() true until it has stopped."""
        with self._lock:
            self._generation += 1
            self._result, self._frames, self._collecting = None, [], False

    def take(self) -> Any:
        """The last search's poses (or its exception), or None when there is nothing new."""
        with self._lock:
            result, self._result = self._result, None
        return result
