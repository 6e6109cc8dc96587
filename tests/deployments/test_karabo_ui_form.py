"""The Karabo deployment's custom-run form in headless Chromium: every parameter, described,
enums as choices. The screenshot is kept in tests/artifacts/ (ignored by git)."""

from __future__ import annotations

import httpx
import pytest
from prefect.utilities.callables import parameter_schema
from selenium.webdriver.support.ui import WebDriverWait
from sluice.flows.karabo import karabo_simulation

from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.slow

# Every rendered property: its label, description and the choices of its first <select>.
READ_FORM = """
return [...document.querySelectorAll('.schema-form-property')].map(p => ({
  label: (p.querySelector('.schema-form-property__label') || {}).textContent || '',
  description: (p.querySelector('.schema-form-property__description') || {}).textContent || '',
  choices: [...((p.querySelector('.p-label__body select') || {}).options || [])].map(o => o.value),
}));
"""


def _words(text: str) -> str:
    return " ".join(text.split())


def enum_choices(schema: dict, prop: dict) -> list[str] | None:
    """The allowed values of an enum parameter (or of an enum list's items)."""
    ref = (prop.get("items") or prop).get("$ref") or next(
        (a["$ref"] for a in prop.get("allOf", []) if "$ref" in a), None
    )
    if ref:
        return schema["definitions"][ref.rsplit("/", 1)[-1]].get("enum")
    return prop.get("enum")


def test_every_karabo_parameter_is_in_the_custom_run_form(deployed, prefect_api, browser):
    schema = parameter_schema(karabo_simulation).model_dump_for_openapi()
    (deployment,) = [
        d
        for d in httpx.post(f"{prefect_api}/deployments/filter", json={}).json()
        if d["name"] == "local" and d["entrypoint"] == "sluice.flows.karabo.karabo_simulation"
    ]
    api = httpx.URL(prefect_api)
    ui = str(api.copy_with(userinfo=b"")).removesuffix("/api")
    browser.get(ui)  # sign in as the UI's login form does: the auth string, base64'd
    sign_in = "localStorage.setItem('prefect-password', btoa(arguments[0]))"
    browser.execute_script(sign_in, f"{api.username}:{api.password}")
    browser.get(f"{ui}/deployments/deployment/{deployment['id']}/run")
    names = list(schema["properties"])
    WebDriverWait(browser, 120).until(
        lambda d: (
            len({r["label"].split()[0] for r in d.execute_script(READ_FORM) if r["label"]})
            >= len(names)
        )
    )
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "karabo-custom-run-form.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")

    rendered = {}
    for row in browser.execute_script(READ_FORM):
        if row["label"]:
            rendered.setdefault(row["label"].split()[0], row)
    enums = 0
    for name in names:
        prop = schema["properties"][name]
        assert name in rendered, f"{name} is not in the form"
        assert prop["description"], f"{name} has no description in the flow's docstring"
        assert _words(rendered[name]["description"]) == _words(prop["description"]), name
        choices = enum_choices(schema, prop)
        if choices:
            enums += 1
            assert rendered[name]["choices"] == choices, name
    assert enums >= 4  # sky_model, products, ingestor, backend
