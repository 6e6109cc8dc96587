"""The HTTP front of the double: routing, Status errors, chunked watches, injected faults."""

from __future__ import annotations

import json
import logging
import select
import socket
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from tests.k8s_double import discovery, rbac
from tests.k8s_double.api import PATCH_TYPES, predicate, truthy
from tests.k8s_double.status import ApiError

if TYPE_CHECKING:
    from tests.k8s_double.double import K8sDouble

Obj = dict[str, Any]
log = logging.getLogger(__name__)
DEFAULT_WATCH_SECONDS = 1800
CLIENT_CHECK_SECONDS = 0.5  # how soon a watch notices that its client hung up
_GROUPS = {("api", "v1"): ("", "pods"), ("apis", "batch"): ("batch", "jobs")}
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class _Route:
    """A parsed resource path: /api/v1/namespaces/NS/pods/NAME/log and friends."""

    def __init__(self, resource: str, namespace: str | None, name: str | None, sub: str | None):
        self.resource, self.namespace, self.name, self.sub = resource, namespace, name, sub

    @property
    def kind(self) -> str:
        if self.name is None:
            return self.resource
        return f"{self.resource}/{{name}}" + (f"/{self.sub}" if self.sub else "")


def _route(parts: list[str]) -> _Route | None:
    if parts[:2] == ["api", "v1"]:
        rest, resource = parts[2:], "pods"
    elif parts[:3] == ["apis", "batch", "v1"]:
        rest, resource = parts[3:], "jobs"
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or rest[0] != resource or len(rest) > 3:
        return None
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub not in (None, "status", "log") or (sub == "log" and resource != "pods"):
        return None
    if name is not None and namespace is None:
        return None
    return _Route(resource, namespace, name, sub)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    double: K8sDouble

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (or are reset) are normal; anything else is reported."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: the request log counts requests instead."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # plumbing
    def _handle(self, method: str) -> None:
        double = self.server.double
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = [p for p in url.path.split("/") if p]
        route = _route(parts)
        watch = truthy(query.get("watch"))
        double.requests.record(method, route.kind if route else _other_kind(parts), watch)
        self.discard = False
        fault = double.faults.draw() if route is not None else None
        if fault in ("reset", "reset-after") and watch:
            fault = "reset"
        if fault == "reset":
            return self._reset()
        if fault == "429":
            return self._error(
                ApiError(
                    429,
                    "TooManyRequests",
                    "the server has received too many requests and has asked us to try again later",
                    {"retryAfterSeconds": 1},
                    {"Retry-After": "1"},
                )
            )
        if fault == "500":
            return self._error(
                ApiError(500, "InternalError", "Internal error occurred: injected fault")
            )
        self.discard = fault == "reset-after"
        try:
            if route is None and (other := rbac.route(parts)) is not None:
                self._rbac_objects(method, other, body)
            elif route is None:
                self._discovery(method, parts)
            else:
                self._check_access(method, route, watch)
                self._resource(method, route, query, body, watch)
        except ApiError as error:
            self._error(error)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:  # a double bug: answer like an apiserver panic, and say so
            log.exception("k8s double: %s %s failed", method, self.path)
            self._error(ApiError(500, "InternalError", f"Internal error occurred: {error!r}"))
        if self.discard:
            self._reset()

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _send(self, code: int, payload: bytes, content_type: str, headers: dict[str, str]) -> None:
        if self.discard:
            return
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-cache, private")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _json(self, code: int, obj: Obj, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(obj, separators=(",", ":")).encode()
        self._send(code, payload, "application/json", headers or {})

    def _error(self, error: ApiError) -> None:
        self._json(error.code, error.body, error.headers)

    def _check_access(self, method: str, route: _Route, watch: bool) -> None:
        if method == "GET":
            verb = "watch" if watch else ("list" if route.name is None else "get")
        elif method == "DELETE" and route.name is None:
            verb = "deletecollection"
        else:
            verb = _VERBS[method]
        resource = route.resource + (f"/{route.sub}" if route.sub else "")
        group = "batch" if route.resource == "jobs" else ""
        authorization = self.headers.get("Authorization", "")
        self.server.double.rbac.check(authorization, verb, group, resource, route.namespace)
        if (verb, resource) in self.server.double.denied:
            group = "batch" if route.resource == "jobs" else ""
            qualified = f"{resource}.{group}" if group else resource
            where = f' in the namespace "{route.namespace}"' if route.namespace else ""
            raise ApiError(
                403,
                "Forbidden",
                f'{qualified} is forbidden: User "system:serviceaccount:{route.namespace}:sluice"'
                f' cannot {verb} resource "{resource}" in API group "{group}"{where}',
                {"kind": route.resource, "group": group} if group else {"kind": route.resource},
            )

    def _rbac_objects(
        self, method: str, where: tuple[str, str, str | None, str | None], body: bytes
    ) -> None:
        """ServiceAccounts (+ TokenRequest), PVCs, Roles, RoleBindings: create/get/list/delete."""
        store = self.server.double.rbac
        resource, namespace, name, sub = where
        verb = {"GET": "get" if name else "list", "POST": "create", "DELETE": "delete"}.get(method)
        if verb is None or (method == "POST" and name is not None and sub is None):
            raise ApiError.not_allowed(f"the server does not allow this method ({method})")
        checked = f"{resource}/{sub}" if sub else resource
        group = rbac.KINDS[resource][0]
        store.check(self.headers.get("Authorization", ""), verb, group, checked, namespace)
        if sub == "token" and method == "POST" and name:
            return self._json(201, store.token_request(namespace, name, _json_body(body)))
        if method == "POST":
            return self._json(201, store.create(resource, namespace, _json_body(body)))
        if method == "DELETE" and name:
            return self._json(200, store.delete(resource, namespace, name))
        if name:
            return self._json(200, store.get(resource, namespace, name))
        return self._json(200, store.list(resource, namespace))

    # discovery
    def _discovery(self, method: str, parts: list[str]) -> None:
        documents = {
            "version": discovery.VERSION,
            "api": discovery.api_versions(f"127.0.0.1:{self.server.server_port}"),
            "apis": discovery.API_GROUPS,
            "apis/batch": {"kind": "APIGroup", "apiVersion": "v1", **discovery.BATCH_GROUP},
            "api/v1": discovery.CORE_V1,
            "apis/batch/v1": discovery.BATCH_V1,
            "openapi/v3": discovery.OPENAPI_V3_ROOT,
            "openapi/v3/api/v1": discovery.openapi_v3("api/v1"),
            "openapi/v3/apis/batch/v1": discovery.openapi_v3("apis/batch/v1"),
        }
        path = "/".join(parts)
        if method == "GET" and path in documents:
            return self._json(200, documents[path])
        if method == "GET" and parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
            names = sorted(self.server.double.namespaces)
            if len(parts) == 3:
                items = [discovery.namespace(n) for n in names]
                return self._json(
                    200,
                    {
                        "kind": "NamespaceList",
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": "1"},
                        "items": items,
                    },
                )
            if parts[3] in names:
                return self._json(200, discovery.namespace(parts[3]))
            raise ApiError.not_found("namespaces", parts[3])
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    # resources
    def _resource(
        self, method: str, route: _Route, query: dict[str, str], body: bytes, watch: bool
    ) -> None:
        api = self.server.double.api
        resource, namespace, name = route.resource, route.namespace, route.name
        accept = self.headers.get("Accept", "")
        if name is None:
            if method == "GET" and watch:
                return self._watch(route, query)
            if method == "GET":
                listing = api.list(resource, namespace, query)
                if discovery.wants_table(accept):
                    listing = discovery.table(
                        resource, listing["items"], listing["metadata"]["resourceVersion"]
                    )
                return self._json(200, listing)
            if method == "DELETE" and resource == "jobs" and namespace:
                options = _json_body(body) if body else {}
                return self._json(200, api.delete_jobs(namespace, options, query))
            if method == "POST" and resource == "jobs":
                job = api.create_job(namespace or "", _json_body(body), query)
                return self._json(201, job)
        elif route.sub == "log":
            if method == "GET":
                text = api.pod_log(namespace, name, query).encode()
                return self._send(200, text, "text/plain", {})
        elif method == "GET":
            obj = api.get(resource, namespace, name)
            if discovery.wants_table(accept) and route.sub is None:
                return self._json(
                    200, discovery.table(resource, [obj], obj["metadata"]["resourceVersion"])
                )
            return self._json(200, obj)
        elif resource == "jobs" and method in ("PUT", "PATCH"):
            status = route.sub == "status"
            if method == "PUT":
                return self._json(
                    200, api.replace_job(namespace, name, _json_body(body), query, status)
                )
            content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
            if content_type not in PATCH_TYPES:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown "
                    f"format - accepted media types include: {', '.join(sorted(PATCH_TYPES))}",
                )
            code, obj = api.patch_job(namespace, name, body, content_type, query, status)
            return self._json(code, obj)
        elif method == "DELETE" and route.sub is None:
            options = _json_body(body) if body else {}
            if resource == "jobs":
                return self._json(200, api.delete_job(namespace, name, options, query))
            return self._json(200, api.delete_pod(namespace, name, options, query))
        raise ApiError.not_allowed(
            f"the server does not allow this method on the requested "
            f"resource ({method} {route.kind})"
        )

    def _watch(self, route: _Route, query: dict[str, str]) -> None:
        double = self.server.double
        matches = predicate(route.resource, query)
        raw_rv = query.get("resourceVersion") or ""
        initial = truthy(query.get("sendInitialEvents"))
        since = None if raw_rv in ("", "0") or initial else int(raw_rv)
        bookmarks = truthy(query.get("allowWatchBookmarks"))
        timeout = float(query.get("timeoutSeconds") or DEFAULT_WATCH_SECONDS)
        deadline = time.monotonic() + timeout
        kind = "Job" if route.resource == "jobs" else "Pod"
        api_version = "batch/v1" if route.resource == "jobs" else "v1"
        try:
            watch, start_rv = double.store.watch(route.resource, route.namespace, matches, since)
        except ApiError as error:
            self._start_stream()
            self._chunk({"type": "ERROR", "object": error.body})
            return self._end_stream()
        self._start_stream()
        sent_rv = start_rv if since is None else since
        initial_end = initial and bookmarks
        as_table = discovery.wants_table(self.headers.get("Accept", ""))
        columns_sent = False

        def render(obj: Obj) -> Obj:
            """The event's object: typed, or a one-row Table (columns in the first only)."""
            nonlocal columns_sent
            if not as_table:
                return _typed(obj, kind, api_version)
            table = discovery.table(route.resource, [obj], obj["metadata"]["resourceVersion"])
            if columns_sent:
                table["columnDefinitions"] = []
            columns_sent = True
            return table

        next_bookmark = time.monotonic() + double.bookmark_interval
        breaking = double.watch_breaks.take(route.resource)
        sent = 0
        try:
            if initial_end:
                for _ in range(watch.initial):
                    item = watch.next(0)
                    if item is None:
                        break
                    self._chunk({"type": item[0], "object": render(item[1])})
                self._chunk(_bookmark(kind, api_version, start_rv, initial_end=True))
            while True:
                if breaking is not None and sent >= breaking[0]:
                    return self._break_stream(breaking[1], sent_rv)
                now = time.monotonic()
                if now >= deadline:
                    break
                wait = min(deadline - now, CLIENT_CHECK_SECONDS)
                if bookmarks:
                    wait = min(wait, max(next_bookmark - now, 0))
                item = watch.next(wait)
                if item is None:
                    if watch.closed:
                        break
                    if self._client_gone():  # as an API server cancels a watch on hang-up
                        self.close_connection = True
                        return None
                    if bookmarks and time.monotonic() >= next_bookmark:
                        mark = double.quiet_rv(watch)
                        if mark is not None:
                            sent_rv = max(sent_rv, mark)
                            self._chunk(_bookmark(kind, api_version, sent_rv))
                        next_bookmark = time.monotonic() + double.bookmark_interval
                    continue
                event_type, obj = item
                sent_rv = int(obj["metadata"]["resourceVersion"])
                self._chunk({"type": event_type, "object": render(obj)})
                sent += 1
            self._end_stream()
        finally:
            watch.close()

    def _break_stream(self, how: str, sent_rv: int) -> None:
        """End a watch stream on purpose: a reset connection, or ``410 Gone`` then the end."""
        if how == "reset":
            return self._reset()
        error = ApiError.gone(f"too old resource version: {sent_rv} ({sent_rv + 1})")
        self._chunk({"type": "ERROR", "object": error.body})
        self._end_stream()

    def _client_gone(self) -> bool:
        """Whether the client closed its end of the connection (EOF waiting to be read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def _chunk(self, event: Obj) -> None:
        line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")


def _bookmark(kind: str, api_version: str, rv: int, initial_end: bool = False) -> Obj:
    meta: Obj = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {
        "type": "BOOKMARK",
        "object": {"kind": kind, "apiVersion": api_version, "metadata": meta},
    }


def _typed(obj: Obj, kind: str, api_version: str) -> Obj:
    if obj.get("kind") == kind:
        return obj
    return {"kind": kind, "apiVersion": api_version, **obj}


def _json_body(body: bytes) -> Obj:
    try:
        value = json.loads(body or b"null")
    except ValueError as error:
        raise ApiError.bad_request(
            f"the body of the request could not be decoded: {error}"
        ) from None
    if not isinstance(value, dict):
        raise ApiError.bad_request("the body of the request must be a JSON object")
    return value


def _other_kind(parts: list[str]) -> str:
    if parts[:3] == ["api", "v1", "namespaces"]:
        return "namespaces"
    return "discovery"
