"""Prefect deployment steps for Sluice's ``deployments/prefect.yaml``."""

from __future__ import annotations

import os
from pathlib import Path


def work_in_project() -> dict[str, str]:
    """Pull step: run flows from the Sluice checkout the worker has installed.

    Entrypoints are module paths (``sluice.flows.karabo.karabo_simulation``), so the
    code loads from the installed package wherever the worker runs; the working
    directory only decides where relative paths (``reports/...``) land. In an
    editable install that is the project root; otherwise the current directory.
    """
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file():
        os.chdir(root)
    return {"directory": os.getcwd()}
