"""Fixtures: Sluice's deployments registered on the session's local Prefect server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from tests.deployments.docker_double import DockerDouble

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


def kubernetes_worker(kubeconfig: Path, queue: str) -> str:
    """One poll of the ``sluice-kubernetes`` pool's ``queue`` by a real prefect-kubernetes
    worker: the due runs' flow-run Jobs are created (its kopf observer off: see
    test_flow_pod_on_double.py)."""
    return prefect(
        "worker",
        "start",
        "--pool",
        "sluice-kubernetes",
        "--work-queue",
        queue,
        "--run-once",
        "--install-policy",
        "never",
        env={
            "KUBECONFIG": str(kubeconfig),
            "PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_ENABLED": "false",
        },
    )


@pytest.fixture
def kubernetes_queue(deployed: str) -> str:
    """A work queue of ``sluice-kubernetes`` for one test, so its worker takes the test's
    runs only, not the hourly Karabo run when one is due."""
    name = f"test-{uuid4().hex[:8]}"
    prefect("work-queue", "create", name, "--pool", "sluice-kubernetes")
    return name


IMAGE_NAME = "registry.example/sluice"
IMAGE_TAG = "test"


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerDouble]:
    """The Docker Engine API double the cluster deployments' build and push steps talk to."""
    double = DockerDouble()
    server = double.serve()
    double.host = f"tcp://127.0.0.1:{server.server_address[1]}"
    yield double
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def deployed(prefect_api: str, docker_engine: DockerDouble) -> str:
    """Both work pools created and ``prefect deploy --all`` run from ``deployments/``."""
    prefect("work-pool", "create", "sluice-process", "--type", "process", "--overwrite")
    template = REPO / "infra" / "kubernetes" / "base-job-template.json"
    prefect(
        "work-pool",
        "create",
        "sluice-kubernetes",
        "--type",
        "kubernetes",
        "--base-job-template",
        str(template),
        "--overwrite",
    )
    env = {
        "DOCKER_HOST": docker_engine.host,
        "SLUICE_IMAGE_NAME": IMAGE_NAME,
        "SLUICE_IMAGE_TAG": IMAGE_TAG,
    }
    return prefect("deploy", "--all", cwd=DEPLOYMENTS, env=env)
