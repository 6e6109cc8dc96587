"""Kubernetes-style resource quantities: parse to numbers, format for manifests.

Every parser refuses what a Kubernetes quantity cannot hold (more than 2^63-1 bytes or
millicores), non-finite numbers, and numbers written with more than 30 digits, so a
value is bounded before anything is computed from it.
"""

import math
import re

from sluice.errors import SluiceInputError

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_NUMBER = r"([0-9]{1,30}(?:\.[0-9]{0,30})?|\.[0-9]{1,30})"
_QUANTITY = re.compile(rf"^{_NUMBER}([KMGTPE]i|[kMGTPE]?)$")
_CPU = re.compile(rf"^{_NUMBER}(m?)$")
GIB = 2**30
MAX_QUANTITY = 2**63 - 1  # Kubernetes keeps quantities in an int64


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for one-line error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'"


def parse_memory(value: str | int | float, *, what: str = "memory") -> int:
    """Bytes in a memory quantity such as ``10Gi``, ``512Mi``, ``1.5G`` or ``1048576``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value <= 0 or value > MAX_QUANTITY:
            raise SluiceInputError(f"{what}: {shown(value)} must be a positive byte count")
        return int(value)
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise SluiceInputError(
            f"{what}: {shown(value)} is not a memory quantity (examples: 10Gi, 512Mi, 2G)"
        )
    number, suffix = match.groups()
    scale = _BINARY.get(suffix) or _DECIMAL[suffix]
    result = int(float(number) * scale)
    if result <= 0:
        raise SluiceInputError(f"{what}: {shown(value)} must be positive")
    if result > MAX_QUANTITY:
        raise SluiceInputError(f"{what}: {shown(value)} is more than 8Ei (2^63 bytes)")
    return result


def parse_cpu(value: str | int | float, *, what: str = "cpu") -> float:
    """Cores in a CPU quantity such as ``2``, ``0.5`` or ``500m``."""
    match = _CPU.match(str(value).strip())
    if not match:
        raise SluiceInputError(
            f"{what}: {shown(value)} is not a CPU quantity (examples: 2, 0.5, 500m)"
        )
    number, milli = match.groups()
    cores = float(number) / (1000 if milli else 1)
    if cores <= 0:
        raise SluiceInputError(f"{what}: {shown(value)} must be positive")
    if cores * 1000 > MAX_QUANTITY:
        raise SluiceInputError(f"{what}: {shown(value)} is more than a quantity can hold")
    return cores


def format_gi(gib: float) -> str:
    """The seed's tier memory string: ``10Gi``, ``20Gi``, ``0.05Gi`` (integers in full,
    others with ``%g``), so ``10 * 2**20`` GiB is ``10485760Gi``, not ``1.04858e+07Gi``."""
    return f"{int(gib)}Gi" if float(gib).is_integer() else f"{gib:g}Gi"


def format_memory(nbytes: int) -> str:
    """A compact exact quantity for a byte count (``20Gi``, ``96Mi``, ``1000``)."""
    for suffix in ("Ti", "Gi", "Mi", "Ki"):
        if nbytes % _BINARY[suffix] == 0:
            return f"{nbytes // _BINARY[suffix]}{suffix}"
    return str(nbytes)


_DURATION = re.compile(r"^(?:([0-9]{1,9})h)?(?:([0-9]{1,9})m)?(?:([0-9]{1,9}(?:\.[0-9]{1,9})?)s)?$")
_SECONDS = re.compile(r"^[0-9]{1,12}(?:\.[0-9]{1,9})?$")


def parse_duration(value: str | int | float, *, what: str = "duration") -> float:
    """Seconds in a kubectl-style duration: ``2h``, ``30m``, ``1h30m``, ``90s`` or ``90``."""
    text = str(value).strip()
    if _SECONDS.match(text):
        seconds = float(text)
    else:
        match = _DURATION.match(text)
        if not text or not match:
            raise SluiceInputError(
                f"{what}: {shown(value)} is not a duration (examples: 2h, 30m, 90s)"
            )
        hours, minutes, secs = match.groups()
        seconds = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(secs or 0)
    if seconds <= 0:
        raise SluiceInputError(f"{what}: {shown(value)} must be positive")
    return seconds
