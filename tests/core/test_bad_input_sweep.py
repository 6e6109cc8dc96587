"""`sluice sweep` hostile and careless inputs: each refused as one line naming the input,
exit 2, no traceback, before a server, ledger, job or report exists (tests/bad_input.py).

Paths in a case are written ``{tmp}/...`` and filled in per test; ``{tmp}`` holds a valid
template (``job.yaml``), a FIFO, a directory, a binary file and the bad templates below.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.bad_input import BadInput, assert_refused
from tests.core.sweep_workload import write_template

BAD_TEMPLATES = {
    "command5.yaml": "kind: Job\nspec: {template: {spec: {containers: [{name: c, command: 5}]}}}\n",
    "envint.yaml": (
        "kind: Job\nspec: {template: {spec: {containers: "
        "[{name: c, command: [x], env: [{name: A, value: 5}]}]}}}\n"
    ),
    "memlots.yaml": (
        "kind: Job\nspec: {template: {spec: {containers: "
        "[{name: c, command: [x], resources: {limits: {memory: lots}}}]}}}\n"
    ),
    "nocontainers.yaml": "kind: Job\nspec: {template: {spec: {containers: x}}}\n",
    "pod.yaml": "kind: Pod\n",
    "specnotmap.yaml": "kind: Job\nspec: [1, 2]\n",
    "aliases.yaml": "kind: Job\n"
    + "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i else '0'] * 10)}]\n" for i in range(7)),
    "deep.yaml": "kind: Job\nspec: " + "[" * 3000 + "]" * 3000 + "\n",
    "unclosed.yaml": "kind: Job\nspec: [unclosed\n",
}


def _run(*extra: str) -> list[str]:
    return ["sweep", "--template-path", "{tmp}/job.yaml", "--count", "3", *extra]


CASES = [
    # the tier schedule
    BadInput(_run("--tier", "0", "--schedule-factor", "0"), "--schedule-factor"),
    BadInput(_run("--tier", "0", "--schedule-factor", "0.5"), "--schedule-factor 0.5"),
    BadInput(_run("--schedule-factor", "nan"), "--schedule-factor nan"),
    BadInput(_run("--schedule-factor", "inf"), "--schedule-factor inf"),
    BadInput(_run("--schedule-factor", "-2"), "--schedule-factor -2"),
    BadInput(_run("--schedule-start-gi", "nan"), "--schedule-start-gi nan"),
    BadInput(_run("--schedule-start-gi", "0.0000001"), "--schedule-start-gi 1e-07"),
    BadInput(_run("--schedule-start-gi", "0"), "--schedule-start-gi 0"),
    BadInput(_run("--schedule-start-gi", "-1"), "--schedule-start-gi -1"),
    BadInput(_run("--schedule-start-gi", "inf"), "--schedule-start-gi inf"),
    BadInput(_run("--schedule-start-gi", "1e300"), "--schedule-start-gi 1e+300"),
    BadInput(_run("--max-tier", "-1"), "--max-tier -1"),
    BadInput(_run("--max-tier", "99"), "--max-tier 99"),
    BadInput(_run("--tier", "4", "--max-tier", "3"), "--max-tier 3 is below --tier 4"),
    BadInput(_run("--tier=-1"), "--tier '-1'"),
    BadInput(_run("--tier", "99999999999999"), "--tier"),
    BadInput(_run("--tier", "high"), "--tier 'high'"),
    # sizes and counts
    BadInput(_run("--parallelism", "-3"), "--parallelism -3"),
    BadInput(_run("--parallelism", "0"), "--parallelism 0"),
    BadInput(_run("--parallelism", "1000001"), "--parallelism 1000001"),
    BadInput(_run("--ttl", "-5"), "--ttl -5"),
    BadInput(_run("--ttl", "99999999999"), "--ttl 99999999999"),
    BadInput(_run("--backoff-limit", "-1"), "--backoff-limit -1"),
    BadInput(_run("--memory", "99999999Ei"), "--memory"),
    BadInput(_run("--memory", "0"), "--memory"),
    BadInput(_run("--memory", "nan"), "--memory"),
    BadInput(_run("--memory", "9" * 40 + "Gi"), "--memory"),
    BadInput(_run("--cpu", "nan"), "--cpu"),
    BadInput(_run("--cpu", "1e9999"), "--cpu"),
    BadInput(_run("--cpu", "0"), "--cpu"),
    BadInput(_run("--wait-timeout", "nan"), "--wait-timeout"),
    BadInput(_run("--wait-timeout", "0"), "--wait-timeout"),
    BadInput(_run("--wait-timeout", "-5"), "--wait-timeout"),
    BadInput(_run("--chunk-size", "-1"), "--chunk-size -1"),
    # the selection
    BadInput(_run("--count", "99999999999"), "--count"),
    BadInput(_run("--count=-1"), "--count -1"),
    BadInput(_run("--start=-5"), "--start -5"),
    BadInput(_run("--start", "999999999999999"), "--start"),
    BadInput(_run("--limit=-1"), "--limit -1"),
    BadInput(_run("--indexes", "1,-4"), "--indexes: -4 is negative"),
    BadInput(_run("--indexes", "1,abc"), "--indexes: 'abc'"),
    BadInput(_run("--index-file", "{tmp}/fifo"), "--index-file", "index file is a FIFO"),
    BadInput(_run("--index-file", "{tmp}/dir"), "--index-file", "index file is a directory"),
    BadInput(_run("--index-file", "{tmp}/missing"), "--index-file", "index file is missing"),
    BadInput(_run("--index-file", "{tmp}/binary"), "--index-file", "index file is binary"),
    BadInput(_run("--index-file", "{tmp}/huge-index"), "line 1", "index file number too big"),
    # names
    BadInput(_run("--namespace", ""), "--namespace ''"),
    BadInput(_run("--namespace", "Bad_NS"), "--namespace 'Bad_NS'"),
    BadInput(_run("--namespace", "a" * 64), "--namespace"),
    BadInput(_run("--namespace", "ns\nx"), "--namespace"),
    BadInput(_run("--job-name-prefix", "Bad_Prefix"), "--job-name-prefix"),
    BadInput(_run("--job-name-prefix", "a" * 60), "--job-name-prefix"),
    BadInput(_run("--source-job", "../x"), "--source-job"),
    BadInput(_run("--batch-label", "bad label!"), "--batch-label"),
    BadInput(
        _run("--chunk-size", "1", "--batch-label-template", "{chunk:>999999999}"),
        "--batch-label-template",
        "label template width bomb",
    ),
    BadInput(
        _run("--chunk-size", "1", "--batch-label-template", "{chunk:>{start}}"),
        "--batch-label-template",
        "label template nested width",
    ),
    BadInput(
        _run("--chunk-size", "1", "--batch-label-template", "{shard}"), "--batch-label-template"
    ),
    BadInput(
        _run("--chunk-size", "1", "--batch-label-template", "x" * 100_000),
        "--batch-label-template",
        "label template 100 kB",
    ),
    # outputs and modes
    BadInput(_run("--report-dir", "{tmp}/binary"), "--report-dir", "report dir is a file"),
    BadInput(_run("--report-dir", "{tmp}/binary/sub"), "--report-dir", "report dir under a file"),
    BadInput(_run("--dry-run", "server"), "--dry-run server needs --backend kubernetes"),
    BadInput(
        ["sweep", "--template-path", "{tmp}/job.yaml", "--count", "18587", "--mode", "indexed"],
        "--mode indexed --chunk-size 0",
        "indexed chunk too big for one Job",
    ),
]

TEMPLATE_CASES = [
    BadInput(["sweep", "--template-path", "{tmp}/fifo"], "--template-path", "template FIFO"),
    BadInput(["sweep", "--template-path", "{tmp}/dir"], "--template-path", "template dir"),
    BadInput(["sweep", "--template-path", "{tmp}/binary"], "--template-path", "template binary"),
    BadInput(["sweep", "--template-path", "/dev/zero"], "--template-path", "template device"),
    BadInput(["sweep", "--template-path", "{tmp}/huge"], "--template-path", "template 2 MiB"),
    BadInput(["sweep", "--template-path", "{tmp}/missing"], "--template-path", "no template"),
    *[
        BadInput(["sweep", "--template-path", f"{{tmp}}/{name}"], "--template-path", name)
        for name in BAD_TEMPLATES
    ],
]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    write_template(work / "job.yaml", DONE_LOG=str(work / "done.log"))
    os.mkfifo(work / "fifo")
    (work / "dir").mkdir()
    (work / "binary").write_bytes(bytes(range(256)) * 4)
    (work / "huge").write_text("# padding\n" * 210_000)
    (work / "huge-index").write_text("9" * 14 + "\n")
    for name, text in BAD_TEMPLATES.items():
        (work / name).write_text(text)
    monkeypatch.chdir(work)  # the default --report-dir would land here
    return work


@pytest.mark.parametrize("case", [c.param() for c in CASES + TEMPLATE_CASES])
def test_sweep_refuses_bad_input(case: BadInput, workspace: Path, tmp_path: Path) -> None:
    filled = BadInput([a.replace("{tmp}", str(workspace)) for a in case.argv], case.names)
    line = assert_refused(filled, tmp_path / "home", watched=[workspace])
    assert line.startswith("error: ")


def test_the_table_is_large_enough() -> None:
    assert len(CASES) + len(TEMPLATE_CASES) >= 40
