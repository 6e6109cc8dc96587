"""Sluice's ``sweep --dry-run print`` against the seed's ``orchestrate_indices.py``.

Compared: exit code, "nothing to do", and every manifest key by key in order, after
blanking the timestamp (checked to be seconds + offset) and dropping Sluice's own
``sluice/*`` labels (the Kubernetes backend's chunk label, asserted present). See
``sweep_seed.py`` for how the seed's output was recorded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli import app
from tests.core.sweep_seed import CASES, EXPECTED, TEMPLATE, documents, normalized, run_seed

RECORDED = json.loads(EXPECTED.read_text())["cases"]
LIVE_SEED = os.environ.get("SLUICE_SEED000_SCRIPT")


def sluice_print(template: Path, args: list[str]) -> dict:
    result = CliRunner().invoke(
        app, ["sweep", "--template-path", str(template), "--dry-run", "print", *args]
    )
    manifests = documents(result.stdout)
    for manifest in manifests:
        assert "sluice/chunk" in manifest["metadata"]["labels"]
    return {
        "exit": result.exit_code,
        "nothing_to_do": "nothing to do" in result.stdout,
        "manifests": [normalized(m) for m in manifests],
    }


def _same(sluice: dict, seed: dict) -> None:
    assert (sluice["exit"], sluice["nothing_to_do"]) == (seed["exit"], seed["nothing_to_do"])
    assert [json.dumps(m, indent=1) for m in sluice["manifests"]] == [
        json.dumps(m, indent=1) for m in seed["manifests"]
    ]


def test_the_recorded_cases_are_the_current_ones():
    assert [case["args"] for case in RECORDED] == CASES


@pytest.mark.parametrize("case", RECORDED, ids=lambda case: " ".join(case["args"]))
def test_print_equals_the_seeds_recorded_output(case, sluice_home):
    _same(sluice_print(TEMPLATE, case["args"]), case)
    assert not sluice_home.exists()


@pytest.mark.skipif(not LIVE_SEED, reason="set SLUICE_SEED000_SCRIPT to the seed's script")
@pytest.mark.parametrize("args", CASES, ids=" ".join)
def test_print_equals_the_live_seed(args, sluice_home):
    script = Path(LIVE_SEED)
    templates = [TEMPLATE, *[p for p in [script.with_name("job.yaml")] if p.exists()]]
    for template in templates:
        _same(sluice_print(template, args), run_seed(script, template, args))
