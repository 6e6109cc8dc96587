"""RAM tiers: the memory schedule that OOM escalation climbs.

Like nf-core's ``conf/base.config``, the schedule lives here, not in step
code: tier ``n`` requests ``start_gi * factor ** n`` GiB, requests = limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sluice.errors import SluiceInputError
from sluice.quantity import GIB, MAX_QUANTITY, format_gi

MAX_TIER = 32
MIN_TIER0_BYTES = 2**20


@dataclass(frozen=True)
class TierSchedule:
    """A memory schedule: ``start_gi`` GiB at tier 0, times ``factor`` per tier.

    Construction validates every field (one line naming the flag, never a traceback):
    tier 0 is at least 1 MiB, ``factor`` at least 1 (a tier never shrinks), ``max_tier``
    0..32, and the max tier's memory fits a Kubernetes quantity.
    """

    start_gi: float = 10.0
    factor: float = 2.0
    max_tier: int = 4

    def __post_init__(self) -> None:
        if not math.isfinite(self.start_gi) or self.start_gi * GIB < MIN_TIER0_BYTES:
            raise SluiceInputError(
                f"--schedule-start-gi {self.start_gi:g}: tier 0 must be at least 1 MiB"
                " (0.0009765625 GiB)"
            )
        if not math.isfinite(self.factor) or self.factor < 1:
            raise SluiceInputError(
                f"--schedule-factor {self.factor:g}: must be at least 1 (a tier never shrinks)"
            )
        if not 0 <= self.max_tier <= MAX_TIER:
            raise SluiceInputError(f"--max-tier {self.max_tier}: must be 0 to {MAX_TIER}")
        top = math.log2(self.start_gi * GIB) + self.max_tier * math.log2(self.factor)
        if top >= math.log2(MAX_QUANTITY):
            raise SluiceInputError(
                f"--schedule-start-gi {self.start_gi:g} x --schedule-factor {self.factor:g}"
                f" ^ --max-tier {self.max_tier}: more memory than a quantity can hold (8Ei)"
            )

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
