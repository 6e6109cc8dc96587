"""Fixtures for the Nomad backend tests."""

from tests.nomad_double.fixture import nomad_api  # noqa: F401
