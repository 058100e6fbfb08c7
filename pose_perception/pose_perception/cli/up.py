"""`pose-perception up`: start the nodes named in parameter files, supervise them, stop them on Ctrl-C.

The same parameter files as launch/*.launch.py, without the `launch` package (absent from PyPI).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import yaml

from pose_perception.core.origin_gate import DEFAULT_ALLOWED_ORIGINS, parse_allowed_origin
from pose_perception.core.supervision import HangDetector, RestartBudget, RestartPolicy
from pose_perception.ros.dds import current_profile, set_profile
from pose_perception.ros.launch_support import NODE_MODULES, ConfigError, node_env, resolve_config

DEFAULT_CONFIGS = ("human_pose.yaml", "object_pose.yaml", "radar_pose.yaml")


def nodes_in_config(path: Path) -> list[str]:
    """Node names (top-level keys with ros__parameters) in a ROS parameter file."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    names = []
    for key, value in data.items():
        name = key.strip("/").split("/")[-1]
        if not isinstance(value, dict) or "ros__parameters" not in value:
            raise ConfigError(f"{path}: top-level key '{key}' has no ros__parameters")
        if name not in NODE_MODULES:
            raise ConfigError(f"{path}: unknown node '{name}'; known nodes: {sorted(NODE_MODULES)}")
        names.append(name)
    return names


class Supervisor:
    """Runs one process per node; restarts a node that dies or hangs, after a back-off, within a restart budget
    per time window (core/supervision.py). heard(node, message) feeds the hang watchdog from /diagnostics."""

    def __init__(
        self,
        specs: list[tuple[str, list[str]]],
        env: dict,
        max_restarts: int = 5,
        log_dir: Optional[Path] = None,
        policy: Optional[RestartPolicy] = None,
        hang_timeout_s: float = 0.0,
    ):
        self.specs = specs
        self.env = env
        self.policy = policy or RestartPolicy(max_restarts=max_restarts)
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.budgets = {name: RestartBudget(self.policy) for name, _ in specs}
        self.restarts = {name: 0 for name, _ in specs}
        self._restart_at: dict[str, float] = {}
        self._hang = HangDetector(hang_timeout_s)
        self._lock = threading.Lock()

    def heard(self, node: str, message: str) -> None:
        with self._lock:
            if node in self.procs and node not in self._restart_at:
                if not self._hang.was_heard(node):
                    print(
                        f"[up] {node} (pid {self.procs[node].pid}) heard on /diagnostics: watched for hangs", flush=True
                    )
                self._hang.heard(node, time.monotonic(), message)

    def _start(self, name: str, argv: list[str]) -> None:
        out = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            argv, env=self.env, stdout=out, stderr=subprocess.STDOUT if out else None, start_new_session=True
        )
        print(f"[up] started {name} (pid {self.procs[name].pid})", flush=True)

    def start(self) -> None:
        for name, argv in self.specs:
            self._start(name, argv)

    def poll(self) -> bool:
        """Restart dead or hung nodes when their back-off has passed; False when a node needs more restarts than
        its budget allows within the window."""
        now = time.monotonic()
        for name, argv in self.specs:
            with self._lock:
                if name in self._restart_at:
                    if now >= self._restart_at[name]:
                        del self._restart_at[name]
                        self._hang.forget(name)
                        self._start(name, argv)
                    continue
                proc = self.procs[name]
                code = proc.poll()
                if code is None:
                    why = self._hang.hung(name, now)
                    if why is None:
                        continue
                    print(f"[up] {name} (pid {proc.pid}) is hung: {why}; killing it", flush=True)
                    os.killpg(proc.pid, signal.SIGKILL)  # a stopped (SIGSTOP) process cannot handle SIGINT/SIGTERM
                    code = proc.wait(10)
                delay = self.budgets[name].exited(now)
                if delay is None:
                    p = self.policy
                    print(
                        f"[up] {name} exited with {code} and was restarted {p.max_restarts} times in the last "
                        f"{p.window_s:.0f} s: giving up",
                        flush=True,
                    )
                    return False
                self.restarts[name] += 1
                self._restart_at[name] = now + delay
                print(
                    f"[up] {name} exited with {code}; restarting in {delay:.2f} s "
                    f"({self.budgets[name].in_window(now)}/{self.policy.max_restarts} in {self.policy.window_s:.0f} s)",
                    flush=True,
                )
        return True

    def stop(self, timeout_s: float = 10.0) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for name, proc in self.procs.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"[up] {name} did not stop in {timeout_s:.0f} s: killing", flush=True)
                proc.kill()
                proc.wait(5)
        print("[up] all nodes stopped", flush=True)


