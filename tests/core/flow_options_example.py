"""A small flow with one parameter of each kind, for the option builder's tests."""

from __future__ import annotations

from typing import Annotated, Literal

from prefect import flow
from prefect_kubernetes.credentials import KubernetesCredentials
from pydantic import Field
from sluice.blocks.ledger import LedgerSettings

from sluice.names import BatchName
from sluice.sweep.config import DryRun


@flow(name="flow-options-example")
def example(
    name: BatchName,
    count: Annotated[int, Field(ge=1, le=10)] = 2,
    colour: DryRun = DryRun.NONE,
    loud: bool = False,
    sizes: list[int] | None = None,
    pick: int | Literal["auto"] | None = None,
    credentials: KubernetesCredentials | None = None,
    ledger: LedgerSettings | None = None,
) -> None:
    """Nothing: the tests call the command, never this flow.

    Args:
        name: A batch name.
        count: How many, 1 to 10.
        colour: An enum (the types a signature names come from the domain, not the flow).
        loud: Say it loudly.
        sizes: Sizes, repeated or comma-separated.
        pick: A number, or `auto`.
        credentials: A KubernetesCredentials block.
        ledger: A block of Sluice's own (sluice.blocks), deferred as Prefect's are.
    """
