"""Runid templates: wepppy's ``{...}`` syntax, evaluated by walking a whitelisted AST.

A template such as ``{slug(properties['HucName'])}-{zfill(one_based_index, 3)}``
is split into literal text and ``{expression[:format_spec]}`` fields exactly as
wepppy's ``WatershedCollection.evaluate_template`` splits it (``{{``/``}}`` are
literal braces; braces inside a field nest; the format spec is what follows the
first ``:`` outside brackets and quotes, stripped). Each expression is parsed
with ``ast.parse`` and checked once against wepppy's whitelist *as its validator
applies it*: names from the feature context, calls by bare name to the six
helpers, subscripts and slices, literals (str, number, list, tuple, dict, set),
conditionals (``a if c else b``) and f-strings. wepppy's validator also visits
operator nodes, which are not on its list, so every operator (``+``, ``%``,
``==``, ``not``, ``and``, unary minus...) is refused there and here.
Evaluation interprets the checked tree directly; nothing is ever passed to ``eval``.

Refusals beyond wepppy, all documented: a helper named without a call (wepppy
renders the function's memory address, a different runid every run), an unchecked
expression after ``**`` in a helper call (wepppy does not look at it), and anything
that would grow past ``MAX_TEXT``: sizes are computed *before* a value is built
(format-spec widths and precisions, ``zfill`` widths, ``replace`` and ``slug``
results, f-strings, containers), rendering a container walks at most ``MAX_TEXT``
elements, templates are at most ``MAX_TEXT`` characters and nest at most
``MAX_DEPTH`` levels.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sluice.errors import SluiceInputError

CONTEXT_NAMES = ("properties", "feature", "index", "one_based_index")
MAX_TEXT = 10_000
MAX_DEPTH = 100


class TemplateEvaluationError(ValueError):
    """A checked template failed on one feature (for example a missing property)."""


def _too_big(size: float) -> TemplateEvaluationError:
    return TemplateEvaluationError(
        f"value longer than {MAX_TEXT:,} characters (about {size:,.0f} needed)"
    )


def _cost(value: Any, budget: int = MAX_TEXT + 1) -> int:
    """Characters ``str(value)`` would take, at least; stops counting once over ``budget``."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return max(1, int(value.bit_length() * 0.30103) + 1)
    if isinstance(value, float | complex):
        return 24
    if not isinstance(value, list | tuple | dict | set | frozenset):
        return 24
    total, stack = 2, [value]
    while stack and total <= budget:
        item = stack.pop()
        children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
        for child in children:
            total += 2
            if isinstance(child, list | tuple | dict | set | frozenset):
                stack.append(child)
                total += 2
            else:
                total += _cost(child)
            if total > budget:
                break
    return total


def _checked(value: Any) -> Any:
    size = _cost(value)
    if size > MAX_TEXT:
        raise _too_big(size)
    return value


def _text(value: Any) -> str:
    """wepppy's ``str(value or "")``: None, 0, False and empty values become ""."""
    return str(_checked(value)) if value else ""


def slug(value: Any, *, separator: Any = "-") -> str:
    """Runs of characters other than ASCII letters and digits become ``separator``; case kept."""
    text, separator = _text(value).strip(), str(_checked(separator))
    runs = len(re.findall(r"[^A-Za-z0-9]+", text))
    if runs * len(separator) + len(text) > MAX_TEXT:
        raise _too_big(runs * len(separator) + len(text))
    text = re.sub(r"[^A-Za-z0-9]+", separator, text)
    text = re.sub(f"{re.escape(separator)}+", separator, text)
    return text.strip(separator)


def lower(value: Any) -> str:
    return _text(value).lower()


def upper(value: Any) -> str:
    return _text(value).upper()


def title(value: Any) -> str:
    return _text(value).title()


def zfill(value: Any, width: Any) -> str:
    width = int(width)
    if width > MAX_TEXT:
        raise _too_big(width)
    return _text(value).zfill(width)


def replace(value: Any, old: Any, new: Any) -> str:
    text, old, new = _text(value), _checked(old), _checked(new)
    if isinstance(old, str) and isinstance(new, str):
        count = text.count(old) if old else len(text) + 1
        if len(text) + count * (len(new) - len(old)) > MAX_TEXT:
            raise _too_big(len(text) + count * (len(new) - len(old)))
    return text.replace(old, new)


