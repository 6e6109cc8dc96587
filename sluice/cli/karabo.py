"""`sluice karabo estimate|run`: the Karabo SKA-MID AA* simulation and ingest."""

from __future__ import annotations

from typing import Annotated, Any

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


def run(  # noqa: PLR0913 - one option per flow parameter
    sky_model: Annotated[str, Opt(help="SKY_MODEL")] = "MIGHTEE_L1",
    phase_center_ra_deg: Annotated[float, Opt(help="PHASE_CENTER_RA_DEG")] = 150.12,
    phase_center_dec_deg: Annotated[float, Opt(help="PHASE_CENTER_DEC_DEG")] = 2.21,
    start_freq_hz: Annotated[float, Opt(help="START_FREQ_HZ")] = 1.304e9,
    end_freq_hz: Annotated[float, Opt(help="END_FREQ_HZ")] = 1.375e9,
    freq_inc_hz: Annotated[float, Opt(help="FREQ_INC_HZ")] = 17750000.0,
    obs_length_hours: Annotated[float, Opt(help="OBS_LENGTH_HOURS")] = 4.0,
    num_time_stamps: Annotated[int, Opt(help="NUM_TIME_STAMPS")] = 24,
    start_date_and_time: Annotated[
        str, Opt(help="START_DATE_AND_TIME, ISO, UTC unless an offset is given")
    ] = "2020-04-26T16:36",
    imaging_npixel: Annotated[int, Opt(help="IMAGING_NPIXEL")] = 2024,
    imaging_cellsize: Annotated[
        float | None, Opt(help="IMAGING_CELLSIZE in radians (default None: FOV / npixel)")
    ] = None,
    rucio_namespace: Annotated[str, Opt(help="RUCIO_NAMESPACE")] = "testing",
    rucio_lifetime: Annotated[int, Opt(help="RUCIO_LIFETIME (s)")] = 31536000,
    ivoid_authority: Annotated[str, Opt(help="IVOID_AUTHORITY")] = "test.skao",
    ivoid_path: Annotated[str, Opt(help="IVOID_PATH")] = "/~",
    obs_collection: Annotated[str, Opt(help="OBS_COLLECTION")] = "SKAO/SKAMID",
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
    kubernetes_credentials: Annotated[
        str | None, Opt(help="prefect-kubernetes KubernetesCredentials block")
    ] = None,
    image: Annotated[str | None, Opt(help="Karabo image (kubernetes)")] = None,
    min_memory: Annotated[str, Opt(help="smallest memory request (real job: 64Gi)")] = "256Mi",
    memory_limit: Annotated[
        str | None, Opt(help="memory limit (real job: 128Gi; default = request)")
    ] = None,
    cpu: Annotated[float | None, Opt(help="CPU request (real job: 16)")] = None,
    cpu_limit: Annotated[
        float | None, Opt(help="CPU limit (real job: 32; default = request)")
    ] = None,
    node_selector: Annotated[
        list[str] | None, Opt(help="pod nodeSelector KEY=VALUE (repeat)")
    ] = None,
    affinity: Annotated[str | None, Opt(help="pod affinity as JSON (kubernetes)")] = None,
    toleration: Annotated[
        list[str] | None, Opt(help="toleration KEY=VALUE:EFFECT or KEY:EFFECT (repeat)")
    ] = None,
    simulation_timeout_seconds: Annotated[
        float, Opt(help="give up on the simulation job after this long")
    ] = 7 * 24 * 3600.0,
    report_dir: Annotated[str, Opt(help="report directory")] = "reports/karabo",
    ledger_url: Annotated[
        str | None, Opt(help="ledger: sqlite:///PATH, postgresql://..., block:NAME")
    ] = None,
) -> None:
    """Simulate, stage the products with their .meta, and verify the ingestor handled them."""
    from sluice.karabo.run_inputs import parse_json_object, parse_toleration
    from sluice.karabo.settings import parse_start
    from sluice.names import DIRECTORY

    for flag, directory in (("--scratch-dir", scratch_dir), ("--report-dir", report_dir)):
        if directory is not None:
            DIRECTORY.check(directory, flag)

    params: dict[str, Any] = {
        "sky_model": sky_model,
        "phase_center_ra_deg": phase_center_ra_deg,
        "phase_center_dec_deg": phase_center_dec_deg,
        "start_freq_hz": start_freq_hz,
        "end_freq_hz": end_freq_hz,
        "freq_inc_hz": freq_inc_hz,
        "obs_length_hours": obs_length_hours,
        "num_time_stamps": num_time_stamps,
        "start_date_and_time": parse_start(start_date_and_time),
        "imaging_npixel": imaging_npixel,
        "imaging_cellsize": imaging_cellsize,
        "rucio_namespace": rucio_namespace,
        "rucio_lifetime": rucio_lifetime,
        "ivoid_authority": ivoid_authority,
        "ivoid_path": ivoid_path,
        "obs_collection": obs_collection,
        "obs_id": obs_id,
        "file_prefix": file_prefix,
        "products": _products(product),
        "staging": staging,
        "processed": processed,
        "failed": failed,
        "ingestor": ingestor,
        "aws_credentials_block": aws_credentials_block,
        "verify_timeout_seconds": verify_timeout_seconds,
        "scratch_dir": scratch_dir,
        "scratch_volume": scratch_volume,
        "backend": backend,
        "namespace": namespace,
        "kubernetes_credentials": kubernetes_credentials,
        "min_memory": min_memory,
        "memory_limit": memory_limit,
        "cpu": cpu,
        "cpu_limit": cpu_limit,
        "node_selector": _labels(node_selector or []),
        "affinity": parse_json_object(affinity, "affinity") if affinity else None,
        "tolerations": [parse_toleration(t) for t in toleration or []] or None,
        "simulation_timeout_seconds": simulation_timeout_seconds,
        "report_dir": report_dir,
        "ledger_url": ledger_url,
        **({"image": image} if image else {}),
    }
    from sluice.flows.karabo import check_parameters

    check_parameters(params)  # bad input fails here, before a server or a job is started
    from sluice.server import ensure_api

    ensure_api()
    from sluice.flows.karabo import karabo_simulation

    result = karabo_simulation(**params)
    for rel, fate in result.items():
        typer.echo(f"{fate:<10} {rel}")


def _labels(pairs: list[str]) -> dict[str, str] | None:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SluiceInputError(f"node_selector: {pair[:80]!r} is not KEY=VALUE")
        labels[key] = value
    return labels or None


def register(app: typer.Typer) -> None:
    """Add this flow's commands to the `sluice` app."""
    group = typer.Typer(no_args_is_help=True, help=__doc__)
    group.command("estimate")(fail_on_input_errors(estimate))
    group.command("run")(fail_on_input_errors(run))
    app.add_typer(group, name="karabo")
