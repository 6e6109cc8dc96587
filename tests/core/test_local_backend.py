"""The local backend with real processes and real memory limits."""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
from kubernetes import client, config

from sluice.backends.base import Backend
from sluice.backends.cgroups import CgroupParent, CgroupUnavailable, MemoryCgroup, locate
from sluice.backends.expansion import expand, expand_env
from sluice.backends.local import LocalBackend
from sluice.backends.supervisor import forget_ending, record_ending, recorded_ending
from sluice.execute import Planned, run_jobs
from sluice.jobs import JobSpec, Outcome
from sluice.ledger import open_ledger
from sluice.sweep.chunks import Chunk
from sluice.sweep.execution import SweepConfig, build_job
from sluice.sweep.template import load_template_file
from tests.k8s_double import start_double

MIB = 2**20
PY = sys.executable
ALLOCATE_200MB = "b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); print('allocated')"


def _cgroups_missing() -> str | None:
    try:
        CgroupParent.detect()
    except (CgroupUnavailable, OSError) as exc:
        return str(exc)
    return None


needs_cgroups = pytest.mark.skipif(
    _cgroups_missing() is not None, reason=f"no memory cgroup: {_cgroups_missing()}"
)


@pytest.fixture
def backend(tmp_path: Path):
    with LocalBackend(parallelism=2, log_dir=tmp_path / "logs") as local:
        yield local


def test_put_secrets_reach_the_job_process_only(backend: LocalBackend) -> None:
    before = dict(os.environ)
    backend.preflight(["any-kind"])  # every kind is a command: nothing to set up
    show = [sys.executable, "-c", "import os; print(os.environ.get('SLUICE_TEST_SECRET'))"]
    assert run_one(backend, JobSpec(name="before", command=show)).outcome is Outcome.SUCCEEDED
    backend.put_secrets({"SLUICE_TEST_SECRET": "local-s3cr3t-value"})
    assert run_one(backend, JobSpec(name="after", command=show)).outcome is Outcome.SUCCEEDED
    assert backend.logs("before") == "None\n"  # only jobs submitted afterwards get them
    assert backend.logs("after") == "local-s3cr3t-value\n"
    assert dict(os.environ) == before  # never through the orchestrator's environment


def run_one(backend: LocalBackend, job: JobSpec, timeout: float | None = None):
    backend.submit([job])
    (result,) = backend.wait([job.name], timeout=timeout)
    return result


def fifo(tmp_path: Path, name: str = "signal") -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


