"""Base class of every pose_perception node: lifecycle, latest-frame worker, throttled errors, /diagnostics.

Subclasses implement load_pipeline / create_inputs / process; they convert messages and call one pipeline.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from typing import Any, Callable, Optional, Sequence

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn

from pose_perception.core.health import HealthMonitor, HealthThresholds
from pose_perception.ros.executor import make_executor
from pose_perception.ros.process import init_ros
from pose_perception.ros.params import ParamSpec, ParameterValueError, declare_parameters
from pose_perception.ros.qos import INPUT_QOS_NAMES, input_qos, result_qos
from pose_perception.ros.tf import TfPublisher

# Read-only where the value is used once (at start, configure or activate): a change at run time would be
# accepted and do nothing.
COMMON_PARAMS = (
    ParamSpec(
        "autostart",
        True,
        "Configure and activate on start (set false when a lifecycle manager drives the node).",
        read_only=True,
    ),
    ParamSpec("input_qos", "sensor_data", "QoS of sensor subscriptions.", choices=INPUT_QOS_NAMES, read_only=True),
    ParamSpec("diagnostics_period_s", 1.0, "Period of /diagnostics messages.", min=0.1, max=60.0, read_only=True),
    ParamSpec("error_throttle_s", 5.0, "Minimum time between two logs of the same error.", min=0.0, max=3600.0),
    ParamSpec(
        "health_window_s",
        10.0,
        "/diagnostics judges the errors, drops and losses of this many seconds.",
        min=1.0,
        max=3600.0,
        read_only=True,
    ),
    ParamSpec(
        "stale_input_s",
        5.0,
        "Input older than this is stale (WARN); input arriving with no output for "
        "this long is a hung pipeline (ERROR).",
        min=0.5,
        max=3600.0,
        read_only=True,
    ),
)

# Body meshes off the skeleton path (ros/mesh_thread.py), shared by the human and radar nodes. mesh_rate_hz tops
# out at 30: the thread fits the newest frame, so a rate above the sensor's frame rate (cameras and radars here
# run at 10-30 Hz) changes nothing; a fit costs far more than 33 ms on a CPU anyway.
MESH_PARAMS = (
    ParamSpec(
        "mesh",
        False,
        "Fit a body mesh per person, on its own thread at most mesh_rate_hz (skeletons never wait for it).",
        read_only=True,
    ),
    ParamSpec("mesh_model", "anny", "Body model of the mesh fitter.", choices=("anny", "smplx"), read_only=True),
    ParamSpec("mesh_rate_hz", 2.0, "Most mesh fits per second.", min=0.1, max=30.0, read_only=True),
    ParamSpec(
        "mesh_max_faces",
        5000,
        "Faces of the published mesh (decimated; 0 = full, ~27k faces).",
        min=0,
        max=100000,
        read_only=True,
    ),
)


class PipelineStats:
    """Counters and sliding windows for /diagnostics; the recent events also go to a HealthMonitor that gives the
    level. Thread-safe."""

    def __init__(self, window: int = 200, health: Optional[HealthMonitor] = None):
        self._lock = threading.Lock()
        self.health = health or HealthMonitor()
        self.frames_in = self.processed = self.dropped = self.errors = self.lost = 0
        self._arrivals: deque[float] = deque(maxlen=window)
        self._finished: deque[float] = deque(maxlen=window)
        self._latencies_s: deque[float] = deque(maxlen=window)
        self.last_error = ""

    def arrived(self, t: float) -> None:
        with self._lock:
            self.frames_in += 1
            self._arrivals.append(t)
        self.health.record("arrived", t)

    def dropped_one(self) -> None:
        with self._lock:
            self.dropped += 1
        self.health.record("dropped", time.monotonic())

    def lost_frames(self, n: int) -> None:
        with self._lock:
            self.lost += n
        self.health.record("lost", time.monotonic(), n)

    def finished(self, t_submit: float, t_done: float) -> None:
        with self._lock:
            self.processed += 1
            self._finished.append(t_done)
            self._latencies_s.append(t_done - t_submit)
        self.health.record("finished", t_done)

    def failed(self, message: str) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = message
        self.health.record("failed", time.monotonic(), message=message)

    @staticmethod
    def _rate(times: deque, now: float) -> float:
        recent = [t for t in times if now - t <= 5.0]
        return (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) >= 2 and recent[-1] > recent[0] else 0.0

    def snapshot(self, now: float) -> dict[str, Any]:
        with self._lock:
            lat = np.array(self._latencies_s) * 1e3
            return {
                "input_rate_hz": self._rate(self._arrivals, now),
                "output_rate_hz": self._rate(self._finished, now),
                "latency_mean_ms": float(lat.mean()) if lat.size else float("nan"),
                "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
                "frames_in": self.frames_in,
                "frames_processed": self.processed,
                "frames_dropped": self.dropped,
                "frames_lost": self.lost,
                "errors": self.errors,
                "last_error": self.last_error,
                "seconds_since_input": now - self._arrivals[-1] if self._arrivals else float("inf"),
            }


class LatestFrameWorker:
    """One worker thread that always processes the newest submitted frame; older pending ones are dropped.

    Keeps subscription callbacks non-blocking whatever the pipeline costs.
    """

    def __init__(self, handle: Callable[[Any, float], None], on_drop: Callable[[], None]):
        self._handle, self._on_drop = handle, on_drop
        self._cond = threading.Condition()
        self._pending: Optional[tuple[Any, float]] = None
        self._running = False
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        with self._cond:
            if self._running:
                return
            self._running = True
        self._thread = threading.Thread(target=self._loop, name="pipeline-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stops the worker; True when its thread has ended (no frame in progress)."""
        with self._cond:
            self._running = False
            self._pending = None
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                return False
            self._thread = None
        return True

    def submit(self, frame: Any, t_submit: float) -> None:
        with self._cond:
            if self._pending is not None:
                self._on_drop()
            self._pending = (frame, t_submit)
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._running and self._pending is None:
                    self._cond.wait()
                if not self._running or self._pending is None:
                    return
                frame, t_submit = self._pending
                self._pending = None
            self._handle(frame, t_submit)


