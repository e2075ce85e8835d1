"""bestrefs: choose the reference files of datasets, compare contexts, update FITS headers.

Owns writing-and-tools §6 as library code (the click command in :mod:`crdsmini.cli` only
parses options and formats): running a context over dataset headers, classifying each
per-type result the way ``crds bestrefs`` does, the ``--old-context`` comparison, the
``--print-new-references`` line format, ``--update-bestrefs`` (an atomic rewrite of the
primary header), the output records (text/JSON) and the CRDS-style log on stderr.

Result classification (§6.3): a file name is *found*; ``NOT FOUND n/a`` is *n/a*; "no match"
(a date before the first UseAfter, no Match row) is reported as ``n/a`` like CRDS but keeps
the status ``not-found`` so the explanation can say why; OMIT leaves the type out; any other
failure is an *error* (exit status 1).
"""
from __future__ import annotations

__all__ = [
    "Log",
    "TypeResult",
    "DatasetResult",
    "BestrefsRun",
    "load_context",
    "select_for_header",
    "classify",
    "lookup_header",
    "instrument_of",
    "compute_bestrefs",
    "update_dataset_header",
    "new_reference_lines",
    "affected_datasets",
    "to_record",
    "update_keyword",
    "apply_updates",
    "HST_IRAF_PREFIXES",
]

import dataclasses
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from crdsmini.cache import Cache, observatory_of
from crdsmini.errors import (AmbiguousMatchError, CrdsminiError, LookupFailure, OtherError)
from crdsmini.headers import REFERENCE_KEYWORDS, Dataset

NOT_FOUND = "NOT FOUND "
NOT_APPLICABLE = "NOT FOUND n/a"

#: IRAF-style directory prefixes CRDS writes in HST headers (``lref$s7g1700gl_dead.fits``).
HST_IRAF_PREFIXES: Mapping[str, str] = {
    "acs": "jref$", "cos": "lref$", "stis": "oref$", "wfc3": "iref$", "nicmos": "nref$",
    "wfpc2": "uref$",
}


# --------------------------------------------------------------------------------------------
# The log: CRDS's stderr format, counted, passed explicitly (no logging-module globals).

