"""A flow command's options, derived from the flow function: its signature gives names,
types and defaults, its docstring's ``Args:`` the help. Nothing is restated in the CLI.

The signature is read from the flow's source, not by importing the flow module: importing
Prefect costs seconds, and ``sluice <cmd> --help`` must not. The names an annotation or a
default uses are imported from where the module imports them (the domain, light); a name
from a ``prefect*`` package or ``sluice.blocks`` stays a :class:`Deferred` reference,
imported only when a command runs. ``tests/core/test_flow_options.py`` checks what is read
here against the imported flow (``inspect.signature``, Prefect's docstring parser).

Values are checked once, by pydantic against the parameter's annotation (constraints
included): the same validation Prefect runs when the flow is called and the UI form's
schema shows. A refusal is one ``error:`` line naming the option (exit 2).
"""

from __future__ import annotations

import ast
import builtins
import enum
import functools
import importlib
import importlib.util
import inspect
import re
import types
import typing
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.core import ParameterSource  # Typer 0.29 vendors Click

from sluice.errors import SluiceInputError

_EMPTY = inspect.Parameter.empty
_SIMPLE = (str, int, float)
_BLOCKS = "sluice.blocks"  # Sluice's own Prefect blocks: deferred like Prefect's


class Deferred:
    """A class a flow annotation names from ``prefect*`` or ``sluice.blocks`` (a Block),
    kept by name so ``--help`` does not import Prefect; :meth:`load` imports it."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def load(self) -> type:
        return getattr(importlib.import_module(self.module), self.name)

    def __or__(self, other: Any) -> Any:
        return typing.Optional[self] if other is None else NotImplemented  # noqa: UP045

    def __ror__(self, other: Any) -> Any:
        return self.__or__(other)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Deferred) and (self.module, self.name) == (
            other.module,
            other.name,
        )

    def __hash__(self) -> int:
        return hash((self.module, self.name))

    def __repr__(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True)
class FlowParameter:
    """One parameter of a flow as its signature and docstring declare it."""

    name: str
    annotation: Any
    default: Any
    help: str

    @property
    def flag(self) -> str:
        return flag_of(self.name)

    @property
    def block(self) -> Deferred | None:
        """The block class when the parameter takes a block (``X`` or ``X | None``)."""
        found = [a for a in _members(self.annotation) if isinstance(a, Deferred)]
        return found[0] if found else None


def _strip(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _members(annotation: Any) -> list[Any]:
    """The members of a union (one member for anything else), ``None`` left out."""
    annotation = _strip(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [_strip(a) for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


class _ModuleNames(Mapping[str, Any]):
    """The names a flow module's top level binds, each resolved only when looked up."""

    def __init__(self, tree: ast.Module, package: str | None) -> None:
        self._package = package
        self._sources: dict[str, ast.AST] = {}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom | ast.Import | ast.Assign | ast.AnnAssign):
                for name in _bound_names(node):
                    self._sources[name] = node
        self._values: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            node = self._sources.get(name)
            if node is None:
                raise KeyError(name)
            self._values[name] = self._resolve(name, node)
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    def _resolve(self, name: str, node: ast.AST) -> Any:
        if isinstance(node, ast.ImportFrom):
            module = importlib.util.resolve_name(
                "." * node.level + (node.module or ""), self._package
            )
            original = next(a.name for a in node.names if (a.asname or a.name) == name)
            if module.split(".")[0].startswith("prefect") or module.startswith(_BLOCKS):
                return Deferred(module, original)
            return getattr(importlib.import_module(module), original)
        if isinstance(node, ast.Import):
            alias = next(a for a in node.names if (a.asname or a.name.split(".")[0]) == name)
            imported = importlib.import_module(alias.name)
            return imported if alias.asname else importlib.import_module(name)
        value = node.value  # type: ignore[attr-defined]
        return self.evaluate(value)

    def evaluate(self, node: ast.expr) -> Any:
        code = compile(ast.Expression(node), "<flow signature>", "eval")
        return eval(code, {"__builtins__": builtins}, self)  # noqa: S307 (the flow's own source)


def _bound_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [a.asname or a.name for a in node.names]
    if isinstance(node, ast.Import):
        return [a.asname or a.name.split(".")[0] for a in node.names]
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]  # type: ignore[attr-defined]
    return [t.id for t in targets if isinstance(t, ast.Name)]


