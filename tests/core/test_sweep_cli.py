"""`sluice sweep` bad input: one line naming the input, exit 2, nothing started or submitted."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sluice.cli import app
from tests.core.sweep_workload import write_template


@pytest.fixture
def template(tmp_path):
    return write_template(tmp_path / "job.yaml", DONE_LOG=str(tmp_path / "done.log"))


def _sweep(*args: str):
    return CliRunner().invoke(app, ["sweep", *args])


def _bad_input(tmp_path, template, extra: list[str], named: str) -> None:
    result = _sweep("--template-path", str(template), "--count", "3", *extra)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], lines


def test_dry_run_print_shows_the_seed_manifests_without_a_server(tmp_path, template, sluice_home):
    result = _sweep(
        "--template-path",
        str(template),
        "--indexes",
        "0",
        "1",
        "2",
        "--tier",
        "1",
        "--dry-run",
        "print",
    )
    assert result.exit_code == 0, result.output
    decoder, text, jobs = json.JSONDecoder(), result.stdout, []
    position = 0
    while position < len(text.rstrip()):
        job, position = decoder.raw_decode(text, position)
        jobs.append(job)
        position += 1
    assert [j["metadata"]["name"] for j in jobs] == [f"wetlands-index-{i}" for i in range(3)]
    limits = jobs[0]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"memory": "20Gi"}
    assert not (sluice_home / "server.pid").exists()


@pytest.mark.parametrize(
    "selection", [["--limit", "0"], ["--count", "0"], ["--index-file", "EMPTY"]]
)
def test_an_empty_selection_is_nothing_to_do_and_exits_0(
    tmp_path, template, sluice_home, selection
):
    """The seed's end of a tier loop: an empty tier<N>-failures.txt runs nothing, exit 0."""
    empty = tmp_path / "tier0-failures.txt"
    empty.write_text("")
    args = [str(empty) if a == "EMPTY" else a for a in selection]
    result = _sweep("--template-path", str(template), "--tier", "1", *args)
    assert result.exit_code == 0, result.output
    assert result.stdout == "No indexes resolved; nothing to do.\n"
    assert not sluice_home.exists()  # no server, no ledger


def test_without_tier_a_line_says_escalation_is_off(tmp_path, template, sluice_home):
    result = _sweep("--template-path", str(template), "--count", "1", "--dry-run", "print")
    assert result.exit_code == 0, result.output
    assert "OOM escalation is off (no --tier)" in result.stderr
    assert "no memory limit" in result.stderr  # the test template sets none
    tiered = _sweep(
        "--template-path", str(template), "--count", "1", "--dry-run", "print", "--tier", "0"
    )
    assert "escalation is off" not in tiered.stderr
    fixed = _sweep(
        "--template-path", str(template), "--count", "1", "--dry-run", "print", "--memory", "1Gi"
    )
    assert "--memory 1Gi fixes every job's memory" in fixed.stderr
    help_text = " ".join(_sweep("--help").stdout.split())
    assert "without it every job keeps the template's memory" in help_text


def test_chunk_size_0_means_one_unlabelled_chunk(tmp_path, template, sluice_home):
    result = _sweep(
        "--template-path", str(template), "--count", "3", "--chunk-size", "0", "--dry-run", "print"
    )
    assert result.exit_code == 0, result.output
    assert "wetlands/batch" not in result.stdout and result.stdout.count('"kind": "Job"') == 3


@pytest.mark.parametrize(
    ("lines", "named"),
    [("1\nseven\n", "line 2: 'seven'"), ("3\n-1\n", "line 2: '-1'")],
)
def test_malformed_index_file(tmp_path, template, sluice_home, lines, named):
    index_file = tmp_path / "indexes.txt"
    index_file.write_text(lines)
    _bad_input(tmp_path, template, ["--index-file", str(index_file)], named)
    assert not sluice_home.exists()


def test_unreadable_index_file(tmp_path, template, sluice_home):
    _bad_input(tmp_path, template, ["--index-file", str(tmp_path / "nope.txt")], "--index-file")


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--tier", "3", "--max-tier", "2"], "--max-tier 2 is below --tier 3"),
        (["--tier", "high"], "--tier 'high'"),
        (["--memory", "lots"], "--memory: 'lots'"),
        (["--cpu", "two"], "--cpu: 'two'"),
        (["--chunk-size", "2", "--batch-label-template", "c-{shard}"], "{shard}"),
        (["--wait-timeout", "soon"], "--wait-timeout"),
        (["--job-name-prefix", "Bad_Prefix"], "--job-name-prefix"),
        (["--dry-run", "server"], "--dry-run server needs --backend kubernetes"),
    ],
)
def test_bad_flags(tmp_path, template, sluice_home, extra, named):
    _bad_input(tmp_path, template, extra, named)
    assert not sluice_home.exists()


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (None, "cannot read"),
        ("kind: Pod\n", "not a Kubernetes Job"),
        ("kind: Job\nspec: {template: {spec: {containers: []}}}\n", "no containers"),
        ("kind: Job\nspec: [unclosed\n", "--template-path"),
    ],
)
def test_bad_templates(tmp_path, sluice_home, content, named):
    path = tmp_path / "template.yaml"
    if content is not None:
        path.write_text(content)
    _bad_input(tmp_path, path, [], named)


def test_unreachable_cluster_is_one_line_before_anything_starts(
    tmp_path, template, sluice_home, monkeypatch
):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        "clusters: [{name: gone, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: u, namespace: ns}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    _bad_input(tmp_path, template, ["--backend", "kubernetes"], "127.0.0.1:9")
    assert not sluice_home.exists()