def read_fifo(path: Path, within: float = 60.0) -> str:
    """What a job writes to ``path``: the read waits for the writer (bounded), no sleeping."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    text = b""
    try:
        while True:
            assert poller.poll(within * 1e3), f"nothing written to {path} within {within}s"
            chunk = os.read(fd, 4096)
            if not chunk:
                return text.decode().strip()
            text += chunk
    finally:
        os.close(fd)


def ended(pid: int, within: float = 10.0) -> bool:
    """Whether process ``pid`` is gone, waiting for it at most ``within`` seconds."""
    try:
        process = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return True
    return not psutil.wait_procs([process], timeout=within)[1]


def test_is_a_backend(backend):
    assert isinstance(backend, Backend)
    assert backend.name == "local"


@needs_cgroups
def test_overrun_is_oom_killed_in_its_cgroup(backend):
    assert backend.memory_limits.startswith("cgroup")
    job = JobSpec(name="greedy", command=[PY, "-c", ALLOCATE_200MB], memory_bytes=64 * MIB)
    result = run_one(backend, job)
    assert result.outcome is Outcome.OOM
    assert result.exit_code == 137
    assert result.reason == "oom"
    assert 0 < result.peak_memory_bytes <= 64 * MIB
    assert result.started_at <= result.finished_at


@needs_cgroups
def test_enough_memory_succeeds_with_peak_recorded(backend):
    job = JobSpec(name="fits", command=[PY, "-c", ALLOCATE_200MB], memory_bytes=512 * MIB)
    result = run_one(backend, job)
    assert result.outcome is Outcome.SUCCEEDED, backend.logs("fits")
    assert result.exit_code == 0 and result.reason is None
    assert result.peak_memory_bytes >= 200 * MIB
    assert "allocated" in backend.logs("fits")


def test_exit_code_is_a_failure(backend):
    result = run_one(backend, JobSpec(name="three", command=["sh", "-c", "exit 3"]))
    assert result.outcome is Outcome.FAILED
    assert result.exit_code == 3
    assert result.reason == "exit:3"


def test_logs_capture_stdout_and_stderr_env_and_workdir(backend, tmp_path):
    job = JobSpec(
        name="talky",
        command=["sh", "-c", 'echo "out $INDEX"; echo "err $(pwd)" >&2'],
        env={"INDEX": "42"},
        workdir=str(tmp_path),
    )
    assert run_one(backend, job).outcome is Outcome.SUCCEEDED
    assert backend.logs("talky") == f"out 42\nerr {tmp_path}\n"
    assert (backend.log_dir / "talky.log").exists()
    assert backend.logs("never-ran") == ""


def test_job_timeout_kills_the_process_group(backend, tmp_path):
    pid_file = tmp_path / "background"
    job = JobSpec(
        name="slow",
        command=["sh", "-c", f"sleep 300 & echo $! > {pid_file}; wait"],
        timeout_seconds=2,
    )
    result = run_one(backend, job)
    assert result.outcome is Outcome.TIMEOUT and result.reason == "timeout"
    assert ended(int(pid_file.read_text()))


def test_wait_timeout_kills_and_reports_timeout(backend):
    backend.submit([JobSpec(name="forever", command=["sleep", "300"])])
    (result,) = backend.wait(["forever"], timeout=0.3)
    assert result.outcome is Outcome.TIMEOUT


def test_backoff_limit_reruns_a_failure_in_place(backend, tmp_path):
    runs = tmp_path / "runs"
    job = JobSpec(
        name="flaky", command=["sh", "-c", f"echo run >> {runs}; exit 1"], backoff_limit=2
    )
    result = run_one(backend, job)
    assert result.outcome is Outcome.FAILED and result.exit_code == 1
    assert runs.read_text().count("run") == 3


def test_backoff_stops_at_the_first_success(backend, tmp_path):
    runs = tmp_path / "runs"
    script = f'echo run >> {runs}; [ "$(wc -l < {runs})" -ge 2 ]'
    job = JobSpec(name="second-time", command=["sh", "-c", script], backoff_limit=5)
    assert run_one(backend, job).outcome is Outcome.SUCCEEDED
    assert runs.read_text().count("run") == 2


@needs_cgroups
def test_oom_is_never_retried_in_place(backend, tmp_path):
    runs = tmp_path / "runs"
    job = JobSpec(
        name="greedy-retry",
        command=["sh", "-c", f'echo run >> {runs}; exec {PY} -c "{ALLOCATE_200MB}"'],
        memory_bytes=64 * MIB,
        backoff_limit=3,
    )
    assert run_one(backend, job).outcome is Outcome.OOM
    assert runs.read_text().count("run") == 1


def test_parallelism_bound_is_respected(tmp_path):
    """Jobs wait (bounded) until as many run at once as may: peak > limit means a broken bound."""
    limit, total, state = 2, 6, tmp_path / "state"
    state.write_text("0 0 0")  # running, finished, peak running
    script = textwrap.dedent(f"""
        import fcntl, time
        def update(running=0, finished=0):
            with open({str(state)!r}, "r+") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                now, done, peak = map(int, f.read().split())
                now, done = now + running, done + finished
                f.seek(0); f.truncate(); f.write(f"{{now}} {{done}} {{max(peak, now)}}")
                return now, done
        update(running=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now, done = update()
            if now >= min({limit}, {total} - done):
                break
            time.sleep(0.01)
        update(running=-1, finished=1)
    """)
    jobs = [JobSpec(name=f"par-{i}", command=[PY, "-c", script]) for i in range(total)]
    with LocalBackend(parallelism=limit, log_dir=tmp_path / "logs") as backend:
        backend.submit(jobs)
        outcomes = [r.outcome for r in backend.wait([j.name for j in jobs])]
    assert outcomes == [Outcome.SUCCEEDED] * total
    assert state.read_text() == f"0 {total} {limit}"


def test_submit_is_idempotent_by_name_and_replace_reruns(backend, tmp_path):
    runs = tmp_path / "runs"
    job = JobSpec(name="once", command=["sh", "-c", f"echo run >> {runs}"])
    assert backend.submit([job, job]) == ["once", "once"]
    assert [r.outcome for r in backend.wait(["once"])] == [Outcome.SUCCEEDED]
    backend.submit([job])
    assert [r.outcome for r in backend.wait(["once"])] == [Outcome.SUCCEEDED]
    assert runs.read_text().count("run") == 1
    backend.submit([job], replace=True)
    assert [r.outcome for r in backend.wait(["once"])] == [Outcome.SUCCEEDED]
    assert runs.read_text().count("run") == 2


def test_delete_cancels_a_running_job(backend, tmp_path):
    started = fifo(tmp_path)
    backend.submit(
        [JobSpec(name="doomed", command=["sh", "-c", f"echo $$ > {started}; sleep 300"])]
    )
    process = psutil.Process(int(read_fifo(started)))
    backend.delete(["doomed"])
    (result,) = backend.wait(["doomed"])
    assert result.outcome is Outcome.CANCELLED
    assert not psutil.wait_procs([process], timeout=10)[1]


def test_delete_cancels_a_queued_job(tmp_path):
    started = fifo(tmp_path)
    with LocalBackend(parallelism=1, log_dir=tmp_path / "logs") as backend:
        backend.submit(
            [
                JobSpec(name="blocker", command=["sh", "-c", f"echo go > {started}; sleep 300"]),
                JobSpec(name="queued", command=["sh", "-c", f"touch {tmp_path / 'ran'}"]),
            ]
        )
        read_fifo(started)
        backend.delete(["queued"])
        (result,) = backend.wait(["queued"])
        assert result.outcome is Outcome.CANCELLED
    assert not (tmp_path / "ran").exists()


def test_replace_kills_the_running_job_and_reports_only_the_new_one(backend, tmp_path):
    started = fifo(tmp_path)
    script = f"echo $$ > {started}; exec sleep 300"
    backend.submit([JobSpec(name="again", command=["sh", "-c", script])])
    old = psutil.Process(int(read_fifo(started)))
    backend.submit([JobSpec(name="again", command=["sh", "-c", "echo new"])], replace=True)
    assert [r.outcome for r in backend.wait(["again"])] == [Outcome.SUCCEEDED]
    assert backend.logs("again") == "new\n"
    assert not psutil.wait_procs([old], timeout=10)[1]


def test_wait_timeout_also_ends_queued_jobs(tmp_path):
    started, ran = fifo(tmp_path), tmp_path / "ran"
    with LocalBackend(parallelism=1, log_dir=tmp_path / "logs") as backend:
        backend.submit(
            [
                JobSpec(name="blocker", command=["sh", "-c", f"echo go > {started}; sleep 300"]),
                JobSpec(name="queued", command=["touch", str(ran)]),
            ]
        )
        read_fifo(started)
        results = {r.name: r.outcome for r in backend.wait(["blocker", "queued"], timeout=0.2)}
        assert backend.active_count() == 0
    assert results == {"blocker": Outcome.TIMEOUT, "queued": Outcome.TIMEOUT}
    assert not ran.exists()


def test_close_cancels_what_runs(tmp_path):
    started = fifo(tmp_path)
    backend = LocalBackend(parallelism=1, log_dir=tmp_path / "logs")
    script = f"echo $$ > {started}; exec sleep 300"
    backend.submit([JobSpec(name="running", command=["sh", "-c", script])])
    process = psutil.Process(int(read_fifo(started)))
    assert backend.active_count("run") == 1 and backend.active_count("other") == 0
    backend.close()
    assert [r.outcome for r in backend.wait(["running"])] == [Outcome.CANCELLED]
    assert not psutil.wait_procs([process], timeout=10)[1]
    with pytest.raises(RuntimeError):
        backend.submit([JobSpec(name="late", command=["true"])])


@pytest.mark.parametrize("cgroups", [pytest.param(True, marks=needs_cgroups), False])
def test_what_a_job_leaves_running_ends_with_it(tmp_path, cgroups):
    """Like a container: when the job's process ends, its background processes end too."""
    pid_file = tmp_path / "background"
    job = JobSpec(name="leaves", command=["sh", "-c", f"sleep 300 & echo $! > {pid_file}"])
    with LocalBackend(parallelism=1, log_dir=tmp_path / "logs", cgroups=cgroups) as backend:
        assert run_one(backend, job).outcome is Outcome.SUCCEEDED
        assert ended(int(pid_file.read_text()))


def test_a_job_that_cannot_start_fails(backend, tmp_path):
    job = JobSpec(name="nowhere", command=["true"], workdir=str(tmp_path / "missing"))
    result = run_one(backend, job)
    assert result.outcome is Outcome.FAILED and "could not start" in result.message


@needs_cgroups
def test_run_jobs_records_local_outcomes_in_the_ledger(backend, tmp_path):
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    planned = [
        Planned(
            f"{i}", JobSpec(name=f"idx-{i}", command=[PY, "-c", ALLOCATE_200MB], memory_bytes=m)
        )
        for i, m in [(1, 64 * MIB), (2, 512 * MIB)]
    ]
    run_jobs(backend, ledger, "run-1", "alloc", planned)
    latest = ledger.latest("run-1")
    assert latest["1"].outcome is Outcome.OOM and latest["1"].exit_code == 137
    assert latest["2"].outcome is Outcome.SUCCEEDED and latest["2"].peak_memory_bytes >= 200 * MIB
    ledger.close()


def test_killed_from_outside_is_lost(backend, tmp_path):
    started = fifo(tmp_path)
    backend.submit(
        [JobSpec(name="victim", command=["sh", "-c", f"echo $$ > {started}; exec sleep 300"])]
    )
    os.kill(int(read_fifo(started)), signal.SIGTERM)
    (result,) = backend.wait(["victim"])
    assert result.outcome is Outcome.LOST and result.exit_code == 128 + signal.SIGTERM


def test_unknown_name_is_lost(backend):
    (result,) = backend.wait(["nobody"])
    assert result.outcome is Outcome.LOST


def test_concurrent_submit_and_wait_from_threads(backend):
    outcomes: dict[str, Outcome] = {}

    def worker(prefix: str) -> None:
        jobs = [JobSpec(name=f"{prefix}-{i}", command=["true"]) for i in range(25)]
        backend.submit(jobs)
        for result in backend.wait([j.name for j in jobs]):
            outcomes[result.name] = result.outcome

    threads = [threading.Thread(target=worker, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 100 and set(outcomes.values()) == {Outcome.SUCCEEDED}


ORCHESTRATOR = """
import sys
from pathlib import Path
from sluice.backends.local import LocalBackend
from sluice.jobs import JobSpec

started, log_dir, script = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
backend = LocalBackend(parallelism=1, log_dir=log_dir)
backend.submit([JobSpec(name="orphan", command=["sh", "-c", script])])
list(backend.wait(["orphan"]))
"""


def start_orchestrator(tmp_path: Path, script: str, cgroups: str):
    """A child orchestrator running ``script`` as a job; returns it and the pids the job wrote."""
    started = fifo(tmp_path)
    orchestrator = subprocess.Popen(
        [PY, "-c", ORCHESTRATOR, str(started), str(tmp_path / "logs"), script],
        env={**os.environ, "SLUICE_LOCAL_CGROUPS": cgroups},
    )
    script_pids = [psutil.Process(int(pid)) for pid in read_fifo(started).split()]
    return orchestrator, script_pids


@pytest.mark.parametrize(
    ("cgroups", "grandchild"),
    [
        pytest.param("on", "setsid sleep 300", marks=needs_cgroups, id="cgroup"),
        ("off", "sleep 300"),
    ],
)
def test_orchestrator_sigkill_leaves_no_orphan(tmp_path, cgroups, grandchild):
    """The job and its own children die with the orchestrator (cgroup: even a new session)."""
    script = f'{grandchild} & echo "$$ $!" > {tmp_path / "signal"}; wait'
    orchestrator, processes = start_orchestrator(tmp_path, script, cgroups)
    orchestrator.kill()
    orchestrator.wait()
    gone, alive = psutil.wait_procs(processes, timeout=10)
    assert not alive


@needs_cgroups
def test_stale_cgroups_of_a_dead_orchestrator_are_swept(tmp_path):
    """Orchestrator and watchdog both gone: the next backend kills and removes the leftovers."""
    parent = CgroupParent.detect()
    script = f'setsid sleep 300 & echo "$!" > {tmp_path / "signal"}; wait'
    orchestrator, (survivor,) = start_orchestrator(tmp_path, script, "on")
    for process in [*psutil.Process(orchestrator.pid).children(), orchestrator]:
        process.kill()
    orchestrator.wait()
    assert list(parent.path.glob(f"sluice-{orchestrator.pid}-*"))
    assert survivor.is_running()
    LocalBackend(parallelism=1, log_dir=tmp_path / "logs").close()
    assert not list(parent.path.glob(f"sluice-{orchestrator.pid}-*"))
    assert not psutil.wait_procs([survivor], timeout=10)[1]


def test_rlimit_fallback_via_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SLUICE_LOCAL_CGROUPS", "off")
    with LocalBackend(parallelism=2, log_dir=tmp_path / "logs") as backend:
        assert backend.memory_limits == "rlimit"
        greedy = JobSpec(name="greedy", command=[PY, "-c", ALLOCATE_200MB], memory_bytes=64 * MIB)
        fits = JobSpec(name="fits", command=[PY, "-c", ALLOCATE_200MB], memory_bytes=1024 * MIB)
        three = JobSpec(name="three", command=["sh", "-c", "exit 3"], memory_bytes=64 * MIB)
        backend.submit([greedy, fits, three])
        results = {r.name: r for r in backend.wait(["greedy", "fits", "three"])}
    assert results["greedy"].outcome is Outcome.OOM
    assert "MemoryError" in (tmp_path / "logs" / "greedy.log").read_text()
    assert results["fits"].outcome is Outcome.SUCCEEDED
    assert results["fits"].peak_memory_bytes >= 200 * MIB
    assert results["three"].reason == "exit:3"


V1_CGROUP = "4:memory:/process_api/abc\n1:cpu:/\n0::/\n"
V2_CGROUP = "0::/user.slice/sluice.scope\n"
MOUNTINFO = (
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)
V2_MOUNTINFO = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def test_locate_prefers_the_v1_memory_controller_then_v2():
    assert locate(V1_CGROUP, MOUNTINFO) == (Path("/sys/fs/cgroup/memory/process_api/abc"), 1)
    assert locate(V2_CGROUP, V2_MOUNTINFO) == (Path("/sys/fs/cgroup/user.slice/sluice.scope"), 2)
    with pytest.raises(CgroupUnavailable):
        locate("1:cpu:/\n", MOUNTINFO)


def test_v2_counters_are_read_from_memory_events_and_peak(tmp_path):
    """The v2 files' formats (this machine has only v1 writable, so no live v2 cgroup here)."""
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
    (tmp_path / "memory.peak").write_text("67108864\n")
    group = MemoryCgroup(tmp_path, 2)
    assert group.oom_kills() == 1
    assert group.peak_bytes() == 64 * MIB


SUBMIT_AND_HANG = """
import sys
from pathlib import Path
from sluice.backends.local import LocalBackend
from sluice.jobs import JobSpec

log_dir, finished, running = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
backend = LocalBackend(parallelism=2, log_dir=log_dir)
backend.submit(
    [
        JobSpec(name="finished", command=["sh", "-c", finished]),
        JobSpec(name="running", command=["sh", "-c", running]),
    ]
)
sys.stdin.read()  # never records anything: whatever it learnt dies with it
"""


def test_a_job_finished_before_the_orchestrator_is_killed_is_adopted_not_rerun(tmp_path):
    """Its supervisor recorded the ending; a job still running then is killed and re-run."""
    finished_fifo, running_fifo = fifo(tmp_path, "finished"), fifo(tmp_path, "running")
    finished_runs, running_runs = tmp_path / "finished-runs", tmp_path / "running-runs"
    finished = f"echo run >> {finished_runs}; echo $$ > {finished_fifo}"
    running = (
        f"echo run >> {running_runs}; [ $(wc -l < {running_runs}) -ge 2 ] && exit 0; "
        f"echo $$ > {running_fifo}; exec sleep 300"
    )
    orchestrator = subprocess.Popen(
        [PY, "-c", SUBMIT_AND_HANG, str(tmp_path / "logs"), finished, running],
        stdin=subprocess.PIPE,
    )
    finished_pid, running_pid = int(read_fifo(finished_fifo)), int(read_fifo(running_fifo))
    assert ended(finished_pid)  # reaped by its supervisor, which records the ending first
    (supervisor,) = psutil.Process(orchestrator.pid).children()
    orchestrator.kill()
    orchestrator.wait()
    assert not psutil.wait_procs([supervisor], timeout=30)[1]
    assert ended(running_pid)

    with LocalBackend(parallelism=2, log_dir=tmp_path / "logs") as backend:
        backend.submit(
            [
                JobSpec(name="finished", command=["sh", "-c", finished]),
                JobSpec(name="running", command=["sh", "-c", running]),
            ]
        )
        results = {r.name: r for r in backend.wait(["finished", "running"])}
    assert results["finished"].outcome is Outcome.SUCCEEDED
    assert results["finished"].started_at <= results["finished"].finished_at
    assert results["running"].outcome is Outcome.SUCCEEDED
    assert finished_runs.read_text().count("run") == 1
    assert running_runs.read_text().count("run") == 2


def test_replace_and_delete_forget_a_recorded_ending(backend, tmp_path):
    runs = tmp_path / "runs"
    job = JobSpec(name="recorded", command=["sh", "-c", f"echo run >> {runs}"])
    run_one(backend, job)
    assert recorded_ending(str(backend.log_dir), "recorded")["outcome"] == "succeeded"
    assert run_one(backend, job).outcome is Outcome.SUCCEEDED  # adopted
    assert runs.read_text().count("run") == 1
    backend.submit([job], replace=True)
    list(backend.wait(["recorded"]))
    assert runs.read_text().count("run") == 2
    backend.delete(["recorded"])
    assert recorded_ending(str(backend.log_dir), "recorded") is None
    run_one(backend, job)
    assert runs.read_text().count("run") == 3


def test_started_at_is_the_process_start_not_the_submission(tmp_path):
    """A queued job's clock starts when its process does (GiB-hours are charged from it)."""
    gate = fifo(tmp_path, "gate")
    with LocalBackend(parallelism=1, log_dir=tmp_path / "logs") as backend:
        backend.submit(
            [
                JobSpec(name="first", command=["sh", "-c", f"read line < {gate}"]),
                JobSpec(name="second", command=["true"]),
            ]
        )
        submitted = datetime.now(UTC)
        with open(gate, "w") as opener:  # blocks until "first" runs and opens it
            opener.write("go\n")
        results = {r.name: r for r in backend.wait(["first", "second"])}
    first, second = results["first"], results["second"]
    assert submitted < first.finished_at
    assert first.finished_at <= second.started_at <= second.finished_at


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(VAR_A)", "A"),
        ("___$(VAR_B)___", "___B___"),
        ("$(VAR_A)-$(VAR_B)", "A-B"),
        ("$$(VAR_A)", "$(VAR_A)"),  # escaped
        ("$$$(VAR_A)", "$A"),
        ("$(UNKNOWN)", "$(UNKNOWN)"),  # unknown: as written
        ("$(VAR_A", "$(VAR_A"),  # unclosed
        ("$()", "$()"),
        ("$VAR_A", "$VAR_A"),  # shell syntax is not a reference
        ("${VAR_A}", "${VAR_A}"),
        ("echo $$ > /dev/null", "echo $ > /dev/null"),
        ("ends with $", "ends with $"),
        ("no refs", "no refs"),
    ],
)
def test_variable_references_expand_as_the_kubelet_does(text, expected):
    assert expand(text, {"VAR_A": "A", "VAR_B": "B"}) == expected


def test_env_values_see_only_the_entries_above_them():
    env = expand_env([("A", "a"), ("B", "$(A)-$(C)"), ("C", "c"), ("D", "$(C)$(B)")])
    assert env == {"A": "a", "B": "a-$(C)", "C": "c", "D": "ca-$(C)"}


CONTAINER = {
    "name": "work",
    "image": "python:3.11",
    "command": ["sh", "-c", 'printf "%s|" "$@"; pwd', "sh"],
    "args": ["$(GREETING)", "$$(GREETING)", "$(UNKNOWN)", "$(SECOND)", "$(", "a$b"],
    "env": [
        {"name": "GREETING", "value": "hello"},
        {"name": "SECOND", "value": "$(GREETING) world"},
    ],
}
EXPANDED = "hello|$(GREETING)|$(UNKNOWN)|hello world|$(|a$b|"


def test_a_sweep_job_runs_locally_as_its_pod_would(backend, tmp_path):
    """workingDir honoured, $(VAR) expanded in command, args and env, $$ escapes."""
    container = {**CONTAINER, "workingDir": str(tmp_path)}
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "t"},
        "spec": {"template": {"spec": {"containers": [container]}}},
    }
    (tmp_path / "job.yaml").write_text(json.dumps(manifest))  # JSON is YAML
    template = load_template_file(tmp_path / "job.yaml")  # as the sweep reads it
    sweep = SweepConfig(
        run="r",
        workload="w",
        template=template,
        namespace="ns",
        job_name_prefix="p",
        indexes=[0],
        chunks=[Chunk(number=0, indexes=[0], label=None)],
        schedule=None,
    )
    job = build_job(sweep, sweep.chunks[0], 0, None, "p-0")
    assert run_one(backend, job).outcome is Outcome.SUCCEEDED
    assert backend.logs("p-0") == f"{EXPANDED}{tmp_path}\n"
    missing = job.model_copy(update={"name": "p-1", "workdir": str(tmp_path / "missing")})
    result = run_one(backend, missing)
    assert result.outcome is Outcome.FAILED
    assert result.message == (
        f"could not start: [Errno 2] working directory {tmp_path / 'missing'}: "
        "No such file or directory"
    )


