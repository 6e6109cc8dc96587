"""Killing only the orchestrator leaves nothing behind (issue 15.10).

The CLI runs callable work on 2 local worker processes; one chunk hangs. SIGKILL goes to
the orchestrator process alone (not its group, as an OOM killer or a node would do it):
its worker processes, the multiprocessing resource tracker and the pool's named
semaphores in /dev/shm must all go away by themselves.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import psutil
import pytest

from tests.chunkedgraph.conftest import WORK
from tests.chunkedgraph.test_cg_ingest import _announced, sluice

pytestmark = pytest.mark.slow


def semaphores_of(pid: int) -> set[str]:
    """Named POSIX semaphores a process has mapped (``/dev/shm/sem.*``)."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return set(re.findall(r"/dev/shm/(sem\.\S+)", maps))


def test_sigkill_of_the_orchestrator_alone_leaves_no_process_or_semaphore(
    prefect_api, sluice_home, dataset, tmp_path, monkeypatch
):
    monkeypatch.setenv("CG_COUNT", str(tmp_path / "count.txt"))
    fifo = tmp_path / "announce"
    os.mkfifo(fifo)
    process = sluice(
        "ingest",
        "leaky",
        str(dataset),
        "--atomic",
        f"{WORK}:chunk",
        "--workers",
        "2",
        env={"CG_KILL_FIFO": str(fifo), "CG_KILL_AT": "5"},
        start_new_session=True,
    )
    reader = _announced(fifo)
    reader.join(timeout=240)
    assert not reader.is_alive(), "the work never reached the hanging chunk"
    orchestrator = psutil.Process(process.pid)
    descendants = orchestrator.children(recursive=True)
    commands = [" ".join(child.cmdline()) for child in descendants]
    assert sum("multiprocessing" in c and "spawn_main" in c for c in commands) == 2, commands
    semaphores = semaphores_of(process.pid)
    assert semaphores, "the process pool's semaphores are mapped by the orchestrator"

    os.kill(process.pid, signal.SIGKILL)  # the orchestrator only, not its group
    process.communicate()
    gone, alive = psutil.wait_procs(descendants, timeout=60)
    assert not alive, [" ".join(p.cmdline()) for p in alive]
    assert not [name for name in semaphores if Path("/dev/shm", name).exists()]
