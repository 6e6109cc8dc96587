"""The stage catalogue: the seed's task checkboxes, wepppy's stage order, each stage's command."""

from __future__ import annotations

import hashlib
import re
import string
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from sluice.errors import SluiceInputError
from sluice.inputs import read_text_file
from sluice.jobs import JobSpec
from sluice.quantity import parse_memory

CALLABLE_PREFIX = "callable:"
PLACEHOLDERS = ("runid", "run_dir", "stage", "batch", "python")
SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh"}


def shell_script_index(argv: list[str]) -> int | None:
    """Where the script text is in an argv that runs a shell with ``-c``, or None.

    The shell may come after wrappers (``timeout 60 sh -c ...``, ``env bash -c ...``) and
    take options before or around ``-c`` (``bash -o pipefail -c ...``, ``sh -ec ...``); the
    script is the first operand once ``-c`` is among the options.
    """
    shell = next((i for i, arg in enumerate(argv) if Path(arg).name in SHELLS), None)
    if shell is None:
        return None
    command_mode = False
    takes_value = False
    for i, arg in enumerate(argv[shell + 1 :], shell + 1):
        if takes_value:
            takes_value = False
        elif arg == "--":
            return i + 1 if command_mode and i + 1 < len(argv) else None
        elif re.fullmatch(r"[-+][A-Za-z]+", arg):
            command_mode = command_mode or (arg[0] == "-" and "c" in arg)
            takes_value = arg[-1] in "oO"  # -o pipefail, +O extglob
        elif arg.startswith("--"):
            continue  # long options: --norc, --login
        else:
            return i if command_mode else None
    return None


def shell_form(script: str) -> str:
    """``script`` with each placeholder turned into a reference to its environment variable.

    ``{runid}`` becomes ``"${SLUICE_RUNID}"`` (``${SLUICE_RUNID}`` inside double quotes):
    the shell expands a variable's value as data and never parses it as code, whatever it
    holds (``a;touch X;b``, ``$(...)``), even inside a here-document. A placeholder inside
    single quotes would not be expanded at all and is refused.
    """
    out: list[str] = []
    quote = None
    for literal, field, spec, conversion in string.Formatter().parse(script):
        escaped = False
        for char in literal:
            if escaped:
                escaped = False
            elif char == "\\" and quote != "'":
                escaped = True
            elif quote is None and char in "'\"":
                quote = char
            elif char == quote:
                quote = None
        out.append(literal)
        if field is None:
            continue
        if quote == "'" or spec or conversion:
            raise ValueError(
                f"placeholder {{{field}}} in the shell script {script[:80]!r} must stand "
                "outside single quotes, without a format spec"
            )
        variable = "${SLUICE_" + field.upper() + "}"
        out.append(variable if quote == '"' else f'"{variable}"')
    return "".join(out)


class WatershedTask(StrEnum):
    """The seed's checkboxes (all selected by default)."""

    WATERSHED = "watershed"
    """Watershed Delineation and Abstraction."""
    LANDUSE = "landuse"
    SOILS = "soils"
    CLIMATE = "climate"
    WEPP = "wepp"
    WATAR = "watar"
    OMNI = "omni"
    """Omni Scenarios."""


class Stage(StrEnum):
    """wepppy's per-run stages, in the order a run executes them."""

    FETCH_DEM = "fetch_dem"
    BUILD_CHANNELS = "build_channels"
    FIND_OUTLET = "find_outlet"
    BUILD_SUBCATCHMENTS = "build_subcatchments"
    ABSTRACT_WATERSHED = "abstract_watershed"
    BUILD_LANDUSE = "build_landuse"
    BUILD_SOILS = "build_soils"
    BUILD_CLIMATE = "build_climate"
    FETCH_RAP_TS = "fetch_rap_ts"
    RUN_WEPP_HILLSLOPES = "run_wepp_hillslopes"
    RUN_WEPP_WATERSHED = "run_wepp_watershed"
    RUN_WATAR = "run_watar"
    RUN_OMNI_SCENARIOS = "run_omni_scenarios"
    RUN_OMNI_CONTRASTS = "run_omni_contrasts"


TASK_STAGES: dict[WatershedTask, tuple[Stage, ...]] = {
    WatershedTask.WATERSHED: (
        Stage.FETCH_DEM,
        Stage.BUILD_CHANNELS,
        Stage.FIND_OUTLET,
        Stage.BUILD_SUBCATCHMENTS,
        Stage.ABSTRACT_WATERSHED,
    ),
    WatershedTask.LANDUSE: (Stage.BUILD_LANDUSE,),
    WatershedTask.SOILS: (Stage.BUILD_SOILS,),
    WatershedTask.CLIMATE: (Stage.BUILD_CLIMATE, Stage.FETCH_RAP_TS),
    WatershedTask.WEPP: (Stage.RUN_WEPP_HILLSLOPES, Stage.RUN_WEPP_WATERSHED),
    WatershedTask.WATAR: (Stage.RUN_WATAR,),
    WatershedTask.OMNI: (Stage.RUN_OMNI_SCENARIOS, Stage.RUN_OMNI_CONTRASTS),
}


