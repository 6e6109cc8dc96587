"""Karabo SKA-MID AA* simulation and ingest: settings, estimate, metadata, staging."""
