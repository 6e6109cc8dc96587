"""Which indexes a sweep runs: the seed's precedence, --indexes > --index-file > range.

Selection is lazy and bounded: a range stays a ``range`` until ``--limit`` has cut it,
so ``--count 99999999999 --limit 5`` holds five indexes, and a selection of more than
``MAX_INDEXES`` is refused before it is built. An empty selection is not an error (the
seed's "nothing to do"): a tier loop over an empty ``tier<N>-failures.txt`` ends there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sluice.errors import SluiceInputError
from sluice.inputs import read_text_file

MAX_INDEXES = 1_000_000
MAX_INDEX = 10**12  # keeps <prefix>-<index>-a<n> a short DNS label
MAX_INDEX_FILE_BYTES = 16 * 2**20


def read_index_file(path: str | Path) -> list[int]:
    """Newline-delimited non-negative integers; blank lines and ``#`` comments are skipped."""
    text = read_text_file(path, what="--index-file", max_bytes=MAX_INDEX_FILE_BYTES)
    indexes = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if not entry.isdigit() or len(entry) > 13:
            raise SluiceInputError(
                f"--index-file {path}: line {number}: {entry[:20]!r} is not a non-negative integer"
            )
        indexes.append(_bounded(int(entry), f"--index-file {path}: line {number}"))
    return indexes


def _bounded(index: int, what: str) -> int:
    if index < 0:
        raise SluiceInputError(f"{what}: {index} is negative")
    if index > MAX_INDEX:
        raise SluiceInputError(f"{what}: {index} is above the largest index, {MAX_INDEX}")
    return index


def select_indexes(
    *,
    indexes: Sequence[int] | None = None,
    index_file: str | None = None,
    start: int = 0,
    count: int = 18587,
    limit: int | None = None,
) -> Sequence[int]:
    """The sorted, de-duplicated indexes to run (the seed's rules); possibly empty."""
    if start < 0 or count < 0:
        raise SluiceInputError(f"--start {start} / --count {count}: must not be negative")
    if limit is not None and limit < 0:
        raise SluiceInputError(f"--limit {limit}: must not be negative")
    chosen: Sequence[int]
    if indexes:
        chosen = sorted({_bounded(i, "--indexes") for i in indexes})
    elif index_file:
        chosen = sorted(set(read_index_file(index_file)))
    else:
        _bounded(start, "--start")
        chosen = range(start, min(start + count, MAX_INDEX + 1))
        if start + count > MAX_INDEX + 1 and (limit is None or start + limit > MAX_INDEX):
            raise SluiceInputError(f"--start {start} + --count {count}: past index {MAX_INDEX}")
    if limit is not None:
        chosen = chosen[:limit]
    if len(chosen) > MAX_INDEXES:
        source = "--indexes" if indexes else "--index-file" if index_file else "--count"
        raise SluiceInputError(
            f"{source}: {len(chosen)} indexes; at most {MAX_INDEXES:,} per sweep"
            " (use --limit, or split the range with --start/--count)"
        )
    return chosen
