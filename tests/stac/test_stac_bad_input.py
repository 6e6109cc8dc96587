"""Bad input: one clear line naming it, exit 2, nothing dispatched."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from sluice.backends.nomad import NomadApi
from sluice.cli import app
from sluice.ledger import open_ledger
from tests.bad_input import BadInput, assert_refused
from tests.conftest import free_port


@pytest.fixture
def base_args(tmp_path, stac_fixture, stac_api, bucket):
    items = tmp_path / "items.txt"
    items.write_text("ahps-aaa1-nws\nahps-bbb2-nws\n")
    return {
        "--batch_name": "bad",
        "--output_root": f"s3://{bucket}/out",
        "--hand_index_path": str(stac_fixture / "hand_index"),
        "--stac_api_url": stac_api,
        "--benchmark_sources": "nws-fim-collection",
        "--item_list": str(items),
        "--stop_threshold": "3",
        "--resume_threshold": "1",
    }


def invoke(args: dict[str, str], *flags: str):
    argv = ["stac-batch", *(x for kv in args.items() for x in kv), *flags]
    return CliRunner().invoke(app, argv)


def one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def nothing_ran(sluice_home) -> None:
    assert open_ledger().attempts("stac/bad") == []
    assert not (sluice_home / "stac" / "bad" / "logs").exists()


def test_resume_not_below_stop(base_args, sluice_home):
    one_line_error(invoke({**base_args, "--resume_threshold": "3"}), "--resume_threshold 3")
    nothing_ran(sluice_home)


@pytest.mark.parametrize("tier", ["-1", "6"])
def test_max_tier_out_of_range(base_args, sluice_home, tier):
    one_line_error(invoke(base_args, "--max_tier", tier), f"--max_tier {tier}: must be 0 to 5")
    nothing_ran(sluice_home)


def test_malformed_item_list(base_args, sluice_home, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("ahps-aaa1-nws\nnot an id\n")
    one_line_error(invoke({**base_args, "--item_list": str(bad)}), f"{bad}:2", "'not an id'")
    nothing_ran(sluice_home)


def test_an_item_list_that_is_a_fifo_is_refused_without_blocking(base_args, sluice_home, tmp_path):
    fifo = tmp_path / "items.fifo"
    os.mkfifo(fifo)
    one_line_error(invoke({**base_args, "--item_list": str(fifo)}), "--item_list", "FIFO")
    nothing_ran(sluice_home)


def test_a_hostile_id_in_a_resubmit_file_is_refused(base_args, sluice_home, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "unique_fail_aoi_names.txt").write_text("ahps-aaa1-nws\n../../../etc\n")
    args = {k: v for k, v in base_args.items() if k != "--item_list"}
    result = invoke({**args, "--resubmit-failed": str(reports)})
    one_line_error(result, "--resubmit-failed", ":2", "'../../../etc'")
    nothing_ran(sluice_home)


def test_unreachable_stac_api(base_args, sluice_home):
    url = f"http://127.0.0.1:{free_port()}"
    one_line_error(invoke({**base_args, "--stac_api_url": url}), "--stac_api_url", "unreachable")
    nothing_ran(sluice_home)


def test_unknown_item_ids_are_listed_and_stop(base_args, sluice_home, tmp_path):
    items = tmp_path / "unknown.txt"
    items.write_text("ahps-aaa1-nws\nnope-1\nnope-2\n")
    result = invoke({**base_args, "--item_list": str(items), "--on_missing": "stop"})
    one_line_error(result, "2 item id(s)", "nope-1, nope-2")
    nothing_ran(sluice_home)


def test_unwritable_output_root(base_args, sluice_home):
    result = invoke({**base_args, "--output_root": "s3://no-such-bucket-sluice/x"})
    one_line_error(result, "--output_root 's3://no-such-bucket-sluice/x': not writable")
    nothing_ran(sluice_home)


def test_missing_credentials(base_args, sluice_home, monkeypatch):
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = invoke(base_args, "--use-local-creds")
    one_line_error(result, "--use-local-creds: AWS_SECRET_ACCESS_KEY not set")
    nothing_ran(sluice_home)


def test_unreachable_nomad(base_args, sluice_home, monkeypatch):
    monkeypatch.setenv("NOMAD_ADDR", f"http://127.0.0.1:{free_port()}")
    one_line_error(invoke({**base_args, "--backend": "nomad"}), "Nomad")
    nothing_ran(sluice_home)


def test_unknown_parameterized_job(base_args, sluice_home, monkeypatch, nomad_api, tmp_path):
    monkeypatch.setenv("NOMAD_ADDR", nomad_api.url)
    monkeypatch.setenv("NOMAD_TOKEN", nomad_api.token)
    empty = tmp_path / "no-specs"
    empty.mkdir()
    result = invoke({**base_args, "--backend": "nomad", "--nomad_spec_dir": str(empty)})
    one_line_error(result, "unknown parameterized Nomad job 'pipeline'")
    assert NomadApi(nomad_api.settings()).client.jobs.get_jobs() == []
    nothing_ran(sluice_home)


# New flags, as a table checked by the shared assert_refused (exit 2, one line, nothing written).
# Each case: (id, flags replacing or added to the base command, what the line must name).
NEW_FLAG_CASES = [
    ("unknown collection", {"--collection": "no-such-collection"}, "--collection"),
    ("collection with a slash", {"--collection": "../etc"}, "--collection"),
    ("on_missing not a choice", {"--on_missing": "maybe"}, "'maybe' is not one of"),
    ("temp_dir is a file", {"--temp_dir": "/etc/hostname/aois"}, "--temp_dir"),
    ("temp_dir is an existing file", {"--temp_dir": "/etc/hostname"}, "--temp_dir"),
    ("local output to S3", {"--use-local-output": ""}, "--use-local-output"),
]


@pytest.mark.parametrize(
    ("overrides", "names"), [pytest.param(o, n, id=i) for i, o, n in NEW_FLAG_CASES]
)
def test_new_flags_refused(overrides, names, base_args, tmp_path):
    argv = ["stac-batch", *(x for kv in {**base_args, **overrides}.items() for x in kv if x)]
    assert_refused(BadInput(argv, names), tmp_path / "home", watched=[tmp_path / "out"])


def test_a_report_of_an_unknown_batch_is_refused(tmp_path):
    argv = ["stac-report", "--batch_name", "nosuch", "--report_dir", str(tmp_path / "report")]
    line = assert_refused(BadInput(argv, "--batch_name 'nosuch': no such batch"), tmp_path / "h")
    assert not (tmp_path / "report").exists() and "no such batch" in line
