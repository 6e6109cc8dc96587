"""A batch's job logs, saved in the layout of the seed's persisted Nomad logs.

The seed's ``persist-logs`` tasks copy each dispatched job's logs to
``<log_dir>/<job>/<dispatched job id>/<task>.stderr.0``, the dispatched id carrying
``[batch_name=...,aoi_name=...,...]``; ``local_reports.py`` reads that tree. Sluice
saves what its jobs logged the same way (one directory per job and item), so the
seed's script and ``sluice stac-report`` read the same files:

- ``pipeline/dispatch-[batch_name=B,aoi_name=X,collection=C]-<job>/coordinator.stderr.0``
- ``hand_inundator|fim_mosaicker|agreement_maker/dispatch-[batch_name=B,aoi_name=X,
  entry=N]-<job>/processor.stderr.0``: one stage entry's part of a stage job's log.

A stage job runs many entries; it prints ``ENTRY_MARK <n>`` before entry ``n`` so its
log can be split per entry (lines before the first mark belong to every entry).
Only each item's newest attempt stays in the tree: ``supersede`` moves older ones aside.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

JOB_TASKS = {
    "pipeline": "coordinator",
    "hand_inundator": "processor",
    "fim_mosaicker": "processor",
    "agreement_maker": "processor",
}
STAGE_JOBS = {
    "inundate": "hand_inundator",
    "mosaic": "fim_mosaicker",
    "agreement": "agreement_maker",
}
ENTRY_MARK = "sluice-entry"
_AOI = re.compile(r"aoi_name=([^,\]]+)")
# a JSON object, possibly holding objects one level deep (structured log lines)
_ENTRY_LINE = re.compile(ENTRY_MARK + r" ([0-9]{1,9})")
_JSON_OBJECT = re.compile(r"\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}")


@dataclass(frozen=True)
class Message:
    """One log message of an item's job, with the file it came from (relative to the tree)."""

    aoi: str
    job: str
    task: str
    file: str
    message: str


def log_messages(text: str) -> list[str]:
    """The messages of a log as the seed reads them: each JSON object's ``message``
    (the object itself when it is not JSON), then every line not starting with ``{``."""
    messages = []
    for match in _JSON_OBJECT.findall(text):
        try:
            parsed = json.loads(match)
        except json.JSONDecodeError:
            messages.append(match)
            continue
        messages.append(str(parsed.get("message", "")) if isinstance(parsed, dict) else match)
    stripped = (line.strip() for line in text.split("\n"))
    return messages + [line for line in stripped if line and not line.startswith("{")]


def split_entries(text: str, count: int) -> list[str]:
    """A stage job's log cut at its entry marks: one text per entry, each with the lines
    before the first mark; an entry that never started gets the job's last part
    (it ran into whatever ended the job)."""
    head: list[str] = []
    parts: dict[int, list[str]] = {}
    current: list[str] = head
    last = None
    for line in text.splitlines(keepends=True):
        mark = _ENTRY_LINE.fullmatch(line.rstrip("\n"))
        if mark and int(mark[1]) < count:
            last = int(mark[1])
            current = parts.setdefault(last, [])
            continue
        current.append(line)  # the job's own output, even when it looks like a mark
    tail = parts.get(last, []) if last is not None else []
    return ["".join(head + parts.get(n, tail)) for n in range(count)]


class LogTree:
    """The seed-layout log directory of one batch."""

    def __init__(self, root: Path, batch: str) -> None:
        self.root = root
        self.batch = batch

    def path(self, job: str, aoi: str, tags: dict[str, str], name: str) -> Path:
        labels = ",".join(
            [f"batch_name={self.batch}", f"aoi_name={aoi}"] + [f"{k}={v}" for k, v in tags.items()]
        )
        return self.root / job / f"dispatch-[{labels}]-{name}" / f"{JOB_TASKS[job]}.stderr.0"

    def write(self, job: str, aoi: str, tags: dict[str, str], name: str, text: str) -> Path:
        """Save (append to) one item's part of job ``name``'s log."""
        path = self.path(job, aoi, tags, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as out:
            out.write(text)
        return path

    def _dispatch_dirs(self) -> Iterator[tuple[str, Path]]:
        if not self.root.is_dir():
            return
        for job_dir in sorted(self.root.iterdir()):
            if job_dir.name in JOB_TASKS and job_dir.is_dir():
                for dispatch in sorted(job_dir.iterdir()):
                    if dispatch.is_dir() and (aoi := aoi_of(dispatch.name)):
                        yield aoi, dispatch

    def supersede(self, items: Collection[str], archive: Path) -> int:
        """Move the saved logs of ``items`` (about to run again) under ``archive/<time>/``."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        moved = 0
        for aoi, dispatch in list(self._dispatch_dirs()):
            if aoi in items:
                target = archive / stamp / dispatch.parent.name / dispatch.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(dispatch, target)
                moved += 1
        return moved

    def messages(self) -> Iterator[Message]:
        """Every message of every saved log, in a stable order."""
        for aoi, dispatch in self._dispatch_dirs():
            job = dispatch.parent.name
            task = JOB_TASKS[job]
            for path in sorted(dispatch.glob(f"{task}.stderr.*")):
                text = path.read_text(encoding="utf-8", errors="ignore")
                file = str(path.relative_to(self.root))
                for message in log_messages(text):
                    yield Message(aoi, job, task, file, message)


def aoi_of(dispatch_name: str) -> str | None:
    """The ``aoi_name`` tag of a dispatched job's id (the seed's rule), if any."""
    match = _AOI.search(dispatch_name)
    return match.group(1) if match else None
