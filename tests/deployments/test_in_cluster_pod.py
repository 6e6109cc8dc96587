"""A pod of Sluice's image, run by the double's kubelet, talks to the API as its ServiceAccount.

The first steps of the worker-to-double end-to-end run (issue 12.5): the image maps to this
venv (what the image installs), a container that sets only ``args`` runs the image's
entrypoint, and the pod's Sluice reaches the double with its ServiceAccount's token, so the
RBAC rules decide what the in-cluster flow may do.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.k8s_double import K8sDouble, start_double

IMAGE = "registry.example/sluice:test"
IN_POD = """
import json
from sluice.backends.kubernetes import ClusterAccess, KubernetesBackend, RbacDenied
from sluice.jobs import JobSpec

backend = KubernetesBackend(access=ClusterAccess())
backend.preflight()
seen = {"namespace": backend.namespace, "preflight": "ok"}
try:
    backend.submit([JobSpec(name="from-the-pod", command=["true"])])
    seen["create"] = "ok"
except RbacDenied as denied:
    seen["create"] = str(denied)
print(json.dumps(seen))
"""


@pytest.fixture
def k8s_api(tmp_path: Path) -> Iterator[K8sDouble]:
    double = start_double(work_dir=tmp_path / "k8s-double")
    try:
        yield double
    finally:
        double.close()


def _apply_rbac(api: client.ApiClient, namespace: str, verbs: list[str]) -> None:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "flow-runner"}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "flow-runner"},
            "rules": [
                {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": verbs},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "flow-runner"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "flow-runner",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "flow-runner", "namespace": namespace}],
        },
    )


def _flow_pod_job(name: str) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": "flow-runner",
                    "containers": [{"name": "flow", "image": IMAGE, "args": ["-c", IN_POD]}],
                }
            },
        },
    }


@pytest.mark.parametrize(
    ("verbs", "created"),
    [(["get", "list", "watch"], False), (["get", "list", "watch", "create"], True)],
)
def test_a_pod_of_the_image_acts_as_its_service_account(
    k8s_api: K8sDouble, verbs: list[str], created: bool
) -> None:
    k8s_api.add_image(IMAGE, entrypoint=[sys.executable], path=[Path(sys.executable).parent])
    api = config.new_client_from_config(str(k8s_api.kubeconfig))
    _apply_rbac(api, k8s_api.namespace, verbs)
    client.BatchV1Api(api).create_namespaced_job(k8s_api.namespace, _flow_pod_job("flow-run"))

    (pod,) = k8s_api.wait_for(
        lambda: [
            p
            for p in k8s_api.pods_of("flow-run")
            if p["status"].get("phase") in ("Succeeded", "Failed")
        ]
    )
    log = client.CoreV1Api(api).read_namespaced_pod_log(pod["metadata"]["name"], k8s_api.namespace)
    assert pod["status"]["phase"] == "Succeeded", log
    seen = json.loads(log.strip().splitlines()[-1])
    assert seen["namespace"] == k8s_api.namespace and seen["preflight"] == "ok"
    if created:
        assert seen["create"] == "ok"
        assert k8s_api.job("from-the-pod") is not None
    else:
        assert "not allowed to create jobs.batch" in seen["create"]
        assert k8s_api.job("from-the-pod") is None
        assert ("create", "jobs", k8s_api.namespace) in k8s_api.rbac.denials
    assert ("list", "jobs") in k8s_api.rbac.used
    api.close()
