"""A STAC batch's report: the seed's ``local_reports.py`` rules, files and names.

Read from the batch's saved logs (``sluice.stac.logs``, the seed's layout), message by
message, as the seed does:

- ``pipeline`` jobs: "Pipeline SUCCESS" -> success; else "Pipeline exiting early" ->
  early exit; else "Pipeline FAILED" -> failed; else a job error (OOM,
  HTTPConnectionPool, BaseNomadException, JobStatus.LOST/STOPPED/CANCELLED,
  botocore ClientError) -> job errors. Matching ignores case, as the seed's.
- ``fim_mosaicker`` / ``agreement_maker`` jobs: "error" or "warn" not in the seed's
  list of harmless messages -> agr_mos errors; "Agreement map contains no valid data"
  -> ignorable.
- ``hand_inundator`` jobs: "error" or "warn" not in its harmless list -> inundate errors.

Then, over the run list: silent failures are items with no success, early exit or
failed message (never ran, never found, or still running); the unique failures are
the failed, silent, job-error, agr_mos-error and inundate-error items; successes are
successes and early exits that did not fail; an item whose only trouble is ignorable
is a success. ``unique_fail_aoi_names.txt`` is what ``--resubmit-failed`` reruns.

Sluice adds ``not_found_aois.txt`` (ids the STAC API did not hold; also silent
failures, as in the seed), ``outcomes.json`` (each item's newest ledger outcome)
and ``summary.json``. Message lists are sorted (the seed's follow directory order).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sluice.ledger.base import Attempt
from sluice.stac.logs import Message

FAILED_ITEMS = "unique_fail_aoi_names.txt"  # what --resubmit-failed reruns


def _any(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


SUCCESS = _any("Pipeline SUCCESS")
EARLY_EXIT = _any("Pipeline exiting early")
FAILED = _any("Pipeline FAILED")
JOB_ERROR = _any(
    r"OOM",
    r"HTTPConnectionPool",
    r"BaseNomadException",
    r"JobStatus\.(LOST|STOPPED|CANCELLED)",
    r"botocore\.exceptions\.ClientError",
)
ERROR_OR_WARNING = _any(r"error", r"warn")
AGR_MOS_HARMLESS = _any(
    r"Agreement map contains no valid data",
    r"distributed\.shuffle",
    r"No features found",
    r"Worker is at",
    r"distributed\.worker\.memory - WARNING - Unmanaged memory use is high",
    r"gc\.collect",
    r"Warning 1: Request for \d+-\d+ failed with response_code=\d+",
    r"Failed to communicate with scheduler during heartbeat",
    r"NotGeoreferencedWarning",
    r"distributed\.comm\.core\.CommClosedError",
    r"UserWarning: Sending large graph",
    r"is already in use",
    r"warnings\.warn",
    r"has GPKG application_id",
    r"distributed\.nanny - WARNING - Worker process still alive",
)
INUNDATE_HARMLESS = _any(
    r"No matching forecast data",
    r"'NoneType' is not iterable",
    r"No catchments with negative LakeID",
)
IGNORABLE = _any("Agreement map contains no valid data")
FAILED_MARK = "Pipeline FAILED"
EARLY_EXIT_MARK = "Pipeline exiting early"
SUCCESS_MARK = "Pipeline SUCCESS"

# the per-message categories, in the seed's file order; those with message lists
CATEGORIES = (
    "success",
    "early_exit",
    "failed",
    "job_errors",
    "agr_mos_errors",
    "inundate_errors",
    "ignorable_errors",
)
WITH_MESSAGES = ("job_errors", "agr_mos_errors", "inundate_errors", "ignorable_errors")


def categories(message: Message) -> list[str]:
    """The seed's categories of one message of one job's log."""
    text = message.message
    if message.job == "pipeline":
        for name, pattern in (
            ("success", SUCCESS),
            ("early_exit", EARLY_EXIT),
            ("failed", FAILED),
            ("job_errors", JOB_ERROR),
        ):
            if pattern.search(text):
                return [name]
        return []
    found = []
    if message.job in ("agreement_maker", "fim_mosaicker"):
        if ERROR_OR_WARNING.search(text) and not AGR_MOS_HARMLESS.search(text):
            found.append("agr_mos_errors")
        if IGNORABLE.search(text):
            found.append("ignorable_errors")
    elif (
        message.job == "hand_inundator"
        and ERROR_OR_WARNING.search(text)
        and not INUNDATE_HARMLESS.search(text)
    ):
        found.append("inundate_errors")
    return found


@dataclass
class BatchReport:
    """Every file of the seed's report, plus Sluice's additions."""

    run_list: list[str]
    found: dict[str, set[str]]  # category -> items (the seed's intermediate lists)
    rows: dict[str, list[dict[str, str]]]  # category -> message rows
    silent: set[str]
    success: set[str]  # unique_success_aoi_names
    failed: set[str]  # unique_fail_aoi_names
    ignorable: set[str]  # truly ignorable: no real agreement/mosaic/inundate error
    missing: set[str] | None  # the seed's missing_aois.txt: only when counts disagree
    not_found: list[str] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        return {
            "items": len(set(self.run_list)),
            "success": len(self.success),
            "failed": len(self.failed),
            "silent_failures": len(self.silent),
            "not_found": len(self.not_found),
            **{f"{name}_aois": len(self.found[name]) for name in CATEGORIES},
        }


def build_report(
    run_list: Sequence[str],
    messages: Iterable[Message],
    not_found: Sequence[str] = (),
    latest: Mapping[str, Attempt] | None = None,
) -> BatchReport:
    """Apply the seed's rules to every message, then its set logic over ``run_list``."""
    found: dict[str, set[str]] = {name: set() for name in CATEGORIES}
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    for message in messages:
        for name in categories(message):
            found[name].add(message.aoi)
            if name in WITH_MESSAGES:
                rows[name].append(asdict(message))
    initial = set(run_list)
    success = found["success"] | found["early_exit"]
    silent = initial - success - found["failed"]
    failed = found["failed"] | silent | found["job_errors"]
    failed |= found["agr_mos_errors"] | found["inundate_errors"]
    success -= failed
    ignorable = found["ignorable_errors"] - found["agr_mos_errors"] - found["inundate_errors"]
    success |= ignorable
    failed -= ignorable
    counted = len(success) + len(failed)
    return BatchReport(
        run_list=list(run_list),
        found=found,
        rows={k: sorted(v, key=lambda r: (r["aoi"], r["file"])) for k, v in rows.items()},
        silent=silent,
        success=success,
        failed=failed,
        ignorable=ignorable,
        missing=initial - success - failed if counted != len(initial) else None,
        not_found=sorted(set(not_found)),
        outcomes={i: str(a.outcome or "running") for i, a in (latest or {}).items()},
    )


