"""Kill-and-resume stress for the local backend: does a finished job ever run twice?

Each repetition starts an orchestrator (``run_jobs`` over a SQLite ledger and a
``LocalBackend``, resuming as the sweep does: succeeded items are skipped, an
attempt the ledger still calls running is submitted again under its job name),
SIGKILLs it once a random number of jobs have run, then resumes it to the end.
Every job appends its name to one file as its last act, so a name written
twice is a finished job that ran twice (a job killed while running never
wrote its line).

    python benchmarks/local_kill_resume.py --repetitions 20 --jobs 300
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

RUN = "stress"


def orchestrate(home: Path, jobs: int, parallelism: int) -> None:
    """One orchestrator: run whatever the ledger says is not done yet."""
    from sluice.backends.local import LocalBackend
    from sluice.execute import Planned, run_jobs
    from sluice.jobs import JobResult, JobSpec, Outcome
    from sluice.ledger import open_ledger

    ledger = open_ledger(f"sqlite:///{home / 'ledger.db'}")
    latest = ledger.latest(RUN)
    stale, planned = [], []
    for index in range(jobs):
        attempt = latest.get(str(index))
        if attempt is not None and attempt.outcome is Outcome.SUCCEEDED:
            continue
        if attempt is not None and attempt.running:
            stale.append((attempt.id, JobResult(name=attempt.job_name, outcome=Outcome.LOST)))
        name = f"job-{index}"
        command = ["sh", "-c", f"echo {name} >> {home / 'runs'}"]
        planned.append(Planned(str(index), JobSpec(name=name, command=command)))
    ledger.finish_many(stale)
    with LocalBackend(parallelism=parallelism, log_dir=home / "logs") as backend:
        results = run_jobs(backend, ledger, RUN, "stress", planned)
    ledger.close()
    failed = [item for item, result in results.items() if result.outcome is not Outcome.SUCCEEDED]
    sys.exit(1 if failed else 0)


def lines(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []


def repetition(jobs: int, parallelism: int, rng: random.Random) -> tuple[int, int, int]:
    """One kill and one resume; (finished jobs run twice, runs before the kill, missing)."""
    with tempfile.TemporaryDirectory(prefix="sluice-kill-resume-") as directory:
        home = Path(directory)
        argv = [sys.executable, __file__, "--orchestrate", str(home), str(jobs), str(parallelism)]
        kill_after = rng.randrange(1, jobs - parallelism)
        orchestrator = subprocess.Popen(argv)
        while len(lines(home / "runs")) < kill_after and orchestrator.poll() is None:
            time.sleep(0.002)
        orchestrator.send_signal(signal.SIGKILL)
        orchestrator.wait()
        before = len(lines(home / "runs"))
        subprocess.run(argv, check=True)
        counts = Counter(lines(home / "runs"))
        twice = sum(1 for n in counts.values() if n > 1)
        missing = jobs - len(counts)
    return twice, before, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--orchestrate", nargs=3, metavar=("HOME", "JOBS", "PARALLELISM"))
    args = parser.parse_args()
    if args.orchestrate:
        home, jobs, parallelism = args.orchestrate
        return orchestrate(Path(home), int(jobs), int(parallelism))
    rng = random.Random(args.seed)
    total_twice = total_missing = 0
    for number in range(1, args.repetitions + 1):
        twice, before, missing = repetition(args.jobs, args.parallelism, rng)
        total_twice += twice
        total_missing += missing
        print(
            f"repetition {number}: killed after {before} of {args.jobs} jobs ran; "
            f"run twice: {twice}; never run: {missing}",
            flush=True,
        )
    print(f"repetitions: {args.repetitions}, jobs each: {args.jobs}")
    print(f"finished jobs run twice: {total_twice}")
    print(f"jobs never run: {total_missing}")


if __name__ == "__main__":
    main()
