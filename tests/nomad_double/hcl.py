"""``POST /v1/jobs/parse``: an HCL2 jobspec to the job's API JSON, as Nomad's agent does.

The HCL2 grammar is python-hcl2's (a real parser, not a regex). HCL2 input variables are
resolved as Nomad resolves them: ``variable`` blocks with their defaults, overridden by the
request's ``Variables`` (a ``name = value`` vars file); a used variable with no value is a
400 naming it. Runtime interpolations (``${NOMAD_META_x}``, ``${node.class}``) stay in the
strings for the client to resolve.

Covered: the job/group/task structure of batch jobs, ``constraint`` at every level,
``meta``/``env``/``config`` (nested ``config`` blocks become lists of maps, as Nomad's
JSON has them), ``parameterized``, ``restart``, ``reschedule``, ``resources``, ``logs``,
``lifecycle``, ``template`` and ``dispatch_payload``. Anything else is a 400 naming it, so
a spec the double cannot represent fails loudly instead of running differently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

from tests.nomad_double.state import ApiError, parse_duration

_OPTIONS = SerializationOptions(
    with_comments=False, strip_string_quotes=True, preserve_heredocs=False
)
_BLOCK = "__is_block__"
_VARIABLE = re.compile(r"\$\{\s*var\.([A-Za-z_][\w-]*)\s*\}")


def _load(text: str, what: str) -> dict[str, Any]:
    try:
        return hcl2.loads(text, serialization_options=_OPTIONS)
    except Exception as error:  # python-hcl2 raises lark's many error types
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ApiError(400, f"{what}: {first}") from None


def _blocks(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(b, dict) and b.get(_BLOCK) for b in value):
        raise ApiError(400, f"{where}: expected a block")
    return [{k: v for k, v in b.items() if k != _BLOCK} for b in value]


def _labelled(value: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    """``job "x" {...}`` blocks: (label, body) pairs."""
    if not isinstance(value, list):
        raise ApiError(400, f"{where}: expected a block")
    out = []
    for block in value:
        if not isinstance(block, dict) or len(block) != 1:
            raise ApiError(400, f"{where}: expected one label")
        ((label, body),) = block.items()
        if not (isinstance(body, dict) and body.get(_BLOCK)):
            raise ApiError(400, f"{where}: expected a block")
        out.append((label.strip('"'), {k: v for k, v in body.items() if k != _BLOCK}))
    return out


def _plain(value: Any) -> Any:
    """A value with block markers removed; nested blocks become lists of maps."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != _BLOCK}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _one(value: Any, where: str) -> dict[str, Any]:
    blocks = _blocks(value, where)
    if len(blocks) != 1:
        raise ApiError(400, f"{where}: only one block allowed")
    return blocks[0]


def _fields(body: Mapping[str, Any], names: Mapping[str, str], where: str) -> dict[str, Any]:
    out = {}
    for key, value in body.items():
        if key not in names:
            raise ApiError(400, f"{where}: {key!r} is not supported by the Nomad double")
        out[names[key]] = value
    return out


def _ns(value: Any) -> int:
    return int(parse_duration(value) * 1e9) if isinstance(value, str) else int(value)


def _constraints(value: Any, where: str) -> list[dict[str, Any]]:
    names = {"attribute": "LTarget", "value": "RTarget", "operator": "Operand"}
    out = []
    for body in _blocks(value, where):
        constraint = {"LTarget": "", "RTarget": "", "Operand": "="}
        constraint.update(_fields(body, names, where))
        out.append(constraint)
    return out


def _restart(value: Any, where: str) -> dict[str, Any]:
    names = {"attempts": "Attempts", "delay": "Delay", "interval": "Interval", "mode": "Mode"}
    spec = _fields(_one(value, where), names, where)
    return {k: _ns(v) if k in ("Delay", "Interval") else v for k, v in spec.items()}


def _reschedule(value: Any, where: str) -> dict[str, Any]:
    names = {
        "attempts": "Attempts",
        "interval": "Interval",
        "delay": "Delay",
        "delay_function": "DelayFunction",
        "max_delay": "MaxDelay",
        "unlimited": "Unlimited",
    }
    spec = _fields(_one(value, where), names, where)
    return {k: _ns(v) if k in ("Delay", "Interval", "MaxDelay") else v for k, v in spec.items()}