HELPERS: dict[str, Callable[..., str]] = {
    f.__name__: f for f in (slug, lower, upper, title, zfill, replace)
}

_PLAIN = (
    ast.Expression,
    ast.Load,
    ast.Constant,
    ast.Subscript,
    ast.Slice,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.Set,
    ast.IfExp,
    ast.JoinedStr,
    ast.FormattedValue,
    ast.keyword,
)


def _check(node: ast.AST, depth: int = 0) -> None:
    """Raise ValueError unless every node of the tree is whitelisted and nests shallowly."""
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute):
            raise ValueError(f"attribute access ('.{node.func.attr}') is not allowed")
        if not isinstance(node.func, ast.Name):
            raise ValueError("only bare calls to slug, lower, upper, title, zfill, replace")
        if node.func.id not in HELPERS:
            raise ValueError(f"unknown function {node.func.id!r}")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise ValueError("*args is not allowed")
        for argument in [*node.args, *(k.value for k in node.keywords)]:
            _check(argument, depth + 1)
        return
    if isinstance(node, ast.Name):
        if node.id in HELPERS:
            raise ValueError(
                f"{node.id!r} can only be called (wepppy would print the function's address)"
            )
        if node.id not in CONTEXT_NAMES:
            raise ValueError(f"unknown name {node.id!r}")
        return
    if isinstance(node, ast.Attribute):
        raise ValueError(f"attribute access ('.{node.attr}') is not allowed")
    if isinstance(node, ast.BinOp | ast.UnaryOp | ast.BoolOp | ast.Compare):
        op = node.ops[0] if isinstance(node, ast.Compare) else node.op
        raise ValueError(
            f"operator {type(op).__name__} is not allowed (wepppy's whitelist has no operators)"
        )
    if not isinstance(node, _PLAIN):
        raise ValueError(f"{type(node).__name__} is not allowed")
    for child in ast.iter_child_nodes(node):
        _check(child, depth + 1)


def _number(digits: str) -> int:
    """A width or precision written in a spec, capped just above ``MAX_TEXT``."""
    digits = digits.lstrip("0") or "0"
    return MAX_TEXT + 1 if len(digits) > len(str(MAX_TEXT)) else min(int(digits), MAX_TEXT + 1)


def _format(value: Any, spec: Any) -> str:
    """``format(value, spec)`` once every number in the spec (width, precision) is small."""
    spec = str(_checked(spec))
    widest = max((_number(run) for run in re.findall(r"\d+", spec)), default=0)
    if widest > MAX_TEXT:
        raise _too_big(widest)
    return _checked(format(_checked(value), spec))


def _evaluate(node: ast.AST, context: dict[str, Any]) -> Any:  # noqa: C901 - one case per node
    match node:
        case ast.Expression(body=body):
            return _evaluate(body, context)
        case ast.Constant(value=value):
            return value
        case ast.Name(id=name):
            return context[name]
        case ast.Subscript(value=target, slice=key):
            container = _evaluate(target, context)
            index = _evaluate(key, context)
            if isinstance(index, slice) and isinstance(container, str | list | tuple):
                taken = len(range(*index.indices(len(container))))
                if taken > MAX_TEXT:
                    raise _too_big(taken)
            try:
                return container[index]
            except KeyError:
                raise TemplateEvaluationError(f"property {index!r} is missing") from None
            except (IndexError, TypeError) as exc:
                raise TemplateEvaluationError(f"bad index {index!r}: {exc}") from None
        case ast.Slice(lower=lo, upper=hi, step=step):
            return slice(*(None if n is None else _evaluate(n, context) for n in (lo, hi, step)))
        case ast.Call(func=ast.Name(id=name), args=args, keywords=keywords):
            values = [_evaluate(a, context) for a in args]
            named = {k.arg: _evaluate(k.value, context) for k in keywords if k.arg}
            for k in keywords:
                if k.arg is None:  # wepppy accepts **mapping here; the call then decides
                    named.update(_checked(_evaluate(k.value, context)))
            return HELPERS[name](*values, **named)
        case ast.IfExp(test=test, body=body, orelse=orelse):
            return _evaluate(body if _evaluate(test, context) else orelse, context)
        case ast.List(elts=elts) | ast.Tuple(elts=elts) | ast.Set(elts=elts):
            items = [_evaluate(e, context) for e in elts]
            kind = {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)]
            return _checked(kind(items))
        case ast.Dict(keys=keys, values=values):
            result: dict[Any, Any] = {}
            for key_node, value_node in zip(keys, values, strict=True):
                if key_node is None:  # {**mapping}
                    result.update(_checked(_evaluate(value_node, context)))
                else:
                    result[_evaluate(key_node, context)] = _evaluate(value_node, context)
            return _checked(result)
        case ast.JoinedStr(values=values):
            pieces = [str(_evaluate(v, context)) for v in values]
            if sum(map(len, pieces)) > MAX_TEXT:
                raise _too_big(sum(map(len, pieces)))
            return "".join(pieces)
        case ast.FormattedValue(value=value, conversion=conversion, format_spec=spec):
            shown = _checked(_evaluate(value, context))
            if conversion == ord("r"):
                shown = repr(shown)
            elif conversion in (ord("s"), ord("a")):
                shown = str(shown) if conversion == ord("s") else ascii(shown)
            return _format(shown, _evaluate(spec, context) if spec else "")
    raise TemplateEvaluationError(f"{type(node).__name__} is not allowed")  # pragma: no cover


