"""The ledger can be chosen by a saved LedgerSettings block (``block:NAME``)."""

from __future__ import annotations

import pytest
from sluice.blocks.ledger import LedgerSettings

from sluice.errors import SluiceInputError
from sluice.ledger import PlannedAttempt, open_ledger


def test_a_saved_block_selects_the_ledger(tmp_path, prefect_api):
    path = tmp_path / "from-block.db"
    LedgerSettings(url=f"sqlite:///{path}").save("test-ledger", overwrite=True)
    ledger = open_ledger("block:test-ledger")
    ledger.begin("r", "w", [PlannedAttempt(item="1", job_name="j-1")])
    assert list(ledger.latest("r")) == ["1"]
    assert path.exists()


def test_the_password_joins_the_url_only_when_opened():
    block = LedgerSettings(url="postgresql://sluice@db:5432/ledger", password="p@ss/word")
    assert "p@ss" not in repr(block) and "p@ss" not in block.url
    assert block.resolved_url() == "postgresql://sluice:p%40ss%2Fword@db:5432/ledger"


def test_a_missing_block_is_one_line(prefect_api):
    with pytest.raises(
        SluiceInputError, match="block: 'no-such-ledger': no such LedgerSettings block"
    ):
        open_ledger("block:no-such-ledger")
