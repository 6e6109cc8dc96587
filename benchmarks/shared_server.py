"""Many runs, one shared server: 8 no-op sweeps and a 1M-chunk ChunkedGraph ingest at once.

A private PostgreSQL cluster (Debian's binaries, fsync on) holds both the Prefect server's
state (``sluice server start``'s server with ``PREFECT_SERVER_DATABASE_CONNECTION_URL``)
and the Sluice ledger. Each run is its own ``sluice`` command in its own process, as
users start them (``sluice sweep --backend local``, ``sluice chunkedgraph ingest
--noop``), every sweep with its own ``SLUICE_HOME`` and ledger run; the ledger's writes
are timed inside each run (``benchmarks/ledger_probe.py``). The anchor, measured first in
the same run against the same servers, is one sweep alone.

Total parallelism is bounded: each sweep runs ``--parallelism`` (default 1) jobs at once
and the ingest ``--workers`` (default 1) processes, so at most sweeps x parallelism +
workers job processes run beside the orchestrators (9 by default, on this 2-core box).

Prints: per-run wall time, exit code and peak RSS; every item recorded exactly once
(ledger rows per run: one succeeded attempt per index) and every chunk done (tracker);
deadlocks (``pg_stat_database``) and lock errors (the PostgreSQL log, the runs' stderr
and the probes); throughput and p50/p99 ledger write latency, shared vs alone.

    python benchmarks/shared_server.py [--sweeps 8] [--count 100000] [--chunks 1000000]
        [--parallelism 1] [--workers 1] [--chunk-size 400]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import ledger_probe  # noqa: E402
from benchmarks.chunkedgraph_1m import write_dataset  # noqa: E402
from benchmarks.common import free_port  # noqa: E402
from benchmarks.sweep_scale import NOOP_JOB  # noqa: E402
from tests.core.test_ledger import private_postgres  # noqa: E402

#: What counts as a lock error in the PostgreSQL log or a run's stderr.
LOCK_ERRORS = re.compile(
    r"deadlock detected|could not obtain lock|lock timeout|canceling statement due to"
    r"|could not serialize|QueuePool limit|too many clients|database is locked",
    re.IGNORECASE,
)


@dataclass
class Run:
    """One ``sluice`` command started as its own process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    probe: Path
    process: subprocess.Popen | None = None
    began: float = 0.0
    ended: float = 0.0
    code: int | None = None
    rss_mib: float = 0.0
    stderr: str = ""
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)

    def start(self, log_dir: Path) -> None:
        self.log = log_dir / f"{self.name.replace('/', '_')}.log"
        self.began = time.monotonic()
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.ledger_probe", str(self.probe), *self.argv],
                env=self.env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def reaped(self, status: int, usage: resource.struct_rusage) -> None:
        """The process ended: its exit code, its own resource usage (peak RSS of the run's
        processes), its output and its ledger writes."""
        assert self.process is not None
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self.ended = time.monotonic()
        self.code = self.process.returncode
        self.rss_mib = usage.ru_maxrss / 1024
        self.stderr = self.log.read_text(errors="replace")
        seconds, self.errors = ledger_probe.read(self.probe)
        self.latencies = list(seconds)

    @property
    def wall(self) -> float:
        return self.ended - self.began


def run_all(runs: list[Run], log_dir: Path) -> None:
    """Start every run at once, then reap each as it ends."""
    for run in runs:
        run.start(log_dir)
    running = {run.process.pid: run for run in runs if run.process is not None}
    try:
        while running:
            pid, status, usage = os.wait4(-1, 0)
            if pid in running:
                running.pop(pid).reaped(status, usage)
    finally:  # interrupted: stop the runs still going (each stops its own jobs)
        for run in running.values():
            assert run.process is not None
            run.process.terminate()
            run.process.wait()


def percentiles(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    if not ordered:
        return "no writes"
    p50, p99 = (ordered[int(q * (len(ordered) - 1))] * 1000 for q in (0.5, 0.99))
    most = ordered[-1] * 1000
    return f"{len(ordered)} writes, p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {most:.0f} ms"


def ledger_spans(url: str, runs: list[str]) -> dict[str, tuple[datetime, datetime]]:
    """Per run, its first attempt's start and its last ending, as the ledger recorded them
    (the runs' own work, without each process's start)."""
    import psycopg

    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT run, min(started_at), max(finished_at) FROM attempts"
            " WHERE run = ANY(%s) GROUP BY run",
            (runs,),
        ).fetchall()
    return {run: (first, last) for run, first, last in rows}


