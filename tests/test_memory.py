"""The allocator setting a run applies: network-sized tensors must not page-fault every update.

Each check runs in a subprocess, since ``mallopt`` changes the whole process's allocator.
"""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")

# Allocate and free a 256 x 256 float32 tensor (256 KiB, one SAC layer's activations at
# batch 256) 300 times and print the minor page faults that cost.
_FAULTS = """
import resource, sys, torch
import gymnasium
from prefrl.memory import tame_allocator
from prefrl.run_setup import mmap_threshold_for
space = gymnasium.spaces.Box(0, 1, tuple(int(n) for n in sys.argv[1].split("x")))
assert tame_allocator(mmap_threshold_for(space))
for _ in range(20):
    torch.ones(256, 256)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(300):
    torch.ones(256, 256)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(shape: str) -> int:
    out = subprocess.run([sys.executable, "-c", _FAULTS, shape], capture_output=True,
                         text=True, timeout=120, check=True)
    return int(out.stdout.split()[-1])


def test_vector_runs_reuse_heap_memory_for_network_tensors():
    # 64 pages per tensor if each is mapped afresh: 300 tensors would fault ~19,000 times
    assert _faults("17") < 300


def test_image_runs_map_large_blocks_on_their_own():
    # the Pong-measured 256 KiB threshold: the same tensor is mapped and returned each time
    assert _faults("4x84x84") > 300 * 32
