"""Karabo SKA-MID AA* simulation and ingest (replaces the SRCNet Karabo Job, CronJob and checks).

Data path: settings -> estimate (refused if too big) -> simulation job ->
stage products + ``.meta`` atomically -> verify the ingestor's verdict -> clean.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect_aws import AwsCredentials
from prefect_kubernetes.credentials import KubernetesCredentials
from sluice.blocks.ledger import LedgerSettings, open_flow_ledger
from sluice.blocks.storage import storage_for
from sluice.tasks.karabo import (
    clean_up,
    estimate_resources,
    simulate,
    simulation_job,
    stage_products,
    verify_ingest,
)

from sluice.backends.factory import BackendKind, create_backend
from sluice.jobs import nothing_to_submit
from sluice.karabo import standin_ingestor
from sluice.karabo.areas import open_area
from sluice.karabo.ingest import Fate, fate, targets
from sluice.karabo.run_inputs import (
    Affinity,
    Ingestor,
    NodeSelector,
    Prepared,
    SimulationBackend,
    StartTime,
    Tolerations,
    check_placement,
    prepare,
)
from sluice.karabo.settings import KaraboSettings, Product, SkyModel, hourly_obs_id
from sluice.ledger import hold_run
from sluice.names import Directory, ObsId
from sluice.settings import sluice_home

__all__ = ["Ingestor", "SimulationBackend", "karabo_simulation"]

DEFAULT_IMAGE = "ghcr.io/i4ds/karabo-pipeline:latest"


@flow(name="karabo-simulation")
def karabo_simulation(
    sky_model: SkyModel = SkyModel.MIGHTEE_L1,
    phase_center_ra_deg: float = 150.12,
    phase_center_dec_deg: float = 2.21,
    start_freq_hz: float = 1.304e9,
    end_freq_hz: float = 1.375e9,
    freq_inc_hz: float = 17750000.0,
    obs_length_hours: float = 4.0,
    num_time_stamps: int = 24,
    start_date_and_time: StartTime = datetime(2020, 4, 26, 16, 36, tzinfo=UTC),
    imaging_npixel: int = 2024,
    imaging_cellsize: float | None = None,
    rucio_namespace: str = "testing",
    rucio_lifetime: int = 31536000,
    ivoid_authority: str = "test.skao",
    ivoid_path: str = "/~",
    obs_collection: str = "SKAO/SKAMID",
    obs_id: ObsId | None = None,
    file_prefix: str | None = None,
    products: list[Product] = [Product.DIRTY, Product.CLEANED],  # noqa: B006 (UI default)
    staging: str | None = None,
    processed: str | None = None,
    failed: str | None = None,
    ingestor: Ingestor = Ingestor.STANDIN,
    aws_credentials_block: AwsCredentials | None = None,
    verify_timeout_seconds: float = 600.0,
    scratch_dir: Directory | None = None,
    scratch_volume: str | None = None,
    backend: SimulationBackend = SimulationBackend.LOCAL,
    namespace: str | None = None,
    kubernetes_credentials: KubernetesCredentials | None = None,
    image: str = DEFAULT_IMAGE,
    min_memory: str = "256Mi",
    memory_limit: str | None = None,
    cpu: float | None = None,
    cpu_limit: float | None = None,
    node_selector: NodeSelector | None = None,
    affinity: Affinity | None = None,
    tolerations: Tolerations | None = None,
    simulation_timeout_seconds: float = 7 * 24 * 3600.0,
    report_dir: Directory = "reports/karabo",
    ledger_url: str | None = None,
    ledger_block: LedgerSettings | None = None,
) -> dict[str, str]:
    """Simulate SKA-MID AA* data with Karabo and hand the products to the SRCNet ingestor.

    Args:
        sky_model: Sky model to observe (SKY_MODEL).
        phase_center_ra_deg: Phase centre right ascension in degrees (PHASE_CENTER_RA_DEG).
        phase_center_dec_deg: Phase centre declination in degrees (PHASE_CENTER_DEC_DEG).
        start_freq_hz: First channel frequency in Hz (START_FREQ_HZ).
        end_freq_hz: End of the band in Hz, above the start (END_FREQ_HZ).
        freq_inc_hz: Channel width in Hz; channels = floor((end - start) / increment) (FREQ_INC_HZ).
        obs_length_hours: Observation length in hours (OBS_LENGTH_HOURS).
        num_time_stamps: Number of time stamps (NUM_TIME_STAMPS).
        start_date_and_time: Observation start, UTC (START_DATE_AND_TIME, e.g. 2020-04-26T16:36).
        imaging_npixel: Image side in pixels (IMAGING_NPIXEL).
        imaging_cellsize: Image cell size in radians (IMAGING_CELLSIZE); empty = "None", the
            workflow's field of view / npixel.
        rucio_namespace: Rucio scope the products are registered in (RUCIO_NAMESPACE).
        rucio_lifetime: Rucio replica lifetime in seconds (RUCIO_LIFETIME).
        ivoid_authority: IVOA identifier authority for obs_publisher_did (IVOID_AUTHORITY).
        ivoid_path: IVOA identifier path for obs_publisher_did (IVOID_PATH).
        obs_collection: ObsCore obs_collection (OBS_COLLECTION).
        obs_id: ObsCore obs_id (OBS_ID); empty = derived from the run's scheduled start time.
        file_prefix: Prefix of every product file (FILE_PREFIX); empty = obs_id and an underscore.
        products: Products to ingest: dirty, cleaned, visibility (cleaned builds dirty too).
        staging: Ingestor staging area (path or s3://bucket/prefix); empty = under SLUICE_HOME.
        processed: Ingestor processed area (path or s3://...); empty = beside the default staging.
        failed: Ingestor failed-processing area (path or s3://...); empty = beside staging.
        ingestor: standin = this flow runs Sluice's stand-in ingestor; external = a real one runs.
        aws_credentials_block: A prefect-aws AwsCredentials block for S3 areas;
            empty = boto3's default chain (environment, instance role).
        verify_timeout_seconds: How long to wait for the ingestor to handle every product.
        scratch_dir: Directory for the simulation's temporary data (the temporary volume).
        scratch_volume: Size of the temporary volume (e.g. 2Ti); empty = its free space.
        backend: Where the simulation job runs: local (stand-in simulation) or kubernetes.
        namespace: Kubernetes namespace for the simulation job.
        kubernetes_credentials: A prefect-kubernetes KubernetesCredentials block
            (default: kubeconfig or the pod's service account).
        image: Karabo container image (kubernetes backend).
        min_memory: Smallest memory request, whatever the estimate (the real job: 64Gi).
        memory_limit: Memory limit (the real job: 128Gi); empty = the request.
        cpu: CPU cores requested (the real job: 16).
        cpu_limit: CPU limit (the real job: 32); empty = the request.
        node_selector: Pod nodeSelector labels (kubernetes); on the command line KEY=VALUE,
            repeated.
        affinity: Pod affinity, as in the Job manifest (e.g. the real job's nodeAffinity); on
            the command line as JSON.
        tolerations: Pod tolerations, as in the Job manifest (e.g. key hpc, NoSchedule); on the
            command line KEY=VALUE:EFFECT or KEY:EFFECT, repeated.
        simulation_timeout_seconds: Give up on the simulation job after this long (seconds).
        report_dir: Directory for the estimate and ingest reports (JSON files).
        ledger_url: Ledger store (default: SQLite under SLUICE_HOME; or postgresql://...).
            The attempt is recorded there.
        ledger_block: A LedgerSettings block (PostgreSQL with a secret password) instead.
    """
    prepared = check_parameters(dict(locals()))
    settings, found = prepared.settings, prepared.estimate
    areas = default_areas(*prepared.areas)
    storage = storage_for(aws_credentials_block)
    staging_area, processed_area, failed_area = (open_area(u, storage=storage) for u in areas)
    staging_area.check(what="staging", writable=True)
    processed_area.check(what="processed", writable=False)
    failed_area.check(what="failed", writable=False)
    prepared.scratch.mkdir(parents=True, exist_ok=True)
    estimate_resources(settings, prepared.volume_bytes, found, prepared.report_dir)

    items = targets(settings)
    todo = [i for i in items if fate(i, processed_area, failed_area) is not Fate.PROCESSED]
    workdir = prepared.scratch / settings.obs_id
    if todo:
        kind = BackendKind(prepared.backend.value)
        job = simulation_job(prepared, workdir, kind, image)
        with (
            contextlib.closing(
                create_backend(
                    kind, namespace=namespace, kubernetes_credentials=kubernetes_credentials
                )
            ) as runner,
            contextlib.closing(open_flow_ledger(ledger_url, ledger_block)) as ledger,
            hold_run(ledger, run_name(settings.obs_id)),
        ):
            simulate(
                runner,
                ledger,
                run_name(settings.obs_id),
                job,
                workdir,
                prepared.report_dir,
                settings.obs_id,
            )
        for item in todo:
            failed_area.remove(item.meta_rel)
            failed_area.remove(item.rel)
        stage_products(settings, workdir, staging_area, todo)
    else:
        done = nothing_to_submit(len(items), len(items), "products", "ingested")
        get_run_logger().info("%s: %s", settings.obs_id, done)
    watch = (
        standin_ingestor.running(*areas)
        if prepared.ingestor is Ingestor.STANDIN
        else contextlib.nullcontext()
    )
    with watch:
        fates = verify_ingest(
            items,
            processed_area,
            failed_area,
            prepared.verify_timeout_seconds,
            prepared.report_dir,
            settings.obs_id,
        )
    clean_up(staging_area, items, workdir)
    return {rel: f.value for rel, f in fates.items()}


SETTINGS = tuple(
    name
    for name in KaraboSettings.model_fields
    if name not in {"obs_id", "file_prefix", "products"}
)


def run_name(obs_id: str) -> str:
    """The ledger run (and lease) of one observation's simulation."""
    return f"karabo-{obs_id}"


def check_parameters(values: dict[str, Any]) -> Prepared:
    """Check the flow's parameters (all that needs no server); the CLI calls this first too.

    An empty ``obs_id`` is derived from the run's scheduled start time (now, outside a run).
    """
    obs_id = values.get("obs_id") or hourly_obs_id(
        flow_run.scheduled_start_time or datetime.now(UTC)
    )
    prefix = values.get("file_prefix")
    settings = KaraboSettings.parse(
        **{name: values[name] for name in SETTINGS if values.get(name) is not None},
        obs_id=obs_id,
        file_prefix=f"{obs_id}_" if prefix is None else prefix,
        products=tuple(values.get("products") or ()),
    )
    scratch_dir, report_dir = values.get("scratch_dir"), values.get("report_dir")
    return prepare(
        settings,
        staging=values.get("staging"),
        processed=values.get("processed"),
        failed=values.get("failed"),
        ingestor=values.get("ingestor", Ingestor.STANDIN),
        verify_timeout_seconds=values.get("verify_timeout_seconds", 600.0),
        scratch=Path(scratch_dir) if scratch_dir else sluice_home() / "karabo" / "scratch",
        scratch_volume=values.get("scratch_volume"),
        backend=values.get("backend", SimulationBackend.LOCAL),
        namespace=values.get("namespace"),
        min_memory=values.get("min_memory", "256Mi"),
        memory_limit=values.get("memory_limit"),
        cpu=values.get("cpu"),
        cpu_limit=values.get("cpu_limit"),
        placement=check_placement(
            values.get("node_selector"), values.get("affinity"), values.get("tolerations")
        ),
        simulation_timeout_seconds=values.get("simulation_timeout_seconds", 7 * 24 * 3600.0),
        report_dir=Path(report_dir or "reports/karabo"),
        ledger_url=values.get("ledger_url"),
    )


def default_areas(
    staging: str | None, processed: str | None, failed: str | None
) -> tuple[str, str, str]:
    """The given areas, or the embedded default's under ``SLUICE_HOME/karabo/ingest``."""
    if staging is None:
        root = sluice_home() / "karabo" / "ingest"
        for name in ("staging", "processed", "failed_processing"):
            (root / name).mkdir(parents=True, exist_ok=True)
        staging = str(root / "staging")
        processed = processed or str(root / "processed")
        failed = failed or str(root / "failed_processing")
    assert processed is not None and failed is not None, "prepare() checks both are given"
    return staging, processed, failed
