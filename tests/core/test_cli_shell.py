"""The CLI shell: help that fits 80 columns, completion, and failed work reported quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.core
import typer.main
from typer.testing import CliRunner

from sluice.cli import app
from tests.core.sweep_workload import write_template

SLUICE = Path(sys.executable).with_name("sluice")


def _commands(group: typer.core.TyperGroup, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*path, name), command
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_help_at_80_columns_shows_every_option_whole(path, command):
    runner = CliRunner()
    result = runner.invoke(
        app, [*path, "--help"], prog_name="sluice", terminal_width=80, env={"COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.output
    usage = result.output.splitlines()[0]
    assert usage.startswith(f"Usage: sluice {' '.join(path)}") and "{" not in usage, usage
    for param in command.params:
        for option in [*param.opts, *param.secondary_opts]:
            if option.startswith("-"):
                assert option in result.output, f"{option} is cut in:\n{result.output}"
    assert all(len(line) <= 80 for line in result.output.splitlines()), result.output


def test_shell_completion_completes_commands_and_subcommands():
    def complete(words: str) -> list[str]:
        env = {
            **os.environ,
            "_SLUICE_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - 1),
        }
        done = subprocess.run([str(SLUICE)], env=env, capture_output=True, text=True, timeout=60)
        return done.stdout.split()

    assert complete("sluice stac") == ["stac-batch", "stac-report", "stac-purge"]
    assert complete("sluice server st") == ["start", "status", "stop"]


def _failing_sweep(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    tmp_path.mkdir(exist_ok=True)
    template = write_template(tmp_path / "job.yaml", DONE_LOG=str(tmp_path / "done.log"), FAIL="1")
    argv = [str(SLUICE), *flags, "sweep", "--template-path", str(template), "--count", "2"]
    argv += ["--tier", "0", "--schedule-start-gi", "0.0625", "--report-dir", str(tmp_path / "r")]
    env = {**os.environ, "SLUICE_HOME": str(tmp_path / "home")}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.usefixtures("prefect_api")
def test_failed_work_is_one_summary_line_not_a_traceback(tmp_path):
    done = _failing_sweep(tmp_path)
    shown = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == 1, shown
    assert "Traceback" not in done.stdout + done.stderr, shown
    assert done.stderr.strip().splitlines()[-1] == (
        f"incomplete: 1 of 2 indexes did not succeed; see {tmp_path / 'r'}/items.jsonl "
        "and tier<N>-failures.txt"
    ), shown

    debug = _failing_sweep(tmp_path / "debug", "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr, debug.stderr


def test_a_ledger_in_a_missing_directory_refuses_flows_but_not_other_commands(tmp_path):
    from tests.bad_input import BadInput, assert_refused

    env = {"SLUICE_LEDGER_URL": f"sqlite:///{tmp_path}/missing/ledger.db"}
    template = write_template(tmp_path / "job.yaml", DONE_LOG=str(tmp_path / "done.log"))
    sweep = ["sweep", "--template-path", str(template), "--count", "1"]
    assert_refused(BadInput(sweep, "SLUICE_LEDGER_URL"), tmp_path / "home", env=env)
    status = subprocess.run(
        [sys.executable, "-m", "sluice.cli", "server", "status"],
        env={**os.environ, **env, "SLUICE_HOME": str(tmp_path / "home2")},
        capture_output=True,
        text=True,
    )
    assert status.returncode == 1 and status.stdout.startswith("not running"), status.stderr
