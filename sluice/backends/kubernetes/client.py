"""Connection to a Kubernetes API: configuration loading, retries, errors a user can act on.

Every API call goes through ``KubeClient.call``: 429 (honouring ``Retry-After``),
5xx, timeouts and connection resets are retried with jittered exponential
backoff; 401 and an unreachable server become ``BackendUnavailable``, 403 an
``RbacDenied`` that names the missing verb and resource. Other API errors (404,
409, 422) reach the caller, which knows what they mean for its operation.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import tenacity
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from sluice.errors import BackendUnavailable

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({0, 429, 500, 502, 503, 504})
NETWORK_ERRORS = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.MaxRetryError,
    http.client.HTTPException,
    ConnectionError,
)
REQUEST_TIMEOUT = (10.0, 60.0)  # (connect, read) seconds for ordinary calls
MAX_RETRY_AFTER = 60.0
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


class RbacDenied(BackendUnavailable):
    """The API refused an operation (403): a Role lacks a verb on a resource."""


@dataclass(frozen=True)
class ClusterAccess:
    """Where the cluster is and who we are: a kubeconfig (file or document) or in-cluster.

    With nothing set: ``$KUBECONFIG`` / ``~/.kube/config`` if present, else the
    pod's service account (in-cluster).
    """

    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    config_dict: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_credentials(cls, credentials: Any) -> ClusterAccess:
        """From prefect-kubernetes' ``KubernetesCredentials`` (its ``KubernetesClusterConfig``)."""
        cluster = getattr(credentials, "cluster_config", None)
        if cluster is None:
            return cls()
        return cls(config_dict=dict(cluster.config), context=cluster.context_name)

    def configuration(self) -> client.Configuration:
        """A client configuration; ``BackendUnavailable`` (one line) when none can be loaded."""
        cfg = client.Configuration()
        try:
            if self.config_dict is not None:
                config.load_kube_config_from_dict(
                    self.config_dict, context=self.context, client_configuration=cfg
                )
            elif self._use_in_cluster():
                config.load_incluster_config(client_configuration=cfg)
            else:
                config.load_kube_config(
                    config_file=self._config_file(),
                    context=self.context,
                    client_configuration=cfg,
                )
        except Exception as exc:  # the loaders raise many types (ConfigException, OSError...)
            raise BackendUnavailable(f"Kubernetes configuration: {_one_line(exc)}") from None
        cfg.retries = False  # every retry is ours (tenacity), with backoff and jitter
        cfg.connection_pool_maxsize = 32
        return cfg

    def default_namespace(self) -> str:
        """The namespace of the context in use (kubeconfig) or of the pod; else ``default``."""
        try:
            if self.config_dict is not None:
                contexts = self.config_dict.get("contexts") or []
                wanted = self.context or self.config_dict.get("current-context")
                chosen = next((c for c in contexts if c.get("name") == wanted), None)
            elif self._use_in_cluster():
                return Path(SERVICE_ACCOUNT_NAMESPACE).read_text().strip() or "default"
            else:
                contexts, active = config.list_kube_config_contexts(self._config_file())
                wanted = self.context or (active or {}).get("name")
                chosen = next((c for c in contexts if c.get("name") == wanted), None)
        except Exception:  # no usable configuration: configuration() reports it
            return "default"
        return ((chosen or {}).get("context") or {}).get("namespace") or "default"

    def _use_in_cluster(self) -> bool:
        """In-cluster when asked, or when no kubeconfig exists and this runs in a pod."""
        return self.in_cluster or (not self._kubeconfig_exists() and _in_a_pod())

    def _config_file(self) -> str | None:
        """The kubeconfig to load: ours, else ``$KUBECONFIG`` as it is *now* (the client
        library reads the variable once, at import)."""
        return self.kubeconfig or os.environ.get("KUBECONFIG")

    def _kubeconfig_exists(self) -> bool:
        if self.kubeconfig:
            return True
        paths = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config"))
        return any(Path(p).expanduser().exists() for p in paths.split(os.pathsep) if p)


def _in_a_pod() -> bool:
    return "KUBERNETES_SERVICE_HOST" in os.environ


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return exc.status in RETRYABLE_STATUS
    return isinstance(exc, NETWORK_ERRORS)


