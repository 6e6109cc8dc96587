"""The ``nomad_api`` pytest fixture: a running Nomad double with an ACL token.

Other test areas re-export it from their conftest::

    from tests.nomad_double.fixture import nomad_api  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.backends.nomad import NomadSettings
from tests.nomad_double.server import NomadDouble

TOKEN = "sluice-test-acl-token"


class NomadApiFixture(NomadDouble):
    """The double plus ready-made connection settings for Sluice."""

    def settings(self, **overrides: object) -> NomadSettings:
        """Settings for this double: its URL and token, quick retries."""
        options = {"address": self.url, "token": self.token, "retry_max_wait": 0.2, **overrides}
        return NomadSettings(**options)


@pytest.fixture
def nomad_api(tmp_path: Path) -> Iterator[NomadApiFixture]:
    """A Nomad double on loopback (``.url``, ``.token``, ``.requests``, ``.set_faults(rate)``,
    ``.lose_next_allocation(prefix)``, ``.settings()``); its tasks run as local processes."""
    double = NomadApiFixture(tmp_path / "nomad", token=TOKEN).start()
    yield double
    double.stop()
