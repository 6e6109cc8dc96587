"""Benchmark plumbing: a private embedded Prefect server and task-run counts."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from sluice import server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def embedded_server():
    """A fresh SLUICE_HOME with its own Prefect server; yields the home directory."""
    home = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
    started = server.start(home, free_port(), timeout=900)  # a loaded machine starts slowly
    os.environ.update(server.server_environment(home))
    os.environ["PREFECT_API_URL"] = started.api_url
    os.environ["SLUICE_HOME"] = str(home)
    try:
        yield home
    finally:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=30)  # before the server goes, not at exit against it
        server.stop(home)


def peak_rss_mib() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def task_runs_recorded(flow_run_id, expected: int, settle_seconds: float = 60.0) -> int:
    """Task runs the Prefect server holds for one flow run.

    Task runs are recorded from events after the fact, so this waits (bounded)
    until ``expected`` are there or the count stops growing.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def count() -> int:
        total, page = 0, 200
        async with get_client() as client:
            while True:
                runs = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                    limit=page,
                    offset=total,
                )
                total += len(runs)
                if len(runs) < page:
                    return total

    deadline = time.monotonic() + settle_seconds
    recorded = asyncio.run(count())
    while recorded < expected and time.monotonic() < deadline:
        time.sleep(1.0)
        recorded = asyncio.run(count())
    return recorded


# -- spawn-cost floors: the least any local runner must do per job, measured in the same run --

_C_FLOOR = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
extern char **environ;
static void put(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd >= 0) { if (write(fd, text, strlen(text)) < 0) {} close(fd); }
}
int main(int argc, char **argv) {
    const char *parent = argv[1], *logs = argv[2], *memory = argv[5];
    long jobs = atol(argv[3]), started = 0, done = 0;
    int width = atoi(argv[4]), running = 0, cgroups = strcmp(parent, "-") != 0;
    pid_t *pids = calloc(width, sizeof(pid_t));
    char (*groups)[512] = calloc(width, 512), path[600], procs[600], buf[512];
    char *const args[] = {"true", NULL};
    while (done < jobs) {
        while (running < width && started < jobs) {
            int slot = 0;
            while (pids[slot]) slot++;
            if (cgroups) {
                snprintf(groups[slot], 512, "%s/floor-%d-%ld", parent, getpid(), started);
                mkdir(groups[slot], 0755);
                snprintf(path, sizeof path, "%s/memory.limit_in_bytes", groups[slot]);
                put(path, memory);
                snprintf(procs, sizeof procs, "%s/cgroup.procs", groups[slot]);
            }
            snprintf(path, sizeof path, "%s/job-%ld.log", logs, started);
            int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            pid_t pid = vfork();
            if (pid == 0) {
                if (cgroups) put(procs, "0");
                setpgid(0, 0);
                dup2(out, 1);
                dup2(out, 2);
                execve("/bin/true", args, environ);
                _exit(127);
            }
            close(out);
            pids[slot] = pid;
            running++;
            started++;
        }
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        for (int slot = 0; slot < width; slot++) {
            if (pids[slot] != pid) continue;
            if (cgroups) {
                snprintf(path, sizeof path, "%s/memory.oom_control", groups[slot]);
                int fd = open(path, O_RDONLY);
                if (fd >= 0) { if (read(fd, buf, sizeof buf) < 0) {} close(fd); }
                rmdir(groups[slot]);
            }
            pids[slot] = 0;
            running--;
            done++;
        }
    }
    return 0;
}
"""


def cgroup_parent() -> str | None:
    """This process's v1 memory cgroup directory, or None (the floors then skip cgroups)."""
    from sluice.backends.cgroups import CgroupParent, CgroupUnavailable

    try:
        parent = CgroupParent.detect()
    except (CgroupUnavailable, OSError):
        return None
    return str(parent.path) if parent.version == 1 else None


def c_floor(jobs: int, parallelism: int, work: Path, memory: int) -> float | None:
    """Wall seconds of a C vfork+exec runner (a fresh memory cgroup and log per job);
    None without gcc."""
    import shutil
    import subprocess

    if shutil.which("gcc") is None:
        return None
    source, program, logs = work / "floor.c", work / "floor", work / "c-floor-logs"
    source.write_text(_C_FLOOR)
    subprocess.run(["gcc", "-O2", "-o", str(program), str(source)], check=True)
    logs.mkdir()
    parent = cgroup_parent() or "-"
    began = time.perf_counter()
    subprocess.run([str(program), parent, str(logs), str(jobs), str(parallelism), str(memory)])
    wall = time.perf_counter() - began
    shutil.rmtree(logs)
    return wall


def popen_floor(jobs: int, parallelism: int, work: Path, memory: int) -> float:
    """Wall seconds of a Python runner: ``parallelism`` threads, each job a fresh memory
    cgroup, a log file and ``Popen`` through ``sh`` that enters the cgroup and execs."""
    import itertools
    import shutil
    import subprocess
    import threading

    logs = work / "popen-floor-logs"
    logs.mkdir()
    parent = cgroup_parent()
    numbers = itertools.count()

    def worker() -> None:
        while (number := next(numbers)) < jobs:
            procs = "/dev/null"
            if parent is not None:
                group = f"{parent}/floor-{os.getpid()}-{number}"
                os.mkdir(group)
                Path(group, "memory.limit_in_bytes").write_text(str(memory))
                procs = f"{group}/cgroup.procs"
            with open(logs / f"job-{number}.log", "wb") as out:
                process = subprocess.Popen(
                    ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', procs, "true"],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    process_group=0,
                )
            process.wait()
            if parent is not None:
                Path(group, "memory.oom_control").read_text()
                os.rmdir(group)

    threads = [threading.Thread(target=worker) for _ in range(parallelism)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    shutil.rmtree(logs)
    return wall
