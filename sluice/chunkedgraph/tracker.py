"""The compact durable tracker state of one table: a done-bitset per layer plus failures.

Layout under ``$SLUICE_HOME/chunkedgraph/<table>/``:

- ``table.json``: the dataset, its layer-2 bounds and the chunk work (written once).
- ``state.bin``: snapshot = header JSON (bounds, failures) + one bitset per layer
  (1 bit per chunk: 1,000,000 layer-2 chunks take 143 KB over all layers).
- ``segments/*.seg``: append-only journals, one per dispatched batch, written by the
  batch itself right after each chunk's work returns (one ``os.write`` per chunk, so a
  SIGKILL loses at most the chunk whose work was running).

Opening replays snapshot + segments; ``save`` writes a new snapshot atomically
(``Storage.write_bytes``: temp file, fsync, rename) and only then deletes the segments
it absorbed, so a crash at any point replays idempotent records. Only the one tracker
in the flow process mutates this state; batches only append to their own segment.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from sluice.chunkedgraph.chunks import ChunkGrid
from sluice.errors import SluiceInputError, WorkIncomplete
from sluice.filelock import file_lock
from sluice.ledger.base import Holder
from sluice.ledger.lease import leased
from sluice.names import TABLE_NAME
from sluice.settings import sluice_home
from sluice.storage import Storage

DONE = 1
FAILED = 2
_RECORD = struct.Struct("<BBIH")  # kind, layer, index, error length; error bytes follow
_MAGIC = b"SLUICE-CG1\n"
_MAX_ERROR = 2000
REPORT_NAME = "report.md"  # the failed chunks, beside report.html

ChunkKey = tuple[int, int]  # (layer, index in layer)


def tables_root() -> Path:
    return sluice_home() / "chunkedgraph"


def table_dir(table: str) -> Path:
    """The table's state folder; the name follows Bigtable's table-id rule (PyChunkedGraph's
    graph ids are Bigtable tables)."""
    return tables_root() / TABLE_NAME.check(table, "table")


def existing_table_dir(table: str) -> Path:
    directory = table_dir(table)
    if not (directory / "table.json").exists():
        raise SluiceInputError(f"table {table!r}: unknown (no ingest has started it)")
    return directory


class Record(NamedTuple):
    """One chunk's outcome in a segment: DONE, or FAILED with its error."""

    kind: int
    layer: int
    index: int  # type: ignore[assignment]  # the field shadows tuple.index (never called)
    error: str = ""


def encode(record: Record) -> bytes:
    error = record.error.encode()[:_MAX_ERROR]
    return _RECORD.pack(record.kind, record.layer, record.index, len(error)) + error


def decode(data: bytes) -> Iterator[Record]:
    """Records in ``data``; a torn last record (killed mid-write) is ignored."""
    offset, end = 0, len(data)
    while offset + _RECORD.size <= end:
        kind, layer, index, length = _RECORD.unpack_from(data, offset)
        stop = offset + _RECORD.size + length
        if stop > end:
            return
        yield Record(
            kind, layer, index, data[offset + _RECORD.size : stop].decode(errors="replace")
        )
        offset = stop


class SegmentWriter:
    """Appends one batch's records to its own segment file, one write per record."""

    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, record: Record) -> None:
        os.write(self._fd, encode(record))

    def close(self) -> None:
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)


def append_records(segment: str | Path, records: Iterable[Record]) -> None:
    """Append ``records`` to ``segment`` (created if missing), closing it whatever happens."""
    writer = SegmentWriter(segment)
    try:
        for record in records:
            writer.write(record)
    finally:
        writer.close()


