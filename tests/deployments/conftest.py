"""Fixtures: Sluice's deployments registered on the session's local Prefect server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENTS = REPO / "deployments"
PREFECT = [sys.executable, "-m", "prefect"]
_UUID = re.compile(r"UUID: ([0-9a-f-]{36})")


def prefect(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> str:
    """Run the prefect CLI; its output (fails the test on a non-zero exit)."""
    done = subprocess.run(
        [*PREFECT, "--no-prompt", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def run_deployment(name: str, *params: str) -> str:
    """``prefect deployment run NAME --param ...``; the flow run id."""
    args = [a for p in params for a in ("--param", p)]
    output = prefect("deployment", "run", name, *args)
    return _UUID.search(output).group(1)


def work_one_round(env: dict[str, str]) -> str:
    """A process worker that takes what is due now, runs it to the end, and exits."""
    return prefect(
        "worker",
        "start",
        "--pool",
        "sluice-process",
        "--run-once",
        "--install-policy",
        "never",
        env=env,
    )


@pytest.fixture(scope="session")
def deployed(prefect_api: str) -> str:
    """Both work pools created and ``prefect deploy --all`` run from ``deployments/``."""
    prefect("work-pool", "create", "sluice-process", "--type", "process", "--overwrite")
    prefect("work-pool", "create", "sluice-kubernetes", "--type", "kubernetes", "--overwrite")
    return prefect("deploy", "--all", cwd=DEPLOYMENTS, env={"SLUICE_IMAGE": "sluice:test"})
