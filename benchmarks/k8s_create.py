"""Creating the wetlands sweep's 18,587 per-index Jobs: Sluice vs the seed's method.

Both run against the same Kubernetes API double (own process, kubelet in instant
mode). Sluice: ``KubernetesBackend.submit`` in chunks of 400 (one process, the
official client, 8 concurrent creates). The seed: one ``kubectl apply -f -``
process per Job, timed on a sample and extrapolated to the whole sweep (the
seed also ran a ``kubectl get`` per Job to skip existing ones; not counted here,
which flatters the seed). ``kubectl`` needs ``--validate=false`` against the double.

    python benchmarks/k8s_create.py [--jobs 18587] [--kubectl-sample 200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time

from k8s_support import SWEEP_SIZE, chunked, double_process, sweep_specs

from sluice.backends.kubernetes.manifests import job_manifest


def sluice_create(double, jobs: int, chunk: int) -> float:
    backend = double.backend()
    backend.preflight()
    specs = sweep_specs(range(jobs))
    started = time.perf_counter()
    for part in chunked(specs, chunk):
        backend.submit(part)
    elapsed = time.perf_counter() - started
    backend.close()
    return elapsed


def kubectl_create(double, sample: int) -> float:
    cache = tempfile.mkdtemp(prefix="kubectl-cache-")
    manifests = [job_manifest(s) for s in sweep_specs(range(sample), tier=1)]
    argv = [
        "kubectl",
        f"--kubeconfig={double.kubeconfig}",
        f"--cache-dir={cache}",
        "-n",
        "biodiversity",
        "apply",
        "--validate=false",
        "-f",
        "-",
    ]
    subprocess.run(argv, input=json.dumps(manifests[0]), text=True, check=True, capture_output=True)
    started = time.perf_counter()
    for manifest in manifests[1:]:
        subprocess.run(argv, input=json.dumps(manifest), text=True, check=True, capture_output=True)
    return (time.perf_counter() - started) / (sample - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=SWEEP_SIZE)
    parser.add_argument("--chunk", type=int, default=400)
    parser.add_argument("--kubectl-sample", type=int, default=200)
    args = parser.parse_args()
    with double_process(kubelet="instant") as double:
        seconds = sluice_create(double, args.jobs, args.chunk)
        stored = double.ask("jobs")
        posts = double.count("POST", "jobs")
        per_job_kubectl = kubectl_create(double, args.kubectl_sample)
    per_job_sluice = seconds / args.jobs
    kubectl_total = per_job_kubectl * args.jobs
    print(f"per-index Job creation, {args.jobs} Jobs, API double (instant kubelet)")
    print(f"{'method':<44} {'ms/Job':>8} {'total s':>9}")
    print(
        f"{'Sluice KubernetesBackend.submit (measured)':<44} "
        f"{per_job_sluice * 1000:>8.2f} {seconds:>9.1f}"
    )
    print(
        f"{'seed: kubectl apply -f - per Job':<44} {per_job_kubectl * 1000:>8.2f} "
        f"{kubectl_total:>9.1f}  (sample of {args.kubectl_sample}, extrapolated)"
    )
    print(
        f"speed-up: {kubectl_total / seconds:.0f}x   Jobs stored by Sluice: {stored}   "
        f"Sluice create requests: {posts}"
    )


if __name__ == "__main__":
    main()
