"""Worker processes of a ProcessAnalysisPool die with their parent, also when the parent is
killed with SIGKILL and runs no cleanup (issue 12, "no leftovers").

A small parent process (``python -c``) starts a pool of two real workers (each loads the
installed engine set, as in production), prints their pids and waits; the test kills it with
SIGKILL and waits, up to a bounded deadline, for the kernel's notice that both workers have
exited (a pidfd per worker, opened before the kill: no sleep loop, no wall-clock guess).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

PARENT = """
import sys
from probity.config import EngineSettings
from probity.engine.models import MODEL
from probity.engine.pool import ProcessAnalysisPool

pool = ProcessAnalysisPool(
    EngineSettings(), model_key=MODEL.key, workers=2, max_bytes=1 << 20, max_pixels=1 << 20
)
# Two submissions while no worker is idle start both workers; bytes that are no image come
# back as a decode error, which is all this parent needs.
futures = [pool.submit(b"not an image") for _ in range(2)]
for future in futures:
    future.exception(timeout=120)
print(" ".join(str(pid) for pid in pool.worker_pids()), flush=True)
sys.stdin.read()  # wait until killed
"""


def _gone(pid: int) -> bool:
    """No such process, or a zombie: once its parent is dead a worker is reparented, and a
    container's PID 1 may never reap it, so a zombie counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    # The state follows the command name, which is in parentheses and may hold spaces.
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _exits(pids: list[int]) -> dict[int, int]:
    """A pidfd per process still running (Linux 5.3+): it becomes readable when the process
    exits, zombie or not. Opened while the pids surely name our workers."""
    fds = {}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            fds[pid] = os.pidfd_open(pid)
    return fds


def _wait_for_exits(fds: dict[int, int], timeout_s: float) -> None:
    """Block on the pidfds until each has signalled its process's exit, or the deadline
    passes (the assertion after says which are still alive)."""
    deadline = time.monotonic() + timeout_s
    waiting = dict(fds)
    while waiting and (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select(list(waiting.values()), [], [], remaining)
        waiting = {pid: fd for pid, fd in waiting.items() if fd not in ready}


def test_workers_exit_when_the_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    workers: list[int] = []
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()  # the parent prints one line, or exits with an error
        workers = [int(pid) for pid in line.split()]
        if len(workers) != 2:
            parent.kill()
            _, err = parent.communicate(timeout=30)
            pytest.fail(f"the parent did not report two workers: {line!r}\n{err}")
        assert not any(_gone(pid) for pid in workers)
        exits = _exits(workers)

        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)

        try:
            _wait_for_exits(exits, timeout_s=20.0)
        finally:
            for fd in exits.values():
                os.close(fd)
        alive = [pid for pid in workers if not _gone(pid)]
        assert not alive, f"workers {alive} outlived their killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=30)
        for pid in workers:  # never leave a worker behind, even when the test fails
            if not _gone(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
