"""The shared check of the bad-input suite: a refused input is one line, exit 2, nothing done.

Every area keeps its cases as a table (``tests/<area>/test_bad_input*.py``) and checks each
with :func:`assert_refused`. A case runs the real CLI in-process (Typer's runner) with a
private ``SLUICE_HOME`` and no ``PREFECT_API_URL``, so "nothing started" is visible on disk:
no server, no ledger, no log, no report may appear under the home or the case's directory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner


@dataclass(frozen=True)
class BadInput:
    """One hostile or careless input: the argv after ``sluice`` and what the line must name."""

    argv: Sequence[str]
    names: str
    id: str = ""

    def param(self):
        return pytest.param(self, id=self.id or " ".join(self.argv)[:60])


def _tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


def assert_refused(
    case: BadInput,
    home: Path,
    *,
    watched: Sequence[Path] = (),
    env: dict[str, str] | None = None,
) -> str:
    """Run ``sluice <argv>``; assert exit 2, one ``error:`` line naming ``case.names``, no
    traceback, and no file created under ``home`` or any ``watched`` directory. Returns the line."""
    from sluice.cli import app

    before = {root: _tree(root) for root in watched}
    saved = {k: os.environ.get(k) for k in ("SLUICE_HOME", "PREFECT_API_URL", *(env or {}))}
    os.environ["SLUICE_HOME"] = str(home)
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.update(env or {})
    try:
        result = CliRunner().invoke(app, list(case.argv))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    shown = f"argv={list(case.argv)}\nexit={result.exit_code}\n{result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"raised {result.exception!r}\n{shown}"
    )
    assert result.exit_code == 2, shown
    assert "Traceback" not in result.output, shown
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, shown
    line = lines[0]
    assert case.names in line, f"the line does not name {case.names!r}\n{shown}"
    assert len(line) < 1000, f"an error line of {len(line)} characters\n{shown}"
    assert not _tree(home), f"written under SLUICE_HOME: {sorted(_tree(home))}\n{shown}"
    for root in watched:
        assert _tree(root) == before[root], f"written under {root}\n{shown}"
    return line
