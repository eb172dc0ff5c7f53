"""A worker gives freed heap pages back between requests only once they add up.

Trimming after every request made the next one fault every page it allocated in again (the
reference worker's timed-output checks: 17-21 thousand faults each on the 2-core machine); never
trimming would let a worker that stages and frees large sets grow past its memory limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from kernelwright import constants as C

_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import torch
    from kernelwright import constants as C
    from kernelwright.worker import harness as h

    C.RELEASE_FREE_MIN_BYTES = int(sys.argv[1])

    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    def request(n):
        # n temporaries of 6 MiB alive at once, then freed: a compare's clone, forward and buffers.
        held = [torch.ones(6 << 18) for _ in range(n)]
        del held

    out = {}
    h.release_free_memory()  # the first call trims and takes the baseline
    for _ in range(3):  # a few requests, each followed by the release the workers do between them
        request(4)
        h.release_free_memory()
    f0 = faults()
    request(4)
    out["request_faults"] = faults() - f0
    h.release_free_memory()
    request(int(sys.argv[2]))  # frees more than the bar at once
    before = rss()
    h.release_free_memory()
    out["given_back"] = before - rss()
    print(json.dumps(out))
""")


def _run(bar: int, big_request: int) -> dict[str, int]:
    env = dict(os.environ)
    # What sandbox.limits gives every worker.
    env.update(MALLOC_MMAP_THRESHOLD_=str(1 << 30), MALLOC_TRIM_THRESHOLD_=str(1 << 30),
               MALLOC_TOP_PAD_=str(64 << 20))
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(bar), str(big_request)], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc and /proc")
def test_freed_pages_stay_until_they_reach_the_bar_then_go_back() -> None:
    request_pages = 4 * (6 << 20) // 4096
    bar = C.RELEASE_FREE_MIN_BYTES
    kept = _run(bar, big_request=2 * bar // (6 << 20) + 4)
    # Below the bar the freed pages stay: the next request faults (almost) none of its 24 MiB in.
    assert kept["request_faults"] < request_pages // 4, kept
    # Past it, the release gives them back: resident memory drops by at least the bar.
    assert kept["given_back"] >= bar, kept
    # The control: a bar of 0 trims at every release, and every request faults its pages in again.
    always = _run(0, big_request=4)
    assert always["request_faults"] > request_pages // 2, always
