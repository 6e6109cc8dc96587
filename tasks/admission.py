"""A pace shared by every flow that uses the same name: a Prefect rate limit.

A global concurrency limit with slot decay, taken with
``prefect.concurrency.sync.rate_limit``: one slot per submission, one slot
decaying every ``wait_seconds``. Each submission costs a Prefect API call (tens of
milliseconds), so a batch paces itself with ``sluice.stac.admission.Pacer`` unless a
shared limit is asked for.
"""

from __future__ import annotations

from collections.abc import Callable

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import rate_limit

from sluice.errors import SluiceInputError


def pacer(limit_name: str | None) -> Callable[[], None] | None:
    """One ``rate_limit`` slot per submission, or no pacing."""
    if limit_name is None:
        return None
    return lambda: rate_limit(limit_name, occupy=1, strict=True)


@task(cache_policy=NO_CACHE)
def ensure_rate_limit(name: str, wait_seconds: float) -> str | None:
    """Create or update the pacing limit: 1 slot decaying every ``wait_seconds``.

    Returns its name, or None when ``wait_seconds`` is 0 (no pacing).
    """
    if wait_seconds < 0:
        raise SluiceInputError(f"--wait_seconds {wait_seconds}: must not be negative")
    if wait_seconds == 0:
        return None
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(
            name, limit=1, slot_decay_per_second=1.0 / wait_seconds
        )
    return name
