"""Run the ``sluice`` CLI with every ledger write timed (for ``benchmarks/shared_server.py``).

    python -m benchmarks.ledger_probe OUT sluice-arguments...

Wraps the SQL ledger's writes (``begin``, ``finish``, ``finish_many``, ``acquire``,
``renew``, ``release``) with a clock and an error count, runs ``sluice`` with the rest of
the arguments as a user would, and at exit writes ``OUT.lat`` (each write's seconds,
native doubles) and ``OUT.json`` (errors by kind). Nothing else is changed.
"""

from __future__ import annotations

import atexit
import functools
import json
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

WRITES = ("begin", "finish", "finish_many", "acquire", "renew", "release")


def install(out: Path) -> None:
    """Time the SQL ledger's writes in this process; write the figures at exit."""
    from sluice.ledger.store import SqlLedger

    seconds = array("d")
    errors: Counter[str] = Counter()

    def timed(write: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(write)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return write(*args, **kwargs)
            except Exception as exc:
                errors[f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}"] += 1
                raise
            finally:
                seconds.append(time.perf_counter() - began)

        return wrapper

    for name in WRITES:
        setattr(SqlLedger, name, timed(getattr(SqlLedger, name)))

    def dump() -> None:
        with out.with_suffix(".lat").open("wb") as file:
            seconds.tofile(file)
        out.with_suffix(".json").write_text(json.dumps(dict(errors)))

    atexit.register(dump)


def read(out: Path) -> tuple[array, Counter[str]]:
    """The write seconds and errors a probed run left at ``out``."""
    seconds = array("d")
    path = out.with_suffix(".lat")
    seconds.frombytes(path.read_bytes() if path.exists() else b"")
    errors_path = out.with_suffix(".json")
    errors = Counter(json.loads(errors_path.read_text())) if errors_path.exists() else Counter()
    return seconds, errors


if __name__ == "__main__":
    install(Path(sys.argv[1]))
    sys.argv = ["sluice", *sys.argv[2:]]
    from sluice.cli import main

    main()
