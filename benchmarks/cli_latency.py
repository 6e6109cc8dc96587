"""CLI latency people feel: ``sluice --help`` and every ``sluice <cmd> --help`` against the
start of a bare Typer CLI, measured alongside in the same rounds (target: <= 3x).

    .venv/bin/python benchmarks/cli_latency.py [--rounds 5]

Each round runs the bare CLI, then every Sluice help, as fresh processes; the figures are
medians over the rounds, so load that comes and goes hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer.core
import typer.main

from sluice.cli import app

BARE = """
import typer

app = typer.Typer()


@app.command()
def hello(name: str = "world") -> None:
    print(name)


app()
"""
TARGET = 3.0


def _commands(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    if isinstance(command, typer.core.TyperGroup):
        for name, sub in command.commands.items():
            found.append((*path, name))
            found.extend(_commands(sub, (*path, name)))
    return found


def _seconds(argv: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sluice = str(Path(sys.executable).with_name("sluice"))
    helps = [(), *_commands(typer.main.get_command(app))]
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare.py"
        bare.write_text(BARE)
        times: dict[tuple[str, ...] | None, list[float]] = {None: []}
        for _ in range(args.rounds):
            times[None].append(_seconds([sys.executable, str(bare), "--help"]))
            for path in helps:
                times.setdefault(path, []).append(_seconds([sluice, *path, "--help"]))
    anchor = statistics.median(times[None])
    print(f"bare Typer CLI --help (anchor): {anchor * 1000:.0f} ms (median of {args.rounds})")
    worst = 0.0
    for path in helps:
        median = statistics.median(times[path])
        worst = max(worst, median / anchor)
        name = " ".join(("sluice", *path, "--help"))
        print(f"{name:<40} {median * 1000:6.0f} ms  {median / anchor:4.1f}x the anchor")
    verdict = "meets" if worst <= TARGET else "misses"
    print(f"worst: {worst:.1f}x the bare Typer CLI; {verdict} the {TARGET:.0f}x target")


if __name__ == "__main__":
    main()
