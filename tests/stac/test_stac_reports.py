"""The seed's report rules (local_reports.py), as tables; and Sluice against the real script."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from sluice.stac.logs import Message, log_messages, split_entries
from sluice.stac.reports import build_report, categories, write_report

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "stac"


def _compare_module():
    spec = importlib.util.spec_from_file_location(
        "compare_reports", EXAMPLES / "compare_reports.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compare = _compare_module()

# (job, message) -> the seed's categories for it
MESSAGE_RULES = [
    ("pipeline", "Pipeline SUCCESS: 3/3 scenarios completed", ["success"]),
    ("pipeline", "pipeline success", ["success"]),  # case is ignored
    ("pipeline", "Pipeline exiting early: no catchments", ["early_exit"]),
    ("pipeline", "Pipeline FAILED: data service error", ["failed"]),
    ("pipeline", "Pipeline SUCCESS after an OOM", ["success"]),  # first match only
    ("pipeline", "task OOM killed", ["job_errors"]),
    ("pipeline", "the room was zoomed", ["job_errors"]),  # the seed's 'OOM', any case
    ("pipeline", "HTTPConnectionPool(host='nomad')", ["job_errors"]),
    ("pipeline", "BaseNomadException: 403", ["job_errors"]),
    ("pipeline", "JobStatus.LOST", ["job_errors"]),
    ("pipeline", "JobStatus.CANCELLED", ["job_errors"]),
    ("pipeline", "JobStatus.FAILED", []),
    ("pipeline", "botocore.exceptions.ClientError: 403", ["job_errors"]),
    ("pipeline", "ERROR: something", []),  # the pipeline's errors are not counted
    ("agreement_maker", "ERROR: cannot open", ["agr_mos_errors"]),
    ("fim_mosaicker", "UserWarning: odd CRS", ["agr_mos_errors"]),
    ("fim_mosaicker", "NotGeoreferencedWarning", []),
    ("agreement_maker", "distributed.nanny - WARNING - Worker process still alive", []),
    ("agreement_maker", "Agreement map contains no valid data", ["ignorable_errors"]),
    ("agreement_maker", "ERROR Agreement map contains no valid data", ["ignorable_errors"]),
    ("agreement_maker", "Pipeline FAILED", []),
    ("hand_inundator", "ValueError: Error reading", ["inundate_errors"]),
    ("hand_inundator", "ERROR No matching forecast data", []),
    ("hand_inundator", "TypeError: 'NoneType' is not iterable error", []),
    ("hand_inundator", "Agreement map contains no valid data", []),
]


@pytest.mark.parametrize(("job", "text", "expected"), MESSAGE_RULES)
def test_message_rules(job, text, expected):
    assert categories(Message("a", job, "task", "f", text)) == expected


# AOI of compare.OUTCOMES -> (unique success?, silent failure?) under the seed's rules
EXPECTED = {
    "ok-success": (True, False),
    "ok-early-exit": (True, False),
    "fail-pipeline": (False, False),
    "fail-oom": (False, True),
    "fail-http": (False, False),
    "fail-nomad-api": (False, True),
    "fail-job-lost": (False, True),
    "fail-job-stopped": (False, True),
    "fail-s3": (False, False),
    "fail-agreement": (False, False),
    "fail-mosaic-warning": (False, False),
    "ok-agreement-harmless": (True, False),
    "ok-ignorable": (True, False),
    "ok-ignorable-beats-failed": (True, False),  # the seed's rule: ignorable wins
    "fail-ignorable-and-error": (False, False),
    "fail-inundate": (False, False),
    "ok-inundate-harmless": (True, False),
    "silent-crash": (False, True),
    "silent-never-ran": (False, True),
    "unknown-id": (False, True),
    "ok-rotated-and-stdout-ignored": (True, False),
    "fail-bad-json-zoom": (False, False),
    "ok-json-without-message": (True, False),
}


def test_outcomes_follow_the_seeds_set_logic(tmp_path):
    assert set(EXPECTED) == set(compare.OUTCOMES)
    run_list = compare.write_outcomes(tmp_path / "logs" / "b")
    report_dir = tmp_path / "report"
    compare.sluice_report(run_list, tmp_path / "logs" / "b", report_dir)

    def listed(name: str) -> set[str]:
        return set((report_dir / name).read_text().split())

    extra = compare.NOT_IN_RUN_LIST
    assert listed("unique_success_aoi_names.txt") == {a for a, e in EXPECTED.items() if e[0]} | {
        extra
    }
    assert listed("unique_fail_aoi_names.txt") == {a for a, e in EXPECTED.items() if not e[0]}
    assert listed("silent_failures.txt") == {a for a, e in EXPECTED.items() if e[1]}
    assert listed("sorted-run-list.txt") == set(EXPECTED)
    assert (report_dir / "missing_aois.txt").read_text() == ""  # written: counts differ
    assert listed("ignorable_errors_aois.txt") == {"ok-ignorable", "ok-ignorable-beats-failed"}


def test_missing_aois_only_when_the_counts_differ(tmp_path):
    report = build_report(["a"], [Message("a", "pipeline", "coordinator", "f", "Pipeline SUCCESS")])
    write_report(report, tmp_path)
    assert not (tmp_path / "missing_aois.txt").exists()
    assert (tmp_path / "unique_success_aoi_names.txt").read_text() == "a\n"
    assert not (tmp_path / "job_errors.json").exists()  # JSON files only when not empty


SEED_SCRIPT = os.environ.get("SLUICE_SEED_LOCAL_REPORTS")


@pytest.mark.skipif(
    not SEED_SCRIPT, reason="set SLUICE_SEED_LOCAL_REPORTS to the seed's tools/local_reports.py"
)
def test_same_files_as_the_real_local_reports(tmp_path):
    assert compare.compare(Path(SEED_SCRIPT), None, None, tmp_path) == []


def test_log_messages_as_the_seed_reads_them():
    text = '{"level": "INFO", "message": "Pipeline SUCCESS"}\n{no json}\nplain line\n  \n'
    assert log_messages(text) == ["Pipeline SUCCESS", "{no json}", "plain line"]
    assert log_messages('meta: {"aoi": "x"}\n') == ["", 'meta: {"aoi": "x"}']


def test_stage_job_logs_split_per_entry():
    log = "start\nsluice-entry 0\nok 0\nsluice-entry 1\nboom 1\n"
    assert split_entries(log, 3) == ["start\nok 0\n", "start\nboom 1\n", "start\nboom 1\n"]
    assert split_entries("crashed at import\n", 2) == ["crashed at import\n"] * 2


def test_stac_report_takes_the_seeds_flags(tmp_path):
    from typer.testing import CliRunner

    from sluice.cli import app

    run_list = compare.write_outcomes(tmp_path / "logs" / "b")
    expected, got = tmp_path / "expected", tmp_path / "got"
    compare.sluice_report(run_list, tmp_path / "logs" / "b", expected)
    argv = ["stac-report", "--run_list", str(run_list), "--log_dir", str(tmp_path / "logs" / "b")]
    result = CliRunner().invoke(app, [*argv, "--report_dir", str(got)])
    assert result.exit_code == 0, result.output
    for path in expected.iterdir():
        assert (got / path.name).read_text() == path.read_text(), path.name


STAC_REPORT_CASES = [
    (["--report_dir", "{tmp}/r"], "--batch_name", "neither a batch nor a log tree"),
    (["--report_dir", "{tmp}/r", "--log_dir", "{tmp}/r"], "--batch_name", "log dir, no run list"),
    (
        ["--report_dir", "{tmp}/r", "--log_dir", "{tmp}/nope", "--run_list", "{tmp}/ids"],
        "--log_dir",
        "log dir missing",
    ),
]


@pytest.mark.parametrize(
    ("args", "names"), [pytest.param(a, n, id=i) for a, n, i in STAC_REPORT_CASES]
)
def test_stac_report_bad_input(args, names, tmp_path):
    from tests.bad_input import BadInput, assert_refused

    (tmp_path / "ids").write_text("a\n")
    argv = ["stac-report", *(a.format(tmp=tmp_path) for a in args)]
    assert_refused(BadInput(argv, names), tmp_path / "home", watched=[tmp_path])


def test_redaction_never_mangles_the_lines_the_report_reads():
    from sluice.stac.outputs import redact

    line = "Pipeline exiting early: no catchments"
    assert redact(line, ["x", "y"]) == line  # a one-letter "secret" is not redacted
    assert redact("key AKIASLUICELEAK7 used", ["AKIASLUICELEAK7"]) == "key *** used"


@pytest.mark.parametrize(
    "line",
    ["sluice-entry", "sluice-entry x", "sluice-entry 7", "sluice-entry 1 2", "sluice-entry -1"],
)
def test_a_job_line_that_only_looks_like_an_entry_mark_is_output(line: str) -> None:
    log = f"sluice-entry 0\nfirst\n{line}\nsluice-entry 1\nsecond\n"
    assert split_entries(log, 2) == [f"first\n{line}\n", "second\n"]
