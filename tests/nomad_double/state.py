"""The double's cluster state: jobs, dispatches, evaluations, allocations, variables.

Everything is guarded by one condition variable; each table has its own Raft-like
modify index so blocking queries (``?index=N&wait=D``) wake only on changes to
the tables they read, as Nomad's do.
"""

from __future__ import annotations

import base64
import copy
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

MAX_PAYLOAD = 16 * 1024
TERMINAL_CLIENT = {"complete", "failed", "lost"}


class ApiError(Exception):
    """An HTTP error as Nomad returns it: a status code and a plain-text body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def new_id() -> str:
    return str(uuid.uuid4())


def now_ns() -> int:
    return time.time_ns()


def alloc_terminal(alloc: dict[str, Any]) -> bool:
    """Nomad's ``Allocation.TerminalStatus``: desired stop/evict or a terminal client status."""
    return alloc["DesiredStatus"] in ("stop", "evict") or alloc["ClientStatus"] in TERMINAL_CLIENT


def _defaults(job: dict[str, Any], namespace: str) -> dict[str, Any]:
    job = copy.deepcopy(job)
    job.setdefault("Name", job["ID"])
    job.setdefault("Type", "service")
    job["Namespace"] = job.get("Namespace") or namespace
    job.setdefault("Region", "global")
    job.setdefault("Priority", 50)
    job.setdefault("Datacenters", ["*"])
    job["Meta"] = job.get("Meta") or {}
    job.setdefault("ParentID", "")
    job.setdefault("Dispatched", False)
    job.setdefault("ParameterizedJob", None)
    job.setdefault("Periodic", None)
    job["Stop"] = bool(job.get("Stop", False))
    for group in job["TaskGroups"]:
        group.setdefault("Count", 1)
        group["Meta"] = group.get("Meta") or {}
        for task in group["Tasks"]:
            task["Config"] = task.get("Config") or {}
            task["Env"] = task.get("Env") or {}
            task["Meta"] = task.get("Meta") or {}
            task["Templates"] = task.get("Templates") or []
            resources = task.get("Resources") or {}
            resources.setdefault("CPU", 100)
            resources.setdefault("MemoryMB", 300)
            task["Resources"] = resources
    return job


_SPEC_KEYS = ("Status", "Version", "CreateIndex", "ModifyIndex", "JobModifyIndex", "SubmitTime")


def _spec(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if k not in _SPEC_KEYS and not k.startswith("_")}


def validate_job(job: Any) -> None:
    """The structural checks Nomad's ``Job.Validate`` makes on the fields the double uses."""
    if not isinstance(job, dict):
        raise ApiError(400, "Job must be an object")
    errors = []
    if not job.get("ID"):
        errors.append("Missing job ID")
    elif " " in job["ID"]:
        errors.append("Job ID contains a space")
    groups = job.get("TaskGroups") or []
    if not groups:
        errors.append("Missing job task groups")
    for group in groups:
        if not group.get("Name"):
            errors.append("Missing task group name")
        for task in group.get("Tasks") or []:
            if not task.get("Name"):
                errors.append("Missing task name")
            if not task.get("Driver"):
                errors.append(f"Task {task.get('Name')!r}: missing driver")
        if not group.get("Tasks"):
            errors.append(f"Task group {group.get('Name')!r}: missing tasks")
    if errors:
        count = "1 error" if len(errors) == 1 else f"{len(errors)} errors"
        raise ApiError(500, f"{count} occurred:" + "".join(f"\n\t* {e}" for e in errors) + "\n\n")


