"""Dataset headers: reading them from files and translating FITS keywords to data-model paths.

Owns writing-and-tools §6.2 and §3.4 for datasets:

* FITS files via astropy: the keywords of **all** HDUs in HDU order, the first occurrence of
  a keyword wins, keys upper-cased, values ``str()``-ed (``True`` -> ``'True'``); HIERARCH
  dotted names (``HIERARCH META.INSTRUMENT.DETECTOR``) are kept under their dotted name.
* JSON: one object of parameters, or CRDS's ``{dataset_id: {parameters}}`` form.
* JSON lines: one header per line, either form.
* The FITS keyword <-> ``META.*`` cross-strapping of TMT/JWST rules, as a table kept here
  (no data-model package needed): ``DETECTOR`` feeds ``META.INSTRUMENT.DETECTOR`` and back.

The values read are *not* conditioned here: the rules engine conditions at the top level.
"""
from __future__ import annotations

__all__ = [
    "Dataset",
    "KeywordTable",
    "TMT_KEYWORDS",
    "REFERENCE_KEYWORDS",
    "read_fits_header",
    "read_json_headers",
    "iter_json_lines",
    "read_datasets",
    "normalise_keys",
    "cross_strap",
    "dataset_header",
    "is_fits_path",
]

import dataclasses
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from crdsmini.errors import HeaderError

# --------------------------------------------------------------------------------------------
# The translation table (writing-and-tools §3.4).  Each row is one group of equivalent names,
# the data-model path first: when one member is defined and another is missing or
# 'UNDEFINED', the first defined member (in row order) is copied to it.  Rows 1-17 come from
# the data-model schema's fits_keyword annotations for the keys rmaps use; the rest is CRDS's
# fixed table.  TMT/IRIS schemas use the same FITS names for INSTRUME, DETECTOR, FILTER,
# PUPIL, SUBARRAY, DATE-OBS, TIME-OBS and USEAFTER.
_TMT_ROWS: tuple[tuple[str, ...], ...] = (
    ("META.INSTRUMENT.NAME", "INSTRUME", "INSTRUMENT", "META.INSTRUMENT.TYPE"),
    ("META.INSTRUMENT.DETECTOR", "DETECTOR"),
    ("META.INSTRUMENT.FILTER", "FILTER"),
    ("META.INSTRUMENT.PUPIL", "PUPIL"),
    ("META.INSTRUMENT.BAND", "BAND"),
    ("META.INSTRUMENT.CHANNEL", "CHANNEL"),
    ("META.INSTRUMENT.GRATING", "GRATING"),
    ("META.INSTRUMENT.MODULE", "MODULE"),
    ("META.INSTRUMENT.CORONAGRAPH", "CORONMSK"),
    ("META.INSTRUMENT.LAMP_STATE", "LAMP"),
    ("META.SUBARRAY.NAME", "SUBARRAY"),
    ("META.SUBARRAY.XSTART", "SUBSTRT1"),
    ("META.SUBARRAY.YSTART", "SUBSTRT2"),
    ("META.SUBARRAY.XSIZE", "SUBSIZE1"),
    ("META.SUBARRAY.YSIZE", "SUBSIZE2"),
    ("META.EXPOSURE.TYPE", "EXP_TYPE"),
    ("META.EXPOSURE.READPATT", "READPATT"),
    ("META.EXPOSURE.NGROUPS", "NGROUPS"),
    ("META.OBSERVATION.DATE", "DATE-OBS"),
    ("META.OBSERVATION.TIME", "TIME-OBS"),
    ("META.TELESCOPE", "TELESCOP", "TELESCOPE"),
    ("META.VISIT.TSOVISIT", "TSOVISIT"),
    ("META.APERTURE.NAME", "APERNAME"),
    ("META.REFTYPE", "REFTYPE"),
    ("META.USEAFTER", "USEAFTER"),
    ("META.DESCRIPTION", "DESCRIP", "DESCRIPTION"),
    ("META.AUTHOR", "AUTHOR"),
    ("META.PEDIGREE", "PEDIGREE"),
    ("META.HISTORY", "HISTORY"),
    ("META.CALIBRATION_SOFTWARE_VERSION", "CAL_VER", "CALIBRATION_SOFTWARE_VERSION"),
)

# writing-and-tools §6.4: the primary-header keyword that --update-bestrefs writes per type
# for TMT/JWST (the data-model ``R_<...>`` name where the schema has one).  Types not listed
# are written under their own upper-case name (HIERARCH when longer than 8 characters).
REFERENCE_KEYWORDS: Mapping[str, str] = {
    "dark": "R_DARK",
    "flat": "R_FLAT",
    "mask": "R_MASK",
    "dflat": "R_DFLAT",
}

