"""Sequential chunks of indexes and their batch labels (the seed's --chunk-size rules)."""

from __future__ import annotations

import re
import string

from pydantic import BaseModel

from sluice.errors import SluiceInputError

DEFAULT_LABEL_TEMPLATE = "tier{tier}-chunk-{start:05d}"
PLACEHOLDERS = {"chunk", "start", "end", "tier"}
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class Chunk(BaseModel):
    """A slice of the sweep: one Prefect task run."""

    number: int
    indexes: list[int]
    label: str | None

    @property
    def name(self) -> str:
        return self.label or f"chunk-{self.number:04d}"


def check_label_template(template: str) -> str:
    """Reject unknown placeholders and templates that cannot format, naming the input."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise SluiceInputError(f"--batch-label-template {template!r}: {exc}") from None
    if unknown := fields - PLACEHOLDERS:
        raise SluiceInputError(
            f"--batch-label-template {template!r}: unknown placeholder "
            f"{{{sorted(unknown)[0]}}} (known: chunk, start, end, tier)"
        )
    format_label(template, chunk=0, start=0, end=0, tier=0)
    return template


def format_label(template: str, *, chunk: int, start: int, end: int, tier: int | str) -> str:
    try:
        label = template.format(chunk=chunk, start=start, end=end, tier=tier)
    except (ValueError, KeyError, IndexError) as exc:
        raise SluiceInputError(f"--batch-label-template {template!r}: {exc}") from None
    return check_label_value(label, what=f"--batch-label-template {template!r}")


def check_label_value(label: str, *, what: str) -> str:
    if len(label) > 63 or not _LABEL_VALUE.match(label):
        raise SluiceInputError(f"{what}: {label!r} is not a valid Kubernetes label value")
    return label


def make_chunks(
    indexes: list[int],
    *,
    chunk_size: int | None,
    batch_label: str | None,
    label_template: str,
    tier: int | None,
) -> list[Chunk]:
    """The seed's chunking: no chunk size -> one unlabelled chunk; --batch-label wins."""
    if batch_label is not None:
        check_label_value(batch_label, what="--batch-label")
    if chunk_size is None:
        return [Chunk(number=0, indexes=indexes, label=batch_label)]
    if chunk_size <= 0:
        raise SluiceInputError(f"--chunk-size {chunk_size}: must be positive")
    check_label_template(label_template)
    chunks = []
    for number, offset in enumerate(range(0, len(indexes), chunk_size)):
        part = indexes[offset : offset + chunk_size]
        label = batch_label or format_label(
            label_template,
            chunk=number,
            start=part[0],
            end=part[-1],
            tier="na" if tier is None else tier,
        )
        chunks.append(Chunk(number=number, indexes=part, label=label))
    return chunks
