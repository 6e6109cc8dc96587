"""Issue 15 point 2: every template operation is bounded before it builds anything.

The issue's resource bombs are each refused with under 4 MB traced, and a hypothesis fuzz
of the evaluator runs in a child process under a 512 MiB address-space and a CPU-time limit
(a bomb that escaped would be a MemoryError, a kill, or a traced peak over 8 MiB).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from sluice.errors import SluiceInputError
from sluice.watersheds.template import RunidTemplate, TemplateEvaluationError

REPO = Path(__file__).resolve().parents[2]
FEATURE = {
    "type": "Feature",
    "id": "A",
    "properties": {"HucName": "Blue Creek", "Big": "x" * 9000},
    "geometry": {"type": "Point", "coordinates": [0, 0]},
}
BOMBS = [
    "{[[0]*9999]*9999}",
    "{[[[0]*999]*999]*999}",
    "{index:>99999999}",
    "{'%099999999d' % index}",
    "{" + "not " * 2000 + "index}",
    "{" + "-" * 5000 + "index}",
    "{" + "[" * 150 + "index" + "]" * 150 + "}",
    "{zfill(index, 99999999)}",
    "{replace(properties['Big'], 'x', 'yyyyyy')}",
    "{slug(properties['Big'] + ' ', separator='-' * 50)}",
    "{f'{index:>99999999}'}",
    "{index:.99999999f}",
    "{index:>" + "9" * 5000 + "}",
    "{[properties['Big'], properties['Big']]}",
    "{ {**properties, 'k': properties['Big']} }",
    "{" + "x" * 20000 + "}",
]


@pytest.mark.parametrize("template", BOMBS, ids=[b[:40] for b in BOMBS])
def test_each_bomb_is_refused_before_it_is_built(template: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises((SluiceInputError, TemplateEvaluationError)) as refused:
            RunidTemplate(template).render(FEATURE, 3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000  # parsing a 10,000-character template takes ~1 MB; never 100s
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 400


def test_the_evaluator_survives_fuzzing_under_a_memory_limit() -> None:
    limit = 512 * 2**20

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CPU, (600, 600))

    done = subprocess.run(
        [sys.executable, "-m", "tests.watersheds.template_fuzz", "400"],
        cwd=REPO,
        preexec_fn=limited,  # noqa: PLW1509 - only setrlimit, before exec
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
