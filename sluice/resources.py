"""Files Sluice ships as package data: job specs and templates (``sluice.infra``, the
repository's ``infra/``) and the stand-ins flows run (``sluice.examples``, ``examples/``).

Found through importlib.resources, so a wheel install works from any directory, with no
checkout; in an editable install they are the repository's own files.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def shipped(package: str, *parts: str) -> Path:
    """The on-disk path of ``parts`` inside the data package ``package`` (e.g. sluice.infra)."""
    return Path(str(files(package).joinpath(*parts)))
