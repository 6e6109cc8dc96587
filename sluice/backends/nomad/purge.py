"""Purge dispatched jobs, as the seed's ``purge_dispatch_jobs.py`` did.

Rules kept from the seed: only IDs containing ``dispatch-`` whose ID starts with one of
the pipeline/stage job names are purged (never the parameterized jobs themselves, never
anything else); ``DELETE /v1/job/<id>?purge=true``; a 404 counts as done (someone else,
or Nomad's GC, purged it first).
"""

from __future__ import annotations

from collections.abc import Iterable
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
) -> PurgeReport:
    """Purge the dispatched jobs of ``prefixes``: all listed in Nomad, or only ``job_ids``.

    One jobs list (unless ``job_ids`` is given) and one DELETE per job; IDs outside
    the rules are never touched.
    """
    prefixes = tuple(prefixes)
    report = PurgeReport()
    if job_ids is None:
        job_ids = [s["ID"] for s in api.call(api.client.jobs.get_jobs)]
    for job_id in sorted(j for j in set(job_ids) if purgeable(j, prefixes)):
        try:
            api.call(api.client.job.deregister_job, job_id, purge=True)
        except nomad_errors.URLNotFoundNomadException:
            report.already_gone.append(job_id)
        except nomad_errors.BaseNomadException as error:
            report.failed[job_id] = error_text(error)
        else:
            report.purged.append(job_id)
    return report