def ledger_check(url: str, runs: dict[str, int]) -> list[str]:
    """Per sweep run: rows, distinct items, succeeded; a line saying whether each is exact."""
    import psycopg

    lines = []
    with psycopg.connect(url) as db:
        for run, count in runs.items():
            rows, items, succeeded, dup = db.execute(  # type: ignore[misc]
                "SELECT count(*), count(DISTINCT item), count(*) FILTER"
                " (WHERE outcome = 'succeeded'),"
                " (SELECT count(*) FROM (SELECT item FROM attempts WHERE run = %(r)s"
                "  GROUP BY item HAVING count(*) > 1) d)"
                " FROM attempts WHERE run = %(r)s",
                {"r": run},
            ).fetchone()
            exact = rows == items == succeeded == count and dup == 0
            lines.append(
                f"  {run}: {rows} attempts, {items} items, {succeeded} succeeded, "
                f"{dup} items twice -> {'exactly once' if exact else 'NOT EXACT'}"
            )
    return lines


def postgres_counts(base: str) -> tuple[dict[str, tuple[int, int]], Path]:
    """Deadlocks and rolled-back transactions per database, and the server's log file."""
    import psycopg

    with psycopg.connect(f"{base}/postgres") as db:
        rows = db.execute(
            "SELECT datname, deadlocks, xact_rollback FROM pg_stat_database"
            " WHERE datname IN ('prefect', 'ledger')"
        ).fetchall()
        (data_dir,) = db.execute("SHOW data_directory").fetchone()  # type: ignore[misc]
    return {name: (dead, rollback) for name, dead, rollback in rows}, Path(data_dir).parent / "log"


def sweep_run(
    name: str, work: Path, env: dict[str, str], ledger: str, args: argparse.Namespace
) -> Run:
    home = work / name
    argv = ["sweep", "--backend", "local", "--template-path", str(work / "noop.yaml")]
    argv += ["--namespace", name, "--job-name-prefix", "noop", "--count", str(args.count)]
    argv += ["--chunk-size", str(args.chunk_size), "--parallelism", str(args.parallelism)]
    argv += ["--tier", "0", "--schedule-start-gi", "0.0625", "--max-tier", "2"]
    argv += ["--report-dir", str(home / "reports"), "--ledger-url", ledger, "--quiet"]
    return Run(name, argv, {**env, "SLUICE_HOME": str(home)}, work / "probes" / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=8)
    parser.add_argument("--count", type=int, default=100_000, help="indexes per sweep")
    parser.add_argument("--chunks", type=int, default=1_000_000, help="layer-2 chunks (a cube)")
    parser.add_argument("--parallelism", type=int, default=1, help="jobs at once per sweep")
    parser.add_argument("--workers", type=int, default=1, help="ingest worker processes")
    parser.add_argument("--chunk-size", type=int, default=400)
    parser.add_argument("--keep", action="store_true", help="keep the runs' logs and homes")
    args = parser.parse_args()
    axis = round(args.chunks ** (1 / 3))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the runs and servers too

    work = Path(tempfile.mkdtemp(prefix="sluice-shared-bench-"))
    (work / "probes").mkdir()
    (work / "logs").mkdir()
    (work / "noop.yaml").write_text(yaml.safe_dump(NOOP_JOB))
    dataset = write_dataset(work / "dataset", (axis,) * 3)
    print(f"load average at start: {os.getloadavg()}")
    try:
        with private_postgres(fsync=True) as base:
            measure(args, axis, work, dataset, base)
    finally:
        if args.keep:
            print(f"runs' logs and homes kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()}")


