"""Timestamps as the API writes them."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now() -> str:
    """RFC 3339 UTC with second precision, like ``metadata.creationTimestamp``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def parse(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def name_suffix() -> str:
    """The 5 characters ``generateName`` appends (same alphabet as the API's)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(5))
