"""``POST /v1/jobs/parse`` for the HCL2 subset of Nomad jobspecs the double understands.

Covers the job/group/task structure of batch jobs: attributes (strings with ``${...}``
kept for runtime interpolation, heredocs, numbers, bools, lists), ``meta``/``env``/
``config`` blocks, ``parameterized``, ``restart``, ``reschedule``, ``resources``,
``template`` and ``dispatch_payload``. Anything else is a 400 naming it, so a spec that
the double cannot represent fails loudly instead of running differently.
"""

from __future__ import annotations

import re
from typing import Any

from tests.nomad_double.state import ApiError, parse_duration

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*|//[^\n]*|/\*.*?\*/)
  | (?P<heredoc><<-?(?P<tag>[A-Za-z_]\w*)\n(?P<doc>.*?)\n[ \t]*(?P=tag)(?=\n|$))
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][\w-]*)
  | (?P<punct>[{}\[\]=,])
    """,
    re.S | re.X,
)


def _lex(text: str) -> list[tuple[str, Any]]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            line = text.count("\n", 0, pos) + 1
            raise ApiError(400, f"input.hcl:{line}: unexpected character {text[pos]!r}")
        pos = match.end()
        kind = match.lastgroup
        if kind == "ws":
            continue
        if kind in ("tag", "doc", "heredoc"):
            doc = match.group("doc")
            if match.group(0).startswith("<<-"):
                lines = doc.split("\n")
                indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
                doc = "\n".join(x[indent:] for x in lines)
            tokens.append(("value", doc + "\n"))
        elif kind == "string":
            raw = match.group(0)[1:-1]
            tokens.append(("value", re.sub(r"\\(.)", _unescape, raw)))
        elif kind == "number":
            number = match.group(0)
            tokens.append(("value", float(number) if "." in number else int(number)))
        elif kind == "ident" and match.group(0) in ("true", "false"):
            tokens.append(("value", match.group(0) == "true"))
        else:
            tokens.append((kind, match.group(0)))
    return tokens


def _unescape(match: re.Match[str]) -> str:
    return {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(match.group(1), match.group(0))


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.tokens, self.pos = tokens, 0

    def peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str, value: Any = None) -> Any:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            raise ApiError(400, f"input.hcl: expected {value or kind}, got {token}")
        self.pos += 1
        return token[1]

    def body(self, closing: bool) -> list[tuple[str, Any, Any]]:
        """Items of a body: ``("attr", name, value)`` or ``("block", name, (labels, items))``."""
        items = []
        while (token := self.peek()) is not None and token != ("punct", "}"):
            name = self.take("ident")
            if self.peek() == ("punct", "="):
                self.take("punct", "=")
                items.append(("attr", name, self.expr()))
                continue
            labels = []
            while self.peek() is not None and self.peek()[0] == "value":
                labels.append(self.take("value"))
            self.take("punct", "{")
            items.append(("block", name, (labels, self.body(closing=True))))
            self.take("punct", "}")
        if not closing and self.peek() is not None:
            raise ApiError(400, "input.hcl: unexpected '}'")
        return items

    def expr(self) -> Any:
        token = self.peek()
        if token == ("punct", "["):
            self.take("punct", "[")
            values = []
            while self.peek() != ("punct", "]"):
                values.append(self.expr())
                if self.peek() == ("punct", ","):
                    self.take("punct", ",")
            self.take("punct", "]")
            return values
        if token == ("punct", "{"):
            self.take("punct", "{")
            mapping = {}
            while self.peek() != ("punct", "}"):
                key = self.take("value") if self.peek()[0] == "value" else self.take("ident")
                self.take("punct", "=")
                mapping[key] = self.expr()
                if self.peek() == ("punct", ","):
                    self.take("punct", ",")
            self.take("punct", "}")
            return mapping
        return self.take("value")


def _attrs(items, allowed: dict[str, str], where: str) -> dict[str, Any]:
    out = {}
    for kind, name, value in items:
        if kind != "attr" or name not in allowed:
            raise ApiError(400, f"{where}: {name!r} is not supported by the Nomad double")
        out[allowed[name]] = value
    return out


def _mapping(items, where: str) -> dict[str, Any]:
    out = {}
    for kind, name, value in items:
        if kind != "attr":
            raise ApiError(400, f"{where}: block {name!r} is not supported by the Nomad double")
        out[name] = value
    return out


def _ns(value: Any) -> int:
    return int(parse_duration(value) * 1e9) if isinstance(value, str) else int(value)


def _task(name: str, items) -> dict[str, Any]:
    task: dict[str, Any] = {"Name": name, "Templates": []}
    for kind, key, value in items:
        if kind == "attr" and key in ("driver", "user", "kill_timeout"):
            task[{"driver": "Driver", "user": "User", "kill_timeout": "KillTimeout"}[key]] = value
        elif kind == "block" and key in ("config", "env", "meta"):
            task[key.capitalize()] = _mapping(value[1], f"task {name} {key}")
        elif kind == "block" and key == "resources":
            spec = _attrs(
                value[1],
                {"cpu": "CPU", "memory": "MemoryMB", "memory_max": "MemoryMaxMB"},
                f"task {name} resources",
            )
            task["Resources"] = spec
        elif kind == "block" and key == "template":
            spec = _attrs(
                value[1],
                {
                    "data": "EmbeddedTmpl",
                    "destination": "DestPath",
                    "env": "Envvars",
                    "change_mode": "ChangeMode",
                },
                f"task {name} template",
            )
            task["Templates"].append(spec)
        elif kind == "block" and key == "dispatch_payload":
            task["DispatchPayload"] = _attrs(value[1], {"file": "File"}, "dispatch_payload")
        else:
            raise ApiError(400, f"task {name}: {key!r} is not supported by the Nomad double")
    return task


def _group(name: str, items) -> dict[str, Any]:
    group: dict[str, Any] = {"Name": name, "Tasks": []}
    for kind, key, value in items:
        if kind == "attr" and key == "count":
            group["Count"] = value
        elif kind == "block" and key == "task":
            group["Tasks"].append(_task(value[0][0], value[1]))
        elif kind == "block" and key == "meta":
            group["Meta"] = _mapping(value[1], f"group {name} meta")
        elif kind == "block" and key == "restart":
            spec = _attrs(
                value[1],
                {"attempts": "Attempts", "delay": "Delay", "interval": "Interval", "mode": "Mode"},
                "restart",
            )
            group["RestartPolicy"] = {
                k: _ns(v) if k in ("Delay", "Interval") else v for k, v in spec.items()
            }
        elif kind == "block" and key == "reschedule":
            spec = _attrs(
                value[1],
                {
                    "attempts": "Attempts",
                    "interval": "Interval",
                    "delay": "Delay",
                    "delay_function": "DelayFunction",
                    "max_delay": "MaxDelay",
                    "unlimited": "Unlimited",
                },
                "reschedule",
            )
            group["ReschedulePolicy"] = {
                k: _ns(v) if k in ("Delay", "Interval", "MaxDelay") else v for k, v in spec.items()
            }
        else:
            raise ApiError(400, f"group {name}: {key!r} is not supported by the Nomad double")
    return group


def parse_job_hcl(text: str) -> dict[str, Any]:
    """The API JSON of the one ``job`` block in ``text``."""
    items = _Parser(_lex(text)).body(closing=False)
    jobs = [v for kind, name, v in items if kind == "block" and name == "job"]
    if len(jobs) != 1 or len(items) != 1:
        raise ApiError(400, "input.hcl: expected exactly one job block")
    labels, body = jobs[0]
    job: dict[str, Any] = {"ID": labels[0], "Name": labels[0], "TaskGroups": []}
    names = {
        "type": "Type",
        "datacenters": "Datacenters",
        "namespace": "Namespace",
        "priority": "Priority",
        "region": "Region",
    }
    for kind, key, value in body:
        if kind == "attr" and key in names:
            job[names[key]] = value
        elif kind == "block" and key == "meta":
            job["Meta"] = _mapping(value[1], "job meta")
        elif kind == "block" and key == "parameterized":
            job["ParameterizedJob"] = _attrs(
                value[1],
                {
                    "payload": "Payload",
                    "meta_required": "MetaRequired",
                    "meta_optional": "MetaOptional",
                },
                "parameterized",
            )
        elif kind == "block" and key == "group":
            job["TaskGroups"].append(_group(value[0][0], value[1]))
        else:
            raise ApiError(400, f"job {labels[0]}: {key!r} is not supported by the Nomad double")
    return job
