"""A Nomad HTTP API test double: the paths python-nomad and Sluice use, answered like Nomad.

There is no Nomad binary on these machines, so this server stands in for an agent
(server + one client node). Unmodified ``python-nomad`` talks to it. It implements
job register/parse/read/list(prefix)/summary/allocations/evaluations, dispatch of
parameterized jobs (meta and payload checks, idempotency tokens), deregister with
purge, ``system gc``, allocations and evaluations, client logs and ``fs/cat``, Variables, the
``X-Nomad-Token`` ACL check and blocking queries (``index``/``wait``, ``X-Nomad-Index``).
Allocations run their task commands as local processes (``client_runner``); an
allocation can be "lost" (node down) and replaced under the same job.

Test hooks: ``requests`` counts every request by route, ``set_faults(rate)`` answers a
fraction of requests with 500s or connection resets (a third of them after the request
took effect, like a lost response), ``lose_next_allocation(prefix)``,
``peak_active(job)`` (most dispatched jobs of a parameterized job alive at once).

Run standalone: ``python -m tests.nomad_double.server --port 4646 [--token T]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import socket
import tempfile
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from tests.nomad_double.client_runner import AllocationRunner
from tests.nomad_double.hcl import parse_job_hcl
from tests.nomad_double.state import ApiError, ClusterState, alloc_terminal, parse_duration

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_JOB_SUFFIXES = ("dispatch", "allocations", "evaluations", "summary")


def parse_bool(params: dict[str, str], name: str) -> bool:
    """Go's ``strconv.ParseBool`` as Nomad applies it to query parameters."""
    value = params.get(name)
    if value is None or value == "":
        return False
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApiError(400, f'Failed to parse value of "{name}" ({value}) as bool: invalid syntax')


def public(document: Any) -> Any:
    """Drop the double's private ``_`` fields from a response document."""
    if isinstance(document, dict):
        return {k: public(v) for k, v in document.items() if not k.startswith("_")}
    if isinstance(document, list):
        return [public(v) for v in document]
    return document


class _Reset(Exception):
    """Drop the connection without a response (an injected fault)."""