def build_specs(configs: list[str], remaps: list[str], params: list[str]) -> list[tuple[str, list[str]]]:
    specs = []
    for cfg in configs or DEFAULT_CONFIGS:
        path = resolve_config(cfg)
        for name in nodes_in_config(path):
            argv = [
                sys.executable,
                "-m",
                NODE_MODULES[name],
                "--ros-args",
                "-r",
                f"__node:={name}",
                "--params-file",
                str(path),
            ]
            for r in remaps:
                argv += ["-r", r]
            for p in params:
                target, sep, rest = p.partition(":")
                if sep and not rest.startswith("=") and target in NODE_MODULES:  # node_name:param:=value
                    if target == name:
                        argv += ["-p", rest]
                else:
                    argv += ["-p", p]
            specs.append((name, argv))
    return specs


def register(subparsers) -> None:
    parser = subparsers.add_parser("up", help=__doc__.splitlines()[0])
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        help="ROS parameter file naming the nodes to start (repeatable; default: all shipped)",
    )
    parser.add_argument(
        "--remap", action="append", default=[], metavar="FROM:=TO", help="topic remapping for every node"
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="parameter override for every node, or NODE:NAME:=VALUE for one",
    )
    parser.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0: run until Ctrl-C)"
    )
    parser.add_argument("--log-dir", type=Path, help="write each node's output to LOG_DIR/<node>.log")
    parser.add_argument("--foxglove", action="store_true", help="also serve a live Foxglove view (ws://127.0.0.1:8765)")
    parser.add_argument(
        "--foxglove-allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also accept WebSocket handshakes from this web origin (repeatable; always allowed: "
        "native clients without an Origin header and https://app.foxglove.dev)",
    )
    parser.add_argument("--max-restarts", type=int, default=5, help="restarts allowed per node within --restart-window")
    parser.add_argument("--restart-window", type=float, default=300.0, help="window of the restart budget (s)")
    parser.add_argument(
        "--hang-timeout",
        type=float,
        default=5.0,
        help="kill and restart a node silent on /diagnostics this long, or whose diagnostics say its "
        "pipeline is hung (s; 0: off)",
    )
    parser.add_argument(
        "--foxglove-host",
        default="127.0.0.1",
        metavar="ADDR",
        help="address the Foxglove server binds: 0.0.0.0 to watch from another machine",
    )
    parser.add_argument("--foxglove-port", type=int, default=8765, metavar="PORT")
    parser.add_argument(
        "--dds-profile",
        default="local",
        metavar="local|lan|default|FILE",
        help="Fast DDS profile of the nodes: local (loopback only, the default), lan (robot + laptop: "
        "shared memory + UDP on every interface), default (Fast DDS's), or a profile file",
    )
    parser.set_defaults(func=run)


def allowed_foxglove_origins(extra: list[str]) -> tuple[str, ...]:
    """The web origins the Foxglove view accepts: the Foxglove app plus `extra`, each checked (ValueError if
    malformed)."""
    return tuple(dict.fromkeys(parse_allowed_origin(o) for o in (*DEFAULT_ALLOWED_ORIGINS, *extra)))


def run(args) -> int:
    try:
        specs = build_specs(args.config, args.remap, args.param)
    except ConfigError as exc:
        print(f"[up] {exc}", file=sys.stderr)
        return 2
    try:
        foxglove_origins = allowed_foxglove_origins(args.foxglove_allow_origin)
    except ValueError as exc:
        print(f"[up] --foxglove-allow-origin: {exc}", file=sys.stderr)
        return 2
    try:
        env = node_env(args.dds_profile)
    except ConfigError as exc:
        print(f"[up] --dds-profile: {exc}", file=sys.stderr)
        return 2
    set_profile(os.environ, current_profile(env))  # the Foxglove bridge (in this process) joins the same way
    sup = Supervisor(
        specs,
        env,
        log_dir=args.log_dir,
        hang_timeout_s=args.hang_timeout,
        policy=RestartPolicy(max_restarts=args.max_restarts, window_s=args.restart_window),
    )
    listener = None
    if args.hang_timeout > 0:
        from pose_perception.ros.diagnostics_listener import DiagnosticsListener

        listener = DiagnosticsListener(sup.heard, sup.env)
    bridge = None
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    sup.start()
    if args.foxglove:
        from pose_perception.ros.foxglove_bridge import FoxgloveBridge

        bridge = FoxgloveBridge(host=args.foxglove_host, port=args.foxglove_port, allowed_origins=foxglove_origins)
        bridge.start()
    code = 0
    t_end = time.monotonic() + args.duration if args.duration > 0 else float("inf")
    try:
        while not stop["flag"] and time.monotonic() < t_end:
            if not sup.poll():
                code = 1
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        if bridge is not None:
            bridge.stop()
        if listener is not None:
            listener.close()
        sup.stop()
    return code
