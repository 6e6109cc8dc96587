"""A STAC batch's report: the seed's ``local_reports.py`` categories and files.

Built from Sluice's own records (each item's newest ledger attempt) and the
logs it saved, not from scraping a log directory tree:

- success: the pipeline succeeded, including "Pipeline exiting early"
  (expected empty) and "Agreement map contains no valid data" (ignorable);
- failed: any other ending (a failed job, OOM, lost, "Pipeline FAILED");
- silent failures: items of the run list with neither (never ran, or still running);
- missing: ids no STAC collection holds;
- job errors by kind (``<kind>_aois.txt`` and ``<kind>_errors.json`` with
  ``{aoi, job, task, file, message}`` rows): OOM, HTTPConnectionPool,
  BaseNomadException, JobStatus LOST/STOPPED/CANCELLED, botocore ClientError.

Files: ``sorted-run-list.txt``, ``unique_success_aoi_names.txt``,
``unique_fail_aoi_names.txt`` (feed it back with ``--resubmit-failed``),
``silent_failures.txt``, ``missing_aois.txt``, ``ignorable_errors_aois.txt``,
``success_aois.txt``, ``failed_aois.txt``, ``summary.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sluice.jobs import Outcome
from sluice.ledger.base import Attempt

ERROR_KINDS = {
    "oom": re.compile(r"\bOOM\b|OutOfMemory|OOM[- ]?[Kk]ill"),
    "http_connection": re.compile(r"HTTPConnectionPool"),
    "nomad_api": re.compile(r"BaseNomadException"),
    "job_status": re.compile(r"JobStatus\.(LOST|STOPPED|CANCELLED)"),
    "s3_client": re.compile(r"botocore\.exceptions\.ClientError|\bClientError\b"),
}
_OUTCOME_KINDS = {
    Outcome.OOM: ("oom", "OOM: {message}"),
    Outcome.LOST: ("job_status", "JobStatus.LOST: {message}"),
    Outcome.CANCELLED: ("job_status", "JobStatus.CANCELLED: {message}"),
    Outcome.TIMEOUT: ("job_status", "JobStatus.STOPPED (timeout): {message}"),
}
IGNORABLE = "Agreement map contains no valid data"
FAILED_MARK = "Pipeline FAILED"


@dataclass
class BatchReport:
    """Every category of the seed's report, as sorted item lists."""

    run_list: list[str]
    success: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    ignorable: list[str] = field(default_factory=list)
    errors: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        return {
            "items": len(self.run_list),
            "success": len(self.success),
            "failed": len(self.failed),
            "silent_failures": len(self.silent),
            "missing": len(self.missing),
            "ignorable": len(self.ignorable),
            **{
                f"{kind}_errors": len({e["aoi"] for e in rows})
                for kind, rows in self.errors.items()
            },
        }


def build_report(
    run_list: Sequence[str],
    missing: Sequence[str],
    latest: Mapping[str, Attempt],
    logs: Mapping[str, str],
) -> BatchReport:
    """Classify every item of ``run_list`` from its newest attempt and saved log."""
    report = BatchReport(run_list=sorted(run_list), missing=sorted(missing))
    errors: dict[str, list[dict[str, str]]] = {kind: [] for kind in ERROR_KINDS}
    for item in report.run_list:
        if item in missing:
            continue
        attempt = latest.get(item)
        if attempt is None or attempt.running:
            report.silent.append(item)
            continue
        log = logs.get(item, "")
        (report.success if attempt.outcome is Outcome.SUCCEEDED else report.failed).append(item)
        if IGNORABLE in log:
            report.ignorable.append(item)
        row = {"aoi": item, "job": attempt.job_name, "task": attempt.workload, "file": ""}
        if attempt.outcome in _OUTCOME_KINDS:
            kind, template = _OUTCOME_KINDS[attempt.outcome]
            errors[kind].append({**row, "message": template.format(message=attempt.message)})
        for number, line in enumerate(log.splitlines(), 1):
            for kind, pattern in ERROR_KINDS.items():
                if pattern.search(line):
                    errors[kind].append({**row, "file": f"log:{number}", "message": line.strip()})
    report.errors = errors
    return report


def write_report(report: BatchReport, directory: Path) -> Path:
    """Write the seed's report files into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "sorted-run-list.txt": report.run_list,
        "success_aois.txt": report.success,
        "failed_aois.txt": report.failed,
        "unique_success_aoi_names.txt": report.success,
        "unique_fail_aoi_names.txt": report.failed,
        "silent_failures.txt": report.silent,
        "missing_aois.txt": report.missing,
        "ignorable_errors_aois.txt": report.ignorable,
    }
    for kind, rows in report.errors.items():
        files[f"{kind}_aois.txt"] = sorted({r["aoi"] for r in rows})
        (directory / f"{kind}_errors.json").write_text(json.dumps(rows, indent=1))
    for name, items in files.items():
        (directory / name).write_text("".join(f"{i}\n" for i in items))
    (directory / "summary.json").write_text(json.dumps(report.summary(), indent=1))
    return directory


def report_markdown(batch: str, report: BatchReport) -> str:
    """The report as a markdown artifact."""
    lines = [f"# STAC batch `{batch}`", "", "| category | items |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report.summary().items()]
    if report.failed:
        shown = ", ".join(f"`{i}`" for i in report.failed[:50])
        lines += ["", f"**Failed** ({len(report.failed)}): {shown}"]
    if report.silent:
        lines += ["", f"**Silent failures**: {', '.join(f'`{i}`' for i in report.silent[:50])}"]
    return "\n".join(lines)


def failed_items(report_dir: Path) -> list[str]:
    """Items to resubmit from a report directory: failed and silent failures."""
    names: dict[str, None] = {}
    for file in ("unique_fail_aoi_names.txt", "silent_failures.txt"):
        path = report_dir / file
        if path.exists():
            names.update(dict.fromkeys(n for n in path.read_text().split() if n))
    return list(names)