class NomadDouble:
    """The double: cluster state, an HTTP server on loopback, and the test hooks."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        token: str | None = None,
        port: int = 0,
        slots: int | None = None,
    ) -> None:
        """``slots`` bounds how many allocations run at once (the rest wait, pending)."""
        self.root = Path(root or tempfile.mkdtemp(prefix="nomad-double-"))
        self.token = token
        self.runner = AllocationRunner(self.root, slots)
        self.state = ClusterState(self.runner.start, self.runner.stop)
        self.runner.state = self.state
        self.requests: Counter[str] = Counter()
        self.faults_injected = 0
        self._fault_rate = 0.0
        self._random = random.Random(0)
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self.state.cond:
            self.state.closed = True
            self.state.cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.runner.close()

    # -- test hooks -------------------------------------------------------------------

    def set_faults(self, rate: float, *, seed: int = 0) -> None:
        """Answer ``rate`` of all requests with a 500 or a reset connection."""
        with self._lock:
            self._fault_rate = rate
            self._random = random.Random(seed)

    def lose_next_allocation(self, job_prefix: str, *, replace: bool = True) -> None:
        """The next allocation of a job whose ID starts with ``job_prefix`` loses its node.

        With ``replace`` Nomad places a replacement allocation in the same job (what it
        does for allocations on a down node); without, the job ends with a lost alloc.
        """
        with self.state.cond:
            self.state.losses.append((job_prefix, replace))

    def peak_active(self, parent: str) -> int:
        """The most dispatched jobs of ``parent`` that were not dead at the same time."""
        with self.state.cond:
            return self.state.peak_active[parent]

    def _fault(self) -> str | None:
        with self._lock:
            if self._fault_rate <= 0 or self._random.random() >= self._fault_rate:
                return None
            self.faults_injected += 1
            return self._random.choice(("500", "reset", "reset-after"))

    # -- routing ----------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict[str, str], body: Any, token: str):
        """Return ``(status, document_or_text, index)`` for one request."""
        if self.token and token != self.token:
            raise ApiError(403, "ACL token not found" if token else "Permission denied")
        namespace = params.get("namespace") or "default"
        state = self.state
        parts = path.strip("/").split("/")
        if parts[:1] != ["v1"] or len(parts) < 2:
            raise ApiError(404, "Invalid URL")
        head, rest = parts[1], "/".join(parts[2:])
        if head == "jobs" and rest == "":
            if method == "GET" and params.get("filter"):
                raise ApiError(400, "filter expressions are not supported by the Nomad double")
            if method == "GET":
                return self._blocking(
                    ("jobs",),
                    params,
                    lambda: self._list_jobs(
                        namespace, params.get("prefix", ""), parse_bool(params, "meta")
                    ),
                )
            if method in ("POST", "PUT"):
                return 200, self._register(namespace, body, None), None
        if head == "jobs" and rest == "parse" and method in ("POST", "PUT"):
            body = body or {}
            return 200, parse_job_hcl(body.get("JobHCL") or "", body.get("Variables")), None
        if head == "job" and rest:
            return self._job_route(method, namespace, rest, params, body)
        if head == "evaluation" and rest and method == "GET":
            with state.cond:
                evaluation = state.evals.get(rest)
                if evaluation is None:
                    raise ApiError(404, "eval not found")
                return 200, dict(evaluation), state.tables["evals"]
        if head == "allocation" and rest and method == "GET":
            with state.cond:
                alloc = state.allocs.get(rest)
                if alloc is None:
                    raise ApiError(404, "alloc not found")
                return 200, public(alloc), state.tables["allocs"]
        if head == "allocations" and rest == "" and method == "GET":
            return self._blocking(
                ("allocs",),
                params,
                lambda: [
                    self._alloc_stub(a, params)
                    for a in state.allocs.values()
                    if a["ID"].startswith(params.get("prefix", ""))
                    and (namespace == "*" or a["Namespace"] == namespace)
                ],
            )
        if head == "client" and parts[2:4] in (["fs", "logs"], ["fs", "cat"]) and len(parts) == 5:
            return 200, self._client_fs(parts[3], parts[4], params), None
        if head == "var" and rest:
            return self._variable_route(method, namespace, rest, params, body)
        if head == "vars" and rest == "" and method == "GET":
            prefix = params.get("prefix", "")
            with state.cond:
                return (
                    200,
                    [
                        {k: v for k, v in var.items() if k != "Items"}
                        for (ns, p), var in sorted(state.variables.items())
                        if ns == namespace and p.startswith(prefix)
                    ],
                    state.tables["vars"],
                )
        if head == "system" and rest == "gc" and method == "PUT":
            state.collect_garbage()
            return 200, None, None
        if head == "status" and rest == "leader" and method == "GET":
            return 200, self.url.removeprefix("http://"), None
        raise ApiError(404, "Invalid URL")

    def _blocking(self, tables: tuple[str, ...], params: dict[str, str], read):
        index = int(params.get("index") or 0)
        if index:
            wait = min(parse_duration(params.get("wait") or "5m"), 600.0)
            self.state.block(tables, index, wait)
        with self.state.cond:
            return 200, public(read()), self.state.table_index(tables)

    def _list_jobs(self, namespace: str, prefix: str, with_meta: bool) -> list[dict[str, Any]]:
        return [
            self.state.stub(job, with_meta)
            for (ns, job_id), job in sorted(self.state.jobs.items())
            if (namespace == "*" or ns == namespace) and job_id.startswith(prefix)
        ]

    def _register(self, namespace: str, body: Any, job_id: str | None) -> dict[str, Any]:
        job = (body or {}).get("Job") if isinstance(body, dict) else None
        if not isinstance(job, dict):
            raise ApiError(400, "Job must be specified")
        if job_id is not None and job.get("ID") != job_id:
            raise ApiError(400, "Job ID does not match name")
        reply = self.state.register(namespace, job)
        return {**reply, "EvalCreateIndex": 0, "Warnings": "", "Index": reply["JobModifyIndex"]}

    def _job_route(self, method, namespace, rest, params, body):
        state = self.state
        job_id, suffix = rest, ""
        for candidate in _JOB_SUFFIXES:
            if rest.endswith("/" + candidate):
                job_id, suffix = rest[: -len(candidate) - 1], candidate
                break
        if suffix == "dispatch" and method in ("POST", "PUT"):
            body = body or {}
            token = params.get("idempotency_token") or next(
                (v for k, v in body.items() if k.lower() == "idempotencytoken" and v), ""
            )
            return 200, state.dispatch(namespace, job_id, body, token), None
        if suffix == "allocations" and method == "GET":

            def allocations():
                job = state.job(namespace, job_id)
                return [self._alloc_stub(a, params) for a in state.job_allocs(job)]

            return self._blocking(("allocs",), params, allocations)
        if suffix == "evaluations" and method == "GET":
            with state.cond:
                job = state.job(namespace, job_id)
                return 200, [dict(e) for e in state.job_evals(job)], state.tables["evals"]
        if suffix == "summary" and method == "GET":
            with state.cond:
                return 200, state.summary(state.job(namespace, job_id)), state.tables["jobs"]
        if suffix == "" and method == "GET":
            return self._blocking(("jobs",), params, lambda: state.job(namespace, job_id))
        if suffix == "" and method in ("POST", "PUT"):
            return 200, self._register(namespace, body, job_id), None
        if suffix == "" and method == "DELETE":
            purge = parse_bool(params, "purge")
            return 200, {**state.deregister(namespace, job_id, purge), "Index": state.index}, None
        raise ApiError(405, "Invalid method")

    @staticmethod
    def _alloc_stub(alloc: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        stub = {k: v for k, v in alloc.items() if k not in ("Job", "AllocatedResources")}
        if params.get("task_states") is not None and not parse_bool(params, "task_states"):
            stub.pop("TaskStates")
        return stub

    def _client_fs(self, kind: str, alloc_id: str, params: dict[str, str]) -> bytes | str:
        with self.state.cond:
            alloc = self.state.allocs.get(alloc_id)
            if alloc is None:
                raise ApiError(404, f'Unknown allocation "{alloc_id}"')
        base = self.runner.alloc_dir(alloc_id)
        if kind == "cat":
            target = (base / params.get("path", "/").lstrip("/")).resolve()
            if not target.is_relative_to(base.resolve()) or not target.is_file():
                raise ApiError(500, f"file {params.get('path')!r} not found")
            return target.read_bytes()
        task, stream = params.get("task"), params.get("type")
        if not task:
            raise ApiError(400, "must include task name")
        if stream not in ("stdout", "stderr"):
            raise ApiError(400, "must include log type (stdout/stderr)")
        if task not in alloc["TaskStates"]:
            raise ApiError(400, f'unknown task name "{task}"')
        if parse_bool(params, "follow"):
            self._wait_terminal(alloc)
        log = base / "alloc" / "logs" / f"{task}.{stream}.0"
        data = log.read_bytes() if log.exists() else b""
        offset = int(params.get("offset") or 0)
        data = (
            data[offset:] if params.get("origin", "start") == "start" else data[-offset or None :]
        )
        if parse_bool(params, "plain") or not data:
            return data
        frame = {
            "File": f"alloc/logs/{task}.{stream}.0",
            "Offset": len(data),
            "Data": base64.b64encode(data).decode(),
        }
        return json.dumps(frame).encode()

    def _wait_terminal(self, alloc: dict[str, Any]) -> None:
        """``follow=true``: stream until the allocation ends (the double sends it all then)."""
        while not self.state.closed:
            with self.state.cond:
                if alloc_terminal(alloc):
                    return
                index = self.state.tables["allocs"]
            self.state.block(("allocs",), index, 30.0)

    def _variable_route(self, method, namespace, path, params, body):
        state = self.state
        if method == "GET":
            with state.cond:
                return 200, dict(state.variable(namespace, path)), state.tables["vars"]
        if method in ("PUT", "POST"):
            return 200, state.put_variable(namespace, path, body or {}, params.get("cas")), None
        if method == "DELETE":
            state.delete_variable(namespace, path)
            return 200, None, None
        raise ApiError(405, "Invalid method")


def _handler(double: NomadDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, delayed ACKs add 40 ms.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _serve(self, method: str) -> None:
            split = urlsplit(self.path)
            path = unquote(split.path)
            params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            double.requests[f"{method} {_route(path)}"] += 1
            fault = double._fault()
            try:
                if fault == "500":
                    raise ApiError(500, "rpc error: injected fault: no cluster leader")
                if fault == "reset":
                    raise _Reset
                body = json.loads(raw) if raw.strip() else None
                status, document, index = double.handle(
                    method, path, params, body, self.headers.get("X-Nomad-Token", "")
                )
                if fault == "reset-after":
                    raise _Reset
            except _Reset:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            except ApiError as error:
                self._send(error.status, error.message.encode(), "text/plain", None)
                return
            except json.JSONDecodeError as error:
                self._send(400, f"failed to decode body: {error}".encode(), "text/plain", None)
                return
            if isinstance(document, bytes):
                self._send(status, document, "text/plain; charset=utf-8", index)
            else:
                self._send(status, json.dumps(document).encode(), "application/json", index)

        def _send(self, status: int, data: bytes, content_type: str, index: int | None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if index is not None:
                self.send_header("X-Nomad-Index", str(index))
                self.send_header("X-Nomad-KnownLeader", "true")
                self.send_header("X-Nomad-LastContact", "0")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def do_PUT(self) -> None:  # noqa: N802
            self._serve("PUT")

        def do_DELETE(self) -> None:  # noqa: N802
            self._serve("DELETE")

    return Handler


def _route(path: str) -> str:
    """The route template a path belongs to (for request counters)."""
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and parts[1] == "job":
        rest = "/".join(parts[2:])
        suffix = next((s for s in _JOB_SUFFIXES if rest.endswith("/" + s)), "")
        return "/v1/job/:id" + (f"/{suffix}" if suffix else "")
    if len(parts) >= 3 and parts[1] in ("allocation", "evaluation", "var"):
        return f"/v1/{parts[1]}/:id"
    if len(parts) >= 5 and parts[1] == "client":
        return "/" + "/".join(parts[:4]) + "/:alloc"
    return "/" + "/".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4646)
    parser.add_argument("--token", default=None)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--slots", type=int, default=None, help="allocations running at once")
    args = parser.parse_args()
    double = NomadDouble(args.root, token=args.token, port=args.port, slots=args.slots).start()
    print(f"nomad double on {double.url} (state under {double.root})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        double.stop()


if __name__ == "__main__":
    main()
