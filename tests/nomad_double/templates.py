"""The subset of Nomad's ``template`` language the Sluice job specs use to read Variables.

Supported: ``{{ with nomadVar "path" }}…{{ end }}``, ``{{ range $k, $v := . }}…{{ end }}``,
``{{ .key }}``, ``{{ $k }}``/``{{ $v }}`` and the ``{{-``/``-}}`` trim markers. As in
Nomad, a task may read only ``nomad/jobs`` and ``nomad/jobs/<job>[/...]`` (a dispatched
job uses its parent's ID), and a template waits while its variable is missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.nomad_double.state import ApiError, ClusterState

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


class TaskSetupError(Exception):
    """The task cannot start (Nomad's "Setup Failure"/"Driver Failure" events)."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    for match in _ACTION.finditer(text):
        literal = text[pos : match.start()]
        if trim_next:
            literal = literal.lstrip()
        if match.group(1):
            literal = literal.rstrip()
        out.append(("text", literal))
        out.append(("action", match.group(2)))
        trim_next = bool(match.group(3))
        pos = match.end()
    tail = text[pos:]
    out.append(("text", tail.lstrip() if trim_next else tail))
    return out


def _parse(tokens: list[tuple[str, str]], pos: int = 0) -> tuple[list[Any], int]:
    nodes: list[Any] = []
    while pos < len(tokens):
        kind, value = tokens[pos]
        pos += 1
        if kind == "text":
            nodes.append(("text", value))
        elif value == "end":
            return nodes, pos
        elif match := re.fullmatch(r'with\s+nomadVar\s+"([^"]+)"', value):
            body, pos = _parse(tokens, pos)
            nodes.append(("with", match.group(1), body))
        elif match := re.fullmatch(r"range\s+\$(\w+)\s*,\s*\$(\w+)\s*:=\s*\.", value):
            body, pos = _parse(tokens, pos)
            nodes.append(("range", (match.group(1), match.group(2)), body))
        elif match := re.fullmatch(r"\.(\w+)", value):
            nodes.append(("field", match.group(1)))
        elif match := re.fullmatch(r"\$(\w+)", value):
            nodes.append(("var", match.group(1)))
        else:
            raise TaskSetupError(f"Template failed: unsupported action {{{{ {value} }}}}")
    return nodes, pos


def render_template(
    text: str,
    state: ClusterState,
    job: dict[str, Any],
    wait_missing: Callable[[str], bool],
) -> str:
    """Render ``text`` for a task of ``job``; ``wait_missing(path)`` blocks on a missing var."""
    owner = job["ParentID"] or job["ID"]

    def read(path: str) -> dict[str, str]:
        if not (
            path == "nomad/jobs"
            or path == f"nomad/jobs/{owner}"
            or path.startswith(f"nomad/jobs/{owner}/")
        ):
            raise TaskSetupError(f"Template failed: nomadVar.block({path}): Permission denied")
        while True:
            try:
                return dict(state.variable(job["Namespace"], path)["Items"])
            except ApiError:
                if not wait_missing(path):
                    raise TaskSetupError(f"Template failed: {path} never appeared") from None

    def render(nodes: list[Any], dot: dict[str, str], scope: dict[str, str]) -> str:
        out = []
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "field":
                out.append(dot.get(node[1], "<no value>"))
            elif kind == "var":
                out.append(scope[node[1]])
            elif kind == "with":
                out.append(render(node[2], read(node[1]), scope))
            else:
                key_name, value_name = node[1]
                for key in sorted(dot):
                    out.append(render(node[2], dot, {**scope, key_name: key, value_name: dot[key]}))
        return "".join(out)

    nodes, _ = _parse(_tokens(text))
    return render(nodes, {}, {})
