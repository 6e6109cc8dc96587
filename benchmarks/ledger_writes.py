"""Bytes the ledger writes for an 18,587-index no-op sweep: one commit per ending vs batches.

Drives the ledger directly, in the order a sweep does (per chunk: read the chunk's
history, record its attempts, record their endings), without running jobs. The
anchor, measured in the same run, is what the executor did before: one commit per
finished job. Bytes are those the process passed to write(2) (``wchar`` in
/proc/self/io, SQLite's WAL and checkpoints included).

    python benchmarks/ledger_writes.py [--count 18587] [--chunk-size 400] [--batch 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sluice.jobs import JobResult, Outcome  # noqa: E402
from sluice.ledger import PlannedAttempt, open_ledger  # noqa: E402


def written_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")


def sweep(url: str, count: int, chunk_size: int, batch: int) -> tuple[int, float]:
    """Bytes written and seconds taken to record a no-op sweep, ``batch`` endings a commit."""
    before, start = written_bytes(), time.perf_counter()
    ledger = open_ledger(url)
    try:
        for first in range(0, count, chunk_size):
            items = [str(i) for i in range(first, min(first + chunk_size, count))]
            ledger.attempts("bench", items)
            planned = [PlannedAttempt(item=i, job_name=f"noop-{i}", tier=0) for i in items]
            ids = ledger.begin("bench", "noop", planned)
            ended = [(i, JobResult(name=f"noop-{i}", outcome=Outcome.SUCCEEDED)) for i in ids]
            for at in range(0, len(ended), batch):
                ledger.finish_many(ended[at : at + batch])
    finally:
        ledger.close()
    return written_bytes() - before, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=18587)
    parser.add_argument("--chunk-size", type=int, default=400)
    parser.add_argument(
        "--batch", type=int, default=8, help="endings per commit (the executor's batches)"
    )
    parser.add_argument("--url", help="a ledger URL (default: a fresh SQLite file per pass)")
    args = parser.parse_args()
    for label, batch in (
        ("one commit per ending (before)", 1),
        (f"{args.batch} a commit", args.batch),
    ):
        work = Path(tempfile.mkdtemp(prefix="sluice-ledger-bench-"))
        url = args.url or f"sqlite:///{work / 'ledger.db'}"
        written, seconds = sweep(url, args.count, args.chunk_size, batch)
        size = sum(p.stat().st_size for p in work.glob("ledger.db*"))
        print(
            f"{label:32} {written / 2**20:8.1f} MiB written  {seconds:6.1f} s"
            f"  ({written / args.count / 1024:.1f} KiB per index; files {size / 2**20:.1f} MiB)"
        )


if __name__ == "__main__":
    main()
