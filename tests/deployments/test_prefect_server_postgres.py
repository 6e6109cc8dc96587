"""The shared Prefect server on PostgreSQL: `sluice server start` with Prefect's own setting.

``PREFECT_SERVER_DATABASE_CONNECTION_URL=postgresql+asyncpg://...`` in the environment of
``sluice server start`` puts the server's state in PostgreSQL (docs/deployments.md); the
Helm values in infra/kubernetes/server-values.yaml do the same in a cluster.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.conftest import free_port
from tests.core.test_ledger import postgres_server  # noqa: F401  (the session fixture)

REPO = Path(__file__).resolve().parents[2]
FLOW = """
from prefect import flow

@flow(name="on-postgres")
def on_postgres() -> int:
    return 42

assert on_postgres() == 42
"""


def run(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.mark.slow
def test_sluice_server_start_keeps_prefects_state_in_postgresql(postgres_server, tmp_path):  # noqa: F811
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as db:
        db.execute("CREATE DATABASE prefect_server")
    database = postgres_server.replace("postgresql://", "postgresql+asyncpg://")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        "SLUICE_HOME": str(tmp_path / "home"),
        "SLUICE_SERVER_PORT": str(port),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"{database}/prefect_server",
    }
    sluice = [sys.executable, "-m", "sluice.cli"]
    try:
        assert f"127.0.0.1:{port}" in run([*sluice, "server", "start"], env)
        exports = run([*sluice, "server", "env"], env)  # the server's URL and auth profile
        client_env = {
            **env,
            **dict(
                shlex.split(line)[1].split("=", 1)
                for line in exports.splitlines()
                if line.startswith("export ")
            ),
        }
        run([sys.executable, "-c", FLOW], client_env)
    finally:
        subprocess.run([*sluice, "server", "stop"], env=env, timeout=120)

    with psycopg.connect(f"{postgres_server}/prefect_server") as db:
        (state,) = db.execute(
            "SELECT r.state_type FROM flow_run r JOIN flow f ON f.id = r.flow_id"
            " WHERE f.name = 'on-postgres'"
        ).fetchone()
    assert state == "COMPLETED"
    assert not list((tmp_path / "home").rglob("*.db"))  # no SQLite database was made


def test_helm_values_match_the_pools_and_namespace() -> None:
    infra = REPO / "infra" / "kubernetes"
    worker = yaml.safe_load((infra / "worker-values.yaml").read_text())["worker"]
    server = yaml.safe_load((infra / "server-values.yaml").read_text())
    deployments = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    pool = deployments["definitions"]["pools"]["kubernetes"]["name"]
    assert (worker["config"]["workPool"], worker["config"]["type"]) == (pool, "kubernetes")
    api = server["server"]["uiConfig"]["prefectUiApiUrl"]
    assert worker["selfHostedServerApiConfig"]["apiUrl"] == api
    assert server["postgresql"]["enabled"] is False and server["secret"]["create"] is False
    namespace = yaml.safe_load((infra / "kustomization.yaml").read_text())["namespace"]
    assert f"-n {namespace}" in (infra / "worker-values.yaml").read_text()
