"""A flow command's options and its flow's parameters agree in name, default and help.

The options are derived from the flow (``sluice/cli/flow_options.py``), which reads the
flow's source without importing Prefect: these tests check that reading against the
imported flow (``inspect.signature``, ``typing.get_type_hints`` and Prefect's docstring
parser, which fills the UI form), and every command's Click options against it.
"""

from __future__ import annotations

import importlib
import inspect
import json
import types
import typing

import pytest
import typer.main
from prefect.utilities.callables import parameter_docstrings
from typer.testing import CliRunner

from sluice.cli import _OneLineErrors, app
from sluice.cli.common import fail_on_input_errors
from sluice.cli.flow_options import Deferred, FlowArguments, flag_of, flow_command, read_flow
from sluice.cli.karabo import ESTIMATED

# (command path, flow module, flow function, flow parameters the command does not take)
FLOW_COMMANDS = [
    (("sweep",), "sluice.flows.sweep", "tiered_index_sweep", set()),
    (("watersheds", "create"), "sluice.flows.watersheds", "create_watershed_batch", set()),
    (("watersheds", "run"), "sluice.flows.watersheds", "run_watershed_batch", set()),
    (("karabo", "run"), "sluice.flows.karabo", "karabo_simulation", set()),
    (("stac-batch",), "sluice.flows.stac_batch", "stac_batch", set()),
    (
        ("chunkedgraph", "ingest"),
        "sluice.flows.chunkedgraph",
        "chunkedgraph_ingest",
        {"work", "window", "requeue", "processes"},  # spelled by CLI-only options
    ),
]
# Commands that take a few of a flow's parameters without running it.
SUBSET_COMMANDS = [
    (("karabo", "estimate"), "sluice.flows.karabo", "karabo_simulation", set(ESTIMATED)),
    (
        ("chunkedgraph", "requeue"),
        "sluice.flows.chunkedgraph",
        "chunkedgraph_ingest",
        {"table", "parallelism", "dask_address"},
    ),
]


def _command(path: tuple[str, ...]):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def _all_but(module: str, function: str, taken: set[str]) -> set[str]:
    return {p.name for p in read_flow(module, function)} - taken


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


@pytest.mark.parametrize(
    ("path", "module", "function", "excluded"),
    [
        *FLOW_COMMANDS,
        *[(p, m, f, _all_but(m, f, taken)) for p, m, f, taken in SUBSET_COMMANDS],
    ],
)
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
    assert set(options) <= own | {"help", "config"}, f"options no flow declares: {set(options)}"


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


def _example_app() -> typer.Typer:
    """A command built from tests/core/flow_options_example.py, as sluice's commands are."""
    example = typer.Typer(cls=_OneLineErrors)

    @flow_command("tests.core.flow_options_example", "example", arguments={"name"})
    def command(arguments: FlowArguments, shout: bool = False) -> None:
        blocks = arguments.values["credentials"] or arguments.values["ledger"]
        values = arguments.for_the_flow() if blocks else arguments.values
        shown = {
            k: type(v).__name__ if k in ("credentials", "ledger") and v else v
            for k, v in values.items()
        }
        typer.echo(json.dumps(shown) + ("!" if shout else ""))

    example.command("example")(fail_on_input_errors(command))
    example.command("other")(lambda: None)  # two commands: "example" stays a subcommand
    return example


def _invoke(*argv: str):
    return CliRunner().invoke(_example_app(), ["example", *argv])