def _section(
    body: Mapping[str, Any],
    where: str,
    scalars: Mapping[str, str],
    blocks: Mapping[str, tuple[str, Callable[[Any, str], Any]]],
) -> dict[str, Any]:
    """Scalars renamed; each known block converted by its function; the rest refused."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in scalars:
            out[scalars[key]] = value
        elif key in blocks:
            name, convert = blocks[key]
            out[name] = convert(value, f"{where} {key}")
        else:
            raise ApiError(400, f"{where}: {key!r} is not supported by the Nomad double")
    return out


def _map(value: Any, where: str) -> dict[str, Any]:
    return _plain(_one(value, where))


def _templates(value: Any, where: str) -> list[dict[str, Any]]:
    names = {
        "data": "EmbeddedTmpl",
        "destination": "DestPath",
        "env": "Envvars",
        "change_mode": "ChangeMode",
    }
    return [_fields(body, names, where) for body in _blocks(value, where)]


_TASK_BLOCKS: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "config": ("Config", _map),
    "env": ("Env", _map),
    "meta": ("Meta", _map),
    "constraint": ("Constraints", _constraints),
    "template": ("Templates", _templates),
    "resources": (
        "Resources",
        lambda v, w: _fields(
            _one(v, w), {"cpu": "CPU", "memory": "MemoryMB", "memory_max": "MemoryMaxMB"}, w
        ),
    ),
    "logs": (
        "LogConfig",
        lambda v, w: _fields(
            _one(v, w), {"max_files": "MaxFiles", "max_file_size": "MaxFileSizeMB"}, w
        ),
    ),
    "lifecycle": (
        "Lifecycle",
        lambda v, w: _fields(_one(v, w), {"hook": "Hook", "sidecar": "Sidecar"}, w),
    ),
    "dispatch_payload": (
        "DispatchPayload",
        lambda v, w: _fields(_one(v, w), {"file": "File"}, w),
    ),
}


def _task(name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    scalars = {"driver": "Driver", "user": "User", "kill_timeout": "KillTimeout"}
    task = {"Name": name, "Templates": []}
    task.update(_section(body, f"task {name}", scalars, _TASK_BLOCKS))
    return task


def _group(name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    group: dict[str, Any] = {"Name": name, "Tasks": []}
    blocks = {
        "meta": ("Meta", _map),
        "constraint": ("Constraints", _constraints),
        "restart": ("RestartPolicy", _restart),
        "reschedule": ("ReschedulePolicy", _reschedule),
        "task": ("Tasks", lambda v, w: [_task(n, b) for n, b in _labelled(v, w)]),
    }
    group.update(_section(body, f"group {name}", {"count": "Count"}, blocks))
    return group


def _parameterized(value: Any, where: str) -> dict[str, Any]:
    names = {"payload": "Payload", "meta_required": "MetaRequired", "meta_optional": "MetaOptional"}
    return _fields(_one(value, where), names, where)


def _variables(document: dict[str, Any], given: str | None) -> dict[str, Any]:
    """Declared variables with their values: defaults, overridden by the request's vars file."""
    declared = {
        name: body.get("default") for name, body in _labelled(document.pop("variable", []), "var")
    }
    overrides = _plain(_load(given, "variables")) if given else {}
    for name in overrides:
        if name not in declared:
            raise ApiError(400, f'Undefined variable: a variable named "{name}" was assigned')
    return {**declared, **overrides}


def _resolve(value: Any, variables: Mapping[str, Any]) -> Any:
    """``${var.x}`` replaced by its value everywhere; other interpolations kept."""
    if isinstance(value, dict):
        return {k: _resolve(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, variables) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise ApiError(400, f'Unsupported attribute: no variable named "{name}" is declared')
        if variables[name] is None:
            raise ApiError(
                400, f'Unset variable "{name}": a used variable must be set or have a default'
            )
        return str(variables[name])

    whole = _VARIABLE.fullmatch(value)
    if whole and variables.get(whole.group(1)) is not None:
        return variables[whole.group(1)]
    return _VARIABLE.sub(substitute, value)


def parse_job_hcl(text: str, variables: str | None = None) -> dict[str, Any]:
    """The API JSON of the one ``job`` block in ``text`` (HCL2, with input variables)."""
    document = _load(text, "input.hcl")
    values = _variables(document, variables)
    jobs = document.pop("job", None)
    if jobs is None or document:
        extra = ", ".join(sorted(document)) or "no job block"
        raise ApiError(400, f"input.hcl: expected exactly one job block ({extra})")
    labelled = _labelled(jobs, "job")
    if len(labelled) != 1:
        raise ApiError(400, "input.hcl: expected exactly one job block")
    [(job_id, body)] = labelled
    body = _resolve(body, values)
    job: dict[str, Any] = {"ID": job_id, "Name": job_id, "TaskGroups": []}
    scalars = {
        "type": "Type",
        "datacenters": "Datacenters",
        "namespace": "Namespace",
        "priority": "Priority",
        "region": "Region",
    }
    blocks = {
        "meta": ("Meta", _map),
        "constraint": ("Constraints", _constraints),
        "parameterized": ("ParameterizedJob", _parameterized),
        "group": ("TaskGroups", lambda v, w: [_group(n, b) for n, b in _labelled(v, w)]),
    }
    job.update(_section(body, f"job {job_id}", scalars, blocks))
    return job
