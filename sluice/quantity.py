"""Kubernetes-style resource quantities: parse to numbers, format for manifests."""

import re

from sluice.errors import SluiceInputError

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[kMGTPE]?)$")
GIB = 2**30


def parse_memory(value: str | int | float, *, what: str = "memory") -> int:
    """Bytes in a memory quantity such as ``10Gi``, ``512Mi``, ``1.5G`` or ``1048576``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value <= 0:
            raise SluiceInputError(f"{what}: {value!r} must be positive")
        return int(value)
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise SluiceInputError(
            f"{what}: {value!r} is not a memory quantity (examples: 10Gi, 512Mi, 2G)"
        )
    number, suffix = match.groups()
    scale = _BINARY.get(suffix) or _DECIMAL[suffix]
    result = int(float(number) * scale)
    if result <= 0:
        raise SluiceInputError(f"{what}: {value!r} must be positive")
    return result


def parse_cpu(value: str | int | float, *, what: str = "cpu") -> float:
    """Cores in a CPU quantity such as ``2``, ``0.5`` or ``500m``."""
    text = str(value).strip()
    try:
        cores = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        raise SluiceInputError(
            f"{what}: {value!r} is not a CPU quantity (examples: 2, 0.5, 500m)"
        ) from None
    if cores <= 0:
        raise SluiceInputError(f"{what}: {value!r} must be positive")
    return cores


def format_gi(gib: float) -> str:
    """The seed's tier memory string: ``10Gi``, ``20Gi``, ``0.05Gi`` (``%g`` formatting)."""
    return f"{gib:g}Gi"


def format_memory(nbytes: int) -> str:
    """A compact exact quantity for a byte count (``20Gi``, ``96Mi``, ``1000``)."""
    for suffix in ("Ti", "Gi", "Mi", "Ki"):
        if nbytes % _BINARY[suffix] == 0:
            return f"{nbytes // _BINARY[suffix]}{suffix}"
    return str(nbytes)


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(value: str | int | float, *, what: str = "duration") -> float:
    """Seconds in a kubectl-style duration: ``2h``, ``30m``, ``1h30m``, ``90s`` or ``90``."""
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        match = _DURATION.match(text)
        if not text or not match:
            raise SluiceInputError(
                f"{what}: {value!r} is not a duration (examples: 2h, 30m, 90s)"
            ) from None
        hours, minutes, secs = match.groups()
        seconds = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(secs or 0)
    if seconds <= 0:
        raise SluiceInputError(f"{what}: {value!r} must be positive")
    return seconds
