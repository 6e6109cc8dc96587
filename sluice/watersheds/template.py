"""Runid templates: wepppy's ``{...}`` syntax, evaluated by walking a whitelisted AST.

A template such as ``{slug(properties['HucName'])}-{zfill(one_based_index, 3)}``
is split into literal text and ``{expression[:format_spec]}`` fields (``{{`` and
``}}`` are literal braces). Each expression is parsed with ``ast.parse`` and
checked once against a whitelist: names from the feature context, calls by bare
name to the six helpers, subscripts, literals, arithmetic, comparisons and
conditionals. Attribute access, other calls, lambdas, comprehensions and ``**``
are rejected. Evaluation interprets the checked tree directly; nothing is ever
passed to ``eval``.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sluice.errors import SluiceInputError

CONTEXT_NAMES = ("properties", "feature", "index", "one_based_index")
MAX_TEXT = 10_000


class TemplateEvaluationError(ValueError):
    """A checked template failed on one feature (for example a missing property)."""


def _text(value: Any) -> str:
    """wepppy's ``str(value or "")``: None, 0, False and empty values become ""."""
    return str(value) if value else ""


def slug(value: Any, *, separator: str = "-") -> str:
    """Runs of characters other than ASCII letters and digits become ``separator``; case kept."""
    text = re.sub(r"[^A-Za-z0-9]+", separator, _text(value).strip())
    if separator:
        text = re.sub(f"(?:{re.escape(separator)})+", separator, text)
        text = text.strip(separator)
    return text


def lower(value: Any) -> str:
    return _text(value).lower()


def upper(value: Any) -> str:
    return _text(value).upper()


def title(value: Any) -> str:
    return _text(value).title()


def zfill(value: Any, width: Any) -> str:
    return _text(value).zfill(min(int(width), 255))


def replace(value: Any, old: Any, new: Any) -> str:
    return _text(value).replace(str(old), str(new))


HELPERS: dict[str, Callable[..., str]] = {
    f.__name__: f for f in (slug, lower, upper, title, zfill, replace)
}

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
    ast.Not: operator.not_,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
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
    ast.IfExp,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.JoinedStr,
    ast.FormattedValue,
    ast.keyword,
)


def _check(node: ast.AST) -> None:
    """Raise ValueError unless every node of the tree is whitelisted."""
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute):
            raise ValueError(f"attribute access ('.{node.func.attr}') is not allowed")
        if not isinstance(node.func, ast.Name):
            raise ValueError("only bare calls to slug, lower, upper, title, zfill, replace")
        if node.func.id not in HELPERS:
            raise ValueError(f"unknown function {node.func.id!r}")
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
            k.arg is None for k in node.keywords
        ):
            raise ValueError("*args and **kwargs are not allowed")
        for child in [*node.args, *(k.value for k in node.keywords)]:
            _check(child)
        return
    if isinstance(node, ast.Name):
        if node.id in HELPERS:
            raise ValueError(f"{node.id!r} can only be called")
        if node.id not in CONTEXT_NAMES:
            raise ValueError(f"unknown name {node.id!r}")
        return
    if isinstance(node, ast.Dict) and None in node.keys:
        raise ValueError("** unpacking is not allowed")
    if isinstance(node, ast.Attribute):
        raise ValueError(f"attribute access ('.{node.attr}') is not allowed")
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise ValueError(f"operator {type(node.op).__name__} is not allowed")
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise ValueError(f"operator {type(node.op).__name__} is not allowed")
    elif isinstance(node, ast.Compare):
        if any(type(op) not in _COMPARE for op in node.ops):
            raise ValueError("comparison operator is not allowed")
    elif not isinstance(node, _PLAIN):
        raise ValueError(f"{type(node).__name__} is not allowed")
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, ast.operator | ast.unaryop | ast.cmpop):
            _check(child)


