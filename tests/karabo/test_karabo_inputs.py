"""Settings, the estimate, hourly names and bad input (refused before any job)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prefect.exceptions import ParameterTypeError
from sluice.flows.karabo import karabo_simulation

from sluice.errors import SluiceInputError
from sluice.karabo.estimate import estimate, refuse_if_too_big
from sluice.karabo.settings import KaraboSettings, Product, hourly_obs_id
from sluice.ledger import open_ledger
from tests.karabo.conftest import TINY


def test_estimate_of_the_seed_defaults():
    found = estimate(KaraboSettings.parse(obs_id="x"))

    assert found.channels == 4
    assert found.baselines == 10_296
    assert found.measurements == 3_953_664
    assert found.ms_bytes == 31_629_312
    # The workflow's images are MFS (combine_across_frequencies=True): num_channels = 1.
    assert found.image_bytes == 2024**2 * 1 * 8 == 32_772_608
    assert found.images == 2  # dirty + cleaned
    assert found.products_bytes == 31_629_312 + 2 * 32_772_608 == 97_174_528
    assert found.scratch_bytes == 2 * 97_174_528
    assert found.memory_bytes == 186 * 2**20  # 2 x products rounded up to MiB


def test_image_size_does_not_grow_with_the_number_of_channels():
    narrow = estimate(KaraboSettings.parse(obs_id="x", freq_inc_hz=35_500_000.0))
    wide = estimate(KaraboSettings.parse(obs_id="x", freq_inc_hz=1_775_000.0))

    assert (narrow.channels, wide.channels) == (2, 40)
    assert narrow.image_bytes == wide.image_bytes == 32_772_608
    assert wide.ms_bytes == 20 * narrow.ms_bytes


def test_cleaned_implies_the_dirty_image_is_built():
    settings = KaraboSettings.parse(obs_id="x", products=(Product.CLEANED,))

    assert settings.built_images == [Product.DIRTY, Product.CLEANED]
    assert settings.selected == [Product.CLEANED]
    assert settings.product_flags() == ["--cleaned"]


def test_an_estimate_bigger_than_the_volume_is_refused_with_the_numbers():
    found = estimate(KaraboSettings.parse(obs_id="x"))

    with pytest.raises(SluiceInputError, match=r"194,349,056 B .* holds 104,857,600 B"):
        refuse_if_too_big(found, 100 * 2**20)
    refuse_if_too_big(found, found.scratch_bytes)


def test_hourly_obs_ids_follow_the_scheduled_time_not_the_clock():
    slot = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)

    assert hourly_obs_id(slot) == "20261125T140000_SKAMID_Karabo_test_hourly"
    assert hourly_obs_id(slot) != hourly_obs_id(datetime(2026, 11, 25, 15, 0, tzinfo=UTC))


# The real job.yaml's env (i4Ds/Karabo-Pipeline k8s/SRCNet_SKA-MID_AAstar/job.yaml @071e467b),
# except OBS_ID, FILE_PREFIX and OUT_DIR, which Sluice sets per run.
REAL_JOB_ENV = {
    "SKY_MODEL": "MIGHTEE_L1",
    "PHASE_CENTER_RA_DEG": "150.12",
    "PHASE_CENTER_DEC_DEG": "2.21",
    "START_FREQ_HZ": "1.304e9",
    "END_FREQ_HZ": "1.375e9",
    "FREQ_INC_HZ": "17750000.0",
    "OBS_LENGTH_HOURS": "4.0",
    "NUM_TIME_STAMPS": "24",
    "START_DATE_AND_TIME": "2020-04-26T16:36",
    "IMAGING_NPIXEL": "2024",
    "IMAGING_CELLSIZE": "None",
    "RUCIO_NAMESPACE": "testing",
    "RUCIO_LIFETIME": "31536000",
    "IVOID_AUTHORITY": "test.skao",
    "IVOID_PATH": "/~",
    "OBS_COLLECTION": "SKAO/SKAMID",
}


def test_the_defaults_are_the_real_jobs_env():
    env = KaraboSettings.parse(obs_id="o").as_env(out_dir="/x")

    assert set(REAL_JOB_ENV) | {"OBS_ID", "FILE_PREFIX", "OUT_DIR"} == set(env)
    for name, value in REAL_JOB_ENV.items():
        if name in {"START_FREQ_HZ", "END_FREQ_HZ", "FREQ_INC_HZ", "OBS_LENGTH_HOURS"}:
            assert float(env[name]) == float(value), name
        else:
            assert env[name] == value, name


def test_start_date_and_time_keeps_seconds_only_when_there_are_some():
    from sluice.karabo.settings import parse_start

    at = parse_start("2020-04-26T16:36:05")
    assert (
        KaraboSettings.parse(obs_id="o", start_date_and_time=at).as_env("/x")["START_DATE_AND_TIME"]
        == "2020-04-26T16:36:05"
    )
    shifted = parse_start("2020-04-26T18:36+02:00")
    assert (
        KaraboSettings.parse(obs_id="o", start_date_and_time=shifted).as_env("/x")[
            "START_DATE_AND_TIME"
        ]
        == "2020-04-26T16:36"
    )
    with pytest.raises(SluiceInputError, match="start_date_and_time: '04.26.2020T16:36'"):
        parse_start("04.26.2020T16:36")


def test_the_env_is_the_workflows():
    env = KaraboSettings.parse(obs_id="o", file_prefix="p_").as_env(out_dir="/scratch/o")

    assert env["SKY_MODEL"] == "MIGHTEE_L1"
    assert env["IMAGING_CELLSIZE"] == "None"
    assert float(env["FREQ_INC_HZ"]) == 17750000.0
    assert (env["OBS_ID"], env["FILE_PREFIX"], env["OUT_DIR"]) == ("o", "p_", "/scratch/o")


BAD = [
    ({"end_freq_hz": 1.0e9}, "end_freq_hz: 1e+09 must be greater than start_freq_hz 1e+09"),
    ({"freq_inc_hz": 0.0}, "freq_inc_hz: 0 must be positive"),
    ({"freq_inc_hz": -5.0}, "freq_inc_hz: -5 must be positive"),
    ({"imaging_npixel": 0}, "imaging_npixel: 0 must be positive"),
    ({"products": []}, "products: select at least one"),
    ({"staging": "/nonexistent/staging"}, "staging: /nonexistent/staging does not exist"),
    ({"staging": "/proc"}, "staging: /proc is not writable"),
    ({"processed": "/nonexistent/processed"}, "processed: /nonexistent/processed does not exist"),
    ({"failed": "/nonexistent/failed"}, "failed: /nonexistent/failed does not exist"),
    ({"scratch_volume": "1Ki"}, "scratch_volume: the estimate needs"),
]


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize(("bad", "message"), BAD, ids=[next(iter(b)) for b, _ in BAD])
def test_bad_input_is_refused_before_any_job(bad, message, areas, tmp_path, sluice_home):
    params = {
        **TINY,
        "obs_id": "bad",
        "staging": str(areas["staging"]),
        "processed": str(areas["processed"]),
        "failed": str(areas["failed"]),
        "scratch_dir": str(tmp_path / "scratch"),
        "report_dir": str(tmp_path / "reports"),
        **bad,
    }
    if "end_freq_hz" in bad:
        params["start_freq_hz"] = 1.0e9

    with pytest.raises(SluiceInputError) as raised:
        karabo_simulation(**params)

    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    ledger = open_ledger()
    try:
        assert ledger.runs() == []
    finally:
        ledger.close()


@pytest.mark.usefixtures("prefect_api")
def test_an_unknown_sky_model_is_refused_by_the_flows_typed_parameter(sluice_home):
    with pytest.raises(ParameterTypeError, match="sky_model: Input should be 'MIGHTEE_L1'"):
        karabo_simulation(sky_model="GLEAM", obs_id="bad")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--imaging-npixel", "-3"], "error: imaging_npixel: -3 must be positive"),
        # the flow's enum types, checked where the flow declares them
        (["--sky-model", "GLEAM"], "error: Invalid value for '--sky-model'"),
        (["--product", "psf"], "error: --products: 'psf': Input should be 'dirty'"),
        (
            ["--phase-center-ra-deg", "400"],
            "error: phase_center_ra_deg: Input should be less than 360",
        ),
        (
            ["--file-prefix", "a b_"],
            "error: file_prefix 'a b_': use letters, digits, '.', '_' or '-'",
        ),
    ],
)
def test_cli_bad_input_is_one_line_and_a_nonzero_exit(args, message, tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "sluice.cli", "karabo", "run", *args],
        capture_output=True,
        text=True,
        env={"SLUICE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )

    assert done.returncode == 2
    assert done.stderr.strip().startswith(message)
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "server.pid").exists()  # no server started either


def test_cli_estimate_prints_the_numbers():
    done = subprocess.run(
        [sys.executable, "-m", "sluice.cli", "karabo", "estimate"],
        capture_output=True,
        text=True,
        check=True,
    )

    assert "3,953,664" in done.stdout
    assert "31,629,312 B" in done.stdout
    assert "image (min, each)          32,772,608 B (31.3 MiB)" in done.stdout


def test_cli_run_stages_verifies_and_prints_each_products_fate(prefect_api, areas, tmp_path):
    done = subprocess.run(
        [
            sys.executable, "-m", "sluice.cli", "karabo", "run",
            "--start-freq-hz", "1e9", "--end-freq-hz", "1.002e9", "--freq-inc-hz", "1e6",
            "--num-time-stamps", "2", "--imaging-npixel", "8",
            "--obs-id", "cli", "--file-prefix", "cli_", "--product", "dirty",
            "--staging", str(areas["staging"]), "--processed", str(areas["processed"]),
            "--failed", str(areas["failed"]), "--scratch-dir", str(tmp_path / "scratch"),
            "--report-dir", str(tmp_path / "reports"), "--verify-timeout-seconds", "60",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "SLUICE_HOME": str(tmp_path / "home")},
        timeout=300,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["processed", "testing/cli_dirty.fits"]
    assert (areas["processed"] / "testing" / "cli_dirty.fits.meta").is_file()


def test_a_job_spec_renders_separate_requests_and_limits():
    from pydantic import ValidationError

    from sluice.backends.kubernetes.manifests import job_manifest
    from sluice.jobs import JobSpec

    spec = JobSpec(
        name="k",
        command=["true"],
        memory_bytes=128 * 2**30,
        memory_request_bytes=64 * 2**30,
        cpu=16,
        cpu_limit=32,
    )
    resources = job_manifest(spec)["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {
        "requests": {"memory": "64Gi", "cpu": "16"},
        "limits": {"memory": "128Gi", "cpu": "32"},
    }
    with pytest.raises(ValidationError, match="memory_request_bytes"):
        JobSpec(name="k", command=["true"], memory_bytes=1, memory_request_bytes=2)
    with pytest.raises(ValidationError, match="cpu_limit"):
        JobSpec(name="k", command=["true"], cpu=2, cpu_limit=1)
