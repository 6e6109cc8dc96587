"""Which indexes a sweep runs: the seed's precedence, --indexes > --index-file > range."""

from __future__ import annotations

from pathlib import Path

from sluice.errors import SluiceInputError


def read_index_file(path: str | Path) -> list[int]:
    """Newline-delimited non-negative integers; blank lines and ``#`` comments are skipped."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SluiceInputError(f"--index-file {path}: cannot read ({exc.strerror})") from None
    indexes = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if not entry.isdigit():
            raise SluiceInputError(
                f"--index-file {path}: line {number}: {entry!r} is not a non-negative integer"
            )
        indexes.append(int(entry))
    return indexes


def select_indexes(
    *,
    indexes: list[int] | None = None,
    index_file: str | None = None,
    start: int = 0,
    count: int = 18587,
    limit: int | None = None,
) -> list[int]:
    """The sorted, de-duplicated indexes to run (the seed's rules)."""
    if indexes:
        if bad := [i for i in indexes if i < 0]:
            raise SluiceInputError(f"--indexes: {bad[0]} is negative")
        chosen = sorted(set(indexes))
    elif index_file:
        chosen = sorted(set(read_index_file(index_file)))
    else:
        if start < 0 or count < 0:
            raise SluiceInputError(f"--start {start} / --count {count}: must not be negative")
        chosen = list(range(start, start + count))
    if limit is not None:
        if limit < 0:
            raise SluiceInputError(f"--limit {limit}: must not be negative")
        chosen = chosen[:limit]
    if not chosen:
        raise SluiceInputError(
            "the index selection is empty (check --indexes/--index-file/--count/--limit)"
        )
    return chosen
