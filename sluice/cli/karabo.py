"""`sluice karabo estimate|run`: the Karabo SKA-MID AA* simulation and ingest."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.common import fail_on_input_errors
from sluice.errors import SluiceInputError

Opt = typer.Option


def estimate(
    start_freq_hz: Annotated[float, Opt(help="START_FREQ_HZ")] = 1.304e9,
    end_freq_hz: Annotated[float, Opt(help="END_FREQ_HZ")] = 1.375e9,
    freq_inc_hz: Annotated[float, Opt(help="FREQ_INC_HZ")] = 17750000.0,
    num_time_stamps: Annotated[int, Opt(help="NUM_TIME_STAMPS")] = 24,
    imaging_npixel: Annotated[int, Opt(help="IMAGING_NPIXEL")] = 2024,
    product: Annotated[list[str], Opt(help="dirty|cleaned|visibility (repeat)")] = [  # noqa: B006
        "dirty",
        "cleaned",
    ],
    scratch_volume: Annotated[str | None, Opt(help="refuse if the estimate exceeds this")] = None,
    min_memory: Annotated[str, Opt(help="smallest memory request")] = "256Mi",
) -> None:
    """Print the minimum product sizes, temporary volume and memory of a simulation."""
    from sluice.karabo.estimate import estimate as compute
    from sluice.karabo.estimate import refuse_if_too_big
    from sluice.karabo.settings import KaraboSettings
    from sluice.quantity import parse_memory

    settings = KaraboSettings.parse(
        start_freq_hz=start_freq_hz,
        end_freq_hz=end_freq_hz,
        freq_inc_hz=freq_inc_hz,
        num_time_stamps=num_time_stamps,
        imaging_npixel=imaging_npixel,
        products=tuple(_products(product)),
        obs_id="estimate",
    )
    found = compute(settings, min_memory_bytes=parse_memory(min_memory, what="min_memory"))
    for row in found.rows():
        typer.echo(f"{row['quantity']:<26} {row['value']}")
    if scratch_volume:
        refuse_if_too_big(found, parse_memory(scratch_volume, what="scratch_volume"))


def _products(names: list[str]) -> list[str]:
    from sluice.karabo.settings import Product

    allowed = {p.value for p in Product}
    for name in names:
        if name not in allowed:
            raise SluiceInputError(
                f"product: unknown product {name!r} (allowed: {sorted(allowed)})"
            )
    return names


def run(
    sky_model: Annotated[str, Opt(help="SKY_MODEL")] = "MIGHTEE_L1",
    phase_center_ra_deg: Annotated[float, Opt(help="PHASE_CENTER_RA_DEG")] = 150.12,
    phase_center_dec_deg: Annotated[float, Opt(help="PHASE_CENTER_DEC_DEG")] = 2.21,
    start_freq_hz: Annotated[float, Opt(help="START_FREQ_HZ")] = 1.304e9,
    end_freq_hz: Annotated[float, Opt(help="END_FREQ_HZ")] = 1.375e9,
    freq_inc_hz: Annotated[float, Opt(help="FREQ_INC_HZ")] = 17750000.0,
    obs_length_hours: Annotated[float, Opt(help="OBS_LENGTH_HOURS")] = 4.0,
    num_time_stamps: Annotated[int, Opt(help="NUM_TIME_STAMPS")] = 24,
    imaging_npixel: Annotated[int, Opt(help="IMAGING_NPIXEL")] = 2024,
    rucio_namespace: Annotated[str, Opt(help="RUCIO_NAMESPACE")] = "testing",
    rucio_lifetime: Annotated[int, Opt(help="RUCIO_LIFETIME (s)")] = 31536000,
    obs_id: Annotated[str | None, Opt(help="OBS_ID (default: from the start time)")] = None,
    file_prefix: Annotated[str | None, Opt(help="FILE_PREFIX (default: like OBS_ID)")] = None,
    product: Annotated[list[str], Opt(help="dirty|cleaned|visibility (repeat)")] = [  # noqa: B006
        "dirty",
        "cleaned",
    ],
    staging: Annotated[str | None, Opt(help="ingestor staging area (path or s3://)")] = None,
    processed: Annotated[str | None, Opt(help="ingestor processed area")] = None,
    failed: Annotated[str | None, Opt(help="ingestor failed-processing area")] = None,
    ingestor: Annotated[str, Opt(help="standin|external")] = "standin",
    verify_timeout_seconds: Annotated[float, Opt(help="wait this long for the ingestor")] = 600.0,
    scratch_dir: Annotated[str | None, Opt(help="temporary data directory")] = None,
    scratch_volume: Annotated[str | None, Opt(help="temporary volume size (e.g. 2Ti)")] = None,
    aws_credentials_block: Annotated[
        str | None, Opt(help="prefect-aws AwsCredentials block for s3:// areas")
    ] = None,
    backend: Annotated[str, Opt(help="local|kubernetes")] = "local",
    namespace: Annotated[str | None, Opt(help="Kubernetes namespace")] = None,
    image: Annotated[str | None, Opt(help="Karabo image (kubernetes)")] = None,
    min_memory: Annotated[str, Opt(help="smallest memory request")] = "256Mi",
    cpu: Annotated[float | None, Opt(help="CPU cores, request = limit")] = None,
    report_dir: Annotated[str, Opt(help="report directory")] = "reports/karabo",
) -> None:
    """Simulate, stage the products with their .meta, and verify the ingestor handled them."""
    from sluice.karabo.settings import KaraboSettings
    from sluice.names import DIRECTORY
    from sluice.server import ensure_api

    settings = {
        "sky_model": sky_model,
        "phase_center_ra_deg": phase_center_ra_deg,
        "phase_center_dec_deg": phase_center_dec_deg,
        "start_freq_hz": start_freq_hz,
        "end_freq_hz": end_freq_hz,
        "freq_inc_hz": freq_inc_hz,
        "obs_length_hours": obs_length_hours,
        "num_time_stamps": num_time_stamps,
        "imaging_npixel": imaging_npixel,
        "rucio_namespace": rucio_namespace,
        "rucio_lifetime": rucio_lifetime,
    }
    products = _products(product)
    for flag, directory in (("--scratch-dir", scratch_dir), ("--report-dir", report_dir)):
        if directory is not None:
            DIRECTORY.check(directory, flag)
    check_id = obs_id if obs_id is not None else "check"
    KaraboSettings.parse(  # bad input fails here, before a server or a job is started
        **settings,
        obs_id=check_id,
        file_prefix=file_prefix if file_prefix is not None else f"{check_id}_",
        products=tuple(products),
    )
    ensure_api()
    from flows.karabo import karabo_simulation

    result = karabo_simulation(
        **settings,
        obs_id=obs_id,
        file_prefix=file_prefix,
        products=products,
        staging=staging,
        processed=processed,
        failed=failed,
        ingestor=ingestor,
        verify_timeout_seconds=verify_timeout_seconds,
        scratch_dir=scratch_dir,
        scratch_volume=scratch_volume,
        aws_credentials_block=aws_credentials_block,
        backend=backend,
        namespace=namespace,
        min_memory=min_memory,
        cpu=cpu,
        **({"image": image} if image else {}),
        report_dir=report_dir,
    )
    for rel, fate in result.items():
        typer.echo(f"{fate:<10} {rel}")


def register(app: typer.Typer) -> None:
    """Add this flow's commands to the `sluice` app."""
    group = typer.Typer(no_args_is_help=True, help=__doc__)
    group.command("estimate")(fail_on_input_errors(estimate))
    group.command("run")(fail_on_input_errors(run))
    app.add_typer(group, name="karabo")