def test_each_kind_of_parameter_parses_as_the_flow_declares_it(sluice_home) -> None:
    result = _invoke("b1", "--count", "3", "--colour", "print", "--loud", "--sizes", "1,2")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["count"] == 3 and shown["colour"] == "print" and shown["loud"] is True
    assert shown["sizes"] == [1, 2] and shown["pick"] is None and shown["name"] == "b1"
    assert json.loads(_invoke("b1", "--pick", "auto").stdout)["pick"] == "auto"
    repeated = json.loads(_invoke("b1", "--pick", "7", "--sizes", "4", "--sizes", "5").stdout)
    assert repeated == {
        "name": "b1",
        "count": 2,
        "colour": "none",
        "loud": False,
        "sizes": [4, 5],
        "pick": 7,
        "credentials": None,
        "ledger": None,
    }
    assert _invoke("b1", "--shout").stdout.strip().endswith("!")  # a CLI-only option


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["b1", "--count", "11"], "--count 11: Input should be less than or equal to 10"),
        (["b1", "--count", "x"], "--count"),
        (["b1", "--colour", "green"], "--colour"),
        (["b1", "--sizes", "1,x"], "--sizes: 'x'"),
        (["b1", "--pick", "high"], "--pick 'high'"),
        (["../b"], "name '../b'"),
        (["b1", "stray"], "unexpected"),
    ],
)
def test_a_refused_value_is_one_line_naming_the_option(sluice_home, argv, named) -> None:
    result = _invoke(*argv)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], lines
    assert not sluice_home.exists()  # nothing started


def test_a_config_file_supplies_any_option_and_the_command_line_wins(tmp_path, sluice_home) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text("count: 4\ncolour: print\nsizes: [1, 2]\nshout: true\nloud: yes\n")
    shown = _invoke("b1", "--config", str(config), "--count", "9")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.strip().endswith("!")  # a CLI-only option from the file too
    values = json.loads(shown.stdout.strip().rstrip("!"))
    assert values["count"] == 9 and values["colour"] == "print" and values["sizes"] == [1, 2]
    assert values["loud"] is True


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("cuont: 4\n", "unknown key 'cuont'"),
        ("[1, 2]\n", "expected a mapping"),
        ("count: [\n", "not YAML"),
        ("count: 11\n", "--count 11: Input should be less than or equal to 10"),
        ("colour: green\n", "--colour"),
    ],
)
def test_a_bad_config_file_is_one_line(tmp_path, sluice_home, text, named) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text(text)
    result = _invoke("b1", "--config", str(config))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], lines


def test_every_flow_command_takes_a_config_file(tmp_path, sluice_home) -> None:
    from tests.core.sweep_workload import write_template

    template = write_template(tmp_path / "job.yaml", DONE_LOG=str(tmp_path / "done.log"))
    config = tmp_path / "sweep.yaml"
    config.write_text(f"template-path: {template}\nindexes: [4, 5]\ndry_run: print\n")
    result = CliRunner().invoke(app, ["sweep", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "wetlands-index-4" in result.stdout and "wetlands-index-5" in result.stdout
    for command, *_ in FLOW_COMMANDS + SUBSET_COMMANDS:
        help_text = CliRunner().invoke(app, [*command, "--help"]).stdout
        assert "--config FILE" in help_text, command


def test_a_block_parameter_takes_the_blocks_name(prefect_api) -> None:
    from prefect_kubernetes.credentials import KubernetesCredentials
    from sluice.blocks.ledger import LedgerSettings

    KubernetesCredentials().save("flow-options-kc", overwrite=True)
    result = _invoke("b1", "--credentials", "flow-options-kc")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["credentials"] == "KubernetesCredentials"
    LedgerSettings(url="sqlite:///ledger.db").save("flow-options-ledger", overwrite=True)
    saved = _invoke("b1", "--ledger", "flow-options-ledger")
    assert json.loads(saved.stdout)["ledger"] == "LedgerSettings", saved.output
    missing = _invoke("b1", "--credentials", "nosuch")
    assert missing.exit_code == 2, missing.output
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: --credentials 'nosuch': no such KubernetesCredentials block")


def test_help_imports_no_prefect() -> None:
    """Options come from the flows' source: ``sluice <cmd> --help`` stays fast."""
    import subprocess
    import sys

    probe = (
        "import sys, typer.main\n"
        "from sluice.cli import app\n"
        "typer.main.get_command(app)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0].startswith('prefect')))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