class ClusterState:
    """Jobs, evaluations, allocations and variables with per-table modify indexes."""

    def __init__(
        self,
        start_allocation: Callable[[dict[str, Any]], None],
        stop_allocation: Callable[[dict[str, Any]], None],
    ) -> None:
        self.cond = threading.Condition(threading.RLock())
        self.index = 1
        self.tables = {"jobs": 1, "allocs": 1, "evals": 1, "vars": 1}
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.allocs: dict[str, dict[str, Any]] = {}
        self.evals: dict[str, dict[str, Any]] = {}
        # Secondary indexes (Nomad's state store has them too): by job and by parent.
        self._allocs_of: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        self._evals_of: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        self._children_of: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        # Not-dead dispatched jobs per parameterized job, now and at most (admission checks).
        self.active: Counter[str] = Counter()
        self.peak_active: Counter[str] = Counter()
        self.variables: dict[tuple[str, str], dict[str, Any]] = {}
        self.losses: list[tuple[str, bool]] = []
        self._start_allocation = start_allocation
        self._stop_allocation = stop_allocation
        self.closed = False

    # -- indexes and blocking -------------------------------------------------------

    def bump(self, *tables: str) -> int:
        self.index += 1
        for table in tables:
            self.tables[table] = self.index
        self.cond.notify_all()
        return self.index

    def table_index(self, tables: tuple[str, ...]) -> int:
        return max(self.tables[t] for t in tables)

    def block(self, tables: tuple[str, ...], index: int, wait: float) -> None:
        """Wait until one of ``tables`` changes past ``index`` or ``wait`` seconds pass."""
        deadline = time.monotonic() + wait
        with self.cond:
            while self.table_index(tables) <= index and not self.closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self.cond.wait(remaining)

    # -- jobs -----------------------------------------------------------------------

    def job(self, namespace: str, job_id: str) -> dict[str, Any]:
        job = self.jobs.get((namespace, job_id))
        if job is None:
            raise ApiError(404, "job not found")
        return job

    def register(self, namespace: str, submitted: dict[str, Any]) -> dict[str, Any]:
        validate_job(submitted)
        with self.cond:
            job = _defaults(submitted, namespace)
            key = (job["Namespace"], job["ID"])
            existing = self.jobs.get(key)
            if existing is not None and _spec(existing) == _spec(job) and not existing["Stop"]:
                return {"EvalID": "", "JobModifyIndex": existing["JobModifyIndex"]}
            index = self.bump("jobs")
            job["Version"] = existing["Version"] + 1 if existing else 0
            job["CreateIndex"] = existing["CreateIndex"] if existing else index
            job["ModifyIndex"] = job["JobModifyIndex"] = index
            job["SubmitTime"] = now_ns()
            job["Status"] = "pending"
            self.jobs[key] = job
            eval_id = ""
            if not (job["ParameterizedJob"] or job["Periodic"]):
                eval_id = self._evaluate(job, "job-register")
                self._place(job, eval_id)
            self._refresh(job)
            return {"EvalID": eval_id, "JobModifyIndex": index}

    def dispatch(
        self, namespace: str, parent_id: str, body: dict[str, Any], token: str
    ) -> dict[str, Any]:
        with self.cond:
            parent = self.jobs.get((namespace, parent_id))
            if parent is None:
                raise ApiError(404, f'parameterized job "{parent_id}" not found')
            params = parent["ParameterizedJob"]
            if not params:
                raise ApiError(400, f'Specified job "{parent_id}" is not a parameterized job')
            if parent["Stop"]:
                raise ApiError(400, f'Parameterized job "{parent_id}" is stopped')
            if token:
                for job in self.children(parent):
                    if job.get("DispatchIdempotencyToken") == token:
                        return {
                            "DispatchedJobID": job["ID"],
                            "JobCreateIndex": job["CreateIndex"],
                            "EvalID": "",
                            "EvalCreateIndex": 0,
                            "Index": job["ModifyIndex"],
                        }
            meta = body.get("Meta") or {}
            payload = body.get("Payload") or ""
            _check_dispatch(params, meta, payload)
            stamp = int(time.time())
            suffix = uuid.uuid4().hex[:8]
            template = body.get("IdPrefixTemplate") or ""
            child_id = f"{parent_id}/dispatch-{template + '-' if template else ''}{stamp}-{suffix}"
            child = copy.deepcopy(_spec(parent))
            index = self.bump("jobs")
            child.update(
                ID=child_id,
                Name=child_id,
                ParentID=parent_id,
                Dispatched=True,
                ParameterizedJob=None,
                Meta={**parent["Meta"], **meta},
                Payload=payload,
                DispatchIdempotencyToken=token,
                Version=0,
                CreateIndex=index,
                ModifyIndex=index,
                JobModifyIndex=index,
                SubmitTime=now_ns(),
                Status="pending",
            )
            self.jobs[(namespace, child_id)] = child
            self._children_of.setdefault((namespace, parent_id), {})[child_id] = child
            self.active[parent_id] += 1
            self.peak_active[parent_id] = max(self.peak_active[parent_id], self.active[parent_id])
            eval_id = self._evaluate(child, "job-register")
            self._place(child, eval_id)
            self._refresh(child)
            self._refresh(parent)
            return {
                "DispatchedJobID": child_id,
                "JobCreateIndex": index,
                "EvalID": eval_id,
                "EvalCreateIndex": self.evals[eval_id]["CreateIndex"],
                "Index": index,
            }

    def deregister(self, namespace: str, job_id: str, purge: bool) -> dict[str, Any]:
        with self.cond:
            job = self.job(namespace, job_id)
            for alloc in self.job_allocs(job):
                if not alloc_terminal(alloc):
                    alloc["DesiredStatus"] = "stop"
                    alloc["DesiredDescription"] = "alloc is being stopped: job deregistered"
                    self._touch_alloc(alloc)
                    self._stop_allocation(alloc)
            eval_id = self._evaluate(job, "job-deregister")
            if purge:
                del self.jobs[(namespace, job_id)]
                self._children_of.get((namespace, job["ParentID"]), {}).pop(job_id, None)
                if job["ParentID"] and job["Status"] != "dead":
                    self.active[job["ParentID"]] -= 1
            else:
                job["Stop"] = True
            index = self.bump("jobs")
            if not purge:
                self._refresh(job)
            if job["ParentID"] and (namespace, job["ParentID"]) in self.jobs:
                self._refresh(self.jobs[(namespace, job["ParentID"])])
            return {"EvalID": eval_id, "EvalCreateIndex": index, "JobModifyIndex": index}

    def collect_garbage(self) -> list[str]:
        """``nomad system gc``: forget dead (non-parameterized) jobs with their allocs/evals."""
        with self.cond:
            dead = [
                job
                for job in self.jobs.values()
                if job["Status"] == "dead" and not job["ParameterizedJob"]
            ]
            for job in dead:
                del self.jobs[(job["Namespace"], job["ID"])]
                self._children_of.get((job["Namespace"], job["ParentID"]), {}).pop(job["ID"], None)
                for alloc in self._allocs_of.pop(_key(job), []):
                    del self.allocs[alloc["ID"]]
                for evaluation in self._evals_of.pop(_key(job), []):
                    del self.evals[evaluation["ID"]]
            if dead:
                self.bump("jobs", "allocs", "evals")
            return [job["ID"] for job in dead]

    def job_allocs(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self._allocs_of.get(_key(job), ()))

    def job_evals(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self._evals_of.get(_key(job), ()))

    def children(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self._children_of.get((job["Namespace"], job["ID"]), {}).values())

    def summary(self, job: dict[str, Any]) -> dict[str, Any]:
        groups = {}
        for group in job["TaskGroups"]:
            counts = dict.fromkeys(
                ("Queued", "Complete", "Failed", "Running", "Starting", "Lost", "Unknown"), 0
            )
            for alloc in self.job_allocs(job):
                if alloc["TaskGroup"] != group["Name"]:
                    continue
                status = alloc["ClientStatus"]
                key = {
                    "pending": "Starting",
                    "running": "Running",
                    "complete": "Complete",
                    "failed": "Failed",
                    "lost": "Lost",
                }[status]
                counts[key] += 1
            groups[group["Name"]] = counts
        children = {"Pending": 0, "Running": 0, "Dead": 0}
        for child in self.children(job):
            children[child["Status"].capitalize()] += 1
        return {
            "JobID": job["ID"],
            "Namespace": job["Namespace"],
            "Summary": groups,
            "Children": children,
            "CreateIndex": job["CreateIndex"],
            "ModifyIndex": job["ModifyIndex"],
        }

    def stub(self, job: dict[str, Any], with_meta: bool) -> dict[str, Any]:
        stub = {
            k: job[k]
            for k in (
                "ID",
                "ParentID",
                "Name",
                "Namespace",
                "Datacenters",
                "Type",
                "Priority",
                "Periodic",
                "ParameterizedJob",
                "Stop",
                "Status",
                "CreateIndex",
                "ModifyIndex",
                "JobModifyIndex",
                "SubmitTime",
            )
        }
        stub["Periodic"] = bool(job["Periodic"])
        stub["ParameterizedJob"] = bool(job["ParameterizedJob"])
        stub["StatusDescription"] = ""
        stub["JobSummary"] = self.summary(job)
        if with_meta:
            stub["Meta"] = job["Meta"]
        return stub

    def _refresh(self, job: dict[str, Any]) -> None:
        """Nomad's ``getJobStatus``: running while any allocation is live, else pending/dead.

        The jobs table (what job reads and lists block on) changes only when the
        job's status or summary does, as Nomad's job and summary tables do.
        """
        if job["ParameterizedJob"] or job["Periodic"]:
            status = "dead" if job["Stop"] else "running"
        else:
            allocs = self.job_allocs(job)
            evals = self.job_evals(job)
            if any(not alloc_terminal(a) for a in allocs):
                status = "running"
            elif any(e["Status"] not in ("complete", "failed", "canceled") for e in evals):
                status = "pending"
            else:
                status = "dead" if allocs or evals else "pending"
        summary = self.summary(job)
        seen = (status, repr(summary["Summary"]), repr(summary["Children"]))
        if job.get("_seen") == seen:
            return
        job["_seen"] = seen
        if job["ParentID"] and job["Status"] != "dead" and status == "dead":
            self.active[job["ParentID"]] -= 1
        job["Status"] = status
        job["ModifyIndex"] = self.bump("jobs")
        parent = self.jobs.get((job["Namespace"], job["ParentID"])) if job["ParentID"] else None
        if parent is not None:
            self._refresh(parent)

    # -- evaluations and allocations --------------------------------------------------

    def _evaluate(self, job: dict[str, Any], trigger: str) -> str:
        index = self.bump("evals")
        eval_id = new_id()
        self.evals[eval_id] = {
            "ID": eval_id,
            "Namespace": job["Namespace"],
            "Priority": job["Priority"],
            "Type": job["Type"],
            "TriggeredBy": trigger,
            "JobID": job["ID"],
            "JobModifyIndex": job.get("JobModifyIndex", index),
            "Status": "complete",
            "StatusDescription": "",
            "CreateIndex": index,
            "ModifyIndex": index,
            "CreateTime": now_ns(),
            "ModifyTime": now_ns(),
        }
        self._evals_of.setdefault(_key(job), []).append(self.evals[eval_id])
        return eval_id

    def _place(
        self, job: dict[str, Any], eval_id: str, previous: dict[str, Any] | None = None
    ) -> None:
        groups = [
            g for g in job["TaskGroups"] if previous is None or g["Name"] == previous["TaskGroup"]
        ]
        for group in groups:
            for slot in range(1 if previous else group["Count"]):
                self._new_alloc(job, group, eval_id, previous, slot)

    def _new_alloc(
        self,
        job: dict[str, Any],
        group: dict[str, Any],
        eval_id: str,
        previous: dict[str, Any] | None,
        slot: int,
    ) -> None:
        index = self.bump("allocs")
        alloc_id = new_id()
        name = previous["Name"] if previous else f"{job['ID']}.{group['Name']}[{slot}]"
        tracker = copy.deepcopy(previous["RescheduleTracker"]) if previous else None
        alloc = {
            "ID": alloc_id,
            "EvalID": eval_id,
            "Name": name,
            "Namespace": job["Namespace"],
            "NodeID": "double-node-1",
            "NodeName": "double-node-1",
            "JobID": job["ID"],
            "_job_index": job["CreateIndex"],
            "JobType": job["Type"],
            "JobVersion": job["Version"],
            "Job": job,
            "TaskGroup": group["Name"],
            "DesiredStatus": "run",
            "DesiredDescription": "",
            "ClientStatus": "pending",
            "ClientDescription": "No tasks have started",
            "TaskStates": {
                t["Name"]: {
                    "State": "pending",
                    "Failed": False,
                    "Restarts": 0,
                    "StartedAt": None,
                    "FinishedAt": None,
                    "Events": [],
                }
                for t in group["Tasks"]
            },
            "AllocatedResources": {
                "Tasks": {
                    t["Name"]: {
                        "Memory": {"MemoryMB": t["Resources"]["MemoryMB"]},
                        "Cpu": {"CpuShares": t["Resources"]["CPU"]},
                    }
                    for t in group["Tasks"]
                }
            },
            "PreviousAllocation": previous["ID"] if previous else "",
            "NextAllocation": "",
            "RescheduleTracker": tracker,
            "FollowupEvalID": "",
            "CreateIndex": index,
            "ModifyIndex": index,
            "AllocModifyIndex": index,
            "CreateTime": now_ns(),
            "ModifyTime": now_ns(),
        }
        self.allocs[alloc_id] = alloc
        self._allocs_of.setdefault(_key(job), []).append(alloc)
        if previous is not None:
            previous["NextAllocation"] = alloc_id
            self._touch_alloc(previous)
        self._start_allocation(alloc)

    def _touch_alloc(self, alloc: dict[str, Any]) -> None:
        alloc["ModifyIndex"] = self.bump("allocs")
        alloc["ModifyTime"] = now_ns()

    def update_alloc(self, alloc: dict[str, Any], **fields: Any) -> None:
        """Apply a client update and recompute the job's status."""
        with self.cond:
            alloc.update(fields)
            self._touch_alloc(alloc)
            job = self.jobs.get((alloc["Namespace"], alloc["JobID"]))
            if job is not None and job["CreateIndex"] == alloc["_job_index"]:
                self._refresh(job)

    def task_event(
        self, alloc: dict[str, Any], task: str, event: dict[str, Any] | None, **state: Any
    ) -> None:
        """Record a task event (if any) and task state fields, as a client update does."""
        with self.cond:
            task_state = alloc["TaskStates"][task]
            if event is not None:
                task_state["Events"].append(event)
            task_state.update(state)
            self._touch_alloc(alloc)

    def end_alloc(self, alloc: dict[str, Any], status: str, description: str) -> None:
        """A terminal client status; failed/lost allocations are replaced per policy."""
        with self.cond:
            job = self.jobs.get((alloc["Namespace"], alloc["JobID"]))
            live = job is not None and job["CreateIndex"] == alloc["_job_index"]
            replace = False
            if live and alloc["DesiredStatus"] == "run":
                if status == "lost":
                    replace = alloc.pop("_replace_lost", True)
                elif status == "failed":
                    replace = self._reschedule_allowed(job, alloc)
            fields = {"ClientStatus": status, "ClientDescription": description}
            if status == "lost":
                fields.update(DesiredStatus="stop", DesiredDescription=description)
            alloc.update(fields)
            self._touch_alloc(alloc)
            if replace:
                trigger = "node-update" if status == "lost" else "alloc-failure"
                eval_id = self._evaluate(job, trigger)
                if status == "failed":
                    tracker = alloc.get("RescheduleTracker") or {"Events": []}
                    tracker["Events"].append(
                        {
                            "RescheduleTime": now_ns(),
                            "PrevAllocID": alloc["ID"],
                            "PrevNodeID": alloc["NodeID"],
                            "Delay": 0,
                        }
                    )
                    alloc["RescheduleTracker"] = tracker
                self._place(job, eval_id, previous=alloc)
            if live:
                self._refresh(job)

    def _reschedule_allowed(self, job: dict[str, Any], alloc: dict[str, Any]) -> bool:
        group = next(g for g in job["TaskGroups"] if g["Name"] == alloc["TaskGroup"])
        policy = group.get("ReschedulePolicy") or {}
        if policy.get("Unlimited"):
            return True
        attempts = policy.get("Attempts", 1 if job["Type"] == "batch" else 0)
        done = len((alloc.get("RescheduleTracker") or {}).get("Events", []))
        return done < attempts

    def take_loss(self, job_id: str) -> tuple[bool, bool]:
        """Whether the next allocation of ``job_id`` is to be lost, and then replaced."""
        with self.cond:
            for i, (prefix, replace) in enumerate(self.losses):
                if job_id.startswith(prefix):
                    del self.losses[i]
                    return True, replace
            return False, False

    # -- variables --------------------------------------------------------------------

    def put_variable(self, namespace: str, path: str, body: dict[str, Any], cas: str | None):
        with self.cond:
            existing = self.variables.get((namespace, path))
            if cas is not None and int(cas) != (existing["ModifyIndex"] if existing else 0):
                raise ApiError(409, "cas error: variable modify index mismatch")
            items = body.get("Items")
            if not isinstance(items, dict) or not items:
                raise ApiError(400, "variable missing required Items object")
            index = self.bump("vars")
            variable = {
                "Namespace": namespace,
                "Path": path,
                "Items": {str(k): str(v) for k, v in items.items()},
                "CreateIndex": existing["CreateIndex"] if existing else index,
                "ModifyIndex": index,
                "CreateTime": existing["CreateTime"] if existing else now_ns(),
                "ModifyTime": now_ns(),
            }
            self.variables[(namespace, path)] = variable
            return variable

    def variable(self, namespace: str, path: str) -> dict[str, Any]:
        variable = self.variables.get((namespace, path))
        if variable is None:
            raise ApiError(404, "variable not found")
        return variable

    def delete_variable(self, namespace: str, path: str) -> None:
        with self.cond:
            if self.variables.pop((namespace, path), None) is not None:
                self.bump("vars")


