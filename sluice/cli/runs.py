"""`sluice runs`, `runs show`, `runs forget`: the ledger as a tool (every run, every attempt)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sluice.cli.common import fail_on_input_errors
from sluice.errors import SluiceInputError

if TYPE_CHECKING:
    from sluice.ledger import Attempt, Ledger

LedgerUrl = Annotated[
    str | None,
    typer.Option(
        "--ledger-url",
        help="sqlite:///PATH or postgresql://... (default: $SLUICE_LEDGER_URL, "
        "else the ledger in $SLUICE_HOME).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON (keys in docs/cli.md).")]

app = typer.Typer(
    invoke_without_command=True,
    help="Runs recorded in the ledger: list them, show their attempts, forget one.",
)


@contextmanager
def reading(url: str | None) -> Iterator[Ledger | None]:
    """The ledger at ``url`` (checked as ``--ledger-url``), or None when its SQLite file
    does not exist yet: looking never creates a ledger."""
    from sluice.ledger import check_ledger_url, open_ledger

    checked = check_ledger_url(url, name="--ledger-url")
    if checked.startswith("sqlite:///") and not Path(checked.removeprefix("sqlite:///")).exists():
        yield None
        return
    ledger = open_ledger(checked)
    try:
        yield ledger
    finally:
        ledger.close()


def attempts_of(ledger: Ledger | None, run: str, item: str | None = None) -> list[Attempt]:
    """The run's attempts (or one item's), oldest first; unknown run or item: one line."""
    found = ledger.attempts(run, None if item is None else [item]) if ledger else []
    if not found:
        if item is None or not (ledger and ledger.last_id(run)):
            raise SluiceInputError(f"run {run!r}: not in the ledger (see `sluice runs`)")
        raise SluiceInputError(f"--item {item!r}: run {run!r} has no such item")
    return found


def local_log(run: str, job_name: str) -> Path | None:
    """The local backend's log file of ``job_name`` in ``run``, if it ran on this machine.

    Each flow gives its local jobs a log directory: a sweep ``$SLUICE_HOME/logs/<run>``,
    a STAC batch its home's ``jobs/``, a watershed batch its ``logs/`` (under the default
    root), and the rest the backend's default ``$SLUICE_HOME/logs/local``.
    """
    from sluice.settings import sluice_home

    kind, _, rest = run.partition("/")
    logs = sluice_home() / "logs"
    places = [logs / run.replace("/", "-"), logs / "local"]
    if kind == "stac":
        from sluice.stac.batch import home_dir

        places.insert(0, home_dir(rest.partition("/")[0]) / "jobs")
    elif kind == "watersheds":
        from sluice.watersheds.batch import default_root

        places.insert(0, default_root() / rest / "logs")
    for place in places:
        path = place / f"{job_name}.log"
        if "/" not in job_name and path.is_file():
            return path
    return None


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "-"


def _outcomes(counts: dict[str, int]) -> str:
    return " ".join(f"{outcome} {count}" for outcome, count in counts.items())


@app.callback()
@fail_on_input_errors
def runs(ctx: typer.Context, ledger_url: LedgerUrl = None, json_output: Json = False) -> None:
    """List the runs in the ledger: items by outcome, attempts, first and last attempt (UTC)."""
    if ctx.invoked_subcommand is not None:
        return
    from sluice.ledger.queries import run_summaries

    with reading(ledger_url) as ledger:
        found = run_summaries(ledger) if ledger else []
    if json_output:
        typer.echo(json.dumps([s.model_dump(mode="json") for s in found], indent=2))
        return
    if not found:
        typer.echo("no runs recorded")
        return
    rows = [
        (
            s.run,
            str(s.items),
            str(s.attempts),
            _outcomes(s.outcomes),
            _when(s.first_attempt),
            _when(s.last_attempt),
            s.holder or "-",
        )
        for s in found
    ]
    header = ("RUN", "ITEMS", "ATTEMPTS", "OUTCOMES", "FIRST", "LAST", "RUNNING IN")
    _table([header, *rows])


def _table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _attempt_row(attempt: Attempt, number: int, log: Path | None) -> dict[str, Any]:
    """One attempt as ``runs show --json`` prints it (keys in docs/cli.md)."""
    return {
        "item": attempt.item,
        "attempt": number,
        "job_name": attempt.job_name,
        "tier": attempt.tier,
        "memory_bytes": attempt.memory_bytes,
        "outcome": attempt.outcome.value if attempt.outcome else None,
        "reason": attempt.reason,
        "exit_code": attempt.exit_code,
        "peak_memory_bytes": attempt.peak_memory_bytes,
        "started_at": attempt.started_at.isoformat(),
        "finished_at": attempt.finished_at.isoformat() if attempt.finished_at else None,
        "log_path": str(log) if log else None,
    }


@app.command()
@fail_on_input_errors
def show(
    run: Annotated[str, typer.Argument(help="Run name, as `sluice runs` lists it.")],
    item: Annotated[str | None, typer.Option(help="Only this item's attempts.")] = None,
    ledger_url: LedgerUrl = None,
    json_output: Json = False,
) -> None:
    """Every attempt of a run (or of one item): tier, memory, outcome, peak memory, job, log."""
    from sluice.ledger.queries import run_summaries
    from sluice.quantity import format_memory

    with reading(ledger_url) as ledger:
        found = attempts_of(ledger, run, item)
        assert ledger is not None  # attempts_of refused a run no ledger holds
        (summary,) = run_summaries(ledger, run)
    numbers: dict[str, int] = {}
    rows = []
    for attempt in found:
        numbers[attempt.item] = numbers.get(attempt.item, 0) + 1
        rows.append(_attempt_row(attempt, numbers[attempt.item], local_log(run, attempt.job_name)))
    if json_output:
        typer.echo(json.dumps({**summary.model_dump(mode="json"), "rows": rows}, indent=2))
        return
    typer.echo(
        f"{run}: {summary.items} items ({_outcomes(summary.outcomes)}), {summary.attempts} "
        f"attempts, {_when(summary.first_attempt)} to {_when(summary.last_attempt)} UTC"
        + (f", running in {summary.holder}" if summary.holder else "")
    )

    def memory(value: int | None) -> str:
        return format_memory(value) if value is not None else "-"

    table = [("ITEM", "#", "TIER", "MEMORY", "PEAK", "OUTCOME", "STARTED", "JOB", "LOG")]
    for row in rows:
        ended = row["outcome"] or "running"
        if row["reason"] and row["reason"] != ended:
            ended += f" ({row['reason']})"
        table.append(
            (
                row["item"],
                str(row["attempt"]),
                "-" if row["tier"] is None else str(row["tier"]),
                memory(row["memory_bytes"]),
                memory(row["peak_memory_bytes"]),
                ended,
                row["started_at"][:19].replace("T", " "),
                row["job_name"],
                row["log_path"] or "-",
            )
        )
    _table(table)


@app.command()
@fail_on_input_errors
def forget(
    run: Annotated[str, typer.Argument(help="Run name, as `sluice runs` lists it.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    ledger_url: LedgerUrl = None,
) -> None:
    """Delete a run's attempts from the ledger (its next run starts afresh); a run that is
    running is refused. Job logs and report files are left where they are."""
    from sluice.ledger import hold_run

    with reading(ledger_url) as ledger:
        count = len({a.item for a in attempts_of(ledger, run)})
        assert ledger is not None  # attempts_of refused an empty ledger
        with hold_run(ledger, run):  # refused (one line, exit 2) while a live process holds it
            if not yes:
                typer.confirm(f"forget run {run!r} ({count} items)?", abort=True)
            removed = ledger.forget(run)
    typer.echo(f"forgot run {run!r}: {removed} attempts of {count} items")


def register(root: typer.Typer) -> None:
    """Add `sluice runs` to the app."""
    root.add_typer(app, name="runs")