_ARGS = re.compile(r"^(\s*)Args:\s*$")
_ENTRY = re.compile(r"^(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def parameter_help(docstring: str | None) -> dict[str, str]:
    """The Google-style ``Args:`` entries of a docstring, each as one line of help (the text
    Prefect's own parser gives the UI form, whitespace folded)."""
    lines = inspect.cleandoc(docstring or "").splitlines()
    found: dict[str, list[str]] = {}
    section_indent = None
    current: list[str] | None = None
    for line in lines:
        if section_indent is None:
            if match := _ARGS.match(line):
                section_indent = len(match.group(1))
            continue
        if line.strip() and len(line) - len(line.lstrip()) <= section_indent:
            break  # the next section
        text = line.strip()
        if (entry := _ENTRY.match(text)) and len(line) - len(line.lstrip()) <= section_indent + 4:
            current = found.setdefault(entry.group(1), [entry.group(2)])
        elif current is not None and text:
            current.append(text)
    return {name: " ".join(" ".join(parts).split()) for name, parts in found.items()}


@functools.cache
def read_flow(module: str, function: str) -> tuple[FlowParameter, ...]:
    """The parameters of ``module.function`` (a flow), read from its source."""
    package, _, leaf = module.rpartition(".")
    # The package's own __init__ is not run either (sluice.flows' imports Prefect).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"no package {package}")
    path = next(Path(p, f"{leaf}.py") for p in spec.submodule_search_locations)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    names = _ModuleNames(tree, package)
    helps = parameter_help(ast.get_docstring(node, clean=False))
    args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
    defaults: list[ast.expr | None] = [None] * (
        len(node.args.posonlyargs + node.args.args) - len(node.args.defaults)
    )
    defaults += [*node.args.defaults, *node.args.kw_defaults]
    parameters = []
    for arg, default in zip(args, defaults, strict=True):
        annotation = names.evaluate(arg.annotation) if arg.annotation else Any
        value = _EMPTY if default is None else names.evaluate(default)
        parameters.append(FlowParameter(arg.arg, annotation, value, helps.get(arg.arg, "")))
    return tuple(parameters)


@dataclass
class FlowArguments:
    """What a flow command was given: the flow's parameters (validated) and the CLI's own."""

    values: dict[str, Any]
    parameters: tuple[FlowParameter, ...]
    given: frozenset[str]  # the options set on the command line (not left at the default)

    def for_the_flow(self) -> dict[str, Any]:
        """The flow's parameters, ready for the call: the API known (the embedded server
        started if none is set; call this after every check that needs no server) and each
        block option's name replaced by the saved block, or one line naming the option."""
        from sluice.server import ensure_api, load_block

        ensure_api()
        loaded = dict(self.values)
        for parameter in self.parameters:
            name = loaded.get(parameter.name)
            if parameter.block is not None and isinstance(name, str):
                loaded[parameter.name] = load_block(parameter.block.load(), name, parameter.flag)
        return loaded


def _click_type(parameter: FlowParameter) -> Any:
    """The type Click parses the option as; pydantic then checks the value against the
    annotation. Enums are choices, bools flags; a list or a string mapping is repeated
    (``--x a --x b``); anything else is one text value."""
    members = _members(parameter.annotation)
    if len(members) == 1:
        (kind,) = members
        if kind is bool or kind in _SIMPLE or _is_enum(kind):
            return kind
        if typing.get_origin(kind) is list or (
            typing.get_origin(kind) is dict and typing.get_args(kind) == (str, str)
        ):
            return list[str]
    return str


def _is_enum(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, enum.Enum)


def _listed(parameter: FlowParameter) -> bool:
    """Whether a repeated option also takes comma-separated values (``--tasks a,b``): a
    list of numbers or enum members (never text, which may hold a comma)."""
    (kind,) = _members(parameter.annotation)
    args = typing.get_args(kind)
    return typing.get_origin(kind) is list and (args[0] in (int, float) or _is_enum(args[0]))


def _option(parameter: FlowParameter, aliases: Sequence[str], argument: bool, *, first: str) -> Any:
    if argument:
        return typer.Argument(help=parameter.help, show_default=False)
    flags = [first, *(f for f in (parameter.flag, *aliases) if f != first)]
    if _click_type(parameter) is bool:
        flags = [f"{flag}/--no-{flag[2:]}" for flag in flags[:1]] + list(flags[1:])
    metavar = "<text,...>" if _click_type(parameter) == list[str] else None
    held = _default(parameter, _click_type(parameter)) == parameter.default
    shown: bool | str = True if held else str(parameter.default)  # the flow's, as text
    if parameter.default is _EMPTY:
        shown = False  # required
    return typer.Option(*flags, help=parameter.help, metavar=metavar, show_default=shown)


def _check(parameter: FlowParameter, value: Any, named: str) -> Any:
    """``value`` checked and converted by pydantic against the parameter's annotation."""
    from pydantic import TypeAdapter, ValidationError

    annotation = parameter.annotation
    if parameter.block is not None:
        return value  # a block's name: looked up by for_the_flow()
    try:
        return TypeAdapter(annotation).validate_python(value)
    except ValidationError as error:
        raise SluiceInputError(_one_line(named, value, error)) from None


def _one_line(flag: str, value: Any, error: Any) -> str:
    problems = error.errors(include_url=False)
    for problem in problems:  # a check of Sluice's own (sluice.names) says it all
        cause = (problem.get("ctx") or {}).get("error")
        if isinstance(cause, SluiceInputError):
            return str(cause)
    items = [p for p in problems if any(isinstance(step, int) for step in p["loc"])]
    if items:
        return f"{flag}: {_shown(items[0]['input'])}: {items[0]['msg'][:200]}"
    said = " or ".join(dict.fromkeys(p["msg"].removeprefix("Value error, ") for p in problems))
    return f"{flag} {_shown(value)}: {said[:300]}"


def _shown(value: Any) -> str:
    from sluice.quantity import shown

    return shown(value)


def flow_command(
    module: str,
    function: str,
    *,
    exclude: Collection[str] = (),
    only: Collection[str] | None = None,
    aliases: Mapping[str, Sequence[str]] | None = None,
    arguments: Collection[str] = (),
    trailing: str | None = None,
    aliases_first: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Make ``body(arguments: FlowArguments, **cli_only)`` a command whose options are the
    flow's parameters (minus ``exclude``; or ``only`` those, for a command that uses a few
    of them without running the flow) followed by the body's own CLI-only options.

    ``aliases`` adds spellings a seed used (``--batch_name``; with ``aliases_first`` they
    lead, in the help and in refusals, as the seed's commands spell them); ``arguments``
    are given positionally; ``trailing`` names a list option that also takes the words after it
    (``--indexes 0 1 2``, as the seed wrote it)."""
    flow_parameters = tuple(
        p
        for p in read_flow(module, function)
        if p.name not in exclude and (only is None or p.name in only)
    )
    aliases = aliases or {}
    shown_as = {
        p.name: aliases[p.name][0] if aliases_first and aliases.get(p.name) else p.flag
        for p in flow_parameters
    }

    def decorate(body: Callable[..., Any]) -> Callable[..., Any]:
        own = list(inspect.signature(body, eval_str=True).parameters.values())[1:]
        clash = {p.name for p in own} & {p.name for p in flow_parameters}
        if clash:
            raise TypeError(f"{body.__name__}: CLI-only options shadow flow parameters {clash}")
        signature = [
            inspect.Parameter(
                "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
            )
        ]
        ordered = sorted(
            flow_parameters, key=lambda p: (p.name not in arguments, p.default is not _EMPTY)
        )
        for parameter in ordered:
            kind = _click_type(parameter)
            annotation = Annotated[  # type: ignore[valid-type]  # built at run time for Typer
                kind if parameter.default is not None and parameter.block is None else kind | None,
                _option(
                    parameter,
                    aliases.get(parameter.name, ()),
                    parameter.name in arguments,
                    first=shown_as[parameter.name],
                ),
            ]
            signature.append(
                inspect.Parameter(
                    parameter.name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=_default(parameter, kind),
                    annotation=annotation,
                )
            )
        signature += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        signature.append(_CONFIG)

        @functools.wraps(body)
        def command(ctx: typer.Context, **given: Any) -> Any:
            given.pop(_CONFIG.name)  # its values are Click's defaults now (_read_config)
            typed = frozenset(
                p.name for p in flow_parameters if ctx.get_parameter_source(p.name) in _GIVEN
            )
            values = _values(flow_parameters, given, ctx.args, trailing, arguments, shown_as)
            from sluice.ledger import check_ledger_url

            # every flow records in a ledger: its own, or $SLUICE_LEDGER_URL's, checked first
            check_ledger_url(values.get("ledger_url"), name="--ledger-url")
            return body(FlowArguments(values, flow_parameters, typed), **given)

        command.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
        del command.__wrapped__  # Typer reads __signature__, not the body's
        command.__annotations__ = {}
        command.cli_only = [p.name for p in own]  # type: ignore[attr-defined]
        return command

    return decorate


def _read_config(ctx: typer.Context, _: Any, path: Path | None) -> None:
    """``--config FILE``: its keys (option names, ``_`` or ``-``) become Click's defaults,
    so the command line wins and every value is checked as if typed; an unknown key, or a
    file that is not a YAML mapping, is one line."""
    if path is None:
        return
    import yaml

    from sluice.inputs import read_text_file

    where = str(path)[:120]
    try:
        data = yaml.safe_load(read_text_file(path, what="--config", max_bytes=1 << 20))
    except yaml.YAMLError as error:
        raise typer.BadParameter(f"{where}: not YAML ({str(error).splitlines()[0]})") from None
    except SluiceInputError as error:
        raise typer.BadParameter(str(error).split(": ", 1)[-1]) from None
    if data is None:
        return
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{where}: expected a mapping of option names to values")
    options = {p.name for p in ctx.command.params if p.name and p.name != _CONFIG.name}
    defaults: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in options:
            raise typer.BadParameter(f"{where}: unknown key {str(key)[:80]!r} (no such option)")
        defaults[name] = value
    ctx.default_map = {**(ctx.default_map or {}), **defaults}


_GIVEN = (ParameterSource.COMMANDLINE, ParameterSource.DEFAULT_MAP)  # typed, or in --config
_CONFIG = inspect.Parameter(
    "config",
    inspect.Parameter.KEYWORD_ONLY,
    default=None,
    annotation=Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            is_eager=True,  # read before the other options, so it can supply their values
            callback=_read_config,
            help="A YAML file of option values (name: value, as the flow's parameters); "
            "options on the command line win; an unknown key is an error.",
        ),
    ],
)


def _values(
    parameters: tuple[FlowParameter, ...],
    given: dict[str, Any],
    extra: list[str],
    trailing: str | None,
    positional: Collection[str],
    shown_as: Mapping[str, str],
) -> dict[str, Any]:
    """The flow's parameters out of what Click parsed (taken out of ``given``), each checked
    by pydantic against its annotation; a default is the flow's own, never re-checked."""
    values = {p.name: given.pop(p.name) for p in parameters}
    if extra and (trailing is None or not values[trailing]):
        raise SluiceInputError(f"unexpected arguments: {' '.join(extra)}")
    for parameter in parameters:
        value = values[parameter.name]
        if value is None and parameter.default is not _EMPTY:
            values[parameter.name] = parameter.default  # Click held None for it (see _default)
            continue
        if _click_type(parameter) == list[str] and value is not None:
            last = parameter.name == trailing
            value = [*value, *(extra if last else [])]
            value = _split(value, whitespace=last) if _listed(parameter) else value
        if value is not parameter.default:
            named = parameter.name if parameter.name in positional else shown_as[parameter.name]
            values[parameter.name] = _check(parameter, value, named)
    return values


def flag_of(name: str) -> str:
    """The option a flow parameter becomes: ``template_path`` -> ``--template-path``."""
    return "--" + name.replace("_", "-")


def _default(parameter: FlowParameter, kind: Any) -> Any:
    if parameter.default is _EMPTY:
        return ...  # required
    if kind is str and not isinstance(parameter.default, str | None):
        return None  # shown by the flow's default: pydantic is not asked about it
    return parameter.default


def _split(given: list[str], *, whitespace: bool) -> list[str]:
    """A list option's values: repeated, comma-separated, or (the trailing option, as the
    seed wrote it) space-separated."""
    separators = r"[,\s]+" if whitespace else ","
    words = (w.strip() for text in given for w in re.split(separators, text))
    return [w for w in words if w]