def _lines(items: Iterable[str]) -> str:
    return "".join(f"{i}\n" for i in sorted(items))


def write_report(report: BatchReport, directory: Path) -> Path:
    """Write the seed's report files (and Sluice's three) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, Iterable[str]] = {
        f"{name}_aois.txt": report.found[name] for name in CATEGORIES[:-1]
    }
    files |= {
        "sorted-run-list.txt": set(report.run_list),
        "silent_failures.txt": report.silent,
        "ignorable_errors_aois.txt": report.ignorable,
        "unique_success_aoi_names.txt": report.success,
        FAILED_ITEMS: report.failed,
        "not_found_aois.txt": report.not_found,
    }
    if report.missing is not None:
        files["missing_aois.txt"] = report.missing
    for name, items in files.items():
        (directory / name).write_text(_lines(items))
    for name, rows in report.rows.items():
        if rows:
            (directory / f"{name}.json").write_text(json.dumps(rows, indent=2))
    (directory / "outcomes.json").write_text(json.dumps(report.outcomes, indent=1, sort_keys=True))
    (directory / "summary.json").write_text(json.dumps(report.summary(), indent=1))
    return directory


def item_succeeded(item: str, messages: Iterable[Message]) -> bool:
    """Whether the seed's rules call ``item`` a success, from its own messages."""
    return item in build_report([item], messages).success


def stage_errors(item: str, messages: Iterable[Message]) -> bool:
    """Whether the seed's rules find an agreement, mosaic or inundate error of ``item``."""
    found = build_report([item], messages).found
    return item in found["agr_mos_errors"] | found["inundate_errors"]


def report_markdown(batch: str, report: BatchReport) -> str:
    """The report as a markdown artifact."""
    lines = [f"# STAC batch `{batch}`", "", "| category | items |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report.summary().items()]
    if report.failed:
        shown = ", ".join(f"`{i}`" for i in sorted(report.failed)[:50])
        lines += ["", f"**Failed** ({len(report.failed)}): {shown}"]
    if report.silent:
        shown = ", ".join(f"`{i}`" for i in sorted(report.silent)[:50])
        lines += ["", f"**Silent failures** ({len(report.silent)}): {shown}"]
    return "\n".join(lines)


BATCH_FILE = "batch.json"


def remember_items(
    directory: Path,
    requested: Sequence[str],
    not_found: Sequence[str],
    thresholds: tuple[int, int],
) -> tuple[list[str], list[str]]:
    """Add one run's ids to the batch's record (``batch.json``), with its admission
    thresholds (stop, resume) for the report's picture; the batch's run list (every id it
    was ever asked for) and the ids the STAC API lacked when last looked up."""
    path = directory / BATCH_FILE
    record = json.loads(path.read_text()) if path.exists() else {}
    run_list = list(dict.fromkeys([*record.get("run_list", []), *requested]))
    asked = set(requested)
    absent = [i for i in record.get("not_found", []) if i not in asked] + list(not_found)
    directory.mkdir(parents=True, exist_ok=True)
    kept = {"run_list": run_list, "not_found": absent, "thresholds": list(thresholds)}
    path.write_text(json.dumps(kept, indent=1))
    return run_list, absent


def read_batch_record(directory: Path) -> tuple[list[str], list[str], tuple[int, int] | None]:
    """The run list, not-found ids and last thresholds ``remember_items`` kept."""
    path = directory / BATCH_FILE
    record = json.loads(path.read_text()) if path.exists() else {}
    thresholds = record.get("thresholds")
    return (
        record.get("run_list", []),
        record.get("not_found", []),
        (int(thresholds[0]), int(thresholds[1])) if thresholds else None,
    )
