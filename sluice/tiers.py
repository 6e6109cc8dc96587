"""RAM tiers: the memory schedule that OOM escalation climbs.

Like nf-core's ``conf/base.config``, the schedule lives here, not in step
code: tier ``n`` requests ``start_gi * factor ** n`` GiB, requests = limits.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from sluice.errors import SluiceInputError
from sluice.quantity import GIB, format_gi


class TierSchedule(BaseModel):
    """A memory schedule: ``start_gi`` GiB at tier 0, times ``factor`` per tier."""

    start_gi: float = Field(default=10.0, gt=0, description="Tier 0 memory in GiB.")
    factor: float = Field(default=2.0, ge=1.0, description="Multiplier applied per tier.")
    max_tier: int = Field(default=4, ge=0, description="Highest tier escalation may reach.")

    @model_validator(mode="after")
    def _positive(self) -> TierSchedule:
        if self.memory_bytes(0) < 2**20:
            raise SluiceInputError(
                f"--schedule-start-gi {self.start_gi:g}: tier 0 must be at least 1 MiB"
            )
        return self

    def gi(self, tier: int) -> float:
        return self.start_gi * self.factor**tier

    def memory_bytes(self, tier: int) -> int:
        return int(self.gi(tier) * GIB)

    def memory_quantity(self, tier: int) -> str:
        """The seed's string for a tier: ``10Gi``, ``20Gi``..."""
        return format_gi(self.gi(tier))

    def check_tier(self, tier: int, *, what: str = "--tier") -> int:
        if tier < 0:
            raise SluiceInputError(f"{what} {tier}: must be 0 or more")
        if tier > self.max_tier:
            raise SluiceInputError(f"--max-tier {self.max_tier} is below {what} {tier}")
        return tier
