"""A flow command's options and its flow's parameters agree in name, default and help.

The options are derived from the flow (``sluice/cli/flow_options.py``), which reads the
flow's source without importing Prefect: these tests check that reading against the
imported flow (``inspect.signature``, ``typing.get_type_hints`` and Prefect's docstring
parser, which fills the UI form), and every command's Click options against it.
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing

import pytest
import typer.main
from prefect.utilities.callables import parameter_docstrings
from typer.testing import CliRunner

from sluice.cli import app
from sluice.cli.flow_options import Deferred, flag_of, read_flow

# (command path, flow module, flow function, flow parameters the command does not take)
FLOW_COMMANDS = [
    (("sweep",), "sluice.flows.sweep", "tiered_index_sweep", {"ledger_url"}),
]


def _command(path: tuple[str, ...]):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def _real(annotation):
    """``annotation`` with each Deferred class imported, to compare with the flow's own."""
    if isinstance(annotation, Deferred):
        return annotation.load()
    args = typing.get_args(annotation)
    if not args:
        return annotation
    if typing.get_origin(annotation) is typing.Annotated:
        return typing.Annotated[(_real(args[0]), *annotation.__metadata__)]
    origin = typing.get_origin(annotation)
    origin = typing.Union if origin is types.UnionType else origin
    return origin[tuple(_real(a) for a in args)]


@pytest.mark.parametrize(("path", "module", "function", "excluded"), FLOW_COMMANDS)
def test_reading_the_source_matches_the_imported_flow(path, module, function, excluded) -> None:
    flow = getattr(importlib.import_module(module), function)
    signature = inspect.signature(flow.fn)
    hints = typing.get_type_hints(flow.fn, include_extras=True)
    docstrings = parameter_docstrings(inspect.getdoc(flow.fn))
    read = read_flow(module, function)
    assert [p.name for p in read] == list(signature.parameters)
    for parameter in read:
        declared = signature.parameters[parameter.name]
        assert parameter.default == declared.default, parameter.name
        assert _real(parameter.annotation) == hints[parameter.name], parameter.name
        assert parameter.help == " ".join(docstrings[parameter.name].split()), parameter.name


@pytest.mark.parametrize(("path", "module", "function", "excluded"), FLOW_COMMANDS)
def test_options_agree_with_the_flow(path, module, function, excluded) -> None:
    flow = getattr(importlib.import_module(module), function)
    signature = inspect.signature(flow.fn)
    docstrings = parameter_docstrings(inspect.getdoc(flow.fn))
    options = {p.name: p for p in _command(path).params}
    own = set(getattr(_command(path).callback, "cli_only", ()))
    for name, declared in signature.parameters.items():
        if name in excluded:
            assert name not in options, f"{name} is not a CLI option of {path}"
            continue
        option = options.pop(name, None)
        assert option is not None, f"{' '.join(path)} has no option for {name}"
        if option.param_type_name == "option":
            assert flag_of(name) in option.opts, (name, option.opts)
        assert option.help == " ".join(docstrings[name].split()), name
        default = option.default
        if declared.default is inspect.Parameter.empty:
            assert option.required, name
        elif default is None and declared.default is not None:
            assert not isinstance(declared.default, str), name  # text Click could not hold
        else:
            expected = declared.default
            assert default == getattr(expected, "value", expected) or default == expected, name
    assert set(options) <= own | {"help"}, f"options no flow parameter declares: {set(options)}"


def test_every_flag_of_the_seed_still_parses(tmp_path, sluice_home) -> None:
    """``--indexes 0 1 2`` and ``--indexes 0,1`` as the seed wrote them, through the flow's
    own validation (the dry run prints the Jobs and starts nothing)."""
    from tests.core.sweep_workload import write_template

    template = write_template(tmp_path / "job.yaml", DONE_LOG=str(tmp_path / "done.log"))
    argv = ["sweep", "--template-path", str(template), "--dry-run", "print", "--tier", "auto"]
    result = CliRunner().invoke(app, [*argv, "--indexes", "4", "5", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert '"wetlands-index-4"' in result.stdout and "wetlands-index-5" not in result.stdout
    result = CliRunner().invoke(app, [*argv, "--indexes", "7,8"])
    assert result.exit_code == 0, result.output
    assert "wetlands-index-8" in result.stdout
