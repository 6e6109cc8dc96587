"""PyChunkedGraph's dataset YAML and the watershed layer's precomputed ``info``, validated.

The volume comes from ``scales[0].size`` (and ``voxel_offset``) of the info JSON under
``data_source.WATERSHED``, read through ``sluice.storage`` from a local path, ``file://``,
``s3://`` or ``gs://`` (credentials from the caller's blocks) — what PyChunkedGraph reads
through CloudVolume. ``precomputed://`` prefixes are accepted as CloudVolume does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sluice.chunkedgraph.chunks import FANOUT, ChunkGrid, Coords, chunks_per_axis
from sluice.errors import SluiceInputError
from sluice.storage import Storage, StorageError


class DataSource(BaseModel):
    """``data_source``: where the edges, components and watershed live."""

    model_config = ConfigDict(extra="allow", frozen=True)

    EDGES: str | None = None
    COMPONENTS: str | None = None
    WATERSHED: str = Field(min_length=1)
    DATA_VERSION: int | None = None
    CV_MIP: int = 0


class GraphConfig(BaseModel):
    """``graph_config``: the chunk size and id layout."""

    model_config = ConfigDict(extra="allow", frozen=True)

    CHUNK_SIZE: tuple[int, int, int]
    FANOUT: int = FANOUT
    SPATIAL_BITS: int = Field(default=10, gt=0)
    LAYER_ID_BITS: int = Field(default=8, gt=0)
    ID_PREFIX: str = ""

    @field_validator("CHUNK_SIZE")
    @classmethod
    def _positive(cls, size: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(size) <= 0:
            raise ValueError(f"every chunk size must be positive, got {list(size)}")
        return size

    @field_validator("FANOUT")
    @classmethod
    def _fanout_two(cls, fanout: int) -> int:
        if fanout != FANOUT:
            raise ValueError(
                f"FANOUT {fanout} is not supported: PyChunkedGraph's layer bounds "
                "(ceil(bounds[2] / 2**(L-2))) assume FANOUT 2"
            )
        return fanout


class BackendClient(BaseModel):
    """``backend_client``: the graph store (kept for the chunk work, not used by the tracker)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    TYPE: str = "bigtable"
    CONFIG: dict[str, Any] = Field(default_factory=dict)


class DatasetConfig(BaseModel):
    """One PyChunkedGraph dataset YAML; handed to the chunk work as ``config``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    data_source: DataSource
    graph_config: GraphConfig
    backend_client: BackendClient = Field(default_factory=BackendClient)
    ingest_config: dict[str, Any] = Field(default_factory=dict)


class Volume(BaseModel):
    """The watershed volume: voxels per axis and where they start."""

    model_config = ConfigDict(frozen=True)

    size: tuple[int, int, int]
    voxel_offset: tuple[int, int, int] = (0, 0, 0)

    @field_validator("size")
    @classmethod
    def _positive(cls, size: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(size) <= 0:
            raise ValueError(f"every size must be positive, got {list(size)}")
        return size


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "document"
    return f"{where}: {first['msg'].removeprefix('Value error, ')}"


def load_dataset(path: str | Path) -> DatasetConfig:
    """Read and validate a dataset YAML; one clear line on any problem."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SluiceInputError(f"dataset {path}: no such file") from None
    except OSError as error:
        raise SluiceInputError(f"dataset {path}: cannot read ({error.strerror})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise SluiceInputError(f"dataset {path}: malformed YAML{where}") from None
    if not isinstance(document, dict):
        raise SluiceInputError(f"dataset {path}: expected a mapping with data_source, graph_config")
    try:
        return DatasetConfig.model_validate(document)
    except ValidationError as error:
        raise SluiceInputError(f"dataset {path}: {_first_error(error)}") from None


def _info_url(watershed: str) -> str:
    return watershed.removeprefix("precomputed://").rstrip("/") + "/info"


def read_info(
    watershed: str, base: Path | None = None, storage: Storage | None = None
) -> dict[str, Any]:
    """The precomputed ``info`` JSON of the watershed layer, through the storage layer.

    A relative local path is taken relative to ``base`` (the dataset YAML's folder).
    """
    url = _info_url(watershed)
    storage = storage or Storage()
    try:
        text = storage.read_text(storage.resolve(url, base))
    except FileNotFoundError:
        raise SluiceInputError(f"watershed info {url}: no such file") from None
    except StorageError as error:
        raise SluiceInputError(f"watershed info {error}") from None
    except OSError as error:
        raise SluiceInputError(f"watershed info {url}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise SluiceInputError(f"watershed info {url}: not JSON (not UTF-8 text)") from None
    try:
        info = json.loads(text)
    except json.JSONDecodeError as error:
        raise SluiceInputError(f"watershed info {url}: not JSON ({error.msg})") from None
    if not isinstance(info, dict):
        raise SluiceInputError(f"watershed info {url}: expected a JSON object")
    return info


def volume_of(info: dict[str, Any], source: str = "info") -> Volume:
    """``scales[0]`` of an info document."""
    try:
        scale = info["scales"][0]
        return Volume(size=scale["size"], voxel_offset=scale.get("voxel_offset", (0, 0, 0)))
    except (KeyError, IndexError, TypeError):
        raise SluiceInputError(f"watershed {source}: no scales[0].size") from None
    except ValidationError as error:
        raise SluiceInputError(f"watershed {source}: scales[0].{_first_error(error)}") from None


def atomic_bounds(config: DatasetConfig, volume: Volume) -> Coords:
    return chunks_per_axis(volume.size, config.graph_config.CHUNK_SIZE)


def load_grid(path: str | Path, storage: Storage | None = None) -> tuple[DatasetConfig, ChunkGrid]:
    """The dataset and its chunk hierarchy; raises ``SluiceInputError`` on bad input."""
    config = load_dataset(path)
    info_url = _info_url(config.data_source.WATERSHED)
    info = read_info(config.data_source.WATERSHED, Path(path).parent, storage)
    volume = volume_of(info, info_url)
    return config, ChunkGrid(atomic_bounds(config, volume))


def with_ingest_flags(config: DatasetConfig, *, raw: bool, test: bool) -> DatasetConfig:
    """The config the chunk work sees, with PyChunkedGraph's ``bootstrap`` flags set.

    ``ingest graph --raw`` sets ``USE_RAW_EDGES`` and ``USE_RAW_COMPONENTS`` (atomic
    chunks read the raw agglomeration under ``ingest_config.AGGLOMERATION`` instead of
    the processed ``EDGES``/``COMPONENTS``); ``--test`` sets ``TEST_RUN``. Raw reads need
    ``AGGLOMERATION``: refused up front here, where PyChunkedGraph fails in every chunk.
    """
    if raw and not config.ingest_config.get("AGGLOMERATION"):
        raise SluiceInputError(
            "--raw: the dataset has no ingest_config.AGGLOMERATION to read raw edges from"
        )
    flags = {"USE_RAW_EDGES": raw, "USE_RAW_COMPONENTS": raw, "TEST_RUN": test}
    return config.model_copy(update={"ingest_config": {**config.ingest_config, **flags}})


def ingest_flags_env(config: Any) -> dict[str, str]:
    """The same flags for ``--command`` work, as environment variables of every job."""
    ingest = getattr(config, "ingest_config", {}) or {}
    names = ("USE_RAW_EDGES", "USE_RAW_COMPONENTS", "TEST_RUN")
    return {name: "1" if ingest.get(name) else "0" for name in names}
