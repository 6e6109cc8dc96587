"""A Docker Engine API double: enough of the HTTP API for prefect-docker's build and push steps.

No Docker engine runs here, so ``prefect deploy`` of the cluster deployments talks to this
instead (``DOCKER_HOST=tcp://127.0.0.1:PORT``). It answers as dockerd does for what docker-py
sends (API version negotiation, ``POST /build`` with the context as a tar, ``GET
/images/{name}/json``, ``POST /images/{name}/tag``, ``POST /images/{name}/push``) and records
each build's query, Dockerfile and context file names, and each pushed reference, so a test
can check what would have been built and pushed. It does not run the Dockerfile.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

API_VERSION = "1.45"
_VERSIONED = re.compile(r"^/v\d+\.\d+")


@dataclass
class Build:
    """One ``POST /build``: its query, the Dockerfile it named and the context's files."""

    query: dict[str, str]
    dockerfile: str
    files: set[str]
    image_id: str


@dataclass
class DockerDouble:
    builds: list[Build] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)  # "name:tag" -> image id
    pushed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    host: str = ""  # DOCKER_HOST once serving

    def serve(self) -> ThreadingHTTPServer:
        """Start serving on a free port in a daemon thread; the caller shuts it down."""
        double = self

        class Handler(_Handler):
            state = double

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


class _Handler(BaseHTTPRequestHandler):
    state: DockerDouble
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: the test reads the recorded state, not an access log."""

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, payload: object = None, stream: list[dict] | None = None) -> None:
        if stream is not None:  # progress streams are chunked JSON messages, as dockerd sends
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Api-Version", API_VERSION)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for event in stream:
                line = json.dumps(event).encode() + b"\r\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.write(b"0\r\n\r\n")
            return
        body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        ctype = "text/plain" if isinstance(payload, str) else "application/json"
        self.send_header("Content-Type", ctype)
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> tuple[str, dict[str, str]]:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return _VERSIONED.sub("", parts.path), query

    def do_HEAD(self) -> None:
        self._send(200, "OK")

    def do_GET(self) -> None:
        path, _ = self._route()
        if path == "/_ping":
            return self._send(200, "OK")
        if path == "/version":
            return self._send(
                200, {"ApiVersion": API_VERSION, "MinAPIVersion": "1.24", "Version": "27.0.0"}
            )
        if m := re.fullmatch(r"/images/(.+)/json", path):
            ref = unquote(m.group(1))
            with self.state.lock:
                image_id = ref if ref.startswith("sha256:") else self.state.tags.get(ref)
                known = image_id in {b.image_id for b in self.state.builds}
            if not known:
                return self._send(404, {"message": f"No such image: {ref}"})
            tags = [t for t, i in self.state.tags.items() if i == image_id]
            return self._send(200, {"Id": image_id, "RepoTags": tags})
        self._send(404, {"message": f"page not found: {path}"})

    def do_POST(self) -> None:
        path, query = self._route()
        body = self._body()
        if path == "/build":
            return self._build(query, body)
        if m := re.fullmatch(r"/images/(.+)/tag", path):
            ref = unquote(m.group(1))
            with self.state.lock:
                image_id = ref if ref.startswith("sha256:") else self.state.tags.get(ref)
                if image_id is None:
                    return self._send(404, {"message": f"No such image: {ref}"})
                self.state.tags[f"{query['repo']}:{query.get('tag', 'latest')}"] = image_id
            return self._send(201, "")
        if m := re.fullmatch(r"/images/(.+)/push", path):
            ref = f"{unquote(m.group(1))}:{query.get('tag', 'latest')}"
            with self.state.lock:
                if ref not in self.state.tags:
                    return self._send(200, stream=[{"error": f"tag does not exist: {ref}"}])
                self.state.pushed.append(ref)
            return self._send(200, stream=[{"status": f"Pushed {ref}"}])
        self._send(404, {"message": f"page not found: {path}"})

    def _build(self, query: dict[str, str], body: bytes) -> None:
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            files = {m.name for m in tar.getmembers() if m.isfile()}
        dockerfile = query.get("dockerfile", "Dockerfile")
        if dockerfile not in files:
            msg = f"Cannot locate specified Dockerfile: {dockerfile}"
            return self._send(200, stream=[{"message": msg}])
        image_id = "sha256:" + hashlib.sha256(body).hexdigest()
        with self.state.lock:
            self.state.builds.append(Build(query, dockerfile, files, image_id))
            if "t" in query:
                name, _, tag = query["t"].partition(":")
                self.state.tags[f"{name}:{tag or 'latest'}"] = image_id
        self._send(200, stream=[{"stream": "built (double)\n"}, {"aux": {"ID": image_id}}])
