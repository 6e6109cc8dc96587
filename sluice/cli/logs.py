"""`sluice logs RUN ITEM`: print what one attempt's job printed, wherever it ran."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated

import typer

from sluice.cli.common import fail_on_input_errors
from sluice.cli.runs import LedgerUrl, attempts_of, local_log, reading
from sluice.errors import SluiceInputError


class Where(StrEnum):
    """Where to read a job's log."""

    AUTO = "auto"
    LOCAL = "local"
    KUBERNETES = "kubernetes"
    NOMAD = "nomad"


def logs(
    run: Annotated[str, typer.Argument(help="Run name, as `sluice runs` lists it.")],
    item: Annotated[str, typer.Argument(help="Item (index, AOI, runid/stage...).")],
    attempt: Annotated[
        int | None, typer.Option(help="Attempt number (1 = first; default: the newest).")
    ] = None,
    backend: Annotated[
        Where,
        typer.Option(
            help="Where the job ran: auto reads this machine's log file, else needs "
            "kubernetes or nomad named."
        ),
    ] = Where.AUTO,
    namespace: Annotated[
        str | None,
        typer.Option(help="Kubernetes namespace (default: a sweep's own, else the kubeconfig's)."),
    ] = None,
    kubernetes_credentials: Annotated[
        str | None, typer.Option(help="KubernetesCredentials block name.")
    ] = None,
    nomad_block: Annotated[
        str | None, typer.Option(help="NomadCluster block (default: the NOMAD_* environment).")
    ] = None,
    ledger_url: LedgerUrl = None,
) -> None:
    """Print a job's log: the local log file, the Kubernetes pod's log or the Nomad
    allocation's stdout and stderr; once those are gone, the tail of a failed job's log
    that the ledger kept (Kubernetes)."""
    with reading(ledger_url) as ledger:
        found = attempts_of(ledger, run, item)
        if attempt is not None and not 1 <= attempt <= len(found):
            raise SluiceInputError(
                f"--attempt {attempt}: item {item!r} has attempts 1-{len(found)}"
            )
        chosen = found[(attempt or len(found)) - 1]
        kept = ledger.kept_log(chosen.id) if ledger else None
    job = chosen.job_name
    if backend in (Where.AUTO, Where.LOCAL):
        path = local_log(run, job)
        if path is None and kept and backend is Where.AUTO:
            return _print_kept(job, kept)
        if path is None:
            hint = "" if backend is Where.LOCAL else "; if it ran on a cluster, give --backend"
            raise SluiceInputError(f"job {job!r}: no log file on this machine{hint}")
        with path.open("rb") as log:
            while chunk := log.read(1 << 20):
                sys.stdout.buffer.write(chunk)
            empty = log.tell() == 0
        sys.stdout.flush()
        if empty:  # e.g. a job killed before it printed: say so rather than print nothing
            print(f"job {job!r}: its log {path} is empty", file=sys.stderr)
        return
    from sluice.backends.factory import create_backend

    kind, _, rest = run.partition("/")
    if namespace is None and kind == "sweep":
        namespace = rest.partition("/")[0]
    from sluice.server import load_block

    credentials, nomad = None, None
    if kubernetes_credentials:
        from prefect_kubernetes.credentials import KubernetesCredentials

        credentials = load_block(
            KubernetesCredentials, kubernetes_credentials, "--kubernetes-credentials"
        )
    if nomad_block:
        from sluice.blocks.nomad import NomadCluster

        nomad = load_block(NomadCluster, nomad_block, "--nomad-block").settings()
    cluster = create_backend(
        backend.value, namespace=namespace, kubernetes_credentials=credentials, nomad=nomad
    )
    try:
        text = cluster.logs(job)
    finally:
        cluster.close()
    if not text and kept:
        return _print_kept(job, kept)
    if not text:
        raise SluiceInputError(f"job {job!r}: {backend.value} has no log of it (gone or pruned)")
    typer.echo(text, nl=not text.endswith("\n"))


def _print_kept(job: str, kept: str) -> None:
    """Print the tail of a failed job's log that the ledger kept, saying so."""
    print(f"job {job!r}: its runtime's log is gone; the tail kept in the ledger:", file=sys.stderr)
    typer.echo(kept, nl=not kept.endswith("\n"))


def register(app: typer.Typer) -> None:
    """Add `sluice logs` to the app."""
    app.command("logs")(fail_on_input_errors(logs))