def _retry_after(exc: BaseException | None) -> float | None:
    if not isinstance(exc, ApiException) or exc.status != 429 or not exc.headers:
        return None
    try:
        return min(float(exc.headers.get("Retry-After", "")), MAX_RETRY_AFTER)
    except ValueError:
        return None


_jitter = tenacity.wait_random_exponential(multiplier=0.05, max=5.0)


def backoff_wait(state: tenacity.RetryCallState) -> float:
    """``Retry-After`` when the server gave one, else full-jitter exponential backoff."""
    exc = state.outcome.exception() if state.outcome else None
    retry_after = _retry_after(exc)
    return retry_after if retry_after is not None else _jitter(state)


def api_message(exc: ApiException) -> str:
    """The ``message`` of a Status body, else the HTTP reason."""
    try:
        return json.loads(exc.body or "")["message"]
    except (TypeError, ValueError, KeyError):
        return exc.reason or str(exc.status)


class KubeClient:
    """The official client's APIs for one namespace, behind retrying calls."""

    def __init__(self, access: ClusterAccess, namespace: str, *, attempts: int = 10) -> None:
        self.namespace = namespace
        self.configuration = access.configuration()
        self.api = client.ApiClient(self.configuration)
        self.batch = client.BatchV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.version = client.VersionApi(self.api)
        self.attempts = attempts

    @property
    def host(self) -> str:
        return self.configuration.host

    def call(
        self,
        verb: str,
        resource: str,
        fn: Callable[..., T],
        *args: Any,
        attempts: int | None = None,
        **kwargs: Any,
    ) -> T:
        """``fn(*args, **kwargs)`` with retries; ``verb`` and ``resource`` name it in errors."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_retryable),
            wait=backoff_wait,
            stop=tenacity.stop_after_attempt(attempts or self.attempts),
            reraise=True,
        )
        try:
            return retrying(fn, *args, **kwargs)
        except ApiException as exc:
            raise self._translate(exc, verb, resource) from None
        except NETWORK_ERRORS as exc:
            raise BackendUnavailable(
                f"Kubernetes API at {self.host} is unreachable ({verb} {resource}):"
                f" {_one_line(exc)}"
            ) from None

    def call_json(
        self, verb: str, resource: str, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        """Like ``call``, returning the parsed JSON body (no model deserialisation: fast)."""
        attempts = kwargs.pop("attempts", None)
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)

        def fetch() -> dict[str, Any]:
            return read_json(fn(*args, _preload_content=False, **kwargs))

        return self.call(verb, resource, fetch, attempts=attempts)

    def _translate(self, exc: ApiException, verb: str, resource: str) -> Exception:
        if exc.status == 401:
            return BackendUnavailable(
                f"Kubernetes API at {self.host} rejected the credentials (401 Unauthorized):"
                " refresh the kubeconfig or the service-account token"
            )
        if exc.status == 403:
            return RbacDenied(
                f"Kubernetes RBAC: not allowed to {verb} {resource} in namespace"
                f" {self.namespace!r} (403 Forbidden: {_one_line(Exception(api_message(exc)))});"
                f" grant the verb {verb!r} on {resource!r} (see infra/kubernetes/rbac.yaml)"
            )
        if exc.status in RETRYABLE_STATUS:
            return BackendUnavailable(
                f"Kubernetes API at {self.host} kept failing ({verb} {resource}):"
                f" {exc.status} {_one_line(Exception(api_message(exc)))}"
            )
        return exc

    def preflight(self) -> None:
        """Fail fast, before anything is submitted: reachable, authenticated, allowed.

        Reads the server version and lists jobs and pods (``limit=1``) in the
        namespace: the read verbs waiting needs. Raises ``BackendUnavailable``.
        """
        self.call("get", "/version", self.version.get_code, attempts=2, _request_timeout=(5, 10))
        self.call_json(
            "list",
            "jobs.batch",
            self.batch.list_namespaced_job,
            self.namespace,
            limit=1,
            attempts=3,
        )
        self.call_json(
            "list", "pods", self.core.list_namespaced_pod, self.namespace, limit=1, attempts=3
        )

    def close(self) -> None:
        self.api.close()


def read_json(response: Any) -> dict[str, Any]:
    """The JSON body of a raw (``_preload_content=False``) response."""
    try:
        return json.loads(response.data)
    finally:
        response.release_conn()