def parse_tasks(names: list[str]) -> list[WatershedTask]:
    """Task names from a user; SluiceInputError naming an unknown one."""
    tasks = []
    for name in names:
        try:
            tasks.append(WatershedTask(name.strip().lower()))
        except ValueError:
            choices = ", ".join(t.value for t in WatershedTask)
            raise SluiceInputError(f"task {name!r}: unknown (choose from {choices})") from None
    return tasks


def _task_names(value: Any) -> Any:
    return parse_tasks(value) if isinstance(value, list) else value


# The tasks a run selects, as the flow declares them: names in any case, an unknown one
# refused in one line naming it (the UI form, a deployment run and the CLI alike).
Tasks = Annotated[list[WatershedTask], BeforeValidator(_task_names)]


def stages_for(tasks: list[WatershedTask]) -> list[Stage]:
    """The selected tasks' stages in run order."""
    wanted = {stage for task in tasks for stage in TASK_STAGES[WatershedTask(task)]}
    return [stage for stage in Stage if stage in wanted]


class StageCommand(BaseModel):
    """How one stage runs: an argv template or a Python callable ``module:function``.

    The argv may use ``{runid}``, ``{run_dir}``, ``{stage}``, ``{batch}`` and
    ``{python}`` (this interpreter); it runs with the run directory as working
    directory. Every value is also in the job's environment (``SLUICE_RUNID``,
    ``SLUICE_RUN_DIR``, ``SLUICE_STAGE``, ``SLUICE_BATCH``, ``SLUICE_PYTHON``); in a
    shell-form argv (``sh -c 'script'``) the script's placeholders become references to
    those variables (see ``shell_form``), so no value is ever parsed as shell code.
    A callable is imported and called in-process as
    ``fn(run_dir=Path, runid=str, stage=str)``; raising fails the stage.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    command: list[str] | None = Field(default=None, min_length=1)
    callable: str | None = Field(default=None, pattern=r"^[\w.]+:[\w.]+$")
    env: dict[str, str] = Field(default_factory=dict)
    memory: str | None = Field(default=None, description="Memory limit, e.g. 4Gi.")
    timeout_seconds: float | None = Field(default=43_200, gt=0)
    image: str | None = Field(default=None, description="Container image (Kubernetes, Nomad).")
    template: dict[str, Any] | None = Field(
        default=None, description="Backend-native base document, e.g. a Job with volumes."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> StageCommand:
        if (self.command is None) == (self.callable is None):
            raise ValueError("give exactly one of command or callable")
        for arg in self.command or []:
            for _, field, _, _ in string.Formatter().parse(arg):
                if field is not None and field not in PLACEHOLDERS:
                    raise ValueError(f"unknown placeholder {{{field}}} in {arg!r}")
        command = self.command or []
        script = shell_script_index(command)
        if script is not None:
            shell_form(command[script])
        if self.memory is not None:
            parse_memory(self.memory)
        return self


class StageCatalogue(BaseModel):
    """Commands per stage; ``default`` serves every stage not listed."""

    model_config = ConfigDict(extra="forbid")

    default: StageCommand | None = None
    stages: dict[Stage, StageCommand] = Field(default_factory=dict)

    def command_for(self, stage: Stage) -> StageCommand:
        command = self.stages.get(stage) or self.default
        if command is None:
            raise SluiceInputError(f"stage {stage.value!r}: no command configured")
        return command

    def require(self, stages: list[Stage]) -> None:
        for stage in stages:
            self.command_for(stage)


def load_catalogue(path: str | Path) -> StageCatalogue:
    """Read a stage catalogue YAML; ``{config_dir}`` becomes the file's absolute directory."""
    path = Path(path)
    text = read_text_file(path, what="stage config", max_bytes=1024 * 1024)
    text = text.replace("{config_dir}", str(path.resolve().parent))
    try:
        return StageCatalogue.model_validate(yaml.safe_load(text) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        first = str(exc).splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise SluiceInputError(f"stage config {str(path)!r}: {detail}") from None


def job_name(batch: str, runid: str, stage: Stage, token: str) -> str:
    """A DNS-1123 job name unique to (batch, runid, stage, this run)."""
    digest = hashlib.sha256(f"{batch}\0{runid}\0{stage}\0{token}".encode()).hexdigest()[:12]
    return f"{stage.value.replace('_', '-')}-{digest}"


def stage_job(
    command: StageCommand, *, batch: str, runid: str, run_dir: Path, stage: Stage, token: str
) -> JobSpec:
    """The job that runs ``stage`` of one watershed."""
    values = {
        "runid": runid,
        "run_dir": str(run_dir),
        "stage": stage.value,
        "batch": batch,
        "python": sys.executable,
    }
    if command.command:
        script = shell_script_index(command.command)
        argv = [
            shell_form(arg) if i == script else arg.format_map(values)
            for i, arg in enumerate(command.command)
        ]
    else:
        assert command.callable is not None  # the model holds exactly one of the two
        argv = [CALLABLE_PREFIX + command.callable]
    return JobSpec(
        name=job_name(batch, runid, stage, token),
        command=argv,
        env={**command.env, **{f"SLUICE_{key.upper()}": value for key, value in values.items()}},
        memory_bytes=parse_memory(command.memory) if command.memory else None,
        timeout_seconds=command.timeout_seconds,
        workdir=str(run_dir),
        image=command.image,
        template=command.template,
        labels={"sluice/flow": "watersheds", "sluice/batch": batch, "sluice/stage": stage.value},
    )
