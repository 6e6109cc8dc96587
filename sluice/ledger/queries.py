"""Read-only questions about the ledger as a whole (``sluice runs``): one query per answer,
built with SQLAlchemy Core so they run alike on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa
from pydantic import BaseModel

from sluice.jobs import Outcome
from sluice.ledger.base import Holder, Ledger
from sluice.ledger.schema import attempts, leases
from sluice.ledger.store import SqlLedger, of_run

_c = attempts.c
RUNNING = "running"  # the outcome shown for an attempt that has not ended


class RunSummary(BaseModel):
    """One run: its items counted by their newest attempt's outcome, and when it ran."""

    run: str
    items: int
    attempts: int
    outcomes: dict[str, int]
    first_attempt: datetime
    last_attempt: datetime  # the newest start or end of any attempt
    holder: str | None = None  # ``host:pid`` holding the run's lease, if any


class Lease(BaseModel):
    """A run's lease row: who holds it and until when (it may have expired)."""

    holder: Holder
    acquired_at: datetime
    expires_at: datetime

    @property
    def live(self) -> bool:
        """Held by a process that still renews it (not expired, not gone from this host)."""
        return self.expires_at > datetime.now(UTC) and not self.holder.is_gone()


def run_summaries(ledger: Ledger, run: str | None = None) -> list[RunSummary]:
    """Every run (or just ``run``), ordered by name."""
    rows = _store(ledger)._rows
    where = [_c.run == run] if run is not None else []
    totals = (
        sa.select(
            _c.run,
            sa.func.count(sa.distinct(_c.item)),
            sa.func.count(),
            sa.func.min(_c.started_at),
            sa.func.max(_c.started_at),
            sa.func.max(_c.finished_at),
        )
        .where(*where)
        .group_by(_c.run)
        .order_by(_c.run)
    )
    newest = sa.select(sa.func.max(_c.id)).where(*where).group_by(_c.run, _c.item)
    by_outcome = (
        sa.select(_c.run, _c.outcome, sa.func.count())
        .where(_c.id.in_(newest))
        .group_by(_c.run, _c.outcome)
    )
    outcomes: dict[str, dict[str, int]] = {}
    for name, outcome, count in rows(by_outcome):
        outcomes.setdefault(name, {})[outcome or RUNNING] = count
    held = {name: lease.holder for name, lease in leases_of(ledger, run).items() if lease.live}
    return [
        RunSummary(
            run=name,
            items=items,
            attempts=count,
            outcomes=dict(sorted(outcomes.get(name, {}).items())),
            first_attempt=first,
            last_attempt=max(t for t in (started, finished) if t is not None),
            holder=str(held[name]) if name in held else None,
        )
        for name, items, count, first, started, finished in rows(totals)
    ]


def leases_of(ledger: Ledger, run: str | None = None) -> dict[str, Lease]:
    """The lease rows (of every run, or of ``run``): a lease may be stale (its holder gone)."""
    query = sa.select(leases)
    if run is not None:
        query = query.where(leases.c.run == run)
    return {
        row.run: Lease(
            holder=Holder.model_validate(row._mapping),
            acquired_at=row.acquired_at,
            expires_at=row.expires_at,
        )
        for row in _store(ledger)._rows(query)
    }


def _store(ledger: Ledger) -> SqlLedger:
    if not isinstance(ledger, SqlLedger):
        raise TypeError(f"ledger queries need a SQL ledger, not {type(ledger).__name__}")
    return ledger


def succeeded_count(ledger: Ledger, run: str, items: Iterable[str]) -> int:
    """How many of ``items`` have a newest attempt in ``run`` that succeeded (counted in
    the database, a bounded group of items per query)."""
    rows = _store(ledger)._rows
    total = 0
    for where in of_run(run, items):
        newest = sa.select(sa.func.max(_c.id)).where(*where).group_by(_c.item)
        query = sa.select(sa.func.count()).where(
            _c.id.in_(newest), _c.outcome == Outcome.SUCCEEDED.value
        )
        total += rows(query)[0][0]
    return total