def measure(args: argparse.Namespace, axis: int, work: Path, dataset: Path, base: str) -> None:
    import psycopg

    from sluice import server
    from sluice.ledger import open_ledger

    with psycopg.connect(f"{base}/postgres", autocommit=True) as db:
        db.execute("CREATE DATABASE prefect")
        db.execute("CREATE DATABASE ledger")
    ledger = f"{base}/ledger"
    open_ledger(ledger).close()  # the schema, before any clock starts
    prefect_db = base.replace("postgresql://", "postgresql+asyncpg://") + "/prefect"

    home = work / "server"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SLUICE_"))}
    os.environ.clear()
    os.environ.update({**clean, "PREFECT_SERVER_DATABASE_CONNECTION_URL": prefect_db})
    began = time.monotonic()
    started = server.start(home, free_port(), timeout=900)
    up = time.monotonic() - began
    print(f"Prefect server on PostgreSQL: {started.api_url}, up in {up:.0f} s")
    env = {
        **clean,
        **server.server_environment(home),
        "PREFECT_API_URL": started.api_url,
        "SLUICE_LEDGER_URL": ledger,  # the ingest's table lease
        "PYTHONPATH": str(REPO),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # users' runs import from cached bytecode
    try:
        alone = sweep_run("alone", work, env, ledger, args)
        run_all([alone], work / "logs")
        sweeps = [sweep_run(f"shared-{i}", work, env, ledger, args) for i in range(args.sweeps)]
        ingest_home = work / "ingest"
        ingest = Run(
            "ingest",
            ["chunkedgraph", "ingest", f"bench-{axis}", str(dataset), "--noop"]
            + ["--workers", str(args.workers)],
            {**env, "SLUICE_HOME": str(ingest_home)},
            work / "probes" / "ingest",
        )
        shared_began = time.monotonic()
        run_all([*sweeps, ingest], work / "logs")
        shared_wall = max(r.ended for r in [*sweeps, ingest]) - shared_began
        deadlocks, pg_log = postgres_counts(base)
        ingest_status = subprocess.run(
            [sys.executable, "-m", "sluice.cli", "chunkedgraph", "status", f"bench-{axis}"],
            env=ingest.env,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        server.stop(home)

    print(f"\nanchor, one sweep alone ({args.count:,} indexes, parallelism {args.parallelism}):")
    report([alone])
    print(f"  throughput {args.count / alone.wall:.0f} indexes/s")
    print(f"  ledger writes: {percentiles(alone.latencies)}")
    print(
        f"\nshared: {args.sweeps} sweeps x {args.count:,} indexes + a {axis**3:,}-chunk ingest "
        f"at once (at most {args.sweeps * args.parallelism + args.workers} job processes):"
    )
    report([*sweeps, ingest])
    total = args.sweeps * args.count
    rate = total / shared_wall
    print(f"  all done in {shared_wall:.1f} s; sweeps: {rate:.0f} indexes/s together")
    print(
        f"  per sweep: {args.count / max(r.wall for r in sweeps):.0f}-"
        f"{args.count / min(r.wall for r in sweeps):.0f} indexes/s"
        f" (alone: {args.count / alone.wall:.0f})"
    )
    spans = ledger_spans(ledger, [f"sweep/{r.name}/noop" for r in [alone, *sweeps]])
    if len(spans) == len(sweeps) + 1:
        first, last = spans.pop("sweep/alone/noop")
        alone_rate = args.count / (last - first).total_seconds()
        earliest = min(first for first, _ in spans.values())
        latest = max(last for _, last in spans.values())
        rates = sorted(args.count / (b - a).total_seconds() for a, b in spans.values())
        together = total / (latest - earliest).total_seconds()
        print(
            f"  ledger spans (first attempt's start to last ending, process starts excluded):"
            f" alone {alone_rate:.0f} indexes/s; shared {together:.0f}"
            f" indexes/s together, {rates[0]:.0f}-{rates[-1]:.0f} per sweep"
        )
    shared_latencies = [s for r in sweeps for s in r.latencies]
    print(f"  sweeps' ledger writes: {percentiles(shared_latencies)}")
    print(f"  ingest's ledger writes (its table lease): {percentiles(ingest.latencies)}")

    print("\nevery item once (ledger):")
    counts = {f"sweep/{r.name}/noop": args.count for r in [alone, *sweeps]}
    for line in ledger_check(ledger, counts):
        print(line)
    print("ingest tracker (`sluice chunkedgraph status`):")
    print("".join(f"  {line}\n" for line in ingest_status.splitlines()), end="")

    log_text = pg_log.read_text(errors="replace") if pg_log.exists() else ""
    log_errors = Counter(m.group(0).lower() for m in LOCK_ERRORS.finditer(log_text))
    run_errors = Counter(
        m.group(0).lower() for r in [alone, *sweeps, ingest] for m in LOCK_ERRORS.finditer(r.stderr)
    )
    probe_errors = sum((r.errors for r in [alone, *sweeps, ingest]), Counter())
    print("\nlocks:")
    for name, (dead, rollback) in sorted(deadlocks.items()):
        print(
            f"  pg_stat_database {name}: {dead} deadlocks, {rollback} rolled-back transactions"
            " (pool resets included)"
        )
    print(f"  PostgreSQL log: {sum(log_errors.values())} lock errors {dict(log_errors) or ''}")
    errors = [line for line in log_text.splitlines() if "ERROR:" in line]
    print(f"  PostgreSQL log ERROR lines: {len(errors)}")
    for line in errors[:5]:
        print(f"    {line[:300]}")
    print(f"  runs' output: {sum(run_errors.values())} lock errors {dict(run_errors) or ''}")
    print(f"  ledger writes that raised: {sum(probe_errors.values())} {dict(probe_errors) or ''}")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this driver's own peak RSS: {own:.0f} MiB)")


def report(runs: list[Run]) -> None:
    for run in runs:
        tail = "" if run.code == 0 else f"\n{run.stderr[-2000:]}"
        print(
            f"  {run.name}: exit {run.code}, {run.wall:.1f} s, peak RSS {run.rss_mib:.0f} MiB{tail}"
        )


if __name__ == "__main__":
    main()
