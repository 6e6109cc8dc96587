"""The ``k8s_api`` fixture: a Kubernetes API double per test (see ``tests/k8s_double``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.k8s_double import K8sDouble, start_double


@pytest.fixture
def k8s_api(tmp_path: Path) -> Iterator[K8sDouble]:
    """A fresh double (process-mode kubelet, namespace ``biodiversity``) for one test.

    ``.url``, ``.kubeconfig`` (context ``double``), ``.requests`` (counts by method, path
    kind, watch), ``.set_faults(rate, kinds, seed)``, ``.jobs()``/``.pods()``,
    ``.set_kubelet("instant" | "hold" | "process")``, ``.finish_pod``/``.evict_pod``,
    ``.compact()`` (force 410 on older resourceVersions), ``.wait_for(condition)``.
    """
    double = start_double(work_dir=tmp_path / "k8s-double")
    try:
        yield double
    finally:
        double.close()
