"""A flow's ledger can be a saved LedgerSettings block, given as a block parameter."""

from __future__ import annotations

import pytest
from sluice.blocks.ledger import LedgerSettings, open_flow_ledger
from sluice.flows.sweep import tiered_index_sweep

from sluice.errors import SluiceInputError
from sluice.ledger import PlannedAttempt, open_ledger


def test_a_block_parameter_selects_the_ledger(tmp_path, prefect_api):
    path = tmp_path / "from-block.db"
    LedgerSettings(url=f"sqlite:///{path}").save("test-ledger", overwrite=True)
    # what a deployment passes for a block parameter: a reference Prefect resolves
    reference = {"$ref": {"block_document_slug": "sluice-ledger/test-ledger"}}
    block = tiered_index_sweep.validate_parameters({"ledger_block": reference})["ledger_block"]
    ledger = open_flow_ledger(None, block)
    ledger.begin("r", "w", [PlannedAttempt(item="1", job_name="j-1")])
    assert list(ledger.latest("r")) == ["1"]
    assert path.exists()


def test_the_password_joins_the_url_only_when_opened():
    block = LedgerSettings(url="postgresql://sluice@db:5432/ledger", password="p@ss/word")
    assert "p@ss" not in repr(block) and "p@ss" not in block.url
    assert block.resolved_url() == "postgresql://sluice:p%40ss%2Fword@db:5432/ledger"


def test_a_bad_block_url_is_one_line_without_the_password():
    block = LedgerSettings(url="mysql://sluice@db/ledger", password="p@ss/word")
    with pytest.raises(SluiceInputError, match="mysql://sluice@db/ledger'") as refused:
        open_flow_ledger(None, block)
    assert "p@ss" not in str(refused.value) and "p%40ss" not in str(refused.value)


def test_a_url_and_a_block_is_one_line(tmp_path):
    with pytest.raises(SluiceInputError, match="ledger_url and ledger_block: give one"):
        open_flow_ledger(f"sqlite:///{tmp_path}/a.db", LedgerSettings(url="sqlite:///b.db"))
    assert list(tmp_path.iterdir()) == []


def test_a_block_name_in_a_ledger_url_is_refused():
    with pytest.raises(SluiceInputError, match="expected sqlite:///PATH or postgresql://"):
        open_ledger("block:test-ledger")
