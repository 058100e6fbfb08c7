"""The object node's `~/add_object`: onboarding on a worker thread (the load itself in a separate process, see
objects.onboarding), limited to the configured mesh roots, one request at a time, bounded in size, count, memory
and time. The executor only hands the request over, so tracking keeps its rate while a 2 M-face mesh loads.
"""

from __future__ import annotations

import threading
from typing import Any

from pose_perception.objects.model import MeshLimits
from pose_perception.objects.onboarding import Onboarder, OnboardingLimits
from pose_perception.ros.deferred_service import DeferredService, Respond
from pose_perception.ros.params import ParamSpec

# Read-only: a participant on the DDS domain must not be able to widen what add_object may read or load.
ONBOARDING_PARAMS = (
    ParamSpec(
        "mesh_roots",
        ["ycb:", "pybullet_data:"],
        "Directories add_object may read meshes from (real paths, "
        "symlinks followed); 'ycb:' and 'pybullet_data:' name those packages' mesh folders. Anything else is "
        "refused with one neutral message.",
        read_only=True,
    ),
    ParamSpec(
        "max_objects", 32, "Most objects loaded at once (add_object refuses more).", min=1, max=10000, read_only=True
    ),
    ParamSpec(
        "max_models_mb",
        2048.0,
        "Memory all loaded object models may hold together (MB); add_object refuses "
        "a mesh that would exceed it, estimated before parsing.",
        min=1.0,
        max=1e6,
        read_only=True,
    ),
    ParamSpec(
        "max_mesh_file_mb", 512.0, "Largest mesh file add_object reads (MB).", min=0.001, max=1e5, read_only=True
    ),
    ParamSpec(
        "max_mesh_faces",
        2_000_000,
        "Most faces of a mesh (read from its header before parsing).",
        min=4,
        max=100_000_000,
        read_only=True,
    ),
    ParamSpec(
        "onboarding_timeout_s",
        300.0,
        "An onboarding process running longer is stopped.",
        min=1.0,
        max=86400.0,
        read_only=True,
    ),
    ParamSpec(
        "onboarding_cpu_share",
        0.3,
        "Fraction of each 0.1 s the onboarding process may run (1: no limit); "
        "it is paused in between, which spares tracking even on a sibling hyperthread (a 2 M-face load: 1.0 "
        "kept 51 % of the tracking rate in 47 s, 0.3 kept 80 % in 87 s; docs/safety.md).",
        min=0.05,
        max=1.0,
        read_only=True,
    ),
    ParamSpec(
        "onboarding_memory_mb",
        6144.0,
        "Memory the onboarding process may allocate (RLIMIT_DATA).",
        min=256.0,
        max=1e6,
        read_only=True,
    ),
)


def onboarding_limits(params: dict[str, Any]) -> OnboardingLimits:
    return OnboardingLimits(
        mesh_roots=tuple(str(r) for r in params["mesh_roots"] or ()),
        mesh=MeshLimits(max_file_mb=float(params["max_mesh_file_mb"])),
        max_faces=int(params["max_mesh_faces"]),
        max_objects=int(params["max_objects"]),
        max_models_mb=float(params["max_models_mb"]),
        timeout_s=float(params["onboarding_timeout_s"]),
        worker_memory_mb=float(params["onboarding_memory_mb"]),
        worker_cpu_share=float(params["onboarding_cpu_share"]),
    )


class OnboardingService:
    """~/add_object of `node` (an ObjectPoseNode: reads node.estimator.models, calls node.add_model(model))."""

    def __init__(self, node, srv_type, name: str):
        self._node = node
        self._onboarder = Onboarder(onboarding_limits(node.params), cache_dir=node.params["cache_dir"] or None)
        self._busy = threading.Lock()
        self.deferred = DeferredService(node, srv_type, name, self._handle)

    def _handle(self, request, response, respond: Respond) -> None:
        if not self._busy.acquire(blocking=False):
            response.success = False
            response.message = "another add_object is loading: retry when it has been answered"
            respond(response)
            return
        threading.Thread(target=self._work, args=(request, response, respond), name="add_object", daemon=True).start()

    def _work(self, request, response, respond: Respond) -> None:
        from pose_perception.objects.model import ObjectModelError

        try:
            estimator = self._node.estimator
            if estimator is None:
                raise RuntimeError("node is not configured")
            model, messages = self._onboarder.load(
                request.name, request.mesh_path, request.units, request.symmetry or "auto", estimator.models
            )
            for text in messages:
                self._node.get_logger().warning(text)
            self._node.add_model(model)
            response.success = True
            response.message = (
                f"loaded '{model.name}': diameter {model.diameter_m:.3f} m, symmetry "
                f"{model.symmetry}, {len(model.faces)} faces"
            )
            self._node.get_logger().info(response.message)
        except (ObjectModelError, RuntimeError, OSError) as exc:
            response.success, response.message = False, str(exc)
            self._node.report_error(f"add_object '{request.name}' refused: {exc}", key="add_object")
        except Exception as exc:  # noqa: BLE001 - the request must be answered and the node keep serving
            response.success, response.message = False, f"add_object failed: {type(exc).__name__}: {exc}"
            self._node.report_error(response.message, key="add_object")
        finally:
            self._busy.release()
            respond(response)