def _key(job: dict[str, Any]) -> tuple[str, str, int]:
    """A job's identity across purge and re-register: namespace, ID, create index."""
    return job["Namespace"], job["ID"], job.get("CreateIndex", 0)


def _check_dispatch(params: dict[str, Any], meta: dict[str, Any], payload: str) -> None:
    """Nomad's ``validateDispatchRequest``: payload rules, required and permitted meta keys."""
    try:
        size = len(base64.b64decode(payload, validate=True)) if payload else 0
    except ValueError:
        raise ApiError(400, "Payload is not valid base64") from None
    if size > MAX_PAYLOAD:
        raise ApiError(400, f"Payload exceeds maximum size; {size} > {MAX_PAYLOAD}")
    rule = params.get("Payload") or "optional"
    if rule == "forbidden" and size:
        raise ApiError(400, "Payload is not allowed")
    if rule == "required" and not size:
        raise ApiError(400, "Payload is not provided")
    required = params.get("MetaRequired") or []
    optional = params.get("MetaOptional") or []
    missing = [k for k in required if k not in meta]
    if missing:
        raise ApiError(400, f"Dispatch did not provide required meta keys: {_go(missing)}")
    unpermitted = sorted(k for k in meta if k not in required and k not in optional)
    if unpermitted:
        raise ApiError(
            400, f"Dispatch request included unpermitted metadata keys: {_go(unpermitted)}"
        )
    for key, value in meta.items():
        if not isinstance(value, str):
            raise ApiError(400, f"meta key {key!r} must be a string")


def _go(values: list[str]) -> str:
    """A string slice as Go's ``%v`` prints it."""
    return "[" + " ".join(values) + "]"


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration such as ``30s``, ``5m`` or ``250ms``."""
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ApiError(400, f'Invalid wait time: time: invalid duration "{text}"')
    return sum(float(n) * scale[u] for n, u in parts)
