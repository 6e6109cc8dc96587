"""The runid template evaluator: wepppy's forms work, anything beyond the whitelist is refused."""

from __future__ import annotations

import tracemalloc

import pytest

from sluice.errors import SluiceInputError
from sluice.watersheds.template import RunidTemplate, TemplateEvaluationError, slug

FEATURE = {
    "type": "Feature",
    "id": "B",
    "properties": {"HucName": "Cedar Grove", "Region": "NW", "NumericId": 102, "name": "x y"},
    "geometry": {"type": "Point", "coordinates": [0, 0]},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{slug(properties['HucName'])}-{zfill(one_based_index, 3)}", "Cedar-Grove-002"),
        ('{properties["name"]}', "x y"),
        ("{properties['HucName']}-{properties['Region']}", "Cedar Grove-NW"),
        ("{lower(properties['Region'])}_{upper('ab')}_{title('cedar grove')}", "nw_AB_Cedar Grove"),
        ("{replace(properties['HucName'], ' ', '_')}", "Cedar_Grove"),
        ("{slug(properties['HucName'], separator='_')}", "Cedar_Grove"),
        ("{{literal}}-{index}", "{literal}-1"),
        ("{properties['NumericId']:05d}", "00102"),
        ("{feature['id']}{properties['NumericId']}", "B102"),
        ("{'big' if properties['NumericId'] else 'small'}", "big"),
        ("{ {**properties}['Region'] }", "NW"),
        ("{ {index, 1} }", "{1}"),
        ("{properties['HucName'][:5]}", "Cedar"),
        ("  {index}  ", "1"),
    ],
)
def test_wepppy_forms_render(template: str, expected: str) -> None:
    assert RunidTemplate(template).render(FEATURE, 1) == expected


def test_slug_keeps_case_like_wepppy() -> None:
    assert slug("Café Río") == "Caf-R-o"
    assert slug("  a -- b  ") == "a-b"
    assert slug(None) == ""


@pytest.mark.parametrize(
    ("template", "names"),
    [
        ("{__import__('os')}", "'__import__'"),
        ("{__import__('os').system('true')}", "attribute"),
        ("{open('/etc/passwd')}", "'open'"),
        ("{eval('1')}", "'eval'"),
        ("{properties.get('HucName')}", "attribute"),
        ("{().__class__.__bases__}", "attribute"),
        ("{properties['HucName'].upper()}", "attribute"),
        ("{(lambda: 1)()}", "bare calls"),
        ("{[k for k in properties]}", "ListComp"),
        ("{2 ** 99999}", "operator Pow"),
        ("{index + 1}", "operator Add"),
        ("{'%05d' % index}", "operator Mod"),
        ("{-index}", "operator USub"),
        ("{not index}", "operator Not"),
        ("{index == 1}", "operator Eq"),
        ("{'N' in properties['Region']}", "operator In"),
        ("{index and 'x'}", "operator And"),
        ("{slug(*properties)}", "*args"),
        ("{slug(**{'value': __import__('os')})}", "'__import__'"),
        ("{os}", "unknown name 'os'"),
        ("{slug}", "can only be called"),
        ("{(x := 1)}", "NamedExpr"),
        ("{properties[}", "syntax error"),
        ("{index", "unmatched"),
        ("index}", "single '}'"),
        ("{}", "syntax error"),
        ("", "empty"),
    ],
)
def test_template_outside_whitelist_is_refused_naming_it(template: str, names: str) -> None:
    with pytest.raises(SluiceInputError, match="runid template") as raised:
        RunidTemplate(template)
    assert names in str(raised.value)
    assert "\n" not in str(raised.value)


def test_missing_property_is_a_per_feature_error() -> None:
    template = RunidTemplate("{properties['Missing']}")
    with pytest.raises(TemplateEvaluationError, match="'Missing' is missing"):
        template.render(FEATURE, 0)


def test_a_huge_width_is_refused_before_it_is_built() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(TemplateEvaluationError, match="longer than"):
            RunidTemplate("{zfill(index, 99999999)}").render(FEATURE, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # the 100 MB string was never made
