"""The worked examples in docs/watersheds.md and docs/chunkedgraph.md run as written, from
the repository root, and print what the docs show: no traceback, no warning, nothing else.

Each example is a command (``\\``-continued lines) followed by its output: ``# line`` in
docs/watersheds.md, ``$ command`` then plain lines in docs/chunkedgraph.md. A shown line
ending in ``...`` is a prefix; ``# (stderr) LINE; exit N`` is the last stderr line and the
exit code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SLUICE = Path(sys.executable).with_name("sluice")


@dataclass
class Example:
    command: str
    stdout: list[str] = field(default_factory=list)
    stderr: str | None = None
    exit_code: int = 0


def _blocks(doc: str) -> list[str]:
    return re.findall(r"```(?:sh|bash)?\n(.*?)```", (ROOT / "docs" / doc).read_text(), re.S)


def _examples(lines: list[str], prompt: str, shown: str) -> list[Example]:
    examples: list[Example] = []
    continued = False
    for line in lines:
        if continued:
            examples[-1].command += " " + line.strip().removesuffix("\\")
        elif line.startswith(prompt) and line.removeprefix(prompt).startswith("sluice "):
            examples.append(Example(line.removeprefix(prompt).split("  #")[0].rstrip("\\ ")))
        elif examples and line.startswith(shown):
            text = line.removeprefix(shown)
            if stderr := re.fullmatch(r"\(stderr\) (.*); exit (\d+)", text):
                examples[-1].stderr, examples[-1].exit_code = stderr[1], int(stderr[2])
            else:
                examples[-1].stdout.append(text)
        continued = line.rstrip().endswith("\\")
    return examples


WATERSHEDS = [
    e for block in _blocks("watersheds.md") for e in _examples(block.splitlines(), "", "# ")
]
CHUNKEDGRAPH = _examples(_blocks("chunkedgraph.md")[1].splitlines(), "$ ", "")


def _agrees(printed: list[str], shown: list[str]) -> bool:
    if len(printed) != len(shown):
        return False
    return all(
        p.startswith(s.removesuffix("...")) if s.endswith("...") else p == s
        for p, s in zip(printed, shown, strict=True)
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("doc", "examples"),
    [("watersheds.md", WATERSHEDS), ("chunkedgraph.md", CHUNKEDGRAPH)],
    ids=["watersheds", "chunkedgraph"],
)
def test_the_docs_examples_run_as_written(doc, examples, prefect_api, sluice_home):
    assert len(examples) >= 3, f"docs/{doc}: the examples were not found"
    env = {**os.environ, "PATH": f"{SLUICE.parent}:{os.environ['PATH']}"}
    for example in examples:
        done = subprocess.run(
            ["bash", "-c", example.command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        shown = f"docs/{doc}: {example.command}\nexit {done.returncode}\n{done.stdout}{done.stderr}"
        assert done.returncode == example.exit_code, shown
        if example.stdout:
            assert _agrees(done.stdout.splitlines(), example.stdout), shown
        stderr = [
            line
            for line in done.stderr.splitlines()
            if " | INFO " not in line and not line.startswith("Prefect API: ")
        ]
        assert not any(word in done.stderr for word in ("Traceback", "WARNING")), shown
        assert stderr == ([example.stderr] if example.stderr else []), shown
