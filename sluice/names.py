"""One validator per kind of name a user gives Sluice.

Names become directories (batches, tables, runids, obs ids), ledger runs, labels and job
names, so every kind refuses what could escape or mislead: path separators and ``..``
where the name becomes a path component, newlines, control and invisible formatting
characters (bidi overrides, zero-width joiners), and values longer than the kind allows
(counted in UTF-8 bytes, as file systems do). A refusal is one line naming the input.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

from sluice.errors import SluiceInputError

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
"""A Kubernetes object name or namespace (RFC 1123 label): match with ``fullmatch``."""
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
"""A Kubernetes Job name, or a label key's prefix (RFC 1123 subdomain): ``fullmatch``."""
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LABEL_VALUE = re.compile(f"({_LABEL_NAME})?")
"""A Kubernetes label value, empty allowed: match with ``fullmatch``."""
LABEL_KEY = re.compile(f"({DNS1123_SUBDOMAIN.pattern}/)?{_LABEL_NAME}")
"""A Kubernetes label key (``[prefix/]name``): match with ``fullmatch``."""

# Unicode categories never wanted in a name: controls (newline, escape), formatting
# (bidi overrides, zero-width), line/paragraph separators, surrogates, private use.
_INVISIBLE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co"}
_WORD = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_WORD_HELP = "letters, digits, '.', '_' or '-', starting with a letter or digit"


def quoted(value: object) -> str:
    """``value`` as a refusal shows it: repr'd, cut at 80 characters."""
    text = str(value)
    return repr(text[:80] + "…" if len(text) > 80 else text)


@dataclass(frozen=True)
class NameKind:
    """The rules of one kind of name."""

    max_bytes: int
    pattern: re.Pattern[str] | None = None
    help: str = ""
    path_component: bool = True
    empty_ok: bool = False

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not a name of this kind, or None."""
        if not isinstance(value, str):
            return f"expected text, got {type(value).__name__}"
        if not value:
            return None if self.empty_ok else "empty"
        if len(value.encode("utf-8", "surrogatepass")) > self.max_bytes:
            return f"longer than {self.max_bytes} bytes"
        if any(unicodedata.category(c) in _INVISIBLE for c in value):
            return "contains a control character or an invisible one (e.g. a bidi override)"
        if self.path_component:
            if "/" in value or "\\" in value:
                return "contains a path separator"
            if value.startswith("."):
                return "starts with a dot"
            if ".." in value:
                return "contains '..'"
        if self.pattern is not None and not self.pattern.fullmatch(value):
            return f"use {self.help}"
        return None

    def check(self, value: str, what: str) -> str:
        """``value`` if it is a name of this kind; else one line naming ``what``."""
        if (problem := self.problem(value)) is not None:
            raise SluiceInputError(f"{what} {quoted(value)}: {problem}")
        return value

    def _validate(self, value: str) -> str:
        if (problem := self.problem(value)) is not None:
            raise ValueError(problem)
        return value


BATCH_NAME = NameKind(128, re.compile(_WORD), _WORD_HELP)
# PyChunkedGraph's graph ids are Bigtable table ids: 1-50 of [-_.a-zA-Z0-9], not starting
# with '-' or '.'.
TABLE_NAME = NameKind(
    50,
    re.compile(r"[_a-zA-Z0-9][-_.a-zA-Z0-9]*"),
    "1-50 of letters, digits, '-', '_' or '.', not starting with '-' or '.'",
)
OBS_ID = NameKind(128, re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]*"), _WORD_HELP + " (or ':', '+')")
RUNID = NameKind(255)
KUBERNETES_NAMESPACE = NameKind(63, DNS1123_LABEL, "a DNS-1123 label (a-z, 0-9, '-')")
JOB_NAME_PREFIX = NameKind(50, re.compile(r"[a-z0-9][-a-z0-9]*"), "a-z, 0-9 or '-' (DNS-1123)")
DIRECTORY = NameKind(4096, path_component=False)
# A STAC item id names AOI files, S3 keys and log directories (its pattern holds no '/').
ITEM_ID = NameKind(
    256, re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*"), _WORD_HELP + " (or ':')", path_component=False
)
# Karabo: a Rucio scope (also a staging directory) and the products' file-name prefix
_FILE_CHARS = "letters, digits, '.', '_' or '-'"
RUCIO_NAMESPACE = NameKind(64, re.compile(r"[A-Za-z0-9_.-]+"), _FILE_CHARS)
FILE_PREFIX = NameKind(128, re.compile(r"[A-Za-z0-9_.-]*"), _FILE_CHARS, empty_ok=True)

# Flow-parameter types: the Prefect UI form and a direct call refuse what the CLI refuses.
BatchName = Annotated[str, AfterValidator(BATCH_NAME._validate)]
TableName = Annotated[str, AfterValidator(TABLE_NAME._validate)]
ObsId = Annotated[str, AfterValidator(OBS_ID._validate)]
RucioNamespace = Annotated[str, AfterValidator(RUCIO_NAMESPACE._validate)]
FilePrefix = Annotated[str, AfterValidator(FILE_PREFIX._validate)]
Directory = Annotated[str, AfterValidator(DIRECTORY._validate)]
