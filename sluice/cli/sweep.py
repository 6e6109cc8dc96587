"""`sluice sweep`: the tiered index sweep with the seed's flags (a thin front over the flow)."""

from __future__ import annotations

import inspect
import sys
from typing import Annotated

import typer

from sluice.backends.factory import BackendKind, KubernetesMode
from sluice.cli.common import fail_on_input_errors, preflight, with_blocks
from sluice.errors import SluiceInputError
from sluice.quantity import shown
from sluice.sweep.chunks import DEFAULT_LABEL_TEMPLATE
from sluice.sweep.config import DryRun


def _tier(value: str | None) -> int | str | None:
    if value is None or value == "auto":
        return value
    if not value.isdigit() or len(value) > 3:
        raise SluiceInputError(f"--tier {shown(value)}: expected a tier number (0-32) or 'auto'")
    return int(value)


def _indexes(given: list[str] | None, extra: list[str]) -> list[int] | None:
    """`--indexes 0 1 2` as the seed writes it (click takes one value per option)."""
    values = [*(given or []), *extra]
    if extra and not given:
        raise SluiceInputError(f"unexpected arguments: {' '.join(extra)}")
    numbers = [v for text in values for v in text.replace(",", " ").split()]
    if bad := [v for v in numbers if not v.lstrip("-").isdigit() or len(v) > 13]:
        raise SluiceInputError(f"--indexes: {shown(bad[0], 30)} is not an index")
    return [int(v) for v in numbers] or None


def sweep(
    ctx: typer.Context,
    template_path: Annotated[str, typer.Option(help="Job template YAML.")] = "wetlands/job.yaml",
    source_job: Annotated[str | None, typer.Option(help="Clone a live Job instead.")] = None,
    namespace: Annotated[str, typer.Option()] = "biodiversity",
    start: Annotated[int, typer.Option(help="First index of the range.")] = 0,
    count: Annotated[int, typer.Option(help="Indexes in the range.")] = 18587,
    indexes: Annotated[list[str] | None, typer.Option(help="Explicit indexes: 0 1 2.")] = None,
    index_file: Annotated[str | None, typer.Option(help="Newline-delimited indexes.")] = None,
    limit: Annotated[int | None, typer.Option(help="Cap on indexes run.")] = None,
    job_name_prefix: Annotated[str, typer.Option()] = "wetlands-index",
    batch_label: Annotated[str | None, typer.Option(help="Constant wetlands/batch.")] = None,
    batch_label_template: Annotated[str, typer.Option()] = DEFAULT_LABEL_TEMPLATE,
    chunk_size: Annotated[int | None, typer.Option(help="Indexes per chunk; 0: none.")] = None,
    wait_for_batch: Annotated[bool, typer.Option(help="Finish a chunk first.")] = False,
    wait_timeout: Annotated[str, typer.Option(help="Chunk wait bound (2h).")] = "2h",
    tier: Annotated[
        str | None,
        typer.Option(help="Start tier, or 'auto'. Unset: no OOM escalation (said at start)."),
    ] = None,
    schedule_start_gi: Annotated[float, typer.Option(help="Tier 0 GiB.")] = 10.0,
    schedule_factor: Annotated[float, typer.Option(help="Growth per tier.")] = 2.0,
    max_tier: Annotated[int, typer.Option(help="Highest tier on OOM.")] = 4,
    memory: Annotated[str | None, typer.Option(help="Fixed memory (no tiers).")] = None,
    cpu: Annotated[str | None, typer.Option(help="CPU request = limit.")] = None,
    backoff_limit: Annotated[int, typer.Option(help="Same-size retries.")] = 0,
    ttl: Annotated[int, typer.Option(help="ttlSecondsAfterFinished; -1 omits.")] = 3600,
    dry_run: Annotated[
        DryRun, typer.Option(help="none, server or print (the Jobs --mode would create).")
    ] = DryRun.NONE,
    replace: Annotated[bool, typer.Option(help="Re-run succeeded indexes.")] = False,
    quiet: Annotated[bool, typer.Option(help="No per-job lines.")] = False,
    backend: Annotated[BackendKind, typer.Option(help="Where jobs run.")] = BackendKind.LOCAL,
    mode: Annotated[
        KubernetesMode, typer.Option(help="per-index Jobs or one Indexed Job per chunk/tier.")
    ] = KubernetesMode.PER_INDEX,
    kubernetes_credentials: Annotated[
        str | None, typer.Option(help="KubernetesCredentials block name.")
    ] = None,
    parallelism: Annotated[int | None, typer.Option(help="Jobs at once.")] = None,
    report_dir: Annotated[str, typer.Option(help="Report files.")] = "reports/sweep",
) -> None:
    """Run every selected index as its own job, climbing RAM tiers on OOM.

    Escalation needs --tier (a number or auto): without it every job keeps the
    template's memory (or --memory) and an OOM is final; a line at start says so.
    """
    parameters = {name: value for name, value in locals().items() if name != "ctx"}
    parameters.update(
        template_path=None if source_job else template_path,
        indexes=_indexes(indexes, ctx.args),
        tier=_tier(tier),
    )
    from sluice.names import DIRECTORY
    from sluice.sweep.config import NOTHING_TO_DO, check_dry_run, escalation_note, resolve_config

    DIRECTORY.check(report_dir, "--report-dir")
    check_dry_run(dry_run, backend)
    accepted = inspect.signature(resolve_config).parameters
    config, start_tier, _ = resolve_config(**{k: v for k, v in parameters.items() if k in accepted})
    if not config.indexes:
        print(NOTHING_TO_DO)
        return
    if dry_run is DryRun.PRINT:
        from sluice.sweep.dry_run import print_manifests

        if note := escalation_note(config, start_tier):
            print(note, file=sys.stderr)
        print_manifests(config, start_tier, mode)
        return
    if kubernetes_credentials is not None:  # the flow takes the block itself
        from prefect_kubernetes.credentials import KubernetesCredentials

        parameters = with_blocks(
            parameters,
            kubernetes_credentials=(KubernetesCredentials, "--kubernetes-credentials"),
        )
    if backend is not BackendKind.LOCAL:
        preflight(
            backend,
            namespace=namespace,
            kubernetes_credentials=parameters["kubernetes_credentials"],
        )
    from sluice.ledger import refuse_if_running
    from sluice.server import ensure_api

    refuse_if_running(config.run)  # a second run of a running sweep: one line, nothing started
    ensure_api()
    from sluice.flows.sweep import tiered_index_sweep

    tiered_index_sweep(**parameters)


def register(app: typer.Typer) -> None:
    """Add `sluice sweep` to the app."""
    app.command(
        "sweep",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
    )(fail_on_input_errors(sweep))