_UNDEFINED = "UNDEFINED"


@dataclasses.dataclass(frozen=True)
class KeywordTable:
    """Groups of equivalent header names (data-model path first), and their cross-strapping."""

    rows: tuple[tuple[str, ...], ...]

    def extended(self, rows: Iterable[Sequence[str]]) -> KeywordTable:
        """A new table with extra rows (an instrument's own keywords) appended."""
        return KeywordTable(self.rows + tuple(tuple(str(n).upper() for n in r) for r in rows))

    def fits_keyword(self, name: str) -> str | None:
        """The FITS keyword of a data-model path (``META.INSTRUMENT.FILTER`` -> ``FILTER``)."""
        upper = name.upper()
        for row in self.rows:
            if row[0] == upper and len(row) > 1:
                return row[1]
        return None

    def annotate(self, name: str) -> str:
        """``'META.INSTRUMENT.FILTER [FILTER]'`` as CRDS logs it; plain names unchanged."""
        keyword = self.fits_keyword(name)
        return f"{name} [{keyword}]" if keyword else name

    def source_of(self, header: Mapping[str, str], name: str) -> str | None:
        """Which header key a cross-strapped value came from (None when it was there)."""
        return None if name in header else self._first_defined(header, name)

    def _first_defined(self, header: Mapping[str, str], name: str) -> str | None:
        for row in self.rows:
            if name in row:
                for member in row:
                    if member != name and _defined(header.get(member)):
                        return member
        return None


def _defined(value: str | None) -> bool:
    return value is not None and value != _UNDEFINED


TMT_KEYWORDS = KeywordTable(_TMT_ROWS)


def cross_strap(header: Mapping[str, str], table: KeywordTable = TMT_KEYWORDS) -> dict[str, str]:
    """Fill each missing or ``UNDEFINED`` name of a table row from the row's first defined one.

    Existing defined values are never changed, so a file that carries both ``DETECTOR`` and
    ``META.INSTRUMENT.DETECTOR`` keeps both as written.
    """
    result = dict(header)
    for row in table.rows:
        source = next((name for name in row if _defined(result.get(name))), None)
        if source is None:
            continue
        value = result[source]
        for name in row:
            if not _defined(result.get(name)):
                result[name] = value
    return result


def normalise_keys(header: Mapping[str, object]) -> dict[str, str]:
    """Upper-case the keys and ``str()`` the values of one dataset header.

    When several spellings collide, the exact lower-case key wins over the upper-case one,
    and both win over mixed case: that is the order in which CRDS's top-level lookup looks
    for a parameter (``header[K.lower()]``, then ``header[K.upper()]``).
    """
    ranked: dict[str, tuple[int, str]] = {}
    for key, value in header.items():
        text_key = str(key)
        upper = text_key.upper()
        rank = 0 if text_key == text_key.lower() else 1 if text_key == upper else 2
        if upper not in ranked or rank < ranked[upper][0]:
            ranked[upper] = (rank, _value_text(value, text_key))
    return {key: value for key, (_, value) in ranked.items()}


