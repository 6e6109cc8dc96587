"""Ledger locations: private files, no surprise directories, bad URLs refused in one line."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sluice.errors import BackendUnavailable, SluiceInputError
from sluice.jobs import JobResult, Outcome
from sluice.ledger import open_ledger
from tests.bad_input import BadInput, assert_refused
from tests.core.test_ledger import planned


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_ledger_and_its_wal_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    ledger = open_ledger(f"sqlite:///{path}")
    try:
        (attempt,) = ledger.begin("run", "wl", planned("0"))
        ledger.finish(attempt, JobResult(name="j", outcome=Outcome.SUCCEEDED))
        files = [path, path.with_name("ledger.db-wal"), path.with_name("ledger.db-shm")]
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        ledger.close()


def test_the_default_ledger_is_made_in_a_private_home(sluice_home: Path, monkeypatch) -> None:
    monkeypatch.delenv("SLUICE_LEDGER_URL", raising=False)
    open_ledger().close()
    assert _mode(sluice_home) == 0o700 and _mode(sluice_home / "ledger.db") == 0o600


@pytest.mark.parametrize(
    ("relative", "named"),
    [("missing/dir/ledger.db", "does not exist"), ("", "a directory, not a SQLite file")],
)
def test_a_sqlite_path_that_cannot_be_a_ledger_is_one_line(
    tmp_path: Path, relative: str, named: str
) -> None:
    url = f"sqlite:///{tmp_path / relative}" + ("/" if not relative else "")
    with pytest.raises(SluiceInputError) as refused:
        open_ledger(url)
    assert named in str(refused.value) and "\n" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []  # no directory made, no file


def test_an_unwritable_sqlite_location_is_one_line() -> None:
    """/proc takes no new files, even from root."""
    with pytest.raises(BackendUnavailable) as refused:
        open_ledger("sqlite:////proc/sluice-ledger.db")
    message = str(refused.value)
    assert "/proc/sluice-ledger.db is unreachable" in message and "\n" not in message


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("mysql://x", "SLUICE_LEDGER_URL='mysql://x': expected sqlite:///PATH"),
        ("sqlite:////nonexistent/sluice/ledger.db", "'/nonexistent/sluice' does not exist"),
        ("block:sluice-ledger", "SLUICE_LEDGER_URL='block:sluice-ledger': expected sqlite"),
        ("x" * 5000, "SLUICE_LEDGER_URL='xxxxx"),
    ],
    ids=["mysql", "missing-directory", "block-name", "long"],
)
def test_a_bad_ledger_url_in_the_environment_is_refused_before_anything_starts(
    tmp_path: Path, url: str, names: str
) -> None:
    template = tmp_path / "job.yaml"
    template.write_text("kind: Job\n")
    case = BadInput(["sweep", "--template-path", str(template), "--count", "1"], names)
    assert_refused(case, tmp_path / "home", watched=[tmp_path], env={"SLUICE_LEDGER_URL": url})


def test_a_refused_ledger_url_never_shows_its_password() -> None:
    from sluice.errors import SluiceInputError
    from sluice.ledger import check_ledger_url

    with pytest.raises(SluiceInputError) as refused:
        check_ledger_url("postgresq://sluice:hunter2@db/ledger", name="--ledger-url")
    assert "hunter2" not in str(refused.value) and "***@db/ledger" in str(refused.value)