def _bounded(value: Any) -> Any:
    if isinstance(value, str | list | tuple) and len(value) > MAX_TEXT:
        raise TemplateEvaluationError(f"value longer than {MAX_TEXT} characters")
    return value


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
            if not isinstance(container, dict | list | tuple | str):
                raise TemplateEvaluationError(f"cannot index a {type(container).__name__}")
            index = _evaluate(key, context)
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
            named = {k.arg: _evaluate(k.value, context) for k in keywords}
            return _bounded(HELPERS[name](*values, **named))
        case ast.BinOp(left=left, op=op, right=right):
            a, b = _evaluate(left, context), _evaluate(right, context)
            if isinstance(op, ast.Mult):
                sequence, count = (a, b) if isinstance(a, str | list | tuple) else (b, a)
                if (
                    isinstance(sequence, str | list | tuple)
                    and isinstance(count, int)
                    and len(sequence) * count > MAX_TEXT
                ):
                    raise TemplateEvaluationError(f"value longer than {MAX_TEXT} characters")
            return _bounded(_BINARY[type(op)](a, b))
        case ast.UnaryOp(op=op, operand=operand):
            return _UNARY[type(op)](_evaluate(operand, context))
        case ast.BoolOp(op=ast.And(), values=values):
            result = True
            for value in values:
                result = _evaluate(value, context)
                if not result:
                    return result
            return result
        case ast.BoolOp(op=ast.Or(), values=values):
            result = False
            for value in values:
                result = _evaluate(value, context)
                if result:
                    return result
            return result
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            current = _evaluate(left, context)
            for op, comparator in zip(ops, comparators, strict=True):
                following = _evaluate(comparator, context)
                if not _COMPARE[type(op)](current, following):
                    return False
                current = following
            return True
        case ast.IfExp(test=test, body=body, orelse=orelse):
            return _evaluate(body if _evaluate(test, context) else orelse, context)
        case ast.List(elts=elts) | ast.Tuple(elts=elts):
            items = [_evaluate(e, context) for e in elts]
            return items if isinstance(node, ast.List) else tuple(items)
        case ast.Dict(keys=keys, values=values):
            pairs = zip(keys, values, strict=True)
            return {_evaluate(k, context): _evaluate(v, context) for k, v in pairs}
        case ast.JoinedStr(values=values):
            return _bounded("".join(str(_evaluate(v, context)) for v in values))
        case ast.FormattedValue(value=value, conversion=conversion, format_spec=spec):
            result = _evaluate(value, context)
            if conversion == ord("r"):
                result = repr(result)
            elif conversion in (ord("s"), ord("a")):
                result = str(result) if conversion == ord("s") else ascii(result)
            return format(result, _evaluate(spec, context) if spec else "")
    raise TemplateEvaluationError(f"{type(node).__name__} is not allowed")  # pragma: no cover


@dataclass(frozen=True)
class _Field:
    expression: ast.Expression
    format_spec: str


def _split_format(text: str) -> tuple[str, str]:
    """Split ``expr:spec`` at the first colon outside brackets and quotes."""
    depth, quote = 0, None
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == ":" and depth == 0:
            return text[:i], text[i + 1 :]
    return text, ""


def _parse(template: str) -> list[str | _Field]:
    parts: list[str | _Field] = []
    literal: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        if template.startswith(("{{", "}}"), i):
            literal.append(char)
            i += 2
            continue
        if char == "}":
            raise ValueError(f"single '}}' at position {i}")
        if char != "{":
            literal.append(char)
            i += 1
            continue
        depth, quote, end = 1, None, i + 1
        while end < len(template) and depth:
            c = template[end]
            if quote:
                quote = None if c == quote else quote
            elif c in "'\"":
                quote = c
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            end += 1
        if depth:
            raise ValueError(f"unmatched '{{' at position {i}")
        source, spec = _split_format(template[i + 1 : end - 1])
        if not source.strip():
            raise ValueError(f"empty field at position {i}")
        try:
            expression = ast.parse(source.strip(), mode="eval")
        except SyntaxError as exc:
            raise ValueError(f"syntax error in {{{source.strip()}}}: {exc.msg}") from None
        _check(expression)
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(_Field(expression, spec))
        i = end
    if literal:
        parts.append("".join(literal))
    return parts


class RunidTemplate:
    """A checked runid template; ``render`` gives one feature's runid."""

    def __init__(self, template: str) -> None:
        self.source = template
        if not template or not template.strip():
            raise SluiceInputError("runid template: empty")
        try:
            self._parts = _parse(template.strip())
        except ValueError as exc:
            raise SluiceInputError(f"runid template {template!r}: {exc}") from None

    def render(self, feature: dict[str, Any], index: int) -> str:
        """The stripped runid of ``feature`` (0-based ``index``); TemplateEvaluationError if not."""
        properties = feature.get("properties")
        context = {
            "feature": feature,
            "properties": properties if isinstance(properties, dict) else {},
            "index": index,
            "one_based_index": index + 1,
        }
        chunks = []
        for part in self._parts:
            if isinstance(part, str):
                chunks.append(part)
                continue
            try:
                chunks.append(format(_evaluate(part.expression, context), part.format_spec))
            except TemplateEvaluationError:
                raise
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise TemplateEvaluationError(str(exc)) from None
        return "".join(chunks).strip()