@dataclass
class TableState:
    """Done bits and current failures of one table (see the module docstring)."""

    directory: Path
    grid: ChunkGrid
    done: dict[int, bytearray] = field(init=False)
    done_count: dict[int, int] = field(init=False)
    failures: dict[ChunkKey, str] = field(default_factory=dict)
    _absorbed: set[Path] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.done = {
            layer: bytearray(-(-self.grid.count(layer) // 8)) for layer in self.grid.layers
        }
        self.done_count = dict.fromkeys(self.grid.layers, 0)

    @property
    def segments_dir(self) -> Path:
        return self.directory / "segments"

    @classmethod
    def open(cls, directory: Path, grid: ChunkGrid) -> TableState:
        """Load the snapshot, then replay every segment found.

        A reader beside a running tracker (``status``) may see a segment vanish
        because a new snapshot absorbed it; it then reads again from that snapshot.
        """
        for _ in range(4):
            try:
                return cls._read(directory, grid)
            except FileNotFoundError:
                continue
        return cls._read(directory, grid)

    @classmethod
    def _read(cls, directory: Path, grid: ChunkGrid) -> TableState:
        state = cls(directory, grid)
        snapshot = directory / "state.bin"
        if snapshot.exists():
            state._load_snapshot(snapshot.read_bytes())
        for segment in sorted(state.segments_dir.glob("*.seg")):
            state.absorb(decode(segment.read_bytes()))
            state._absorbed.add(segment)
        return state

    def is_done(self, layer: int, index: int) -> bool:
        return bool(self.done[layer][index >> 3] & (1 << (index & 7)))

    def mark_done(self, layer: int, indices: Iterable[int]) -> list[int]:
        """Set done bits; returns the indices that were not done before."""
        bits, failures, newly = self.done[layer], self.failures, []
        for index in indices:
            mask = 1 << (index & 7)
            if not bits[index >> 3] & mask:
                bits[index >> 3] |= mask
                newly.append(index)
                if failures:
                    failures.pop((layer, index), None)
        self.done_count[layer] += len(newly)
        return newly

    def mark_failed(self, layer: int, index: int, error: str) -> None:
        if not self.is_done(layer, index):
            self.failures[(layer, index)] = error

    def absorb(self, records: Iterable[Record]) -> list[ChunkKey]:
        """Apply records in order; returns the chunks newly marked done."""
        newly = []
        for record in records:
            if record.kind == DONE:
                if self.mark_done(record.layer, (record.index,)):
                    newly.append((record.layer, record.index))
            elif record.kind == FAILED:
                self.mark_failed(record.layer, record.index, record.error)
        return newly

    def mark_absorbed(self, segment: Path) -> None:
        """``segment``'s records are in memory; ``save`` may delete it."""
        self._absorbed.add(segment)

    def clear_failures(self) -> None:
        self.failures.clear()

    def save(self) -> None:
        """Atomically write the snapshot, then drop the segments it now covers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        header = json.dumps(
            {
                "atomic_bounds": list(self.grid.atomic_bounds),
                "failures": [
                    [layer, index, error] for (layer, index), error in self.failures.items()
                ],
            }
        ).encode()
        bits = b"".join(self.done[layer] for layer in self.grid.layers)
        snapshot = _MAGIC + struct.pack("<Q", len(header)) + header + bits
        Storage().write_bytes(str(self.directory / "state.bin"), snapshot)
        for segment in self._absorbed:
            segment.unlink(missing_ok=True)
        self._absorbed.clear()

    def _load_snapshot(self, data: bytes) -> None:
        if not data.startswith(_MAGIC):
            raise SluiceInputError(f"{self.directory / 'state.bin'}: not a Sluice tracker snapshot")
        offset = len(_MAGIC)
        (length,) = struct.unpack_from("<Q", data, offset)
        offset += 8
        header = json.loads(data[offset : offset + length])
        offset += length
        if tuple(header["atomic_bounds"]) != self.grid.atomic_bounds:
            raise SluiceInputError(
                f"table at {self.directory}: tracked bounds {header['atomic_bounds']} differ from "
                f"the dataset's {list(self.grid.atomic_bounds)}"
            )
        for layer in self.grid.layers:
            size = len(self.done[layer])
            self.done[layer] = bytearray(data[offset : offset + size])
            self.done_count[layer] = int.from_bytes(self.done[layer], "little").bit_count()
            offset += size
        self.failures = {(layer, index): error for layer, index, error in header["failures"]}

    def memory_bytes(self) -> int:
        """Bytes held by the bitsets and failure records."""
        return sum(len(bits) for bits in self.done.values()) + sum(
            len(error) + 64 for error in self.failures.values()
        )


def table_run(table: str) -> str:
    """The table's run name in the ledger, whose lease keeps one ingest (or reset) of a
    table at a time, on this machine or any other sharing the ledger."""
    return f"chunkedgraph/{table}"


def hold_table(table: str) -> contextlib.AbstractContextManager[Holder]:
    """Hold the table's run lease (``sluice.ledger.hold_run``) in the default ledger;
    ``RunLeased`` (one line: who holds it, since when) while another live run holds it.
    A dead holder's lease is taken over (at once when it ran on this host)."""
    return leased(table_run(table))


def writers_lock(directory: Path, *, exclusive: bool) -> contextlib.AbstractContextManager[None]:
    """Batches hold it shared while appending; a resuming tracker takes it exclusively
    (waiting) so no orphaned batch of a killed run is still writing while it replays."""
    return file_lock(directory / "writers.lock", shared=not exclusive)


def reset_table(table: str) -> None:
    """Remove one table's state (``flush_redis`` for a single table)."""
    directory = existing_table_dir(table)
    with hold_table(table):
        shutil.rmtree(directory)


def register_table(
    directory: Path, table: str, dataset: str, grid: ChunkGrid, work: dict, options: dict
) -> None:
    """Write ``table.json`` (dataset, bounds, work, ingest options that ``requeue`` reuses);
    refuse a dataset whose bounds differ from the tracked ones."""
    path = directory / "table.json"
    if path.exists():
        known = json.loads(path.read_text())
        if tuple(known["atomic_bounds"]) != grid.atomic_bounds:
            raise SluiceInputError(
                f"table {table!r}: already tracks bounds {known['atomic_bounds']}, the dataset "
                f"{dataset} has {list(grid.atomic_bounds)} (use another table or reset it)"
            )
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        "table": table,
        "dataset": str(Path(dataset).resolve()),
        "atomic_bounds": list(grid.atomic_bounds),
        "work": work,
        "options": options,
    }
    Storage().write_text(str(path), json.dumps(document, indent=2))


def read_table(table: str) -> dict:
    """``table.json`` of a known table."""
    return json.loads((existing_table_dir(table) / "table.json").read_text())


def open_table(table: str) -> TableState:
    """The current state of a known table, read-only use (status)."""
    known = read_table(table)
    grid = ChunkGrid(tuple(known["atomic_bounds"]))
    return TableState.open(table_dir(table), grid)


class ChunksFailed(WorkIncomplete):
    """An ingest ended with failed chunks; the flow run ends Failed with this message."""


def failed_message(table: str, failures: int) -> str:
    """The one line the flow run and the CLI both end with when chunks failed."""
    report = table_dir(table) / REPORT_NAME
    return f"{failures} chunks failed (see {report}); `sluice chunkedgraph requeue {table}` reruns"


def status_lines(state: TableState) -> list[str]:
    """PyChunkedGraph's ``ingest status``: ``{layer}\\t: {done} / {count}``."""
    return [
        f"{layer}\t: {state.done_count[layer]} / {state.grid.count(layer)}"
        for layer in state.grid.layers
    ]