def test_the_kubernetes_double_runs_a_container_as_a_kubelet_would(tmp_path):
    double = start_double(work_dir=tmp_path / "double")
    try:
        batch = client.BatchV1Api(config.new_client_from_config(str(double.kubeconfig)))
        for name, workdir in [("fine", tmp_path), ("nowhere", tmp_path / "missing")]:
            container = {**CONTAINER, "workingDir": str(workdir)}
            pod = {"restartPolicy": "Never", "containers": [container]}
            manifest = {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": name},
                "spec": {"backoffLimit": 0, "template": {"spec": pod}},
            }
            batch.create_namespaced_job("biodiversity", manifest)
        double.wait_for(lambda: double.job("fine")["status"].get("succeeded"))
        (pod,) = double.pods_of("fine")
        core = client.CoreV1Api(config.new_client_from_config(str(double.kubeconfig)))
        log = core.read_namespaced_pod_log(pod["metadata"]["name"], "biodiversity")
        assert log == f"{EXPANDED}{tmp_path}\n"
        double.wait_for(lambda: double.job("nowhere")["status"].get("failed"))
        (pod,) = double.pods_of("nowhere")
        terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert terminated["reason"] == "StartError"
        assert f'chdir to cwd ("{tmp_path / "missing"}")' in terminated["message"]
    finally:
        double.close()


