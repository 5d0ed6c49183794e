"""Named crash points for fault-injection tests (issue 12: "a crash at any point loses nothing
and leaves nothing behind").

Code that must survive a crash at a given step calls ``crash_point("erasure.after-commit")``
there. Nothing happens unless the environment variable ``PROBITY_CRASH_AT`` names that
point; then the process kills itself with SIGKILL, exactly like ``kill -9`` or a power cut
for everything above the operating system: no ``finally`` blocks, no ``atexit``, no flush.
The tests in ``tests/crash/`` run a real ``probity`` command under each point, restart, and
check that nothing was lost or left behind.

``PROBITY_CRASH_AT`` holds one or more comma-separated points, each optionally ``@N`` to
crash the N-th time the point is reached in this process (default 1), e.g.
``enrol.after-commit@3`` dies after the third enrolment has committed. It is a test hook:
an operator never sets it, and an unknown name fails loudly rather than being ignored.
"""

from __future__ import annotations

import os
import signal
import threading

CRASH_ENV = "PROBITY_CRASH_AT"

POINTS: frozenset[str] = frozenset(
    {
        # enrolment: one row's transaction has committed; its vector is not yet in the index
        "enrol.after-commit",
        # an index file is about to be written (its changes are applied in memory only)
        "index.before-save",
        # erasure: the database transaction (shredding, receipt, work journal) has committed
        "erasure.after-commit",
        # erasure: the indexes are caught up and resealed; blobs and old keys remain
        "erasure.after-index",
        # erasure: between deleting one blob and the next
        "erasure.during-blob-deletion",
        # erasure: blobs deleted, retired key files not yet destroyed
        "erasure.before-key-destroy",
        # model migration: a batch of the new model's templates has committed
        "migration.after-batch",
        # model migration: the swap to the new model has committed, old index not yet dropped
        "migration.after-swap",
    }
)
"""Every point code may name. Adding a point: put it here with a line on where it is."""

_lock = threading.Lock()
_reached: dict[str, int] = {}


def _wanted() -> dict[str, int]:
    raw = os.environ.get(CRASH_ENV, "").strip()
    if not raw:
        return {}
    wanted: dict[str, int] = {}
    for part in raw.split(","):
        name, _, nth = part.strip().partition("@")
        if name not in POINTS:
            raise ValueError(f"{CRASH_ENV} names an unknown crash point '{name}'")
        wanted[name] = int(nth) if nth else 1
    return wanted


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL here if ``PROBITY_CRASH_AT`` names ``name`` (and this
    is the N-th time it is reached). A no-op otherwise: one dict lookup."""
    if name not in POINTS:
        raise ValueError(f"unknown crash point '{name}'")
    wanted = _wanted()
    if name not in wanted:
        return
    with _lock:
        _reached[name] = _reached.get(name, 0) + 1
        if _reached[name] < wanted[name]:
            return
    os.kill(os.getpid(), signal.SIGKILL)
