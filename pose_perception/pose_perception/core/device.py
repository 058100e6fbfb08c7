"""Which torch device a model runs on: the one rule for every `device` parameter ("auto", "cpu", "cuda", "cuda:N")."""

from __future__ import annotations


class DeviceError(ValueError):
    """A device name that is not valid here (unknown, or CUDA asked for where torch sees none)."""


def resolve_device(device: str = "auto") -> str:
    """ "cpu" | "cuda" | "cuda:N" | "auto" -> the device used; auto picks CUDA when torch sees one, else the CPU
    (also when torch is not installed). Raises DeviceError for anything else or for CUDA without a CUDA device."""
    if device == "auto":
        try:
            import torch
        except ImportError:
            return "cpu"
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        import torch

        if not torch.cuda.is_available():
            raise DeviceError(f"device '{device}' requested but torch sees no CUDA device; use 'cpu' or 'auto'")
        return device
    raise DeviceError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
