"""What the Kubernetes API double itself costs per request (so benchmarks measure the client).

Starts ``python -m tests.k8s_double`` in its own process and drives it with plain
``http.client`` (no Kubernetes client overhead): server CPU and wall time per GET and per
Job create (which includes the Job controller's pod, the kubelet's status writes and the
Job status updates), then a label-selected list of one chunk, and the server's RSS.

    python benchmarks/k8s_double_cost.py [--jobs 5000] [--kubelet instant|hold]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "biodiversity"
CHUNK = 500


def manifest(index: int) -> bytes:
    container = {
        "name": "work",
        "image": "python:3.11",
        "command": ["python", "run.py", "--index", str(index)],
        "resources": {"limits": {"memory": "10Gi", "cpu": "1"}},
    }
    return json.dumps(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"sweep-{index}", "labels": {"chunk": str(index // CHUNK)}},
            "spec": {
                "backoffLimit": 0,
                "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
            },
        }
    ).encode()


class Server:
    def __init__(self, kubelet: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.k8s_double", "--kubelet", kubelet],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None  # stdout=PIPE
        url = json.loads(self.proc.stdout.readline())["url"]
        self.conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]))

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
        return 0

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body else {}
        self.conn.request(method, path, body, headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def measure(server: Server, label: str, count: int, request) -> None:
    cpu, started = server.cpu_seconds(), time.perf_counter()
    for i in range(count):
        request(i)
    wall = time.perf_counter() - started
    time.sleep(1)  # let the controller and kubelet finish what the requests started
    per_cpu = (server.cpu_seconds() - cpu) / count * 1e3
    print(f"{label:<28} {wall / count * 1e3:7.3f} ms wall  {per_cpu:7.3f} ms server CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--kubelet", choices=("instant", "hold"), default="instant")
    args = parser.parse_args()
    server = Server(args.kubelet)
    jobs = f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs"
    try:
        measure(server, "GET /version", args.jobs, lambda i: server.call("GET", "/version"))
        measure(server, "GET job (404)", args.jobs, lambda i: server.call("GET", f"{jobs}/x"))
        measure(
            server,
            f"create Job ({args.kubelet} kubelet)",
            args.jobs,
            lambda i: server.call("POST", jobs, manifest(i)),
        )
        started = time.perf_counter()
        status, body = server.call("GET", f"{jobs}?labelSelector=chunk%3D1")
        items = len(json.loads(body)["items"])
        elapsed = (time.perf_counter() - started) * 1e3
        print(f"list one chunk ({items} of {args.jobs} Jobs): {elapsed:.1f} ms (HTTP {status})")
        print(f"server RSS with {args.jobs} Jobs and their pods: {server.rss_mib()} MiB")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