class PerceptionNode(LifecycleNode):
    """Lifecycle node: configure loads the pipeline, activate subscribes, a worker processes the newest frame.

    Subclasses implement:
      load_pipeline()      on configure; read self.params, load models (may raise: configure fails cleanly)
      create_inputs()      on activate; subscriptions (self.subscribe / self.synchronise) that call self.submit
      process(frame)       on the worker thread; convert, run the pipeline, publish. Exceptions are caught,
                           logged throttled and counted; the node keeps serving.
      release_pipeline()   on cleanup (optional)
    """

    def __init__(self, node_name: str, param_specs: Sequence[ParamSpec] = (), **kwargs):
        super().__init__(node_name, **kwargs)
        self.param_specs = tuple(COMMON_PARAMS) + tuple(param_specs)
        self.params = declare_parameters(self, self.param_specs, self.on_parameters_changed)
        self.stats = PipelineStats(
            health=HealthMonitor(
                HealthThresholds(window_s=self.params["health_window_s"], stale_input_s=self.params["stale_input_s"])
            )
        )
        self.tf = TfPublisher(self)
        self._error_log_times: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._input_subscriptions: list = []
        self._worker = LatestFrameWorker(self._run_process, self.stats.dropped_one)
        self._active = False
        self.mesh_thread: Any = None  # ros.mesh_thread.MeshThread of nodes that fit body meshes (start_meshes)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", result_qos(10))
        self._diag_timer = self.create_timer(self.params["diagnostics_period_s"], self._publish_diagnostics)

    # ---- for subclasses -------------------------------------------------------------------------------
    def load_pipeline(self) -> None:
        pass

    def create_inputs(self) -> None:
        raise NotImplementedError

    def process(self, frame: Any) -> None:
        raise NotImplementedError

    def release_pipeline(self) -> None:
        pass

    def on_parameters_changed(self, names: set[str]) -> None:
        """Called after a run-time change of the (not read-only) parameters `names`; self.params is current.
        Parameters read per frame need nothing here; a node overrides it to pass others on to its pipeline."""

    def start_meshes(self, fitter: Any, on_fit_ms: Optional[Callable[[float], None]] = None) -> None:
        """Fit body meshes with `fitter` on their own thread (MESH_PARAMS), from activate to deactivate; call from
        load_pipeline. process() then calls attach_meshes."""
        from pose_perception.ros.mesh_thread import MeshThread  # it imports this module

        self._stop_meshes()
        self.mesh_thread = MeshThread(
            fitter, self.params["mesh_rate_hz"], lambda message: self.report_error(message, key="mesh"), on_fit_ms
        )

    def attach_meshes(self, humans: list, stamp_s: float) -> list:
        """humans with the latest mesh of each track (none without start_meshes); this frame goes to the fitter."""
        return humans if self.mesh_thread is None else self.mesh_thread.attach(humans, stamp_s)

    def result_publisher(self, msg_type, topic: str, depth: int = 10):
        """Reliable publisher that only sends while the node is active."""
        return self.create_lifecycle_publisher(msg_type, topic, result_qos(depth))

    def subscribe(self, msg_type, topic: str, callback: Callable[[Any], None], qos=None):
        """Input subscription (destroyed on deactivate); callback exceptions are reported, never raised."""
        sub = self.create_subscription(
            msg_type,
            topic,
            self._guarded(callback, topic),
            qos or input_qos(self.params["input_qos"]),
            event_callbacks=self._lost_events(),
        )
        self._input_subscriptions.append(sub)
        return sub

    def synchronise(
        self, topics: Sequence[tuple[type, str]], callback: Callable[..., None], slop_s: float, queue_size: int = 10
    ):
        from pose_perception.ros.sync import ApproximateTimeSync

        sync = ApproximateTimeSync(
            self,
            topics,
            input_qos(self.params["input_qos"]),
            slop_s,
            self._guarded(callback, "+".join(t for _, t in topics)),
            queue_size,
            event_callbacks=self._lost_events(),
        )
        self._input_subscriptions += sync.subscriptions
        return sync

    def submit(self, frame: Any) -> None:
        """Hand a frame to the worker; if one is still waiting it is replaced and counted as dropped."""
        now = time.monotonic()
        self.stats.arrived(now)
        self._worker.submit(frame, now)

    def _lost_events(self):
        """Subscription event callbacks that count the messages DDS reports lost (Fast DDS SAMPLE_LOST: a gap in the
        publisher's sequence numbers seen by this reader). The QoS event, not rmw message info: Jazzy's events
        executor fails on subscription callbacks that take message info."""
        from rclpy.event_handler import SubscriptionEventCallbacks

        return SubscriptionEventCallbacks(message_lost=lambda event: self.stats.lost_frames(event.total_count_change))

    def report_error(self, message: str, key: Optional[str] = None) -> None:
        """Count an error and log it, at most once per error_throttle_s for the same key."""
        key = key or message.split(":")[0]
        self.stats.failed(message)
        now = time.monotonic()
        last = self._error_log_times.get(key)
        if last is None or now - last >= self.params["error_throttle_s"]:
            extra = self._suppressed.pop(key, 0)
            suffix = f" ({extra} similar errors suppressed)" if extra else ""
            self.get_logger().error(message + suffix)
            self._error_log_times[key] = now
        else:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1

    # ---- lifecycle -----------------------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self.load_pipeline()
        except Exception as exc:  # noqa: BLE001 - a failed configure must leave the node alive and unconfigured
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info("configured")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        try:
            self.create_inputs()
        except Exception as exc:  # noqa: BLE001
            self.get_logger().error(f"activate failed: {type(exc).__name__}: {exc}")
            self._destroy_inputs()
            return TransitionCallbackReturn.FAILURE
        self._worker.start()
        if self.mesh_thread is not None:
            self.mesh_thread.start()
        self._active = True
        self.get_logger().info("active")
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._active = False
        self._destroy_inputs()
        self._stop_meshes()
        self._worker.stop()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._active = False
        self._destroy_inputs()
        self._stop_meshes()
        self._worker.stop()
        return TransitionCallbackReturn.SUCCESS

    def shutdown_worker(self) -> None:
        # Models are closed here, before the interpreter's final garbage collection: native graphs (MediaPipe,
        # TFLite) destroyed in an arbitrary order at exit have aborted the human node (SIGABRT after Ctrl-C).
        self._stop_meshes()
        if self._worker.stop():
            self._release()

    # ---- internals -----------------------------------------------------------------------------------
    def _stop_meshes(self) -> None:
        if self.mesh_thread is not None:
            self.mesh_thread.stop()

    def _release(self) -> None:
        self._stop_meshes()
        self.mesh_thread = None
        self.release_pipeline()

    def _destroy_inputs(self) -> None:
        for sub in self._input_subscriptions:
            self.destroy_subscription(sub)
        self._input_subscriptions = []

    def _guarded(self, callback: Callable[..., None], what: str) -> Callable[..., None]:
        def guarded(*msgs):
            try:
                callback(*msgs)
            except Exception as exc:  # noqa: BLE001 - bad input must never kill the executor
                self.report_error(f"input on {what} refused: {type(exc).__name__}: {exc}", key=f"input:{what}")

        return guarded

    def _run_process(self, frame: Any, t_submit: float) -> None:
        self.frame_arrival_s = t_submit  # monotonic arrival of the frame process() is given (not when it starts)
        try:
            self.process(frame)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the node
            if not self.context.ok():
                return  # shutting down (Ctrl-C / SIGTERM): a frame cut short is not an error
            detail = "" if isinstance(exc, ValueError) else "\n" + traceback.format_exc(limit=3)
            self.report_error(f"frame failed: {type(exc).__name__}: {exc}{detail}", key=f"process:{type(exc).__name__}")
            return
        self.stats.finished(t_submit, time.monotonic())

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        snap = self.stats.snapshot(now)
        verdict = self.stats.health.verdict(now, self._active)
        snap.update(verdict.values)
        status = DiagnosticStatus(
            level=bytes([verdict.level]),
            name=f"{self.get_name()}: pipeline",
            message=verdict.message,
            hardware_id=self.get_fully_qualified_name(),
        )
        status.values = [
            KeyValue(key=k, value=(f"{v:.3f}" if isinstance(v, float) else str(v))) for k, v in snap.items()
        ]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)


def run_node(node_class: type, args: Optional[list[str]] = None) -> int:
    """main() of every node executable: init, autostart the lifecycle, spin until Ctrl-C / SIGTERM."""
    from pose_perception.core.quiet import filter_native_stderr

    filter_native_stderr()  # MediaPipe's TFLite / absl start-up chatter (core/quiet.py)
    init_ros(args=args)
    node = None
    try:
        node = node_class()
        if node.params["autostart"]:
            node.trigger_configure()
            if node._state_machine.current_state[1] == "inactive":
                node.trigger_activate()
        executor = make_executor()
        executor.add_node(node)
        # spin_once in a loop, not spin(): Jazzy's events executor does not return from spin() on Ctrl-C.
        while rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except ParameterValueError as exc:
        print(f"[ERROR] {exc}", flush=True)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # Ctrl-C / SIGTERM arrived while starting up (before spinning): a clean stop, not a failure.
    finally:
        if node is not None:
            node.shutdown_worker()
            try:
                node.destroy_node()
            except Exception:  # noqa: BLE001 - the context may already be gone after a signal
                pass
        rclpy.try_shutdown()
    return 0
