"""Run the double in its own process (its own GIL), e.g. for benchmarks.

``python -m tests.k8s_double [--kubelet instant] [--port 0] [--work-dir DIR]`` prints one
JSON line ``{"url": ..., "kubeconfig": ...}`` when ready and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path

from tests.k8s_double import start_double
from tests.k8s_double.kubelet import MODES


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.k8s_double")
    parser.add_argument("--kubelet", choices=MODES, default="process")
    parser.add_argument("--namespace", default="biodiversity")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--history-limit", type=int, default=100_000)
    parser.add_argument("--capacity", type=int, default=16, help="pods running at once")
    args = parser.parse_args()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with start_double(
        kubelet=args.kubelet,
        namespace=args.namespace,
        port=args.port,
        work_dir=args.work_dir,
        history_limit=args.history_limit,
        capacity=args.capacity,
    ) as double:
        print(json.dumps({"url": double.url, "kubeconfig": str(double.kubeconfig)}), flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
