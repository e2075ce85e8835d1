"""Choosing reference files: the only module that talks to crdsmini.

``ReferenceResolver.resolve(header, reftypes)`` turns a science primary header into
``{reftype: Resolved(file, path|None, context)}``.  The work is split so that tests can
replace the engine and keep everything else:

* :func:`lookup_header` checks the FITS keywords each reftype needs (spec 3.1) and builds the
  data-model header crdsmini matches on (spec 4);
* a resolver's ``best_references`` returns crdsmini-style answers (lower-case filekinds,
  ``"NOT FOUND <reason>"``, absent = OMIT): :class:`CrdsResolver` from a real context,
  :class:`DictResolver` from a table;
* :meth:`ReferenceResolver.resolve` interprets the answers the same way for both and locates
  the files in the cache.

Configuration (``--context``/``CRDS_CONTEXT``, ``--crds-path``/``CRDS_PATH``, the bundled
default cache) is read here and nowhere else.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iris_reduce.errors import IrisReduceError

__all__ = [
    "REFTYPE_ORDER",
    "REFTYPE_KEYWORDS",
    "Resolved",
    "ReferenceResolver",
    "CrdsResolver",
    "DictResolver",
    "lookup_header",
    "observation_time",
    "bundled_root",
    "BUNDLED_CONTEXT",
    "default_cache",
    "resolver_from_settings",
    "crdsmini_version",
]

#: step order; with several failures the first in this order is reported
REFTYPE_ORDER = ("MASK", "NONLINCOEFF", "DARK", "FLAT")

#: FITS keywords each lookup needs, in the order they are checked (spec 3.1)
REFTYPE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "MASK": ("INSTRUME", "DETECTOR", "SUBARRAY", "DATE-OBS", "TIME-OBS"),
    "NONLINCOEFF": ("INSTRUME", "DETECTOR", "DATE-OBS", "TIME-OBS"),
    "DARK": ("INSTRUME", "DETECTOR", "SUBARRAY", "DATE-OBS", "TIME-OBS"),
    "FLAT": ("INSTRUME", "DETECTOR", "FILTER", "PUPIL", "DATE-OBS", "TIME-OBS"),
}

#: FITS keyword -> data-model name crdsmini matches on
_MODEL_NAMES = {
    "INSTRUME": "META.INSTRUMENT.NAME",
    "DETECTOR": "META.INSTRUMENT.DETECTOR",
    "FILTER": "META.INSTRUMENT.FILTER",
    "PUPIL": "META.INSTRUMENT.PUPIL",
    "SUBARRAY": "META.SUBARRAY.NAME",
}

#: The default context of the bundled cache (mappings/tmt/ at the repository top level).
BUNDLED_CONTEXT = "tmt_0010.pmap"

_NA = "NOT FOUND n/a"
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DATETIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?$")
_TIME = re.compile(r"^(\d{2}):(\d{2}):(\d{2})(\.\d+)?$")


# ---------------------------------------------------------------------- header -> lookup

def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).strip()


def _check_date(y: str, mo: str, d: str) -> bool:
    try:
        _dt.date(int(y), int(mo), int(d))
    except ValueError:
        return False
    return True


def _check_time(h: str, mi: str, s: str) -> bool:
    return int(h) < 24 and int(mi) < 60 and int(s) < 60


def _fraction(frac: str | None) -> str:
    """``.f...`` kept to at most 6 digits (crdsmini/CRDS resolution is microseconds)."""
    return "" if not frac else frac[:7]


def observation_time(header: Any, path: str | Path = "<header>",
                     reftype: str | None = None) -> tuple[str, str]:
    """(``YYYY-MM-DD``, ``hh:mm:ss[.ffffff]``) from DATE-OBS (+ TIME-OBS).

    An ISO DATE-OBS with a time part wins over TIME-OBS (which may then be absent).
    Missing, empty or malformed values raise IrisReduceError naming the keyword.
    """
    need = f" (needed for the {reftype} lookup)" if reftype else ""
    date = _text(header.get("DATE-OBS"))
    if date is None or date == "":
        raise IrisReduceError(path, f"keyword DATE-OBS is {'missing' if date is None else 'empty'}"
                              f"{need}", keyword="DATE-OBS")
    full = _DATETIME.match(date)
    if full:
        y, mo, d, h, mi, s, frac = full.groups()
        if not (_check_date(y, mo, d) and _check_time(h, mi, s)):
            raise IrisReduceError(path, f"keyword DATE-OBS={date!r} is malformed (not a valid "
                                  f"date/time){need}", keyword="DATE-OBS")
        return f"{y}-{mo}-{d}", f"{h}:{mi}:{s}{_fraction(frac)}"
    only = _DATE.match(date)
    if not only or not _check_date(*only.groups()):
        raise IrisReduceError(path, f"keyword DATE-OBS={date!r} is malformed (expected "
                              f"YYYY-MM-DD or YYYY-MM-DDThh:mm:ss){need}", keyword="DATE-OBS")
    time = _text(header.get("TIME-OBS"))
    if time is None or time == "":
        raise IrisReduceError(path, f"keyword TIME-OBS is {'missing' if time is None else 'empty'}"
                              f"{need}", keyword="TIME-OBS")
    clock = _TIME.match(time)
    if not clock or not _check_time(*clock.groups()[:3]):
        raise IrisReduceError(path, f"keyword TIME-OBS={time!r} is malformed (expected "
                              f"hh:mm:ss[.f]){need}", keyword="TIME-OBS")
    h, mi, s, frac = clock.groups()
    return date, f"{h}:{mi}:{s}{_fraction(frac)}"


def lookup_header(header: Any, reftypes: Sequence[str], path: str | Path = "<header>") -> dict[str, str]:
    """Check the keywords ``reftypes`` need and build crdsmini's lookup header.

    Reports the first missing/empty/malformed keyword (file, keyword, reftype), reftypes in
    step order.  The result maps INSTRUME (also as META.INSTRUMENT.NAME), DETECTOR, FILTER,
    PUPIL, SUBARRAY to their data-model names and carries META.OBSERVATION.DATE/TIME;
    absent keywords are left out.
    """
    for reftype in _ordered(reftypes):
        for key in REFTYPE_KEYWORDS[reftype]:
            if key in ("DATE-OBS", "TIME-OBS"):
                observation_time(header, path, reftype)
                continue
            value = _text(header.get(key))
            if value is None or value == "":
                state = "missing" if value is None else "empty"
                raise IrisReduceError(path, f"keyword {key} is {state} (needed for the {reftype} "
                                      "lookup)", keyword=key)
            if key == "INSTRUME" and value.upper() != "IRIS":
                raise IrisReduceError(path, f"keyword INSTRUME={value!r} is malformed (must be "
                                      f"'IRIS' for the {reftype} lookup)", keyword=key)
    out: dict[str, str] = {}
    for key, model in _MODEL_NAMES.items():
        value = _text(header.get(key))
        if value:
            out[model] = value
            if key == "INSTRUME":
                out["INSTRUME"] = value
    try:
        date, time = observation_time(header, path)
    except IrisReduceError:
        pass
    else:
        out["META.OBSERVATION.DATE"] = date
        out["META.OBSERVATION.TIME"] = time
    return out


def _ordered(reftypes: Sequence[str]) -> list[str]:
    wanted = {r.upper() for r in reftypes}
    unknown = wanted - set(REFTYPE_ORDER)
    if unknown:
        raise ValueError(f"unknown reftype(s) {sorted(unknown)}")
    return [r for r in REFTYPE_ORDER if r in wanted]


# ---------------------------------------------------------------------- results

@dataclass(frozen=True)
class Resolved:
    """One resolved reftype: the chosen file name (``N/A`` when not applicable), its path."""

    file: str
    path: Path | None
    context: str | None

    @property
    def not_applicable(self) -> bool:
        return self.path is None


class ReferenceResolver:
    """Base resolver: keyword checks + result interpretation; subclasses supply answers."""

    #: name recorded as CRDS_CTX
    context: str | None = None

    def best_references(self, lookup: dict[str, str], include: list[str],
                        path: str | Path, first: str) -> Mapping[str, Any]:
        """crdsmini-style answers for ``include`` (lower-case filekinds)."""
        raise NotImplementedError

    def locate(self, name: str) -> Path:
        """Where a chosen reference file lives."""
        raise NotImplementedError

    def resolve(self, header: Any, reftypes: Sequence[str],
                path: str | Path = "<header>") -> dict[str, Resolved]:
        """Resolve ``reftypes`` (upper case) for one header; see the module docstring.

        A file name is located (a missing file is an error naming the path tried);
        ``NOT FOUND n/a`` or an absent reftype gives ``Resolved('N/A', None, ctx)``; any
        other ``NOT FOUND <reason>`` raises IrisReduceError(path, "<REFTYPE>: ...").
        """
        ordered = _ordered(reftypes)
        if not ordered:
            return {}
        lookup = lookup_header(header, ordered, path)
        answers = self.best_references(lookup, [r.lower() for r in ordered], path, ordered[0])
        results: dict[str, Resolved] = {}
        for reftype in ordered:
            answer = answers.get(reftype.lower())
            if answer is None or answer == _NA:
                results[reftype] = Resolved("N/A", None, self.context)
                continue
            if isinstance(answer, str) and answer.startswith("NOT FOUND"):
                reason = answer[len("NOT FOUND"):].strip()
                raise IrisReduceError(path, f"{reftype}: crdsmini found no reference "
                                      f"(context {self.context}): {reason}")
            if not isinstance(answer, str):
                raise IrisReduceError(path, f"{reftype}: crdsmini returned several files "
                                      f"(context {self.context}): {answer!r}; the rules are "
                                      "ambiguous for this header")
            located = self.locate(answer)
            if not located.is_file():
                raise IrisReduceError(path, f"{reftype}: reference {answer} chosen by crdsmini "
                                      f"(context {self.context}) not found at {located}")
            results[reftype] = Resolved(answer, located, self.context)
        return results


def crdsmini_version() -> str:
    """``crdsmini <version>`` for CRDS_VER."""
    try:
        import crdsmini
    except ImportError:  # pragma: no cover - crdsmini is a hard dependency
        return "crdsmini unknown"
    return f"crdsmini {getattr(crdsmini, '__version__', 'unknown')}"


def _subdir_mode(root: Path) -> str:
    config = root / "config" / "tmt" / "ref_cache_subdir_mode"
    try:
        return config.read_text(encoding="utf-8").strip().lower()
    except OSError:
        return "flat"


class CrdsResolver(ReferenceResolver):
    """Resolve through a crdsmini pipeline context in a TMT-layout cache."""

    def __init__(self, context: str | Path, root: str | Path) -> None:
        self.root = Path(root)
        context_path = Path(context)
        if context_path.parent == Path("."):
            context_path = self.root / "mappings" / "tmt" / context_path
        self.context_path = context_path
        self.context = context_path.name
        self._pipeline: Any = None
        mode = _subdir_mode(self.root)
        self.reference_dir = self.root / "references" / "tmt"
        if mode == "instrument":
            self.reference_dir = self.reference_dir / "iris"

    def _load(self, path: str | Path, first: str) -> Any:
        if self._pipeline is not None:
            return self._pipeline
        try:
            from crdsmini import load_mapping
        except ImportError as exc:
            raise IrisReduceError(path, f"{first}: crdsmini engine not available ({exc})") from None
        if not self.context_path.is_file():
            raise IrisReduceError(path, f"{first}: crdsmini context {self.context} not found at "
                                  f"{self.context_path}")
        try:
            self._pipeline = load_mapping(str(self.context_path), ignore_checksum=False)
        except Exception as exc:  # crdsmini's boundary: every failure becomes a reported error
            raise IrisReduceError(path, f"{first}: crdsmini could not load context "
                                  f"{self.context_path}: {_describe(exc)}") from None
        return self._pipeline

    def best_references(self, lookup: dict[str, str], include: list[str],
                        path: str | Path, first: str) -> Mapping[str, Any]:
        pipeline = self._load(path, first)
        try:
            # the top-level lookup: minimise to the context's parkeys and condition the values
            # (upper case etc.), so 'Ks' or 'clear' in a FITS header match the rules
            header = pipeline.minimize_header(lookup) if hasattr(pipeline, "minimize_header") \
                else lookup
            return pipeline.get_best_references(header, include=include)
        except Exception as exc:  # crdsmini's boundary: every failure becomes a reported error
            raise IrisReduceError(path, f"{first}: crdsmini lookup failed (context "
                                  f"{self.context}): {_describe(exc)}") from None

    def locate(self, name: str) -> Path:
        return self.reference_dir / name


def _describe(exc: Exception) -> str:
    category = getattr(exc, "category", None)
    text = str(exc) or type(exc).__name__
    return f"[{category}] {text}" if category else text


Answers = Mapping[str, Any] | Callable[[dict[str, str]], Mapping[str, Any]]


class DictResolver(ReferenceResolver):
    """A resolver answering from a table instead of crdsmini (tests, fixed setups).

    ``answers`` maps reftype (any case) to a file name, ``"N/A"``/``"NOT FOUND <reason>"``,
    or is a callable taking the lookup header and returning such a mapping.  Names are
    located in ``reference_dir`` (absolute names are used as they are).
    """

    def __init__(self, answers: Answers, reference_dir: str | Path | None = None,
                 context: str = "dict") -> None:
        self.answers = answers
        self.reference_dir = Path(reference_dir) if reference_dir is not None else None
        self.context = context
        self.lookups: list[dict[str, str]] = []

    def best_references(self, lookup: dict[str, str], include: list[str],
                        path: str | Path, first: str) -> Mapping[str, Any]:
        self.lookups.append(dict(lookup))
        table = self.answers(lookup) if callable(self.answers) else self.answers
        lowered = {str(k).lower(): v for k, v in table.items()}
        out: dict[str, Any] = {}
        for kind in include:
            if kind in lowered:
                value = lowered[kind]
                out[kind] = _NA if isinstance(value, str) and value.upper() == "N/A" else value
        return out

    def locate(self, name: str) -> Path:
        candidate = Path(name)
        if candidate.is_absolute() or self.reference_dir is None:
            return candidate
        return self.reference_dir / name


# ---------------------------------------------------------------------- configuration

def bundled_root() -> Path:
    """Root of the bundled default cache (``mappings/tmt``, ``references/tmt/iris``, ``config/tmt``).

    crdsmini owns where that lives (a clone's top level, or ``<prefix>/share/crdsmini``
    after ``pip install .``); iris_reduce asks it rather than guessing.
    """
    from crdsmini.cache import bundled_root as crdsmini_bundled_root

    return crdsmini_bundled_root()


def default_cache() -> tuple[Path, str]:
    """(root, context) used when neither a cache root nor a context is configured."""
    return bundled_root(), BUNDLED_CONTEXT


def resolver_from_settings(context: str | None = None, crds_path: str | Path | None = None,
                           environ: Mapping[str, str] | None = None) -> CrdsResolver:
    """The crdsmini resolver for ``--context``/``--crds-path`` with their fallbacks.

    Cache root: ``crds_path`` > ``CRDS_PATH`` > the bundled default.  Context: ``context`` >
    ``CRDS_CONTEXT`` > the bundled default context when the root is the bundled one.  A
    configured root without any context gives a resolver whose lookups fail with a clear
    message (only when a lookup is needed).
    """
    env = os.environ if environ is None else environ
    root_text = crds_path if crds_path is not None else (env.get("CRDS_PATH") or None)
    bundled, bundled_context = default_cache()
    root = Path(root_text) if root_text is not None else bundled
    name = context or env.get("CRDS_CONTEXT") or None
    if name is None:
        if root_text is None:
            name = bundled_context
        else:
            return _NoContextResolver(root)
    return CrdsResolver(name, root)


class _NoContextResolver(CrdsResolver):
    """A cache root without a context: any lookup is an error naming what to set."""

    def __init__(self, root: Path) -> None:
        super().__init__("<none>", root)
        self.context = None

    def best_references(self, lookup: dict[str, str], include: list[str],
                        path: str | Path, first: str) -> Mapping[str, Any]:
        raise IrisReduceError(path, f"{first}: no CRDS context configured for cache {self.root}; "
                              "give --context or set CRDS_CONTEXT")
