"""What every ROS process of this package does at start (`init_ros`): keep large message buffers on the heap,
then rclpy.init.

glibc serves each allocation above 128 KiB with a fresh mmap and returns it to the kernel on free, so every
copy of a 640x480 image (serialise on publish, deserialise on receive) faults its pages in anew. Raising the
mmap and trim thresholds lets those buffers be reused: `pose-perception bench transport --allocator
default|reuse` shows the difference end to end (2 cores: ~585 against ~54 page faults per message, depth mean
~4.5 against ~1.5 ms). This is the page-fault advice of ROS 2's real-time guidelines (mallopt instead of a
custom allocator).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Optional

ALLOCATOR_ENV = "POSE_PERCEPTION_ALLOCATOR"
ALLOCATOR_CHOICES = ("reuse", "default")

# mallopt parameter numbers from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc caps the mmap threshold at 32 MiB on 64-bit (a 1920x1080 rgb8 image is 6 MiB); up to 64 MiB of freed
# heap may stay with the process instead of going back to the kernel.
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 64 << 20


class AllocatorChoiceError(ValueError):
    """POSE_PERCEPTION_ALLOCATOR names no allocator set-up this package knows."""


def allocator_choice(choice: Optional[str] = None) -> str:
    """'reuse' or 'default': the argument, else $POSE_PERCEPTION_ALLOCATOR, else 'reuse'."""
    choice = (choice or os.environ.get(ALLOCATOR_ENV) or "reuse").strip().lower()
    if choice not in ALLOCATOR_CHOICES:
        raise AllocatorChoiceError(f"{ALLOCATOR_ENV}={choice!r}: use one of {', '.join(ALLOCATOR_CHOICES)}")
    return choice


def reuse_message_buffers(choice: Optional[str] = None) -> bool:
    """Raise glibc's mmap and trim thresholds for this process (choice 'reuse'). True when they were set;
    False for 'default' or where the C library is not glibc (musl, macOS), which keep their own behaviour."""
    if allocator_choice(choice) != "reuse":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


def init_ros(args: Optional[list[str]] = None, context=None) -> None:
    """rclpy.init for this process, after reuse_message_buffers()."""
    import rclpy

    reuse_message_buffers()
    rclpy.init(args=args, context=context)
