"""Shared by the k8s benchmarks: the API double in its own process, and a wetlands-like sweep.

The double runs in a child process so that its work (API server, Job controller,
kubelet) does not share a GIL with the client being measured.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sluice.backends.kubernetes import ClusterAccess, KubernetesBackend  # noqa: E402
from sluice.jobs import JobSpec  # noqa: E402

SWEEP_SIZE = 18_587
NAMESPACE = "biodiversity"


def _serve(conn: Connection, options: dict[str, Any]) -> None:
    from tests.k8s_double import start_double

    double = start_double(**options)
    conn.send((double.url, str(double.kubeconfig)))
    while True:
        command, args = conn.recv()
        if command == "stop":
            double.close()
            conn.send(None)
            return
        if command == "requests":
            conn.send(double.requests.snapshot())
        elif command == "clear":
            double.requests.clear()
            conn.send(None)
        elif command == "jobs":
            conn.send(len(double.jobs()))
        elif command == "pods":
            conn.send(len(double.pods()))
        elif command == "kubelet":
            double.set_kubelet(*args)
            conn.send(None)


@dataclass
class RemoteDouble:
    """Handle on a double running in a child process."""

    url: str
    kubeconfig: str
    conn: Connection

    def ask(self, command: str, *args: Any) -> Any:
        self.conn.send((command, args))
        return self.conn.recv()

    def requests(self) -> dict[tuple[str, str, bool], int]:
        return self.ask("requests")

    def count(self, method: str | None = None, kind: str | None = None, watch=None) -> int:
        return sum(
            n
            for (m, k, w), n in self.requests().items()
            if method in (None, m) and kind in (None, k) and watch in (None, w)
        )

    def backend(self, **options: Any) -> KubernetesBackend:
        return KubernetesBackend(
            NAMESPACE, access=ClusterAccess(kubeconfig=self.kubeconfig), **options
        )


@contextmanager
def double_process(**options: Any) -> Iterator[RemoteDouble]:
    """A double (``start_double(**options)``) in a child process, stopped on exit."""
    ours, theirs = mp.Pipe()
    process = mp.get_context("fork").Process(target=_serve, args=(theirs, options), daemon=True)
    process.start()
    url, kubeconfig = ours.recv()
    try:
        yield RemoteDouble(url, kubeconfig, ours)
    finally:
        ours.send(("stop", ()))
        ours.recv()
        process.join(10)


def template() -> dict[str, Any]:
    """The seed's job.yaml shape: one container, INDEX from the completion-index annotation."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "wetlands", "labels": {"app": "wetlands"}},
        "spec": {
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": {"app": "wetlands"}},
                "spec": {
                    "restartPolicy": "Never",
                    "priorityClassName": "opportunistic",
                    "containers": [
                        {
                            "name": "wetlands",
                            "image": "ghcr.io/boettiger-lab/datasets:latest",
                            "command": ["bash", "-c", "python wetlands/nwi.py --i $INDEX --zoom 8"],
                            "env": [
                                {
                                    "name": "INDEX",
                                    "valueFrom": {
                                        "fieldRef": {
                                            "fieldPath": "metadata.annotations"
                                            "['batch.kubernetes.io/job-completion-index']"
                                        }
                                    },
                                }
                            ],
                            "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "2"}},
                        }
                    ],
                },
            },
        },
    }


def sweep_specs(
    indexes: range | list[int], *, tier: int = 0, chunk: str = "tier0-chunk-00000"
) -> list[JobSpec]:
    """One spec per index, as the sweep builds them (10 GiB at tier 0, doubling)."""
    base = template()
    return [
        JobSpec(
            name=f"wetlands-tier{tier}-{i}",
            command=["bash", "-c", "python wetlands/nwi.py --i $INDEX --zoom 8"],
            env={"INDEX": str(i)},
            memory_bytes=10 * 2**30 * 2**tier,
            cpu=1.0,
            labels={"wetlands/index": str(i), "wetlands/batch": chunk},
            annotations={"wetlands/orchestrator-timestamp": "2026-11-25T00:00:00+00:00"},
            template=base,
        )
        for i in indexes
    ]


def chunked(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
