"""The mapping checksum, computed exactly as CRDS computes it.

CRDS sums the file *text* (universal newlines), leaving out every line that contains the
substring ``sha1sum``; so the stored sum never covers itself, and a CRLF copy verifies
with the LF sum.  Owning this in one place keeps loader, writer and ``check`` in agreement.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from crdsmini.errors import ChecksumError

__all__ = ["compute_checksum", "read_mapping_text", "stated_checksum", "verify_checksum"]

_STATED = re.compile(r"""['"]sha1sum['"]\s*:\s*['"]([^'"]*)['"]""")


def read_mapping_text(path: str | Path) -> str:
    """Read a mapping file as CRDS does: UTF-8 with universal-newline translation."""
    with open(path, encoding="utf-8", newline=None) as handle:
        return handle.read()


def compute_checksum(text: str) -> str:
    """SHA-1 of ``text`` without the lines that mention ``sha1sum`` (line ends kept)."""
    digest = hashlib.sha1()
    for line in text.splitlines(keepends=True):
        if "sha1sum" not in line:
            digest.update(line.encode("utf-8"))
    return digest.hexdigest()


def stated_checksum(text: str) -> str | None:
    """The ``sha1sum`` value written in the header text, or None when there is none."""
    found = _STATED.search(text)
    return found.group(1) if found else None


def verify_checksum(text: str, name: str, stated: str | None = None) -> None:
    """Raise ChecksumError unless the stated sum equals the computed one.

    ``stated`` is the header's value when the caller already parsed it; otherwise the text
    is searched for it.
    """
    if stated is None:
        stated = stated_checksum(text)
    if stated is None:
        raise ChecksumError(f"sha1sum is missing in '{name}'", file=name, keyword="sha1sum")
    if compute_checksum(text) != stated:
        raise ChecksumError(f"sha1sum mismatch in '{name}'", file=name, keyword="sha1sum")
