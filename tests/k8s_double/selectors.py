"""Label and field selectors, parsed and matched as the API server does."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.k8s_double.status import ApiError

Predicate = Callable[[dict[str, Any]], bool]

_SET_TERM = re.compile(r"^\s*(!?)\s*([A-Za-z0-9._/-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_TERM = re.compile(r"^\s*([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not inside ``in (...)`` value lists."""
    terms, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [term for term in terms if term.strip()]


def _label_term(term: str) -> Callable[[dict[str, str]], bool]:
    eq = _EQ_TERM.match(term)
    if eq:
        key, op, value = eq.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    match = _SET_TERM.match(term)
    if not match:
        raise ApiError.bad_request(f"unable to parse requirement: {term.strip()!r}")
    negate, key, op, values = match.groups()
    if op:
        if negate:
            raise ApiError.bad_request(f"unable to parse requirement: {term.strip()!r}")
        wanted = {value.strip() for value in values.split(",") if value.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in wanted
        return lambda labels: labels.get(key) not in wanted
    if negate:
        return lambda labels: key not in labels
    return lambda labels: key in labels


def everything(obj: dict[str, Any]) -> bool:
    return True


def label_selector(text: str | None) -> Predicate:
    """A predicate over objects for a ``labelSelector`` query value."""
    if not text:
        return everything
    equal: list[tuple[str, str]] = []
    others = []
    for term in _split_terms(text):
        eq = _EQ_TERM.match(term)
        if eq and eq.group(2) != "!=":
            equal.append((eq.group(1), eq.group(3)))
        else:
            others.append(_label_term(term))

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj["metadata"].get("labels") or {}
        for key, value in equal:
            if labels.get(key) != value:
                return False
        return all(term(labels) for term in others)

    return matches


FIELDS: dict[str, dict[str, Callable[[dict[str, Any]], str]]] = {
    "jobs": {
        "metadata.name": lambda o: o["metadata"]["name"],
        "metadata.namespace": lambda o: o["metadata"]["namespace"],
        "status.successful": lambda o: str(o.get("status", {}).get("succeeded", 0)),
    },
    "pods": {
        "metadata.name": lambda o: o["metadata"]["name"],
        "metadata.namespace": lambda o: o["metadata"]["namespace"],
        "status.phase": lambda o: o.get("status", {}).get("phase", ""),
        "spec.nodeName": lambda o: o.get("spec", {}).get("nodeName", ""),
        "spec.restartPolicy": lambda o: o.get("spec", {}).get("restartPolicy", ""),
    },
}


def field_selector(resource: str, text: str | None) -> Predicate:
    """A predicate for a ``fieldSelector`` query value; unknown fields are a 400 like the API."""
    if not text:
        return everything
    terms = []
    for term in _split_terms(text):
        match = _EQ_TERM.match(term)
        if not match:
            raise ApiError.bad_request(f"invalid selector: {text!r}")
        field, op, value = match.groups()
        getter = FIELDS[resource].get(field)
        if getter is None:
            raise ApiError.bad_request(f"field label not supported: {field}")
        negate = op == "!="
        terms.append((getter, value, negate))

    def matches(obj: dict[str, Any]) -> bool:
        return all((getter(obj) == value) != negate for getter, value, negate in terms)

    return matches
