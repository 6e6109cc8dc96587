"""The one narrow interface every backend implements."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

from sluice.jobs import JobResult, JobSpec


@runtime_checkable
class Backend(Protocol):
    """Runs jobs somewhere: local processes, Kubernetes Jobs, Nomad dispatches.

    Contract shared by every implementation:

    - ``submit`` is idempotent by job name: a job that already exists under that
      name is adopted (its outcome will be awaited), never started twice.
      With ``replace=True`` an existing job is deleted first and recreated.
    - ``wait`` yields one ``JobResult`` per named job as each one ends, in
      completion order, and yields ``Outcome.TIMEOUT`` for those still running
      when ``timeout`` seconds have passed (they are deleted). Backends watch,
      they do not poll per job.
    - ``logs`` returns what a job printed, or "" when nothing is known.
    - ``delete`` stops and removes jobs; unknown names are ignored.
    - ``preflight`` checks reachability, credentials and permissions before anything is
      submitted, raising ``BackendUnavailable`` with one clear line. ``kinds`` names the
      kinds of job the caller will submit (Nomad: parameterized jobs, registered from
      their spec files when missing; other backends need no per-kind setup).
    - ``put_secrets`` gives every job submitted afterwards (of the preflighted ``kinds``)
      these environment variables through the backend's own secret channel: a Nomad
      Variable that the job's template renders; the local job process's environment.
      Never a JobSpec, meta, manifest, log, or the orchestrator's ``os.environ``. A
      backend without such a channel refuses in one line (``SluiceInputError``).
    """

    name: str

    def preflight(self, kinds: Collection[str] = ()) -> None: ...

    def put_secrets(self, secrets: Mapping[str, str]) -> None: ...

    def submit(self, jobs: Sequence[JobSpec], *, replace: bool = False) -> list[str]: ...

    def wait(
        self, names: Iterable[str], *, timeout: float | None = None
    ) -> Iterator[JobResult]: ...

    def logs(self, name: str) -> str: ...

    def delete(self, names: Iterable[str]) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class CountsActive(Protocol):
    """Optional: a backend that can count its own not-yet-ended jobs (admission control)."""

    def active_count(self, prefix: str = "") -> int:
        """Jobs whose name starts with ``prefix`` that are queued or running."""
        ...


@runtime_checkable
class SizesJobs(Protocol):
    """Optional: a backend whose kinds of job carry their own memory (Nomad's registered
    parameterized jobs), which a ``JobSpec`` without ``memory_bytes`` runs with."""

    def job_memory_bytes(self, kind: str) -> int | None:
        """The memory a job of ``kind`` gets when its JobSpec asks for none (None: no limit)."""
        ...