class Log:
    """Writes ``CRDS - <LEVEL> -  <message>`` lines and counts errors/warnings/infos.

    Errors and warnings are always written; INFO lines from ``verbosity`` 1 (``-v``) and
    DEBUG lines (each lookup) from ``verbosity`` 2 (``-vv``), unless ``level`` says otherwise.
    """

    def __init__(self, stream: TextIO | None = None, verbosity: int = 0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.verbosity = verbosity
        self.errors = 0
        self.warnings = 0
        self.infos = 0

    def _write(self, level: str, message: str) -> None:
        self.stream.write(f"CRDS - {level} -  {message}\n")

    def error(self, message: str) -> None:
        self.errors += 1
        self._write("ERROR", message)

    def warning(self, message: str) -> None:
        self.warnings += 1
        self._write("WARNING", message)

    def info(self, message: str) -> None:
        self.infos += 1
        if self.verbosity >= 1:
            self._write("INFO", message)

    def debug(self, message: str, level: int = 2) -> None:
        if self.verbosity >= level:
            self._write("DEBUG", message)

    def summary(self) -> None:
        self._write("INFO", f"{self.errors} errors")
        self._write("INFO", f"{self.warnings} warnings")
        self._write("INFO", f"{self.infos} infos")


# --------------------------------------------------------------------------------------------
# Results

@dataclasses.dataclass(frozen=True)
class TypeResult:
    """The outcome for one reference type of one dataset under one context.

    ``value`` is exactly what CRDS's ``get_best_references`` returns for the type (a file
    name, ``'NOT FOUND n/a'``, ``'NOT FOUND <message>'`` or a tuple for a tie); ``status``
    is ``found``, ``n/a``, ``not-found`` or ``error``; ``category`` is the error category of
    a failure (``not-found``, ``invalid-value``, ``missing-key``...).
    """

    reftype: str
    value: str | tuple[str, ...]
    status: str
    category: str | None = None
    message: str | None = None
    error: CrdsminiError | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def bestref(self) -> str:
        """The printed form: the file name in lower case, or ``n/a``."""
        if self.status == "found" and isinstance(self.value, str):
            return self.value.lower()
        if self.status in ("n/a", "not-found"):
            return "n/a"
        return "failed"

    @property
    def ok(self) -> bool:
        return self.status != "error"


@dataclasses.dataclass(frozen=True)
class DatasetResult:
    """Everything bestrefs learned about one dataset."""

    dataset: Dataset
    instrument: str | None
    types: Mapping[str, TypeResult]
    error: CrdsminiError | None = None
    old_types: Mapping[str, TypeResult] | None = None
    old_error: CrdsminiError | None = None
    updated: bool = False
    update_error: str | None = None

    @property
    def compared(self) -> bool:
        return self.old_types is not None or self.old_error is not None

    def changed(self) -> dict[str, tuple[str, TypeResult]]:
        """``{reftype: (old printed value, new result)}`` for the types to report.

        Without an old context every type counts (old is ``none``, as CRDS prints it).
        """
        result: dict[str, tuple[str, TypeResult]] = {}
        for reftype, new in self.types.items():
            if not self.compared:
                result[reftype] = ("none", new)
                continue
            old = (self.old_types or {}).get(reftype)
            old_text = old.bestref if old is not None else "none"
            if old_text != new.bestref:
                result[reftype] = (old_text, new)
        return result

    @property
    def failed(self) -> bool:
        return self.error is not None or any(not t.ok for t in self.types.values()) \
            or self.update_error is not None


@dataclasses.dataclass(frozen=True)
class BestrefsRun:
    """A whole bestrefs run: the contexts used and one result per dataset."""

    context: str
    old_context: str | None
    results: Sequence[DatasetResult]

    @property
    def error_count(self) -> int:
        return sum(1 for r in self.results if r.failed)


# --------------------------------------------------------------------------------------------
# Running the rules

def load_context(cache: Cache, context: str | Path | None = None, *,
                 ignore_checksum: bool | None = None, observatory: str | None = None) -> Any:
    """Load a context (pmap or imap) named explicitly or by the configuration's default."""
    from crdsmini import load_mapping  # the rules engine; imported late to keep imports light

    path = cache.context_path(context, observatory)
    if ignore_checksum is None:
        ignore_checksum = cache.config.ignore_mapping_checksum
    return load_mapping(path, ignore_checksum=ignore_checksum)


def classify(reftype: str, value: Any) -> TypeResult:
    """Turn one strict-API result (a value or an exception object) into a TypeResult."""
    if isinstance(value, CrdsminiError):
        text = NOT_FOUND + str(value)
        status = "not-found" if isinstance(value, LookupFailure) else "error"
        return TypeResult(reftype, text, status, value.category, str(value), value)
    if isinstance(value, BaseException):  # defensive: an engine bug must not stop a batch
        wrapped = OtherError(f"{type(value).__name__}: {value}")
        return TypeResult(reftype, NOT_FOUND + str(wrapped), "error", wrapped.category,
                          str(wrapped), wrapped)
    if isinstance(value, tuple):
        names = tuple(str(v) for v in value)
        error = AmbiguousMatchError(
            f"several equally good references: {', '.join(names)}")
        return TypeResult(reftype, names, "error", error.category, str(error), error)
    text = str(value)
    if text == NOT_APPLICABLE or text.upper() in ("N/A", "TEMP_N/A"):
        return TypeResult(reftype, NOT_APPLICABLE, "n/a")
    if text.startswith(NOT_FOUND):
        message = text[len(NOT_FOUND):]
        return TypeResult(reftype, text, "error", "other", message)
    return TypeResult(reftype, text, "found")


def lookup_header(context: Any, header: Mapping[str, str]) -> dict[str, str]:
    """The header the rules see: minimised to the context's parkeys and conditioned.

    This is CRDS's top-level lookup (rules-language §3.1), which ``crds bestrefs`` and
    ``getrecommendations`` use, so lower-case ``iris1``/``k`` match upper-case rules.  Raises
    the whole-call errors (missing or unknown instrument).
    """
    return context.minimize_header(dict(header))


def select_for_header(context: Any, header: Mapping[str, str],
                      types: Sequence[str] | None = None,
                      skip_types: Iterable[str] = ()) -> dict[str, TypeResult]:
    """Per-type results of one header under one loaded context, in the imap's order.

    Raises the whole-call errors (missing or unknown instrument).  OMIT types are absent.
    """
    include = [t.lower() for t in types] if types else None
    raw = context.select_references(lookup_header(context, header), include=include)
    skipped = {t.lower() for t in skip_types}
    results: dict[str, TypeResult] = {}
    for reftype, value in raw.items():
        if value is None or reftype.lower() in skipped:
            continue
        results[reftype.lower()] = classify(reftype.lower(), value)
    return results


def instrument_of(context: Any, header: Mapping[str, str]) -> str | None:
    """The instrument (lower case) the context chooses for a header, or None."""
    if getattr(context, "kind", None) == "imap":
        return str(context.instrument).lower()
    try:
        return context.get_instrument({str(k).upper(): v for k, v in header.items()})
    except CrdsminiError:
        return None


def compute_bestrefs(datasets: Sequence[Dataset], context: Any, *,
                     old_context: Any | None = None, types: Sequence[str] | None = None,
                     skip_types: Iterable[str] = (), log: Log | None = None) -> BestrefsRun:
    """Choose references for every dataset; with ``old_context``, also under the old rules."""
    log = log if log is not None else Log(io.StringIO())
    skip = tuple(skip_types)
    results = []
    for dataset in datasets:
        log.info(f"===> Processing {dataset.id}")
        error = None
        new: dict[str, TypeResult] = {}
        try:
            new = select_for_header(context, dataset.header, types, skip)
        except CrdsminiError as exc:
            error = exc
            log.error(f"data={dataset.id!r} ::  New: Bestref FAILED:  {exc}")
        old: dict[str, TypeResult] | None = None
        old_error = None
        if old_context is not None:
            try:
                old = select_for_header(old_context, dataset.header, types, skip)
            except CrdsminiError as exc:
                old_error = exc
                log.warning(f"data={dataset.id!r} ::  Old: Bestref FAILED:  {exc}")
        instrument = instrument_of(context, dataset.header) if error is None else None
        result = DatasetResult(dataset, instrument, new, error, old, old_error)
        _log_types(result, log)
        results.append(result)
    return BestrefsRun(context.name, old_context.name if old_context is not None else None,
                       results)


def _log_types(result: DatasetResult, log: Log) -> None:
    instrument = (result.instrument or "").upper()
    changed = result.changed()
    for reftype, new in result.types.items():
        where = f"instrument={instrument!r} type={reftype.upper()!r} data={result.dataset.id!r}"
        if new.status == "error":
            log.error(f"{where} ::  New: Bestref FAILED:  {new.message}")
            continue
        if new.status == "not-found":
            log.warning(f"{where} ::  Bestref NOT FOUND: {new.message} (reported as n/a; "
                        "run with --explain to see why)")
        if result.compared and reftype in changed:
            old_text = changed[reftype][0]
            log.info(f"{where} ::  New best reference: {old_text!r} --> {new.bestref!r} "
                     ":: Would update.")
        else:
            log.debug(f"{where} ::  Bestref FOUND: {new.bestref!r}")
    if result.old_types:
        for reftype, old in result.old_types.items():
            if old.status == "error" and reftype in result.types:
                log.warning(f"instrument={instrument!r} type={reftype.upper()!r} "
                            f"data={result.dataset.id!r} ::  Old: Bestref FAILED:  {old.message}")


# --------------------------------------------------------------------------------------------
# Output

def new_reference_lines(run: BestrefsRun) -> list[str]:
    """``--print-new-references`` lines: ``<dataset> <instrument> <type> <old> <new>``, lower case."""
    lines = []
    for result in run.results:
        if result.error is not None:
            continue
        instrument = (result.instrument or "unknown").lower()
        for reftype, (old, new) in result.changed().items():
            if new.status == "error":
                continue
            lines.append(" ".join((result.dataset.id.lower(), instrument, reftype.lower(),
                                   old.lower(), new.bestref.lower())))
    return lines


def affected_datasets(run: BestrefsRun) -> list[str]:
    """Datasets with at least one reported (changed) result, for ``--print-affected``."""
    return [r.dataset.id for r in run.results
            if r.error is None and any(n.status != "error" for _, n in r.changed().values())]


def _type_record(result: TypeResult) -> dict[str, Any]:
    value = list(result.value) if isinstance(result.value, tuple) else result.value
    return {
        "bestref": result.bestref,
        "status": result.status,
        "crds": value,
        "category": result.category,
        "message": result.message,
    }


def _error_record(error: CrdsminiError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"category": error.category, "message": str(error), "error": type(error).__name__}


def to_record(result: DatasetResult, run: BestrefsRun) -> dict[str, Any]:
    """The JSON-ready record of one dataset (``--format json``/``jsonl``)."""
    record: dict[str, Any] = {
        "dataset": result.dataset.id,
        "context": run.context,
        "instrument": result.instrument,
        "error": _error_record(result.error),
        "types": {name: _type_record(t) for name, t in result.types.items()},
    }
    if result.compared:
        record["old_context"] = run.old_context
        record["old_error"] = _error_record(result.old_error)
        record["old_types"] = {name: _type_record(t)
                               for name, t in (result.old_types or {}).items()}
        record["changed"] = sorted(result.changed())
    if result.dataset.path is not None:
        record["updated"] = result.updated
        if result.update_error:
            record["update_error"] = result.update_error
    return record


# --------------------------------------------------------------------------------------------
# --update-bestrefs

def update_keyword(reftype: str, observatory: str,
                   keywords: Mapping[str, str] = REFERENCE_KEYWORDS) -> str:
    """The primary-header keyword for a type: HST the type name, TMT/JWST ``R_<TYPE>`` if known."""
    if observatory.lower() == "hst":
        return reftype.upper()
    return keywords.get(reftype.lower(), reftype.upper())


def _update_value(result: TypeResult, observatory: str, instrument: str | None) -> str:
    if result.status != "found":
        return "N/A"
    name = str(result.value).lower()
    if observatory.lower() == "hst":
        return HST_IRAF_PREFIXES.get((instrument or "").lower(), "") + name
    return "crds://" + name


def _set_card(header: Any, keyword: str, value: str) -> None:
    # Long or dotted keywords are written as HIERARCH on purpose (no VerifyWarning).
    if len(keyword) > 8 or not all(c.isalnum() or c in "-_" for c in keyword):
        if keyword in header:
            header[keyword] = value
        else:
            header[f"HIERARCH {keyword}"] = value
    else:
        header[keyword] = value


def update_dataset_header(path: Path, context_name: str, updates: Mapping[str, str],
                          version: str) -> None:
    """Write ``CRDS_CTX``, ``CRDS_VER`` and ``updates`` into the primary header of ``path``.

    Atomic: the file is copied next to itself, the copy updated and synced, then renamed over
    the original; on any failure the temporary copy is removed and the original is untouched.
    """
    from astropy.io import fits

    path = Path(path)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        shutil.copy2(path, temp)
        with fits.open(temp, mode="update", memmap=False) as hdul:
            header = hdul[0].header
            _set_card(header, "CRDS_CTX", context_name)
            _set_card(header, "CRDS_VER", version)
            for keyword, value in updates.items():
                _set_card(header, keyword, value)
        with open(temp, "rb+") as synced:
            os.fsync(synced.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def apply_updates(run: BestrefsRun, *, version: str, log: Log,
                  keywords: Mapping[str, str] = REFERENCE_KEYWORDS) -> BestrefsRun:
    """Update every FITS dataset with its reported results; returns the run with ``updated`` set.

    Failed types are not written (§6.4); JSON datasets have no file and are skipped.
    """
    observatory = observatory_of(run.context)
    updated_results = []
    for result in run.results:
        if result.dataset.path is None or result.error is not None:
            if result.dataset.path is None:
                log.debug(f"data={result.dataset.id!r} :: header from JSON; nothing to update")
            updated_results.append(result)
            continue
        updates = {update_keyword(reftype, observatory, keywords):
                   _update_value(new, observatory, result.instrument)
                   for reftype, (_, new) in result.changed().items() if new.status != "error"}
        if not updates:
            updated_results.append(result)
            continue
        try:
            update_dataset_header(result.dataset.path, run.context, updates, version)
        except Exception as exc:  # noqa: BLE001 - any failure must leave the file untouched
            message = f"cannot update {result.dataset.path}: {exc}"
            log.error(f"data={result.dataset.id!r} ::  {message}")
            updated_results.append(dataclasses.replace(result, update_error=message))
            continue
        log.info(f"data={result.dataset.id!r} ::  Updated {len(updates)} reference keyword(s)")
        updated_results.append(dataclasses.replace(result, updated=True))
    return dataclasses.replace(run, results=updated_results)

