"""One namespace story: infra/kubernetes applied to the Kubernetes double, RBAC enforced.

The operator's one setting is ``namespace`` in infra/kubernetes/kustomization.yaml. Here it is
changed to ``team-a``, rendered with ``kubectl kustomize`` and created through the official
client. The ServiceAccount's token (TokenRequest) then drives every KubernetesBackend
operation the flows use, with the double enforcing the RBAC it was given: each operation
works, every granted permission is one the flows use, and everything else is Forbidden.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config, utils

from sluice.backends.kubernetes import ClusterAccess, KubernetesBackend
from sluice.deploy_steps import kubernetes_namespace
from sluice.jobs import JobSpec, Outcome
from tests.k8s_double import start_double
from tests.k8s_double.rbac import KINDS

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "team-a"
MiB = 2**20


def job(name: str, code: str = "print('ok')") -> JobSpec:
    return JobSpec(name=name, command=["python3", "-c", code], memory_bytes=64 * MiB)


@pytest.fixture
def cluster(tmp_path: Path):
    """The double, with infra/kubernetes applied in the namespace the kustomization names."""
    infra = tmp_path / "infra-kubernetes"
    shutil.copytree(REPO / "infra" / "kubernetes", infra)
    kustomization = infra / "kustomization.yaml"
    settings = yaml.safe_load(kustomization.read_text())
    kustomization.write_text(yaml.safe_dump({**settings, "namespace": NAMESPACE}))
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(infra)], check=True, capture_output=True, text=True
    ).stdout
    objects = [o for o in yaml.safe_load_all(rendered) if o]
    double = start_double(namespace=NAMESPACE, work_dir=tmp_path / "double")
    try:
        admin = config.new_client_from_config(str(double.kubeconfig))
        utils.create_from_yaml(admin, yaml_objects=objects)
        yield double, kustomization, objects, admin
    finally:
        double.close()


def service_account_kubeconfig(double, admin, path: Path) -> Path:
    """What a flow pod has: the ServiceAccount's token and namespace (as a kubeconfig)."""
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    token = (
        client.CoreV1Api(admin)
        .create_namespaced_service_account_token("sluice", NAMESPACE, request)
        .status.token
    )
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": double.url}}],
        "users": [{"name": "sluice", "user": {"token": token}}],
        "contexts": [
            {"name": "c", "context": {"cluster": "c", "user": "sluice", "namespace": NAMESPACE}}
        ],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(kubeconfig))
    return path


def test_every_object_lands_in_the_one_namespace_the_deployments_read(cluster) -> None:
    double, kustomization, objects, _ = cluster
    assert {o["metadata"]["namespace"] for o in objects} == {NAMESPACE}
    (binding,) = [o for o in objects if o["kind"] == "RoleBinding"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "sluice", "namespace": NAMESPACE}
    ]
    stored = {(r, ns) for r, ns, _ in double.rbac.objects}
    assert {(r, NAMESPACE) for r in KINDS} <= stored
    # `prefect deploy` of the cluster deployments reads the same field for pods and Jobs
    assert kubernetes_namespace(str(kustomization)) == {"namespace": NAMESPACE}


def test_the_service_account_can_do_what_the_flows_do_and_nothing_else(cluster, tmp_path) -> None:
    double, _, objects, admin = cluster
    kubeconfig = service_account_kubeconfig(double, admin, tmp_path / "sa-kubeconfig")
    backend = KubernetesBackend(access=ClusterAccess(kubeconfig=str(kubeconfig)))
    try:
        assert backend.namespace == NAMESPACE  # the pod's namespace is the Jobs' namespace
        backend.submit([job("rbac-a")])
        (first,) = backend.wait(["rbac-a"], timeout=60)
        assert first.outcome is Outcome.SUCCEEDED
        backend.submit([job("rbac-a")])  # a resumed run adopts the existing Job
        backend.submit([job("rbac-a", "raise SystemExit(4)")], replace=True)
        (second,) = backend.wait(["rbac-a"], timeout=60)
        assert second.exit_code == 4
        assert backend.logs("rbac-a") == ""
        double.set_kubelet("hold")
        backend.submit([job("rbac-b")])
        (late,) = backend.wait(["rbac-b"], timeout=1)  # deleted when the wait gives up
        assert late.outcome is Outcome.TIMEOUT
    finally:
        backend.close()

    (role,) = [o for o in objects if o["kind"] == "Role"]
    granted = {
        (verb, resource)
        for rule in role["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert double.rbac.denials == []
    assert double.rbac.used == granted  # every grant is used; nothing used was missing

    sa = config.new_client_from_config(str(kubeconfig))
    forbidden = [
        lambda: client.BatchV1Api(sa).patch_namespaced_job("rbac-b", NAMESPACE, {}),
        lambda: client.BatchV1Api(sa).delete_collection_namespaced_job(NAMESPACE),
        lambda: client.BatchV1Api(sa).list_namespaced_job("default"),
        lambda: client.CoreV1Api(sa).delete_namespaced_pod("any", NAMESPACE),
        lambda: client.CoreV1Api(sa).read_namespaced_pod("any", NAMESPACE),
        lambda: client.CoreV1Api(sa).create_namespaced_pod(NAMESPACE, {"metadata": {}}),
        lambda: client.CoreV1Api(sa).list_namespaced_service_account(NAMESPACE),
        lambda: client.RbacAuthorizationV1Api(sa).create_namespaced_role(
            NAMESPACE, {"metadata": {"name": "more"}, "rules": []}
        ),
        lambda: client.CoreV1Api(sa).create_namespaced_service_account_token(
            "sluice", NAMESPACE, {"spec": {}}
        ),
    ]
    for attempt in forbidden:
        with pytest.raises(client.ApiException) as refused:
            attempt()
        assert refused.value.status == 403
        assert f"system:serviceaccount:{NAMESPACE}:sluice" in refused.value.body
