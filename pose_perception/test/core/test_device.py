"""One rule for every `device` parameter: auto, cpu, cuda, cuda:N; anything else is refused by name."""

import pytest
import torch

from pose_perception.core.device import DeviceError, resolve_device


def test_cpu_and_auto_resolve():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("name", ["tpu", "CUDA", "cuda:x", "", "gpu"])
def test_unknown_devices_are_refused_by_name(name):
    with pytest.raises(DeviceError, match="device must be"):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_a_cuda_device_says_so(name):
    with pytest.raises(DeviceError, match="no CUDA device"):
        resolve_device(name)
