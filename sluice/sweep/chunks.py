"""Sequential chunks of indexes and their batch labels (the seed's --chunk-size rules).

A chunk's label depends on the tier its jobs run at (``tier{tier}-chunk-{start:05d}``):
the first round of a chunk carries the starting tier, as the seed's label did, and each
escalation round the tier it climbs to.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from sluice.errors import SluiceInputError
from sluice.names import LABEL_VALUE
from sluice.quantity import shown

DEFAULT_LABEL_TEMPLATE = "tier{tier}-chunk-{start:05d}"
PLACEHOLDERS = {"chunk", "start", "end", "tier"}
MAX_LABEL = 63
MAX_TEMPLATE = 253
_SPEC_NUMBER = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Chunk:
    """A slice of the sweep: one Prefect task run (retried a tier higher on OOM).

    ``indexes`` is a slice of the selection: a ``range`` stays a ``range``, so a
    million-index sweep holds no list of its indexes."""

    number: int
    indexes: Sequence[int]
    label: str | None = None  # a constant --batch-label
    label_template: str | None = None  # the per-chunk template when chunked
    label_tier: int | None = None  # {tier} of jobs without tiers (--tier with --memory)

    @property
    def name(self) -> str:
        """A stable id for artifacts: ``chunk-NNNN``."""
        return f"chunk-{self.number:04d}"

    def label_at(self, tier: int | None) -> str | None:
        """The ``wetlands/batch`` label of this chunk's jobs at ``tier`` (None: no label)."""
        if self.label is not None or self.label_template is None:
            return self.label
        return format_label(
            self.label_template,
            chunk=self.number,
            start=self.indexes[0],
            end=self.indexes[-1],
            tier=_first(tier, self.label_tier, "na"),
        )


def _first(*values: int | str | None) -> int | str:
    return next(v for v in values if v is not None)


def check_label_template(template: str) -> str:
    """Reject unknown placeholders, nested fields and widths past 63 before formatting."""
    what = f"--batch-label-template {shown(template)}"
    if len(template) > MAX_TEMPLATE:
        raise SluiceInputError(f"{what}: at most {MAX_TEMPLATE} characters")
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise SluiceInputError(f"{what}: {exc}") from None
    for _, field, spec, _ in fields:
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            raise SluiceInputError(
                f"{what}: unknown placeholder {{{shown(field, 30)}}} (known: chunk, start, end,"
                " tier)"
            )
        spec = spec or ""
        if "{" in spec:
            raise SluiceInputError(f"{what}: nested fields in a format spec are not allowed")
        if len(spec) > 40 or any(int(n) > MAX_LABEL for n in _SPEC_NUMBER.findall(spec)):
            raise SluiceInputError(
                f"{what}: a format width over {MAX_LABEL} (a label value has at most"
                f" {MAX_LABEL} characters)"
            )
    return template


def format_label(template: str, *, chunk: int, start: int, end: int, tier: int | str) -> str:
    try:
        label = template.format(chunk=chunk, start=start, end=end, tier=tier)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise SluiceInputError(f"--batch-label-template {shown(template)}: {exc}") from None
    return check_label_value(label, what=f"--batch-label-template {shown(template)}")


def check_label_value(label: str, *, what: str) -> str:
    if len(label) > MAX_LABEL or not LABEL_VALUE.fullmatch(label):
        raise SluiceInputError(f"{what}: {shown(label)} is not a valid Kubernetes label value")
    return label


def make_chunks(
    indexes: Sequence[int],
    *,
    chunk_size: int | None,
    batch_label: str | None,
    label_template: str,
    label_tier: int | None = None,
    tiers: Sequence[int | None] = (None,),
) -> list[Chunk]:
    """The seed's chunking: no (or 0) chunk size -> one unlabelled chunk; --batch-label wins.

    Every chunk's label is checked at each of ``tiers`` (the start and max tier) here,
    so a label that cannot be built fails before anything runs.
    """
    if batch_label is not None:
        check_label_value(batch_label, what="--batch-label")
    if chunk_size is not None and chunk_size < 0:
        raise SluiceInputError(f"--chunk-size {chunk_size}: must not be negative (0: no chunks)")
    if not chunk_size:
        return [Chunk(number=0, indexes=indexes, label=batch_label)] if indexes else []
    template = None if batch_label is not None else check_label_template(label_template)
    chunks = [
        Chunk(
            number=number,
            indexes=indexes[offset : offset + chunk_size],
            label=batch_label,
            label_template=template,
            label_tier=label_tier,
        )
        for number, offset in enumerate(range(0, len(indexes), chunk_size))
    ]
    for chunk in chunks:
        for tier in tiers:
            chunk.label_at(tier)
    return chunks
