"""Hypothesis fuzzing of the runid template evaluator, run by test_ws_template_bounds.py in a
child process under a memory and CPU limit (``python -m tests.watersheds.template_fuzz N``).

Templates are drawn from wepppy's grammar (fields, helpers, literals, subscripts, slices,
conditionals, f-strings, format specs) with the sizes attackers use (huge widths, deep
nesting, repetition), plus raw text over the template alphabet. Every template must be
refused (``SluiceInputError``) or render each feature to a runid of at most ``MAX_TEXT``
characters or a ``TemplateEvaluationError``, with a traced peak under ``PEAK_BYTES``.
"""

from __future__ import annotations

import sys
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluice.errors import SluiceInputError
from sluice.watersheds.template import MAX_TEXT, RunidTemplate, TemplateEvaluationError

PEAK_BYTES = 8 * 2**20
FEATURE = {
    "type": "Feature",
    "id": "A",
    "properties": {
        "HucName": "Blue Creek",
        "NumericId": 101,
        "Tags": ["a", "b"],
        "Big": "x" * 9000,
    },
    "geometry": {"type": "Point", "coordinates": [0.0, 0.0]},
}
HUGE = ("99999999", "9999", "10001", "0", "-1", "1e999", "4300", "2**64")
ATOMS = (
    "index",
    "one_based_index",
    "properties['HucName']",
    "properties['Big']",
    "properties['Tags']",
    "feature",
    "properties",
    "'a'",
    "'%099999999d'",
    "None",
    "''",
    *HUGE,
)


def _expressions() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.builds(
                lambda f, a: f"{f}({a})",
                st.sampled_from(["slug", "lower", "upper", "title"]),
                inner,
            ),
            st.builds(lambda a, w: f"zfill({a}, {w})", inner, st.sampled_from(HUGE)),
            st.builds(lambda a, b, c: f"replace({a}, {b}, {c})", inner, inner, inner),
            st.builds(lambda a, b: f"slug({a}, separator={b})", inner, inner),
            st.builds(lambda a, b: f"[{a}, {b}]", inner, inner),
            st.builds(lambda a: f"({a},)", inner),
            st.builds(lambda a, b: f"{{{a}: {b}}}", inner, inner),
            st.builds(lambda a: f"{{**{a}}}", inner),
            st.builds(lambda a, b: f"{{{a}, {b}}}", inner, inner),
            st.builds(lambda a, b, c: f"{a} if {b} else {c}", inner, inner, inner),
            st.builds(lambda a, b: f"{a}[{b}]", inner, inner),
            st.builds(lambda a, b: f"{a}[:{b}]", inner, st.sampled_from(HUGE)),
            st.builds(lambda a, w: f"f'{{{a}:>{w}}}'", inner, st.sampled_from(HUGE)),
            st.builds(lambda a, op, b: f"{a} {op} {b}", inner, st.sampled_from("+*%"), inner),
            st.builds(lambda a, n: "[" * n + a + "]" * n, inner, st.integers(1, 150)),
            st.builds(lambda a, n: "not " * n + a, inner, st.integers(1, 300)),
        )

    return st.recursive(st.sampled_from(ATOMS), extend, max_leaves=12)


SPECS = st.one_of(
    st.just(""),
    st.sampled_from([">99999999", "099999999d", ".99999999f", ",", ">5", "x", "{5}", "^10001"]),
    st.text(alphabet="<>^=+-#0123456789,._xdfse%", max_size=12),
)
FIELDS = st.builds(lambda e, s: "{" + e + (":" + s if s else "") + "}", _expressions(), SPECS)
TEMPLATES = st.one_of(
    st.lists(st.one_of(FIELDS, st.text(alphabet="ab-_. ", max_size=5)), min_size=1, max_size=6).map(
        "".join
    ),
    st.text(alphabet="{}[]()'\":.%*!0123456789 abcdefindx_-", max_size=80),
)


def check(template: str) -> None:
    tracemalloc.start()
    try:
        try:
            checked = RunidTemplate(template)
        except SluiceInputError:
            return
        for index in (0, 7):
            try:
                runid = checked.render(FEATURE, index)
            except TemplateEvaluationError:
                continue
            assert len(runid) <= MAX_TEXT, (template, len(runid))
        peak = tracemalloc.get_traced_memory()[1]
        assert peak < PEAK_BYTES, (template, peak)
    finally:
        tracemalloc.stop()


def main(examples: int) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(TEMPLATES)
    def fuzz(template: str) -> None:
        check(template)

    fuzz()


if __name__ == "__main__":
    main(int(sys.argv[1]))