@dataclass(frozen=True)
class _Field:
    expression: ast.Expression
    format_spec: str | None


def _split_format(text: str) -> tuple[str, str | None]:
    """wepppy's split: at the first ``:`` outside brackets and quotes; both parts stripped."""
    depth, in_single, in_double = 0, False, False
    for i, char in enumerate(text):
        if char == "'" and not in_double:
            in_single = not in_single
        elif char == '"' and not in_single:
            in_double = not in_double
        elif in_single or in_double:
            continue
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(depth - 1, 0)
        elif char == ":" and depth == 0:
            return text[:i].strip(), text[i + 1 :].strip()
    return text.strip(), None


def _compile(source: str) -> ast.Expression:
    try:
        expression = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"syntax error in {{{source[:80]}}}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ValueError(f"{{{source[:80]}...}} nests too deeply") from None
    _check(expression)
    return expression


def _parse(template: str) -> list[str | _Field]:
    """Literal text and fields, scanned as wepppy scans them (braces nest, quotes do not count)."""
    parts: list[str | _Field] = []
    i, length = 0, len(template)
    while i < length:
        char = template[i]
        if char in "{}" and template.startswith(char * 2, i):
            parts.append(char)
            i += 2
        elif char == "}":
            raise ValueError(f"single '}}' at position {i}")
        elif char == "{":
            depth, end = 1, i + 1
            while end < length and depth:
                depth += {"{": 1, "}": -1}.get(template[end], 0)
                end += 1
            if depth:
                raise ValueError(f"unmatched '{{' at position {i}")
            source, spec = _split_format(template[i + 1 : end - 1])
            parts.append(_Field(_compile(source), spec or None))
            i = end
        else:
            start = i
            while i < length and template[i] not in "{}":
                i += 1
            parts.append(template[start:i])
    return parts


class RunidTemplate:
    """A checked runid template; ``render`` gives one feature's runid."""

    def __init__(self, template: str) -> None:
        self.source = template
        if not template or not template.strip():
            raise SluiceInputError("runid template: empty")
        if len(template) > MAX_TEXT:
            raise SluiceInputError(f"runid template: longer than {MAX_TEXT:,} characters")
        try:
            self._parts = _parse(template)
        except ValueError as exc:
            raise SluiceInputError(f"runid template {template[:200]!r}: {exc}") from None

    def render(self, feature: dict[str, Any], index: int) -> str:
        """The stripped runid of ``feature`` (0-based ``index``); TemplateEvaluationError if not."""
        properties = feature.get("properties")
        context = {
            "feature": feature,
            "properties": properties if isinstance(properties, dict) else {},
            "index": index,
            "one_based_index": index + 1,
        }
        chunks: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                chunks.append(part)
                continue
            try:
                value = _evaluate(part.expression, context)
                chunks.append(
                    _format(value, part.format_spec) if part.format_spec else str(_checked(value))
                )
            except TemplateEvaluationError:
                raise
            except (ValueError, TypeError, ArithmeticError, re.error) as exc:
                raise TemplateEvaluationError(str(exc)) from None
        if sum(map(len, chunks)) > MAX_TEXT:
            raise _too_big(sum(map(len, chunks)))
        return "".join(chunks).strip()
