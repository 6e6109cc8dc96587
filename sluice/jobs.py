"""The job model: one unit of work, whatever backend runs it, and how it ended."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sluice.names import DNS1123_LABEL


class Outcome(StrEnum):
    """How a job ended, classified from the runtime's own signals (never log text alone)."""

    SUCCEEDED = "succeeded"
    OOM = "oom"
    FAILED = "failed"
    TIMEOUT = "timeout"
    LOST = "lost"
    CANCELLED = "cancelled"


class JobSpec(BaseModel):
    """A typed description of one unit of work.

    ``template`` carries a backend-native base document (a Kubernetes Job
    manifest, a Nomad job) for the fields this model does not describe, such as
    the image or volumes; backends that need none ignore it.
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Unique job name (DNS-1123 label).")
    command: list[str] = Field(min_length=1, description="argv of the work.")
    env: dict[str, str] = Field(default_factory=dict)
    memory_bytes: int | None = Field(default=None, gt=0, description="Hard memory limit.")
    cpu: float | None = Field(default=None, gt=0, description="CPU cores requested = limit.")
    memory_request_bytes: int | None = Field(
        default=None, gt=0, description="Memory request when below the limit (Kubernetes)."
    )
    cpu_limit: float | None = Field(
        default=None, gt=0, description="CPU limit when above the request (Kubernetes)."
    )
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float | None = Field(default=None, gt=0)
    backoff_limit: int = Field(default=0, ge=0, description="Same-size retries of a failure.")
    workdir: str | None = None
    image: str | None = None
    template: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _requests_within_limits(self) -> JobSpec:
        if self.memory_request_bytes is not None and (
            self.memory_bytes is None or self.memory_request_bytes > self.memory_bytes
        ):
            raise ValueError("memory_request_bytes needs a memory_bytes limit at least as large")
        if self.cpu_limit is not None and (self.cpu is None or self.cpu_limit < self.cpu):
            raise ValueError("cpu_limit needs a cpu request no larger than it")
        return self

    @field_validator("name")
    @classmethod
    def _dns_name(cls, name: str) -> str:
        if not DNS1123_LABEL.fullmatch(name):
            raise ValueError(f"job name {name!r} is not a DNS-1123 label")
        return name


class JobResult(BaseModel):
    """The end of one job."""

    name: str
    outcome: Outcome
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    peak_memory_bytes: int | None = None
    message: str | None = None
    log_tail: str | None = None  # the end of a failed job's log, kept past its runtime's

    @property
    def reason(self) -> str | None:
        """The report's failure reason: None, ``oom``, ``exit:<code>``, ``timeout``, ``lost``..."""
        if self.outcome is Outcome.SUCCEEDED:
            return None
        if self.outcome is Outcome.FAILED and self.exit_code is not None:
            return f"exit:{self.exit_code}"
        return self.outcome.value


def nothing_to_submit(done: int, total: int, what: str, state: str = "succeeded") -> str:
    """The one line every flow logs when a re-run finds its work already done, e.g.
    ``60 of 60 indexes already succeeded; nothing to submit``."""
    return f"{done} of {total} {what} already {state}; nothing to submit"
