"""Body meshes off the skeleton path, for the human and radar nodes: a worker thread fits the newest frame's
people at most rate_hz; every published frame carries the latest mesh of each track, skeletons never wait."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any, Callable, Optional

from pose_perception.core.types import BodyMesh, HumanPose
from pose_perception.ros.base_node import LatestFrameWorker


class MeshThread:
    def __init__(
        self,
        fitter: Any,
        rate_hz: float,
        on_error: Callable[[str], None],
        on_fit_ms: Optional[Callable[[float], None]] = None,
    ):
        self.fitter = fitter
        self.period_s = 1.0 / rate_hz if rate_hz > 0 else 0.0
        self._on_error, self._on_fit_ms = on_error, on_fit_ms
        self._meshes: dict[int, BodyMesh] = {}
        self._lock = threading.Lock()
        self._worker = LatestFrameWorker(self._fit, lambda: None)

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop(10.0)

    def attach(self, humans: list[HumanPose], stamp_s: float) -> list[HumanPose]:
        """humans with the latest mesh of their track (from an earlier frame); hands this frame to the fitter."""
        self._worker.submit((humans, stamp_s), time.monotonic())
        with self._lock:
            for gone in set(self._meshes) - {h.track_id for h in humans}:
                del self._meshes[gone]
            return [replace(h, mesh=self._meshes.get(h.track_id)) for h in humans]

    def _fit(self, frame: tuple[list[HumanPose], float], t_submit: float) -> None:
        from pose_perception.human.body_mesh import fit_meshes  # torch: only loaded when meshes are on

        humans, stamp_s = frame
        t0 = time.monotonic()
        try:
            fitted = fit_meshes(self.fitter, humans, stamp_s)
            with self._lock:
                self._meshes.update({h.track_id: h.mesh for h in fitted if h.mesh is not None})
            if self._on_fit_ms is not None:
                self._on_fit_ms((time.monotonic() - t0) * 1e3)
        except Exception as exc:  # noqa: BLE001 - a failed fit must not stop later ones
            self._on_error(f"mesh fit failed: {type(exc).__name__}: {exc}")
        time.sleep(max(0.0, self.period_s - (time.monotonic() - t0)))
