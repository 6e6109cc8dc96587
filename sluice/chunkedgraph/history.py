"""Done chunks per layer over a table's whole life, in bounded memory and on disk.

The tracker samples its per-layer done counts each time it saves a snapshot (every few
seconds and at the end of a run) and at the start of every run. A sample is kept only
when the counts moved and at least ``every`` seconds passed since the last one kept, or
when forced (a run's start and end). Past ``MAX_SAMPLES`` every other sample is dropped
(the first and the newest stay) and ``every`` doubles, so 10M chunks and days of ingest
take the same few tens of KB as a short run, spread evenly over the whole history.

The samples are kept in ``history.json`` beside the snapshot (written atomically at each
save, mirrored with it), so a resumed run's picture starts at the table's first run.
Timestamps are wall-clock seconds (UTC), comparable across runs and machines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from sluice.storage import Storage

FILE_NAME = "history.json"
MAX_SAMPLES = 512
MAX_RUNS = 256  # the newest run starts are kept
FIRST_SPACING_SECONDS = 5.0


class Sample(NamedTuple):
    """Done chunks per layer (the grid's layer order) at a wall-clock moment."""

    at: float
    done: tuple[int, ...]


@dataclass
class History:
    """Bounded samples of the done count per layer (see the module docstring)."""

    layers: tuple[int, ...]
    every: float = FIRST_SPACING_SECONDS
    samples: list[Sample] = field(default_factory=list)
    runs: list[float] = field(default_factory=list)

    @classmethod
    def load(cls, directory: Path, layers: Sequence[int]) -> History:
        """The table's history, or an empty one (a new table, or layers that differ)."""
        path = directory / FILE_NAME
        if not path.exists():
            return cls(tuple(layers))
        document = json.loads(path.read_text())
        if document["layers"] != list(layers):
            return cls(tuple(layers))
        return cls(
            tuple(layers),
            every=float(document["every"]),
            samples=[Sample(float(at), tuple(done)) for at, done in document["samples"]],
            runs=[float(at) for at in document["runs"]],
        )

    def start_run(self, now: float, done: Mapping[int, int]) -> None:
        """A run begins: its start, and the counts it found, are kept."""
        self.runs = [*self.runs, now][-MAX_RUNS:]
        self.record(now, done, force=True)

    def record(self, now: float, done: Mapping[int, int], *, force: bool = False) -> None:
        """Keep ``done`` at ``now`` if the counts moved and it is due (or ``force``)."""
        counts = tuple(done[layer] for layer in self.layers)
        if self.samples and not force:
            last = self.samples[-1]
            if counts == last.done or now - last.at < self.every:
                return
        self.samples.append(Sample(now, counts))
        if len(self.samples) > MAX_SAMPLES:
            newest = self.samples[-1]
            self.samples = self.samples[::2]
            if self.samples[-1] is not newest:
                self.samples.append(newest)
            self.every *= 2

    def save(self, directory: Path) -> None:
        """Write ``history.json`` atomically."""
        document = {
            "layers": list(self.layers),
            "every": self.every,
            "runs": self.runs,
            "samples": [[s.at, list(s.done)] for s in self.samples],
        }
        Storage().write_bytes(
            str(directory / FILE_NAME), json.dumps(document, separators=(",", ":")).encode()
        )
