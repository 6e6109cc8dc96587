"""What each index of a chunk does next, decided from the ledger alone.

Decided per index from its recorded attempts, so a Prefect retry, a re-run of
the same command and a re-run after the orchestrator was killed all take the
same path:

- succeeded since the baseline: done;
- running (no outcome: the orchestrator died): re-attach to the same job name,
  which every backend adopts instead of starting twice;
- ``oom`` at tier t: run at t+1, unless that passes ``max_tier`` (then it is a
  final failure);
- another failure in *this* flow run (a re-attached attempt finished here counts):
  final (the job's own backoff limit already retried it at the same size);
- another failure in an *earlier* flow run: retried at the same tier.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from sluice.jobs import Outcome
from sluice.ledger.base import Attempt


class Action(StrEnum):
    RUN = "run"
    ADOPT = "adopt"
    DONE = "done"


@dataclass(frozen=True)
class IndexPlan:
    index: int
    action: Action
    tier: int | None
    job_name: str
    last: Attempt | None = None


@dataclass(frozen=True)
class TierPolicy:
    """Where indexes start and how far they may climb; ``start`` None = no tiers."""

    start: int | None
    max_tier: int
    history: dict[str, int]

    def can_climb(self, tier: int | None) -> bool:
        """Whether an OOM at ``tier`` is retried one tier higher."""
        return self.start is not None and tier is not None and tier < self.max_tier

    def start_tier(self, index: int) -> int | None:
        if self.start is None:
            return None
        return self.history.get(str(index), self.start)


def job_name(prefix: str, index: int, previous_attempts: int) -> str:
    """``<prefix>-<index>`` first (the seed's name), ``<prefix>-<index>-a<n>`` after."""
    base = f"{prefix}-{index}"
    return base if previous_attempts == 0 else f"{base}-a{previous_attempts}"


def plan_index(
    index: int,
    attempts: list[Attempt],
    *,
    prefix: str,
    policy: TierPolicy,
    baseline_id: int,
    flow_start_id: int,
    continued: Collection[int] = (),
) -> IndexPlan:
    """The next step for one index given all its attempts in this run, oldest first.

    ``continued``: ids of earlier attempts this flow run re-attached and finished; they
    ended here, like the attempts after ``flow_start_id``.
    """
    fresh_name = job_name(prefix, index, len(attempts))
    relevant = [a for a in attempts if a.id > baseline_id]
    if not relevant:
        return IndexPlan(index, Action.RUN, policy.start_tier(index), fresh_name)
    last = relevant[-1]
    if last.running:
        return IndexPlan(index, Action.ADOPT, last.tier, last.job_name, last)
    if last.outcome is Outcome.SUCCEEDED:
        return IndexPlan(index, Action.DONE, last.tier, last.job_name, last)
    start = policy.start_tier(index)
    if last.outcome is Outcome.OOM:
        if not policy.can_climb(last.tier):
            return IndexPlan(index, Action.DONE, last.tier, last.job_name, last)
        assert last.tier is not None and start is not None  # it can climb: tiers are on
        return IndexPlan(index, Action.RUN, max(last.tier + 1, start), fresh_name, last)
    if last.id > flow_start_id or last.id in continued:
        return IndexPlan(index, Action.DONE, last.tier, last.job_name, last)
    tier = None if start is None or last.tier is None else max(last.tier, start)
    return IndexPlan(index, Action.RUN, tier, fresh_name, last)
