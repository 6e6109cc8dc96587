"""Backends behind one interface (see ``sluice.backends.base.Backend``)."""

from sluice.backends.base import Backend

__all__ = ["Backend"]
