"""Issue 15 point 9: a runid is never parsed as shell code.

In a shell-form stage command (``sh -c 'script'``) placeholders become references to the
job's environment variables (``"${SLUICE_RUNID}"``); the shell expands them as data. The
runids here come from ``wepppy/cases.geojson`` through the template evaluator, and the
real ``/bin/sh`` runs the job's argv with its environment in the run directory.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sluice.watersheds.features import load_features, validate
from sluice.watersheds.stages import Stage, StageCommand, stage_job

CASES = Path(__file__).parent / "wepppy" / "cases.geojson"
SCRIPT = (
    'echo {runid} > runid.txt; echo "quoted {runid} in {stage}" >> runid.txt; '
    "cat >> runid.txt <<EOF\n{runid}\nEOF"
)


def runids() -> list[str]:
    validation = validate(load_features(CASES), "{properties['Code']}")
    assert validation.ok
    return [w.runid for w in validation.watersheds]


def test_the_hostile_runids_are_accepted_as_runids() -> None:
    assert runids() == ["a;touch X;b", "$(touch Y)", "`touch Z`"]


SHELL_FORMS = [
    ["/bin/sh", "-c"],
    ["bash", "-o", "pipefail", "-c"],
    ["sh", "-ec"],
    ["timeout", "60", "sh", "-c"],
    ["/usr/bin/env", "bash", "-c"],
    ["bash", "--norc", "-e", "-c", "--"],
]


@pytest.mark.parametrize("shell", SHELL_FORMS, ids=" ".join)
@pytest.mark.parametrize("runid", runids())
def test_a_shell_form_command_never_executes_a_runid(
    runid: str, shell: list[str], tmp_path: Path
) -> None:
    run_dir = tmp_path / "runs" / runid
    run_dir.mkdir(parents=True)
    command = StageCommand(command=[*shell, SCRIPT])
    job = stage_job(
        command, batch="b", runid=runid, run_dir=run_dir, stage=Stage.BUILD_SOILS, token="t"
    )

    done = subprocess.run(
        job.command, cwd=job.workdir, env={**os.environ, **job.env}, capture_output=True
    )

    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == ["runid.txt"]  # no X, Y or Z
    assert not any((tmp_path / name).exists() for name in ("X", "Y", "Z"))
    assert (run_dir / "runid.txt").read_text().splitlines() == [
        runid,
        f"quoted {runid} in build_soils",
        f'"{runid}"',  # a here-document keeps the quotes, and still runs nothing
    ]
    assert job.env["SLUICE_RUNID"] == runid and job.env["SLUICE_RUN_DIR"] == str(run_dir)


def test_an_exec_form_command_gets_the_runid_as_one_argument(tmp_path: Path) -> None:
    job = stage_job(
        StageCommand(command=["printf", "%s|", "{runid}", "{stage}"]),
        batch="b",
        runid="a;touch X;b",
        run_dir=tmp_path,
        stage=Stage.BUILD_SOILS,
        token="t",
    )
    assert job.command == ["printf", "%s|", "a;touch X;b", "build_soils"]


@pytest.mark.parametrize(
    "script", ["echo '{runid}'", "echo 'x' '{run_dir}/a'", "echo {runid!r}", "echo {runid:>5}"]
)
def test_a_placeholder_the_shell_would_not_expand_is_refused(script: str) -> None:
    with pytest.raises(ValueError, match="must stand outside single quotes"):
        StageCommand(command=["bash", "-lc", script])
