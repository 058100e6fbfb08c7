"""object_pose_node's ~/add_object over real DDS: answered from a worker while the node keeps tracking (the tracked
object keeps its instance id), one at a time, the same neutral refusal for files outside mesh_roots whether they
exist or not, refusals reported on /diagnostics (not OK), and read-only limits."""

import threading
import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters


from pose_perception.evaluation.cli.bench_onboarding import torus_mesh, write_binary_stl
from pose_perception.objects.onboarding import NEUTRAL_REFUSAL
from mustard_node import scene_camera, start_mustard_node
from ros_helpers import wait_for

pytestmark = pytest.mark.timeout(240)


def test_add_object_never_stalls_tracking_and_leaks_nothing(client, scene, tmp_path):
    from pose_perception_msgs.msg import ObjectPoseArray
    from pose_perception_msgs.srv import AddObject

    model, sc = scene
    roots = tmp_path / "meshes"
    roots.mkdir()
    write_binary_stl(roots / "torus.stl", *torus_mesh(200_000))
    objects = client.collect(ObjectPoseArray, "objects")
    diags = client.collect(DiagnosticArray, "/diagnostics")
    cam = scene_camera(client, sc)
    node = start_mustard_node(tmp_path / "cache", mesh_roots=f'["{roots}"]', onboarding_cpu_share=1.0)
    stop = threading.Event()

    def stream():
        while not stop.is_set():
            cam.send(stamp_s=time.time())
            time.sleep(0.08)

    feeder = threading.Thread(target=stream, daemon=True)
    try:
        client.wait_for_subscribers(cam.image, timeout_s=90)
        feeder.start()
        wait_for(lambda: any(m.objects for m in objects), 120, "a tracked object")
        instance = next(o.instance for m in objects for o in m.objects if o.name == "mustard")
        replies = {}

        def call(key, request):
            replies[key] = client.call(AddObject, "/object_pose_node/add_object", request, 180)

        first = threading.Thread(
            target=call,
            args=(
                "torus",
                AddObject.Request(name="torus", mesh_path=str(roots / "torus.stl"), units="m", symmetry="none"),
            ),
        )
        t0 = time.time()
        first.start()
        time.sleep(1.0)
        call("busy", AddObject.Request(name="other", mesh_path=str(roots / "torus.stl"), units="m", symmetry="none"))
        first.join(180)
        t1 = time.time()
        assert replies["torus"].success, replies["torus"].message
        assert not replies["busy"].success and "another add_object is loading" in replies["busy"].message
        during = [m for m in objects if t0 + 0.5 <= m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 <= t1 - 0.5]
        assert t1 - t0 > 2.0 and len(during) >= 0.3 * (t1 - t0 - 1.0) * 10  # the node kept answering frames
        # the load did not reset tracking: the mustard bottle kept its instance id throughout
        assert {o.instance for m in objects for o in m.objects if o.name == "mustard"} == {instance}
        for path in ("/etc/hostname", "/etc/no_such_file.stl", str(roots / "missing.stl"), str(roots)):
            call("x", AddObject.Request(name="x", mesh_path=path, units="m", symmetry="none"))
            assert not replies["x"].success and replies["x"].message == NEUTRAL_REFUSAL, path
        call("units", AddObject.Request(name="x", mesh_path=str(roots / "torus.stl"), units="", symmetry="none"))
        assert not replies["units"].success and "units must be 'm' or 'mm'" in replies["units"].message
        # the refusals are on /diagnostics: not OK, and the message says what was refused
        status = wait_for(
            lambda: next(
                (
                    s
                    for m in reversed(diags[-5:])
                    for s in m.status
                    if s.name.startswith("object_pose_node:") and "add_object" in s.message
                ),
                None,
            ),
            15,
            "an add_object refusal on /diagnostics",
        )
        assert status.level != DiagnosticStatus.OK, status.message
        # read-only: nobody on the domain may widen the roots
        request = SetParameters.Request(
            parameters=[
                Parameter(
                    name="mesh_roots",
                    value=ParameterValue(type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=["/"]),
                )
            ]
        )
        result = client.call(SetParameters, "/object_pose_node/set_parameters", request, 30).results[0]
        assert not result.successful and "read-only" in result.reason
        assert node.alive()
    finally:
        stop.set()
        rc = node.stop()
    assert rc in (0, -2, 130), node.output()[-3000:]