def test_backend_warnings_reach_the_flow_run_logs(prefect_api, tmp_path):
    """A warning of the backend (here: the RLIMIT_AS fallback) is in the flow run's logs."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.context import get_run_context
    from prefect.logging.handlers import APILogWorker

    from sluice import flows  # noqa: F401 - importing the flows routes Sluice's loggers

    @flow
    def with_fallback() -> str:
        with LocalBackend(parallelism=1, log_dir=tmp_path / "logs", cgroups=False) as backend:
            run_one(backend, JobSpec(name="quiet", command=["true"]))
        return str(get_run_context().flow_run.id)

    flow_run_id = with_fallback()
    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as prefect:
        logs = prefect.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        )
    warnings = [log for log in logs if "RLIMIT_AS" in log.message]
    assert len(warnings) == 1
    assert warnings[0].name == "sluice.backends.local" and warnings[0].level == logging.WARNING


def test_an_ending_is_recorded_in_a_status_file_where_the_log_takes_no_attribute(tmp_path):
    """No log to carry the attribute (as on a filesystem without user xattrs): a file."""
    ending = {"id": 1, "outcome": "oom", "exit_code": 137}
    record_ending(str(tmp_path), "lonely", ending)
    assert json.loads((tmp_path / "lonely.status").read_text()) == ending
    assert recorded_ending(str(tmp_path), "lonely") == ending
    forget_ending(str(tmp_path), "lonely")
    assert recorded_ending(str(tmp_path), "lonely") is None
    assert list(tmp_path.iterdir()) == []
