"""Process set-up: large message buffers stay on the heap (no mmap per image) unless the user opts out."""

import platform
import subprocess
import sys

import pytest

from pose_perception.ros.process import ALLOCATOR_ENV, AllocatorChoiceError, allocator_choice

# In a fresh interpreter (mallopt is process-wide): allocate and free a 1 MiB buffer, as (de)serialising a
# 640x480 image does, and count the blocks glibc served with mmap meanwhile.
_COUNT_MMAPPED_BLOCKS = """
import ctypes, sys
from pose_perception.ros.process import reuse_message_buffers
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = (ctypes.c_void_p,)
set_up = reuse_message_buffers(sys.argv[1])
before = libc.mallinfo2().hblks
buffer = libc.malloc(1 << 20)
during = libc.mallinfo2().hblks
libc.free(buffer)
print(int(set_up), during - before)
"""

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="mallopt thresholds are glibc's"
)


def _mmapped_blocks_for_one_image(choice: str) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", _COUNT_MMAPPED_BLOCKS, choice], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0]), int(out[1])


@glibc_only
def test_reuse_keeps_an_image_sized_buffer_off_mmap():
    assert _mmapped_blocks_for_one_image("reuse") == (1, 0)


@glibc_only
def test_default_leaves_glibc_mapping_each_large_buffer():
    assert _mmapped_blocks_for_one_image("default") == (0, 1)


def test_reuse_is_the_default_and_the_environment_can_opt_out(monkeypatch):
    monkeypatch.delenv(ALLOCATOR_ENV, raising=False)
    assert allocator_choice() == "reuse"
    monkeypatch.setenv(ALLOCATOR_ENV, "Default ")
    assert allocator_choice() == "default"
    monkeypatch.setenv(ALLOCATOR_ENV, "tlsf")
    with pytest.raises(AllocatorChoiceError, match="reuse, default"):
        allocator_choice()
