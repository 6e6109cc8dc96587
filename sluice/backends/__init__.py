"""Backends behind one interface (see ``sluice.backends.base.Backend``)."""
