"""The connection to a Nomad agent: python-nomad with retries and blocking queries."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import nomad
import nomad.api.exceptions as nomad_errors
import requests
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from sluice.errors import BackendUnavailable

T = TypeVar("T")

_PERMANENT = (
    nomad_errors.URLNotFoundNomadException,
    nomad_errors.URLNotAuthorizedNomadException,
    nomad_errors.BadRequestNomadException,
    nomad_errors.VariableConflict,
)


@dataclass(frozen=True)
class NomadSettings:
    """Where Nomad is and how to talk to it (``token`` is the ACL secret ID)."""

    address: str = "http://127.0.0.1:4646"
    region: str | None = None
    namespace: str | None = None
    token: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    retry_attempts: int = 8
    retry_max_wait: float = 5.0

    @classmethod
    def from_environment(cls) -> NomadSettings:
        """The nomad CLI's variables: NOMAD_ADDR, NOMAD_REGION, NOMAD_NAMESPACE, NOMAD_TOKEN."""
        return cls(
            address=os.environ.get("NOMAD_ADDR") or cls.address,
            region=os.environ.get("NOMAD_REGION") or None,
            namespace=os.environ.get("NOMAD_NAMESPACE") or None,
            token=os.environ.get("NOMAD_TOKEN") or None,
        )


def transient(error: BaseException) -> bool:
    """API faults worth retrying: 5xx, timeouts, resets; never 400/403/404/409."""
    if isinstance(error, nomad_errors.TimeoutNomadException | requests.RequestException):
        return True
    if not isinstance(error, nomad_errors.BaseNomadException) or isinstance(error, _PERMANENT):
        return False
    response = error.nomad_resp
    if isinstance(response, requests.Response):
        return response.status_code >= 500 or response.status_code == 429
    return True  # a connection error wrapped by python-nomad


def status_of(error: BaseException) -> int | None:
    """The HTTP status of a python-nomad error, if it had a response."""
    response = getattr(error, "nomad_resp", None)
    return response.status_code if isinstance(response, requests.Response) else None


def error_text(error: BaseException) -> str:
    """A one-line description of a python-nomad error (the response body if any)."""
    response = getattr(error, "nomad_resp", None)
    if isinstance(response, requests.Response):
        body = response.text.strip().splitlines()
        return f"HTTP {response.status_code}: {body[0] if body else response.reason}"
    return str(response or error).splitlines()[0]


class NomadApi:
    """An unmodified ``nomad.Nomad`` client whose calls are retried on transient faults."""

    def __init__(self, settings: NomadSettings) -> None:
        self.settings = settings
        self.session = requests.Session()
        self.client = nomad.Nomad(
            session=self.session,
            address=settings.address.rstrip("/"),
            token=settings.token,
            namespace=settings.namespace,
            region=settings.region,
            timeout=settings.timeout,
        )

    def call(self, fn: Callable[..., T], *args: Any, attempts: int | None = None, **kw: Any) -> T:
        """``fn(*args, **kw)``, retried with jittered exponential backoff on transient faults."""
        retrying = Retrying(
            retry=retry_if_exception(transient),
            stop=stop_after_attempt(attempts or self.settings.retry_attempts),
            wait=wait_exponential_jitter(
                multiplier=0.05, max=self.settings.retry_max_wait, jitter=0.05
            ),
            reraise=True,
        )
        return retrying(fn, *args, **kw)

    def blocking(
        self, requester: Any, *path: str, params: dict[str, Any], index: int, wait: float
    ) -> tuple[Any, int]:
        """A blocking query (``index`` + ``wait``): returns ``(document, X-Nomad-Index)``.

        python-nomad's helpers drop the query index, so this goes through the same
        requester object (token, namespace, region) with the two extra parameters.
        """
        query = dict(params)
        if index:
            query.update(index=index, wait=f"{max(int(wait), 1)}s")

        def get() -> requests.Response:
            return requester.request(
                *path, method="get", params=dict(query), timeout=self.settings.timeout + wait
            )

        response = self.call(get)
        return response.json(), int(response.headers.get("X-Nomad-Index", "0"))

    def unavailable(self, error: BaseException) -> BackendUnavailable:
        """The one-line error for an unreachable Nomad or a refused token."""
        address = self.settings.address
        if isinstance(error, nomad_errors.URLNotAuthorizedNomadException):
            return BackendUnavailable(
                f"Nomad at {address} refused the ACL token ({error_text(error)}); "
                "check the NomadCluster block's token"
            )
        return BackendUnavailable(f"Nomad at {address} is unreachable: {error_text(error)}")

    def close(self) -> None:
        self.session.close()
