"""``--dry-run print``: the Jobs a run would create, as JSON, contacting nothing."""

from __future__ import annotations

import json
import sys

from sluice.backends.factory import KubernetesMode
from sluice.backends.kubernetes.backend import build_manifests, submission_labels
from sluice.sweep.execution import SweepConfig, first_jobs


def print_manifests(
    config: SweepConfig,
    start_tier: int | None,
    mode: KubernetesMode = KubernetesMode.PER_INDEX,
) -> None:
    """The seed's ``--dry-run print``: the Kubernetes Jobs ``--mode`` would create for every
    chunk's first round, as JSON on stdout, contacting nothing (a count goes to stderr)."""
    printed = 0
    for chunk in config.chunks:
        jobs = list(first_jobs(config, chunk, start_tier))
        for manifest, _ in build_manifests(
            jobs,
            mode=mode.value,
            labels=submission_labels([job.name for job in jobs], mode.value),
            parallelism=config.parallelism,
            namespace=config.namespace,
        ):
            print(json.dumps(manifest, indent=2))
            printed += 1
    print(
        f"Generated {printed} manifests for {len(config.indexes)} indexes; nothing submitted",
        file=sys.stderr,
    )