def _value_text(value: object, key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        raise HeaderError(f"header value of {key!r} is not a scalar: {value!r}", keyword=key)
    return str(value)


# --------------------------------------------------------------------------------------------
# Readers

_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
_SKIPPED_CARDS = frozenset({"", "COMMENT", "HISTORY"})


def is_fits_path(path: str | Path) -> bool:
    """True for FITS file names (by suffix) or, for other names, files that start ``SIMPLE  =``."""
    name = str(path).lower()
    if name.endswith(_FITS_SUFFIXES):
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(9) == b"SIMPLE  ="
    except OSError:
        return False


def read_fits_header(path: str | Path) -> dict[str, str]:
    """The union of the keywords of every HDU of a FITS file, first occurrence winning.

    Keys are upper-cased (HIERARCH names keep their dotted form), values ``str()``-ed; a card
    without a value reads as ``'UNDEFINED'``.  Only headers are read, not data.
    """
    from astropy.io import fits  # imported here: JSON-only callers need not pay for astropy

    header: dict[str, str] = {}
    try:
        with fits.open(path, lazy_load_hdus=True, memmap=True) as hdul:
            for hdu in hdul:
                for card in hdu.header.cards:
                    key = card.keyword.upper()
                    if key in _SKIPPED_CARDS or key in header:
                        continue
                    value = card.value
                    if isinstance(value, fits.card.Undefined):
                        header[key] = _UNDEFINED
                    elif isinstance(value, str):
                        header[key] = value
                    else:
                        header[key] = str(value)
    except FileNotFoundError:
        raise HeaderError(f"dataset file not found: {path}", file=str(path)) from None
    except (OSError, ValueError) as exc:
        raise HeaderError(f"cannot read FITS header of {path}: {exc}", file=str(path)) from None
    return header


def _is_batch(obj: Mapping[str, object]) -> bool:
    """CRDS's ``{dataset_id: {parameters}}`` form: every value is itself an object."""
    return bool(obj) and all(isinstance(value, dict) for value in obj.values())


def read_json_headers(path: str | Path) -> list[tuple[str, dict[str, object]]]:
    """``(dataset_id, header)`` pairs from a ``.json`` object or a JSON-lines file.

    A ``.json`` file holds one object: a header, or ``{dataset_id: header, ...}``.  Any other
    file is read as JSON lines (blank lines and lines starting ``#`` skipped); each line is a
    header or ``{dataset_id: header}``.  Headers without an id are named ``<file>:<line>``
    (``<file>`` for a single-object ``.json``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HeaderError(f"header file not found: {path}", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HeaderError(f"cannot read {path}: {exc}", file=str(path)) from None
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise HeaderError(f"{path}: not JSON: {exc}", file=str(path)) from None
        return list(_entries(obj, path.name, path, None))
    found: list[tuple[str, dict[str, object]]] = []
    for number, obj in iter_json_lines(text.splitlines(), path):
        found.extend(_entries(obj, f"{path.name}:{number}", path, number))
    return found


def iter_json_lines(lines: Iterable[str], path: str | Path) -> Iterator[tuple[int, object]]:
    """``(line number, object)`` per line of a JSON-lines text; blank and ``#`` lines skipped.

    A line that is not JSON is a HeaderError naming the file and line.
    """
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            obj = json.loads(stripped)
        except ValueError as exc:
            raise HeaderError(f"{path}:{number}: not JSON: {exc}", file=str(path), line=number) from None
        yield number, obj


def _entries(obj: object, default_id: str, path: Path,
             line: int | None) -> Iterator[tuple[str, dict[str, object]]]:
    where = f"{path}:{line}" if line else str(path)
    if not isinstance(obj, dict):
        raise HeaderError(f"{where}: expected a JSON object, got {type(obj).__name__}",
                          file=str(path), line=line)
    if _is_batch(obj):
        for dataset_id, params in obj.items():
            yield str(dataset_id), params
    else:
        yield default_id, obj


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One dataset to choose references for.

    ``header`` is what the lookup sees (keys upper-cased, values text, FITS <-> META
    cross-strapped); ``raw`` is the header as read; ``path`` is the FITS file to update, or
    None for a header read from JSON.
    """

    id: str
    header: Mapping[str, str]
    raw: Mapping[str, str]
    path: Path | None = None
    kind: str = "fits"

    @property
    def instrument(self) -> str | None:
        """The instrument named by the header (``META.INSTRUMENT.NAME`` or ``INSTRUME``...)."""
        for key in ("META.INSTRUMENT.NAME", "INSTRUME", "INSTRUMENT"):
            value = self.header.get(key)
            if _defined(value):
                return value
        return None


def dataset_header(raw: Mapping[str, object], table: KeywordTable | None = TMT_KEYWORDS) -> dict[str, str]:
    """The lookup header of one dataset: keys normalised, then cross-strapped with ``table``."""
    header = normalise_keys(raw)
    return cross_strap(header, table) if table is not None else header


def read_datasets(files: Iterable[str | Path] = (), header_files: Iterable[str | Path] = (),
                  table: KeywordTable | None = TMT_KEYWORDS) -> list[Dataset]:
    """Read datasets from FITS/JSON ``files`` and JSON-lines ``header_files``, in order.

    ``files`` may be FITS (any HDU layout) or JSON (``.json``/``.jsonl``); ``header_files``
    are always JSON or JSON lines.  Raises HeaderError for an unreadable file.
    """
    datasets: list[Dataset] = []
    for name in files:
        path = Path(name)
        if is_fits_path(path):
            raw = read_fits_header(path)
            datasets.append(Dataset(str(name), dataset_header(raw, table), raw, path, "fits"))
        elif path.suffix.lower() in (".json", ".jsonl", ".ndjson"):
            datasets.extend(_json_datasets(path, table))
        elif not path.exists():
            raise HeaderError(f"dataset file not found: {path}", file=str(path))
        else:
            raise HeaderError(
                f"{path}: not a FITS file and not .json/.jsonl; cannot read its header",
                file=str(path))
    for name in header_files:
        datasets.extend(_json_datasets(Path(name), table))
    return datasets


def _json_datasets(path: Path, table: KeywordTable | None) -> list[Dataset]:
    result = []
    for dataset_id, params in read_json_headers(path):
        raw = {str(k): _value_text(v, str(k)) for k, v in params.items()}
        result.append(Dataset(dataset_id, dataset_header(params, table), raw, None, "json"))
    return result
