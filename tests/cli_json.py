"""The keys docs/cli.md documents for each command's ``--json`` output."""

from __future__ import annotations

import re
from pathlib import Path

CLI_DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def documented(command: str) -> set[str]:
    """Keys in the first column of the table under ``## `sluice COMMAND [ARG] --json```: ``run``,
    and ``rows[].item`` for the keys of a list's objects."""
    text = CLI_DOC.read_text()
    header = re.search(rf"^## `sluice {re.escape(command)}( [A-Z]+)* --json`$", text, re.M)
    assert header, f"docs/cli.md has no section for `sluice {command} --json`"
    start = header.start()
    end = text.find("\n## ", start + 1)
    keys: set[str] = set()
    for line in text[start : end if end >= 0 else None].splitlines():
        if line.startswith("| `"):
            keys.update(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return keys


def printed(document: dict, *lists: str) -> set[str]:
    """The keys of ``document``, and ``name[].key`` for the objects of the lists named."""
    keys = set(document)
    for name in lists:
        keys |= {f"{name}[].{key}" for row in document[name] for key in row}
    return keys
