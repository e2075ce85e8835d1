"""Reading a *reference* file's keywords for insertion into an rmap (writing spec §3.3–3.4).

A reference file is read like a dataset (``crdsmini.headers``: the union of every HDU's
cards, first occurrence wins, values ``str()``-ed, HIERARCH data-model paths kept as
written) and cross-strapped with the same FITS keyword <-> data-model path table.  What is
particular to references lives here:

* the reference-only *pattern* keywords (``P_FILTER='K|CLEAR|'``...) that replace the plain
  value when defined (spec §3.4.3);
* an rmap's ``reference_to_dataset`` dict, which adds (reference keyword, dataset keyword)
  pairs to the table;
* a missing file is a ``missing-file`` error naming it (the authoring tools report it so).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from crdsmini.errors import MissingFileError
from crdsmini.headers import TMT_KEYWORDS, read_fits_header
from crdsmini.headers import cross_strap as _cross_strap

__all__ = ["UNDEFINED", "PATTERN_KEYWORDS", "read_reference_cards", "cross_strap", "annotate"]

UNDEFINED = "UNDEFINED"

# Reference-only pattern keywords: when defined they REPLACE the plain value (spec §3.4.3).
PATTERN_KEYWORDS: Mapping[str, str] = {
    "P_DETECT": "META.INSTRUMENT.DETECTOR",
    "P_FILTER": "META.INSTRUMENT.FILTER",
    "P_PUPIL": "META.INSTRUMENT.PUPIL",
    "P_BAND": "META.INSTRUMENT.BAND",
    "P_CHANNE": "META.INSTRUMENT.CHANNEL",
    "P_MODULE": "META.INSTRUMENT.MODULE",
    "P_SUBARR": "META.SUBARRAY.NAME",
    "P_GRATIN": "META.INSTRUMENT.GRATING",
    "P_READPA": "META.EXPOSURE.READPATT",
    "P_EXP_TY": "META.EXPOSURE.TYPE",
    "P_CORONM": "META.INSTRUMENT.CORONAGRAPH",
}


def read_reference_cards(path: str | Path) -> dict[str, str]:
    """Keywords of every HDU of a FITS reference file (first occurrence wins, values str()).

    Raises MissingFileError when the file does not exist and HeaderError when it is not a
    readable FITS file; both name the file.
    """
    if not Path(path).is_file():
        raise MissingFileError(f"[Errno 2] No such file or directory: '{path}'", file=str(path))
    return read_fits_header(path)


def _defined(value: str | None) -> bool:
    return value is not None and value not in (UNDEFINED, "")


def cross_strap(cards: Mapping[str, str], *,
                extra_pairs: Iterable[tuple[str, str]] = ()) -> tuple[dict[str, str], list[str]]:
    """Link FITS keywords and data-model paths both ways, then apply the P_ keywords.

    ``extra_pairs`` are (reference keyword, dataset keyword) pairs, e.g. from an rmap's
    ``reference_to_dataset``.  A defined ``P_xxx`` (or ``META.<group>.P_xxx``) replaces the
    plain value under both names.  Returns the header and log notes for the replacements.
    """
    pairs = [(str(dataset).upper(), str(reference).upper()) for reference, dataset in extra_pairs]
    table = TMT_KEYWORDS.extended(pairs) if pairs else TMT_KEYWORDS
    header = _cross_strap(cards, table)
    notes = []
    for pattern, path in PATTERN_KEYWORDS.items():
        value = header.get(pattern)
        if not _defined(value):
            value = header.get(".".join(path.split(".")[:-1] + [pattern]))
        if not _defined(value):
            continue
        notes.append(f"Setting '{annotate(path)}' = {header.get(path, UNDEFINED)!r} "
                     f"to value of '{pattern}' = {value!r}")
        header[path] = value
        plain = TMT_KEYWORDS.fits_keyword(path)
        if plain:
            header[plain] = value
    return header, notes


def annotate(name: str) -> str:
    """``'META.INSTRUMENT.FILTER [FILTER]'`` for messages; plain names unchanged."""
    return TMT_KEYWORDS.annotate(name)
