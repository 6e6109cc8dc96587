"""Bad input for `sluice karabo estimate|run`: one line naming the input, exit 2, nothing started.

Every case runs the real CLI (tests/bad_input.py): no Prefect server, flow run, job, ledger
row or file may appear. The checks are `sluice.flows.karabo.check_parameters`, which the flow
runs first too, so the UI form and the CLI refuse the same values.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sluice.flows.karabo import run_name

from sluice.ledger.lease import leased
from tests.bad_input import BadInput, assert_refused

AREA = "{area}"  # replaced by a real, empty staging/processed/failed directory
FILE = "{file}"  # replaced by a regular file


def E(*argv: str, names: str) -> BadInput:  # noqa: N802 - a table row
    return BadInput(("karabo", "estimate", *argv), names)


def R(*argv: str, names: str) -> BadInput:  # noqa: N802 - a table row
    return BadInput(("karabo", "run", *argv), names)


CASES = [
    E("--imaging-npixel", "999999999999", names="imaging_npixel"),
    E("--imaging-npixel", "0", names="imaging_npixel"),
    E("--imaging-npixel", "-3", names="imaging_npixel"),
    E("--num-time-stamps", "99999999", names="num_time_stamps"),
    E("--num-time-stamps", "0", names="num_time_stamps"),
    E("--freq-inc-hz", "0.0000001", names="freq_inc_hz"),
    E("--freq-inc-hz", "-5", names="freq_inc_hz"),
    E("--freq-inc-hz", "1e10", names="freq_inc_hz"),
    E("--start-freq-hz", "nan", names="start_freq_hz"),
    E("--end-freq-hz", "inf", names="end_freq_hz"),
    E("--end-freq-hz", "1e9", names="end_freq_hz"),
    E("--product", "psf", names="product"),
    E("--scratch-volume", "1Ki", names="scratch_volume"),
    E("--scratch-volume", "lots", names="scratch_volume"),
    E("--min-memory", "abc", names="min_memory"),
    R("--verify-timeout-seconds", "-5", names="verify_timeout_seconds"),
    R("--verify-timeout-seconds", "nan", names="verify_timeout_seconds"),
    R("--verify-timeout-seconds", "1e12", names="verify_timeout_seconds"),
    R("--simulation-timeout-seconds", "0", names="simulation_timeout_seconds"),
    R("--backend", "mars", names="backend"),
    R("--ingestor", "rucio", names="ingestor"),
    R("--scratch-dir", FILE, names="scratch_dir"),
    R("--scratch-dir", FILE + "/sub", names="scratch_dir"),
    R("--report-dir", FILE, names="report_dir"),
    R("--staging", "/nonexistent/staging", "--processed", AREA, "--failed", AREA, names="staging"),
    R("--staging", FILE, "--processed", AREA, "--failed", AREA, names="staging"),
    R("--staging", AREA, names="processed"),
    R("--staging", AREA, "--processed", "/nonexistent/p", "--failed", AREA, names="processed"),
    R("--staging", AREA, "--processed", AREA, "--failed", "/nonexistent/f", names="failed"),
    R("--staging", "ftp://host/x", "--processed", AREA, "--failed", AREA, names="area"),
    R("--obs-id", "../../x", names="--obs-id"),
    R("--obs-id", "a\nb", names="--obs-id"),
    R("--obs-id", ".hidden", names="--obs-id"),
    R("--obs-id", "x" * 300, names="--obs-id"),
    R("--rucio-namespace", "a/b", names="rucio_namespace"),
    R("--file-prefix", "../", names="file_prefix"),
    R("--start-date-and-time", "04.26.2020T16:36", names="start_date_and_time"),
    R("--imaging-cellsize", "-1", names="imaging_cellsize"),
    R("--memory-limit", "1Mi", names="memory_limit"),
    R("--memory-limit", "99999999Ei", names="memory_limit"),
    R("--min-memory", "0", names="min_memory"),
    R("--cpu", "16", "--cpu-limit", "8", names="cpu_limit"),
    R("--cpu", "-1", names="cpu"),
    R("--cpu", "1e9", names="cpu"),
    R("--namespace", "Bad_NS", names="namespace"),
    R("--node-selector", "hpc", names="node_selector"),
    R("--node-selector", "bad key!=x", names="node_selector"),
    R("--toleration", "hpc=true", names="toleration"),
    R("--toleration", "hpc=true:Sometimes", names="toleration"),
    R("--affinity", '{"nodeAffinity":', names="affinity"),
    R("--affinity", '{"podWhatever": {}}', names="affinity"),
    R("--affinity", "[1, 2]", names="affinity"),
    R("--ledger-url", "mysql://x", names="--ledger-url"),
    R("--sky-model", "GLEAM", names="--sky-model"),
    R("--phase-center-dec-deg", "91", names="phase_center_dec_deg"),
    R("--ivoid-authority", "a b", names="ivoid_authority"),
    R("--rucio-lifetime", "0", names="rucio_lifetime"),
    R("--obs-length-hours", "0", names="obs_length_hours"),
    R("--scratch-volume", "1Ki", names="scratch_volume"),
    R("--product", "cleaned", "--product", "psf", names="product"),
]


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_karabo_input_is_refused_before_anything_starts(case: BadInput, tmp_path: Path) -> None:
    work = tmp_path / "work"
    area = work / "area"
    area.mkdir(parents=True)
    file = work / "a-file"
    file.write_text("not a directory")
    argv = [a.replace(AREA, str(area)).replace(FILE, str(file)) for a in case.argv]
    resolved = BadInput(argv, case.names)

    line = assert_refused(resolved, tmp_path / "home", watched=[work])

    assert line.startswith("error: ")


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 40


def test_a_second_run_of_a_running_observation_is_refused_before_a_server(tmp_path: Path) -> None:
    work = tmp_path / "work"
    area = work / "area"
    area.mkdir(parents=True)
    url = f"sqlite:///{work / 'ledger.db'}"
    with leased(run_name("OBS-1"), url):  # the first run, as another process would hold it
        line = assert_refused(
            BadInput(
                [
                    "karabo",
                    "run",
                    "--obs-id",
                    "OBS-1",
                    "--ledger-url",
                    url,
                    "--staging",
                    str(area),
                    "--processed",
                    str(area),
                    "--failed",
                    str(area),
                ],
                "run 'karabo-OBS-1' is already running",
            ),
            tmp_path / "home",  # nothing there: no server started, no flow run created
        )
    assert "held by" in line
