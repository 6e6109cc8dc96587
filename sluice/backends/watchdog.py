"""Kill a dead orchestrator's local jobs, grandchildren included.

``LocalBackend`` starts this file as a child process (``python -I watchdog.py
<cgroup parent or -> <cgroup prefix>``) and keeps the write end of its stdin.
The backend writes ``+<pgid>`` when a job starts and ``-<pgid>`` once it has
cleaned up after it. When the pipe closes, because the orchestrator exited or
was SIGKILLed, every process group still listed and every process in the
backend's job cgroups is SIGKILLed, and those cgroups are removed.

Standard library only: it runs isolated (``-I``), outside the ``sluice`` package.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path


def kill_cgroup(path: Path) -> None:
    """SIGKILL every process in the cgroup at ``path`` (v2 ``cgroup.kill`` where present)."""
    if (path / "cgroup.kill").exists():
        with contextlib.suppress(OSError):
            (path / "cgroup.kill").write_text("1")
        return
    for _ in range(10):
        try:
            pids = [int(pid) for pid in (path / "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def remove_cgroup(path: Path, attempts: int = 50) -> bool:
    """Kill what is in the cgroup and remove it; False if it stays busy."""
    for attempt in range(attempts):
        kill_cgroup(path)
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            # Killed processes leave the cgroup once the kernel has torn them down.
            time.sleep(0.001 * (attempt + 1))
    return False


def main(cgroup_parent: str, prefix: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the orchestrator's to handle
    groups: set[int] = set()
    for line in sys.stdin:
        pgid = int(line[1:])
        if line.startswith("+"):
            groups.add(pgid)
        else:
            groups.discard(pgid)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    if cgroup_parent != "-":
        for cgroup in Path(cgroup_parent).glob(f"{prefix}*"):
            remove_cgroup(cgroup)


if __name__ == "__main__":
    main(*sys.argv[1:3])
