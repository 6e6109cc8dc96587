"""Purge dispatched jobs, as the seed's ``purge_dispatch_jobs.py`` did.

Rules kept from the seed: only IDs containing ``dispatch-`` whose ID starts with one of
the pipeline/stage job names are purged (never the parameterized jobs themselves, never
anything else); ``DELETE /v1/job/<id>?purge=true``, in concurrent batches with a delay
between them; a 404 counts as done (someone else, or Nomad's GC, purged it first).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import nomad.api.exceptions as nomad_errors

from sluice.backends.nomad.client import NomadApi, error_text

SEED_PREFIXES = ("agreement_maker", "fim_mosaicker", "hand_inundator", "pipeline")


@dataclass
class PurgeReport:
    """What a purge did: purged IDs, IDs already gone (404), failures with their reason."""

    purged: list[str] = field(default_factory=list)
    already_gone: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


def purgeable(job_id: str, prefixes: Iterable[str]) -> bool:
    """The seed's rule: a dispatched child (``dispatch-`` in the ID) of one of ``prefixes``."""
    return "dispatch-" in job_id and any(job_id.startswith(p) for p in prefixes)


def purge_dispatched(
    api: NomadApi,
    prefixes: Iterable[str] = SEED_PREFIXES,
    *,
    job_ids: Iterable[str] | None = None,
    dry_run: bool = False,
    batch_size: int = 500,
    batch_delay: float = 0.05,
    on_job: Callable[[str, str], None] | None = None,
) -> PurgeReport:
    """Purge the dispatched jobs of ``prefixes``: all listed in Nomad, or only ``job_ids``.

    One jobs list (unless ``job_ids`` is given), then one DELETE per job, ``batch_size``
    at once with ``batch_delay`` seconds between batches (the seed's pacing). IDs outside
    the rules are never touched; with ``dry_run`` nothing is deleted and every job that
    would be is reported as purged. ``on_job(job_id, what)`` hears of each job.
    """
    prefixes = tuple(prefixes)
    report = PurgeReport()
    if job_ids is None:
        try:
            job_ids = [s["ID"] for s in api.call(api.client.jobs.get_jobs)]
        except nomad_errors.BaseNomadException as error:
            raise api.unavailable(error) from None
    targets = sorted(j for j in set(job_ids) if purgeable(j, prefixes))
    notify = on_job or (lambda job_id, what: None)
    if dry_run:
        for job_id in targets:
            notify(job_id, "would purge")
        report.purged.extend(targets)
        return report

    def purge(job_id: str) -> None:
        try:
            api.call(api.client.job.deregister_job, job_id, purge=True)
        except nomad_errors.URLNotFoundNomadException:
            report.already_gone.append(job_id)
            notify(job_id, "already gone")
        except nomad_errors.BaseNomadException as error:
            report.failed[job_id] = error_text(error)
            notify(job_id, f"failed: {error_text(error)}")
        else:
            report.purged.append(job_id)
            notify(job_id, "purged")

    # The seed's batches share one 10-connection pool; so do these.
    with ThreadPoolExecutor(max_workers=min(batch_size, 10)) as pool:
        for start in range(0, len(targets), batch_size):
            if start and batch_delay > 0:
                time.sleep(batch_delay)  # pacing between batches, as the seed does
            list(pool.map(purge, targets[start : start + batch_size]))
    for found in (report.purged, report.already_gone):
        found.sort()
    return report
