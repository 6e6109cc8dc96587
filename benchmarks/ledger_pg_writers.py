"""8 sweeps writing one PostgreSQL ledger at once: lock errors, deadlocks, p99 write latency.

Each writer is its own process recording a no-op sweep of its own run as the executor
does (a lease on its run; per chunk, read the chunk's history and record its attempts,
then their endings a batch at a time). The anchor, measured in the same run against
the same server, is one writer alone. A private PostgreSQL cluster (Debian's binaries,
fsync on) is started and removed by the script.

    python benchmarks/ledger_pg_writers.py [--writers 8] [--count 5000] [--batch 8]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sluice.jobs import JobResult, Outcome  # noqa: E402
from sluice.ledger import PlannedAttempt, hold_run, open_ledger  # noqa: E402
from tests.core.test_ledger import private_postgres  # noqa: E402

T = TypeVar("T")

CHUNK = 400


def writer(url: str, run: str, count: int, batch: int) -> tuple[float, float, list[float], Counter]:
    """Record a no-op sweep of ``count`` indexes: when it started and ended (after the
    process and ledger were up), each write's seconds, and errors by kind."""
    latencies: list[float] = []
    errors: Counter = Counter()

    def timed(write: Callable[..., T], *args: object) -> T | None:
        start = time.perf_counter()
        try:
            return write(*args)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors[f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"] += 1
            return None
        finally:
            latencies.append(time.perf_counter() - start)

    ledger = open_ledger(url)
    began = time.time()
    try:
        with hold_run(ledger, run):
            for first in range(0, count, CHUNK):
                items = [str(i) for i in range(first, min(first + CHUNK, count))]
                ledger.attempts(run, items)
                planned = [PlannedAttempt(item=i, job_name=f"{run}-{i}", tier=0) for i in items]
                ids = timed(ledger.begin, run, "noop", planned) or []
                ended = [(i, JobResult(name="noop", outcome=Outcome.SUCCEEDED)) for i in ids]
                for at in range(0, len(ended), batch):
                    timed(ledger.finish_many, ended[at : at + batch])
    finally:
        ledger.close()
    return began, time.time(), latencies, errors


def measure(url: str, writers: int, count: int, batch: int) -> str:
    with multiprocessing.get_context("spawn").Pool(writers) as pool:
        runs = [(url, f"sweep/bench-{writers}-{w}", count, batch) for w in range(writers)]
        results = pool.starmap(writer, runs)
    seconds = max(r[1] for r in results) - min(r[0] for r in results)
    latencies = sorted(s for *_, lat, _ in results for s in lat)
    errors = sum((r[3] for r in results), Counter())
    p50, p99 = (latencies[int(q * (len(latencies) - 1))] * 1000 for q in (0.5, 0.99))
    return (
        f"{writers} writer(s): {writers * count / seconds:7.0f} endings/s, {len(latencies)} writes,"
        f" p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1] * 1000:.0f} ms,"
        f" errors {sum(errors.values())} {dict(errors) or ''}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--count", type=int, default=5000, help="indexes per writer")
    parser.add_argument("--batch", type=int, default=8, help="endings per finish_many")
    args = parser.parse_args()
    with private_postgres(fsync=True) as base:
        import psycopg

        with psycopg.connect(f"{base}/postgres", autocommit=True) as db:
            db.execute("CREATE DATABASE ledger")
        url = f"{base}/ledger"
        open_ledger(url).close()  # the schema, before the clocks start
        print("anchor:", measure(url, 1, args.count, args.batch))
        print("shared:", measure(url, args.writers, args.count, args.batch))


if __name__ == "__main__":
    main()
