"""Being told when a scheduled run fails: the Prefect automation Sluice ships.

The definition is ``infra/prefect/failed-runs.yaml`` (package data): flow runs tagged
``sluice`` (every deployment in ``deployments/prefect.yaml``) that end Failed or Crashed
send one notification through a Prefect notification block the user has saved. Installing
again replaces the automation of the same name, so there is only ever one.
"""

from __future__ import annotations

from uuid import UUID

import yaml
from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.events.schemas.automations import AutomationCore

from sluice.errors import SluiceInputError
from sluice.resources import shipped
from sluice.server import load_block

DEFINITION = ("prefect", "failed-runs.yaml")


def failed_runs_automation(block_document_id: UUID) -> AutomationCore:
    """The shipped definition, sending through the block with this id."""
    data = yaml.safe_load(shipped("sluice.infra", *DEFINITION).read_text())
    for action in data["actions"]:
        action["block_document_id"] = str(block_document_id)
    return AutomationCore.model_validate(data)


def install(notify: str) -> tuple[AutomationCore, UUID, int]:
    """Create the automation for the notification block ``notify`` (``TYPE/NAME``), replacing
    any of the same name. Returns it, its id, and how many earlier copies were replaced."""
    block = load_block(Block, notify, "--notify")
    if not isinstance(block, NotificationBlock):
        raise SluiceInputError(f"--notify {notify!r}: a {type(block).__name__}, not a notifier")
    automation = failed_runs_automation(block._block_document_id)  # type: ignore[arg-type]
    with get_client(sync_client=True) as client:
        earlier = client.read_automations_by_name(automation.name)
        for old in earlier:
            client.delete_automation(old.id)
        return automation, client.create_automation(automation), len(earlier)
