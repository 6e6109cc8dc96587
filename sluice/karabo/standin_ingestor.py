"""A STAND-IN for the SKA SRCNet data ingestor, for the embedded default and tests.

It is not the real ingestor (whose source is not public) and uploads nothing
to Rucio. It only reproduces the behaviour Sluice verifies against: it watches
the staging area for ``<file>.meta`` files; a product whose ``.meta`` is valid
(JSON with namespace, name matching the file, positive lifetime) is moved with
its ``.meta`` to the processed area; an invalid ``.meta`` or one without its
product goes, with whatever exists of the pair, to the failed area. The
product is always moved before its ``.meta``.

    python -m sluice.karabo.standin_ingestor --staging S --processed P --failed F

It prints ``ready`` once it watches, one line per product it handles, and
stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

from sluice.karabo.areas import Area, open_area
from sluice.karabo.meta import META_SUFFIX, problem

log = logging.getLogger(__name__)


def handle(rel_meta: str, staging: Area, processed: Area, failed: Area) -> tuple[str, str | None]:
    """Ingest one ``.meta`` and its product; returns (product rel, failure reason or None)."""
    rel = rel_meta[: -len(META_SUFFIX)]
    reason = problem(staging.read(rel_meta), rel.rsplit("/", 1)[-1])
    if reason is None and not staging.has(rel):
        reason = "product missing"
    target = processed if reason is None else failed
    if staging.has(rel):
        staging.move(rel, target)
    staging.move(rel_meta, target)
    return rel, reason


def sweep(staging: Area, processed: Area, failed: Area) -> int:
    """Handle every ``.meta`` in staging once; how many were handled."""
    metas = staging.list_meta()
    for rel_meta in metas:
        rel, reason = handle(rel_meta, staging, processed, failed)
        print(f"{'failed' if reason else 'processed'} {rel}" + (f": {reason}" if reason else ""))
    sys.stdout.flush()
    return len(metas)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staging", required=True)
    parser.add_argument("--processed", required=True)
    parser.add_argument("--failed", required=True)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between scans")
    args = parser.parse_args(argv)
    staging, processed, failed = (open_area(u) for u in (args.staging, args.processed, args.failed))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print("ready", flush=True)
    while not stop.is_set():
        sweep(staging, processed, failed)
        stop.wait(args.interval)


def _relay(stream: IO[str]) -> None:
    for line in stream:
        log.info("stand-in ingestor: %s", line.rstrip())


@contextlib.contextmanager
def running(staging: str, processed: str, failed: str, *, interval: float = 0.2) -> Iterator[None]:
    """Run the stand-in ingestor as a separate process for the duration of the block."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sluice.karabo.standin_ingestor",
            "--staging",
            staging,
            "--processed",
            processed,
            "--failed",
            failed,
            "--interval",
            str(interval),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = process.stdout.readline() if process.stdout else ""
        if first.strip() != "ready":
            raise RuntimeError(f"the stand-in ingestor did not start (exit {process.poll()})")
        threading.Thread(target=_relay, args=(process.stdout,), daemon=True).start()
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # stuck mid-scan: do not leave it running
            process.kill()
            process.wait()


if __name__ == "__main__":
    main()
