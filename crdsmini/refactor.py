"""Rule edits on mapping documents: checksum rewrite, insert/delete reference, header edits.

Everything here is pure: functions take a :class:`~crdsmini.writer.MappingDocument` (plus
reference keywords already read from disk) and return a new document and a report.  Files
are read by :func:`load_document` and written by the caller through ``crdsmini.atomic``, so
a failure anywhere in this module leaves every file as it was.

Insertion follows writing spec §3: build one key per selector level from the reference's
keywords (HST values conditioned, JWST/TMT values raw, USEAFTER in any accepted date form),
validate, walk the levels from the top looking for an equal key (element-wise conditioning,
no substitutions), then add a row, add a date, or replace the file at that date.
"""
from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from crdsmini.checksum import read_mapping_text
from crdsmini.conditioning import condition_value
from crdsmini.errors import (
    AmbiguousMatchError,
    AuthoringError,
    DuplicateEntryError,
    IdenticalMatchError,
    InvalidDateError,
    InvalidValueError,
    MappingError,
    MissingFileError,
    MissingKeyError,
    UnsupportedError,
)
from crdsmini.expressions import compile_expression
from crdsmini.literals import DictLiteral, SelectorCall
from crdsmini.loading import load_mapping
from crdsmini.matchers import is_esoteric, normalize_element
from crdsmini.reference_headers import UNDEFINED, annotate, cross_strap, read_reference_cards
from crdsmini.syntax import parse_mapping_text
from crdsmini.timestamps import DateFormatError, reformat_date
from crdsmini.writer import MappingDocument, SelectorNode, document_from_source, find_duplicates

__all__ = [
    "REQUIRED_HEADER_KEYS",
    "ReferenceInput",
    "InsertOptions",
    "Insertion",
    "EditResult",
    "load_document",
    "checksum_document",
    "read_references",
    "reference_header",
    "insert_references",
    "delete_references",
    "set_header",
    "del_header",
    "parse_header_value",
    "mapping_kind",
    "covers",
    "equal_weight",
]

# What each kind of mapping must have in its header to load (rules-language §2).
REQUIRED_HEADER_KEYS = {
    "pmap": ("mapping", "name", "parkey", "derived_from", "observatory"),
    "imap": ("mapping", "name", "parkey", "derived_from", "observatory", "instrument"),
    "rmap": ("mapping", "name", "parkey", "derived_from", "observatory", "instrument", "filekind"),
}
# What the generic rewrite of ``crds checksum`` needs (writing spec §1.4).
_CHECKSUM_REQUIRED = ("mapping", "parkey", "name", "derived_from")
_FAKE_USEAFTER = "1900-01-01 00:00:00"
_COMMENT_OPENER = re.compile(r"^comment\s*=\s*[rRuU]?(\"\"\"|''')", re.MULTILINE)


def mapping_kind(name: str, header: Mapping[str, Any] | None = None) -> str:
    """'pmap', 'imap' or 'rmap' from the file extension, else from the header ``mapping``."""
    suffix = Path(name).suffix.lower().lstrip(".")
    if suffix in REQUIRED_HEADER_KEYS:
        return suffix
    value = str((header or {}).get("mapping", "")).upper()
    return {"PIPELINE": "pmap", "INSTRUMENT": "imap", "REFERENCE": "rmap"}.get(value, "rmap")


# --------------------------------------------------------------------------- loading


def load_document(path: str | Path, *, kind: str | None = None) -> MappingDocument:
    """Read and parse a mapping for editing (checksum not verified, as CRDS's refactor tools).

    Raises MissingFileError, or MappingError (category invalid-mapping) when the mapping
    would not load: syntax, a missing required header key, a selector of the wrong shape,
    an expression that does not compile.
    """
    file = Path(path)
    if not file.is_file():
        raise MissingFileError(f"[Errno 2] No such file or directory: '{path}'", file=str(path))
    name = file.name
    source = parse_mapping_text(read_mapping_text(file), name)
    document = document_from_source(source)
    kind = kind or mapping_kind(name, document.header)
    header = document.header
    if "parkey" not in header:
        raise MappingError(f"Can't load file {name} : 'parkey'", file=name, keyword="parkey")
    for key in REQUIRED_HEADER_KEYS[kind]:
        if key not in header:
            raise MappingError(f"Can't load file {name} : Required header key '{key}' is missing.",
                               file=name, keyword=key, line=source.header_line)
    if kind == "rmap":
        if not isinstance(document.selector, SelectorNode):
            raise MappingError(f"Can't load file {name} : an rmap selector must be a selector call "
                               "such as Match({...})", file=name, line=source.selector_line)
        _compile_expressions(document, name)
        # The engine's own loader has the last word: what bestrefs cannot load is not edited.
        load_mapping(file, ignore_checksum=True)
    elif not isinstance(document.selector, dict):
        raise MappingError(f"Can't load file {name} : a {kind} selector must be a dict",
                           file=name, line=source.selector_line)
    return document


def _compile_expressions(document: MappingDocument, name: str) -> None:
    header = document.header
    names = _flat_parkeys(header.get("parkey", ()))
    for key in ("rmap_relevance", "rmap_omit"):
        text = header.get(key)
        if isinstance(text, str):
            compile_expression(_case_folded(text), dotted_names=names, source=name)
    relevance = header.get("parkey_relevance", {})
    if isinstance(relevance, dict):
        for text in relevance.values():
            compile_expression(_case_folded(text) if isinstance(text, str) else text,
                               dotted_names=names, source=name)


def _case_folded(text: str) -> str:
    # rules-language §1.6: header strings read lower-cased unless wrapped in (...).
    folded = text if (text.startswith("(") and text.endswith(")")) else text.lower()
    return folded.replace("always", "True")


def _flat_parkeys(parkey: Any) -> list[str]:
    names: list[str] = []
    for item in parkey if isinstance(parkey, tuple) else ():
        if isinstance(item, tuple):
            names.extend(str(n) for n in item)
        else:
            names.append(str(item))
    return names


# --------------------------------------------------------------------------- checksum


def checksum_document(text: str, name: str) -> MappingDocument:
    """The document ``crds checksum`` would rewrite, refusing what it refuses.

    Strict like CRDS's certify parser: duplicate keys anywhere (DuplicateEntryError, with
    ``count`` = number of duplicates), lists, a comment block not written with triple quotes
    and a missing ``mapping``/``parkey``/``name``/``derived_from`` (MappingError).
    """
    source = parse_mapping_text(text, name, with_lines=True)
    duplicates = find_duplicates(source)
    if duplicates:
        error = DuplicateEntryError("\n".join(d.message for d in duplicates), file=name,
                                    line=duplicates[0].line)
        error.count = len(duplicates)  # CRDS's exit status is the number of duplicates
        raise error
    lists = _find_lists(source.header) or _find_lists(source.selector)
    if lists:
        raise MappingError(f"Parsing error in '{name}': list values are not allowed ({lists})", file=name)
    if source.comment is not None and not _COMMENT_OPENER.search(text):
        raise MappingError(f"Parsing error in '{name}': the comment block must be a triple-quoted string",
                           file=name, keyword="comment")
    document = document_from_source(source)
    if "parkey" not in document.header:
        raise MappingError("Checksum operation FAILED : 'parkey'", file=name, keyword="parkey")
    for key in _CHECKSUM_REQUIRED:
        if key not in document.header:
            raise MappingError(f"Checksum operation FAILED : Required header key '{key}' is missing.",
                               file=name, keyword=key)
    return document


def _find_lists(value: Any) -> str | None:
    if isinstance(value, list):
        return repr(value)
    if isinstance(value, DictLiteral):
        for entry in value.entries:
            found = _find_lists(entry.key) or _find_lists(entry.value)
            if found:
                return found
    if isinstance(value, SelectorCall):
        return _find_lists(value.argument)
    if isinstance(value, tuple):
        for item in value:
            found = _find_lists(item)
            if found:
                return found
    return None


# --------------------------------------------------------------------------- header edits


def parse_header_value(text: str) -> Any:
    """A header value typed on the command line: a Python literal if it is one, else text."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    return value if isinstance(value, (str, int, float, bool, tuple, type(None), dict)) else text


def set_header(document: MappingDocument, key: str, value: Any) -> MappingDocument:
    """A copy with header ``key`` set to ``value`` (``sha1sum`` is refused: it is computed)."""
    if key == "sha1sum":
        raise AuthoringError("The sha1sum is computed on write; it cannot be set", keyword=key)
    return document.with_header(**{key: value})


def del_header(document: MappingDocument, key: str) -> MappingDocument:
    """A copy without header ``key``; refuses keys a mapping needs to load."""
    kind = mapping_kind(document.name, document.header)
    if key in REQUIRED_HEADER_KEYS[kind] or key == "sha1sum":
        raise AuthoringError(f"Header key '{key}' is required in a {kind}; it cannot be deleted",
                             file=document.name, keyword=key)
    if key not in document.header:
        raise MissingKeyError(f"Header key '{key}' is not in '{document.name}'",
                              file=document.name, keyword=key)
    return document.without_header(key)


# --------------------------------------------------------------------------- references


@dataclass(frozen=True)
class ReferenceInput:
    """A reference file to insert: its basename, where it was read, its keywords."""

    name: str
    path: str
    cards: Mapping[str, str]


def read_references(paths: Iterable[str | Path]) -> list[ReferenceInput]:
    """Read the keywords of each reference file (MissingFileError / HeaderError name it)."""
    result = []
    for path in paths:
        result.append(ReferenceInput(Path(path).name, str(path), read_reference_cards(path)))
    return result


@dataclass(frozen=True)
class InsertOptions:
    """How strictly to insert.

    ``crds_compat``: reproduce CRDS byte for byte (keep the old header ``name``; no
    instrument/reftype comparison; missing keywords inserted as UNDEFINED when no valid
    values are configured).  ``valid_values``: {parkey: allowed values}, checked unless
    ``allow_bad_values``.  ``force``: accept a reference whose INSTRUME/REFTYPE differ from
    the rmap.  ``strict``: a new key wider than an existing row is an error, not a warning.
    """

    crds_compat: bool = False
    allow_bad_values: bool = False
    allow_bad_useafter: bool = False
    force: bool = False
    strict: bool = False
    valid_values: Mapping[str, Sequence[str]] | None = None


@dataclass(frozen=True)
class Insertion:
    """Where one reference went: its key per level, what happened, what it replaced."""

    reference: str
    keys: tuple[Any, ...]
    effect: str  # 'new-row', 'new-date' or 'replace'
    replaced: str | None = None
    header: Mapping[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class EditResult:
    """The edited document and what happened on the way."""

    document: MappingDocument
    insertions: tuple[Insertion, ...] = ()
    deleted: tuple[tuple[tuple[Any, ...], str], ...] = ()
    warnings: tuple[str, ...] = ()
    infos: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Rmap:
    """What insertion needs to know from an rmap header."""

    name: str
    observatory: str
    instrument: str
    filekind: str
    classes: tuple[str, ...]
    parkey: tuple[tuple[str, ...], ...]
    extra_keys: tuple[str, ...]
    reffile_switch: str | None
    parkey_relevance: Mapping[str, str]
    comment_parkeys: tuple[str, ...]
    merge_overlaps: bool
    reference_to_dataset: Mapping[str, str]

    @property
    def is_hst(self) -> bool:
        return self.observatory.upper() == "HST"

    @property
    def translates(self) -> bool:
        """JWST/TMT style: parkeys are data-model paths."""
        return any("." in name for level in self.parkey for name in level)

    def required_keys(self) -> list[str]:
        names = [name for level in self.parkey for name in level]
        if self.reffile_switch:
            names.append(self.reffile_switch)
        names.extend(self.extra_keys)
        return list(dict.fromkeys(names))


def _default_classes(parkey: tuple[Any, ...]) -> tuple[str, ...]:
    """Selector classes of an rmap without a 'classes' entry: one level per parkey level."""
    return ("Match",) if len(parkey) == 1 else ("Match", "UseAfter")


def _rmap_info(document: MappingDocument) -> _Rmap:
    header = document.header
    parkey = header.get("parkey", ())
    if not isinstance(parkey, tuple) or not all(isinstance(level, tuple) for level in parkey):
        raise MappingError(f"'{document.name}': parkey must be a tuple of tuples of keywords",
                           file=document.name, keyword="parkey")
    switch = str(header.get("reffile_switch", "NONE")).upper()
    merge = header.get("merge_overlaps")
    relevance = header.get("parkey_relevance", {})
    return _Rmap(
        name=document.name,
        observatory=str(header.get("observatory", "")),
        instrument=str(header.get("instrument", "")),
        filekind=str(header.get("filekind", "")),
        classes=tuple(header["classes"]) if "classes" in header else _default_classes(parkey),
        parkey=tuple(tuple(str(name) for name in level) for level in parkey),
        extra_keys=tuple(str(k) for k in header.get("extra_keys", ()) or ()),
        reffile_switch=None if switch == "NONE" else switch,
        parkey_relevance=relevance if isinstance(relevance, dict) else {},
        comment_parkeys=tuple(str(k) for k in header.get("comment_parkeys", ()) or ()),
        merge_overlaps=True if merge is None else str(merge).upper() in ("TRUE", "1"),
        reference_to_dataset=header.get("reference_to_dataset", {}) or {},
    )


def reference_header(rmap: MappingDocument, reference: ReferenceInput, *,
                     options: InsertOptions = InsertOptions()) -> tuple[dict[str, str], list[str]]:
    """The dataset-style header CRDS derives from a reference for insertion (spec §3.2–3.5).

    Returns the header restricted to the rmap's required keys (missing ones UNDEFINED), with
    the UseAfter date parkeys filled from USEAFTER, and log notes.  Raises InvalidDateError
    for an unusable USEAFTER (unless ``allow_bad_useafter``).
    """
    info = _rmap_info(rmap)
    notes: list[str] = []
    cards = dict(reference.cards)
    if info.is_hst:
        header = {key: condition_value(value) for key, value in cards.items()}
    elif info.translates and ("INSTRUME" in cards or not options.crds_compat):
        # CRDS chooses its keyword translation from INSTRUME: without it nothing is
        # translated.  crdsmini knows the rmap's observatory, so it translates anyway
        # unless asked to reproduce CRDS.
        header, notes = cross_strap(cards, extra_pairs=info.reference_to_dataset.items())
    else:
        header = dict(cards)
    date_keys = _useafter_parkeys(info)
    useafter = header.get("USEAFTER")
    if useafter in (None, UNDEFINED):
        useafter = header.get("META.USEAFTER")
    if useafter not in (None, UNDEFINED):
        try:
            stamp = reformat_date(str(useafter).strip())
        except DateFormatError:
            if not options.allow_bad_useafter:
                raise InvalidDateError(
                    f"In reference '{reference.name}' : Bad USEAFTER time format = '{useafter}'",
                    file=reference.path, keyword="USEAFTER") from None
            notes.append(f"WARNING: Can't parse USEAFTER = '{useafter}' for '{info.name}' "
                         f"faking as '{_FAKE_USEAFTER}'")
            stamp = _FAKE_USEAFTER
        if "." in stamp:
            notes.append(f"WARNING: USEAFTER '{useafter}' has fractional seconds; the TMT CRDS fork "
                         "(7.5) rejects such keys")
        _set_date(header, date_keys, stamp)
    elif options.allow_bad_useafter and any(header.get(k, UNDEFINED) == UNDEFINED for k in date_keys):
        notes.append(f"WARNING: Can't parse USEAFTER = 'UNDEFINED' for '{info.name}' faking as "
                     f"'{_FAKE_USEAFTER}'")
        _set_date(header, date_keys, _FAKE_USEAFTER)
    result = {key: header.get(key, UNDEFINED) for key in info.required_keys()}
    if info.is_hst:
        _hst_relevance(info, header, result)
    return result, notes


def _useafter_parkeys(info: _Rmap) -> tuple[str, ...]:
    for kind, level in zip(info.classes, info.parkey):
        if kind == "UseAfter":
            return level
    return ()


def _set_date(header: dict[str, str], date_keys: tuple[str, ...], stamp: str) -> None:
    if len(date_keys) == 1:
        header[date_keys[0]] = stamp
    elif len(date_keys) >= 2:
        date, _, time = stamp.partition(" ")
        header[date_keys[0]] = date
        header[date_keys[1]] = time


def _hst_relevance(info: _Rmap, namespace: Mapping[str, str], result: dict[str, str]) -> None:
    """HST: false parkey_relevance -> N/A; extra_keys and the reffile_switch -> N/A."""
    required = info.required_keys()
    scope = dict(namespace)
    scope.update(result)
    scope.update({name.replace(".", "_"): value for name, value in result.items()})
    verdicts = {}
    for key, text in info.parkey_relevance.items():
        matching = [name for name in required if name.upper() == str(key).upper()]
        if not matching:
            continue
        expression = compile_expression(_case_folded(text), dotted_names=required, source=info.name)
        verdicts[matching[0]] = bool(expression.evaluate(scope))
    for name, relevant in verdicts.items():
        if not relevant:
            result[name] = "N/A"
    for name in info.extra_keys + ((info.reffile_switch,) if info.reffile_switch else ()):
        if name in result:
            result[name] = "N/A"


def _compress(value: Any) -> Any:
    """Or-glob compression: split on '|', strip, drop empties, sort, join (spec §3.6)."""
    if not isinstance(value, str) or "|" not in value:
        return value
    if (value[:1], value[-1:]) in (("{", "}"), ("(", ")"), ("#", "#")):
        return value
    return "|".join(sorted(part.strip() for part in value.split("|") if part.strip()))


def _normalised_key(key: Any, ignore: Sequence[int] = ()) -> tuple[str, ...]:
    fields = key if isinstance(key, tuple) else (key,)
    return tuple("" if index in ignore else normalize_element(item) for index, item in enumerate(fields))


def _parts(text: str) -> set[str]:
    return {part.strip() for part in text.split("|") if part.strip()}


def covers(wide: tuple[str, ...], narrow: tuple[str, ...]) -> bool:
    """True when every header matching ``narrow`` also matches ``wide`` (simple elements)."""
    if len(wide) != len(narrow):
        return False
    for outer, inner in zip(wide, narrow):
        if outer == inner or outer == "*":
            continue
        if is_esoteric(outer) or is_esoteric(inner) or "|" not in outer:
            return False
        if not _parts(inner) <= _parts(outer):
            return False
    return True


def equal_weight(first: tuple[str, ...], second: tuple[str, ...]) -> bool:
    return first.count("N/A") == second.count("N/A")


def _ambiguity_message(new_key: Any, existing_key: Any) -> str:
    return ("\n" + "-" * 40 + f"\nMatch case\n{new_key!r}\nis an equal weight special case of\n"
            f"{existing_key!r}\nCancel the submission and regenerate the reference files\n"
            "with different parameter values which coincide with an existing category.")


class _Inserter:
    """Inserts references one after the other into an evolving selector tree."""

    def __init__(self, document: MappingDocument, options: InsertOptions) -> None:
        self.info = _rmap_info(document)
        self.options = options
        self.warnings: list[str] = []
        self.infos: list[str] = []
        if not isinstance(document.selector, SelectorNode):
            raise MappingError(f"'{document.name}' has no selector call to insert into", file=document.name)
        self.classes = self.info.classes
        if options.crds_compat and "classes" not in document.header and self.classes != ("Match", "UseAfter"):
            raise UnsupportedError(
                f"'{document.name}' has no 'classes' entry: CRDS assumes ('Match', 'UseAfter') and cannot "
                "insert into this Match-only rmap (IndexError: tuple index out of range); without "
                "--crds-compat crdsmini reads the levels from 'parkey'", file=document.name, keyword="classes")
        for kind in self.classes:
            if kind not in ("Match", "UseAfter"):
                raise UnsupportedError(
                    f"Inserting into a {kind} selector is not supported ('{document.name}')",
                    file=document.name, keyword="classes")
        if len(self.info.parkey) < len(self.classes):
            raise MappingError(f"'{document.name}': parkey has fewer levels than classes "
                               f"{self.classes!r}", file=document.name, keyword="parkey")
        self._check_shape(document.selector, 0)
        self.valid_values = options.valid_values

    def _check_shape(self, node: SelectorNode, level: int) -> None:
        if level >= len(self.classes) or node.name != self.classes[level]:
            raise UnsupportedError(
                f"'{self.info.name}': the selector nesting ({node.name} at level {level}) does not "
                f"follow the header classes {self.classes!r}; CRDS cannot insert here either",
                file=self.info.name, keyword="classes")
        for _, choice in node.rows:
            if isinstance(choice, SelectorNode):
                self._check_shape(choice, level + 1)

    # ---- keys

    def build_keys(self, reference: ReferenceInput, header: Mapping[str, str],
                   selector: SelectorNode) -> tuple[Any, ...]:
        keys = []
        for kind, params in zip(self.classes, self.info.parkey):
            if kind == "Match":
                keys.append(self._match_key(reference, header, params, selector))
            else:
                keys.append(self._useafter_key(reference, header, params))
        return tuple(keys)

    def _match_key(self, reference: ReferenceInput, header: Mapping[str, str],
                   params: tuple[str, ...], selector: SelectorNode) -> Any:
        values = [_compress(header.get(name, UNDEFINED)) for name in params]
        for name, value in zip(params, values):
            if value == UNDEFINED:
                self._undefined(reference, name)
        if self.info.is_hst:
            values = self._hst_wildcards(values, selector)
        self._validate(reference, params, values)
        if len(values) == 1:
            return values[0]
        return tuple(values)

    def _undefined(self, reference: ReferenceInput, name: str) -> None:
        """A Match keyword the reference does not have (its value is 'UNDEFINED')."""
        warning = f"In reference '{reference.name}' : keyword '{annotate(name)}' is missing; inserted as 'UNDEFINED'"
        if self.options.allow_bad_values:
            self.warnings.append(warning)
            return
        if not self.options.crds_compat:
            raise MissingKeyError(
                f"Reference file '{reference.path}' has no keyword '{annotate(name)}', which rmap "
                f"'{self.info.name}' matches on (use --allow-bad-values to insert it as 'UNDEFINED')",
                file=reference.path, keyword=name)
        if self.valid_values and self.valid_values.get(name):
            return  # reported by the valid-value check, as CRDS does
        if self.info.is_hst:
            # CRDS validates every HST key against its .tpn tables, which never list UNDEFINED.
            raise InvalidValueError(
                f"In reference '{reference.name}' : parameter='{annotate(name)}' value='UNDEFINED' is not "
                "a valid value (the reference file has no such keyword)", file=reference.path, keyword=name)
        self.warnings.append(warning)  # stock CRDS has no tables for JWST-style TMT rmaps

    def _hst_wildcards(self, values: list[Any], selector: SelectorNode) -> list[Any]:
        """HST ``ANY``/``-1`` values join the one existing row whose or-globs cover them.

        CRDS expands these through its HST substitution table into the explicit value list
        of the matching category; the row holding that list is the one they land in.
        """
        normal = [normalize_element(v) for v in values]
        wild = [i for i, v in enumerate(normal) if v in ("*", "-1.0")]
        if not wild:
            return values
        candidates = []
        for key, _ in selector.rows:
            existing = _normalised_key(key)
            if len(existing) != len(normal):
                continue
            if all(existing[i] == normal[i] for i in range(len(normal)) if i not in wild) and \
                    all("|" in existing[i] or existing[i] == "*" for i in wild):
                candidates.append(key if isinstance(key, tuple) else (key,))
        if len(candidates) != 1:
            return values
        chosen = list(values)
        for i in wild:
            chosen[i] = candidates[0][i]
        return chosen

    def _validate(self, reference: ReferenceInput, params: tuple[str, ...], values: list[Any]) -> None:
        valid = self.valid_values
        if not valid or self.options.allow_bad_values:
            return
        for name, value in zip(params, values):
            allowed = valid.get(name)
            if not allowed:  # no list, or an empty one: CRDS leaves the parameter unchecked
                continue
            allowed_set = {str(v) for v in allowed}
            text = str(value)
            parts = [text] if is_esoteric(text) else (_parts(text) or {text})
            for part in parts:
                if part in ("*", "N/A", "ANY") or is_esoteric(part):
                    continue
                if part in allowed_set or condition_value(part) in allowed_set:
                    continue
                raise InvalidValueError(
                    f"In reference '{reference.name}' : parameter='{annotate(name)}' value='{part}' "
                    f"is not in {tuple(allowed)!r}; use --allow-bad-values to insert it anyway",
                    file=reference.path, keyword=name)

    def _useafter_key(self, reference: ReferenceInput, header: Mapping[str, str],
                      params: tuple[str, ...]) -> str:
        values = [str(header.get(name, UNDEFINED)) for name in params]
        key = " ".join(values)
        if UNDEFINED in values:
            raise MissingKeyError(
                f"In reference '{reference.name}' : UseAfter Invalid date/time format for {params!r} "
                f"value = {key!r} exception is 'One or more required date/time values is UNDEFINED' "
                "(the reference has no USEAFTER keyword)", file=reference.path, keyword="USEAFTER")
        try:
            reformat_date(key)
        except DateFormatError as exc:
            raise InvalidDateError(
                f"In reference '{reference.name}' : UseAfter Invalid date/time format for {params!r} "
                f"value = {key!r} exception is {str(exc)!r}", file=reference.path, keyword="USEAFTER") from None
        return key

    # ---- insertion

    def insert(self, selector: SelectorNode, keys: tuple[Any, ...], filename: str,
               reference: ReferenceInput) -> tuple[SelectorNode, str, str | None]:
        return self._insert(selector, keys, 0, filename, reference)

    def _find(self, node: SelectorNode, key: Any, level: int) -> tuple[Any, Any] | None:
        if self.classes[level] == "UseAfter":
            for row_key, choice in node.rows:
                if row_key == key:
                    return row_key, choice
            return None
        params = self.info.parkey[level]
        ignore = [i for i, name in enumerate(params) if name in self.info.comment_parkeys]
        wanted = _normalised_key(key, ignore)
        for row_key, choice in node.rows:
            if _normalised_key(row_key, ignore) == wanted:
                return row_key, choice
        return None

    def _insert(self, node: SelectorNode, keys: tuple[Any, ...], level: int, filename: str,
                reference: ReferenceInput) -> tuple[SelectorNode, str, str | None]:
        key = keys[level]
        last = level == len(keys) - 1
        found = self._find(node, key, level)
        if found is None:
            if self.classes[level] == "Match":
                self._check_overlaps(node, key, reference)
            child = filename if last else self._chain(keys, level + 1, filename)
            effect = "new-date" if self.classes[level] == "UseAfter" else "new-row"
            return node.with_row(key, child), effect, None
        existing_key, choice = found
        if last:
            if choice == filename:
                self.warnings.append(f"'{filename}' is already selected at {keys!r}; nothing changes "
                                     "but derived_from and the sum")
            elif isinstance(choice, str):
                self.infos.append(f"'{filename}' replaces '{choice}' at {keys!r}")
            return node.with_row(existing_key, filename, replace_key=existing_key), "replace", \
                choice if isinstance(choice, str) else None
        if isinstance(choice, SelectorNode):
            child, effect, replaced = self._insert(choice, keys, level + 1, filename, reference)
            return node.with_row(existing_key, child, replace_key=existing_key), effect, replaced
        # A special value ('N/A', 'OMIT') or a file at an inner level becomes a selector.
        self.infos.append(f"{choice!r} at {existing_key!r} becomes a {self.classes[level + 1]} selector")
        child = self._chain(keys, level + 1, filename)
        return node.with_row(existing_key, child, replace_key=existing_key), "replace", \
            choice if isinstance(choice, str) else None

    def _chain(self, keys: tuple[Any, ...], level: int, filename: str) -> SelectorNode:
        child = filename if level == len(keys) - 1 else self._chain(keys, level + 1, filename)
        return SelectorNode(self.classes[level], ((keys[level], child),))

    def _check_overlaps(self, node: SelectorNode, key: Any, reference: ReferenceInput) -> None:
        new = _normalised_key(key)
        for row_key, _ in node.rows:
            existing = _normalised_key(row_key)
            if existing == new or not equal_weight(existing, new):
                continue
            if covers(existing, new):
                message = _ambiguity_message(key, row_key)
                if self.info.is_hst and self.info.merge_overlaps:
                    self.warnings.append(f"In reference '{reference.name}' : {message.strip()}")
                    continue
                raise AmbiguousMatchError(f"In reference '{reference.name}' : {message}",
                                          file=reference.path)
            if covers(new, existing):
                message = (f"In reference '{reference.name}' : new Match case {key!r} covers the existing "
                           f"case {row_key!r} at equal weight; datasets of that case may now tie")
                if self.options.strict:
                    raise AmbiguousMatchError(message, file=reference.path)
                self.warnings.append(message)


def _check_identity(info: _Rmap, reference: ReferenceInput, header_cards: Mapping[str, str]) -> None:
    """Refuse a reference whose INSTRUME/REFTYPE contradict the rmap (spec §3.8)."""
    checks = (("instrument", info.instrument, ("INSTRUME", "META.INSTRUMENT.NAME")),
              ("filekind", info.filekind, ("REFTYPE", "META.REFTYPE")))
    for what, expected, keywords in checks:
        for keyword in keywords:
            value = header_cards.get(keyword)
            if value in (None, "", UNDEFINED):
                continue
            if value.strip().upper() != expected.upper():
                raise InvalidValueError(
                    f"Reference file '{reference.path}' has {keyword}={value!r} but rmap '{info.name}' "
                    f"is for {what} {expected!r} (use --force to insert it anyway)",
                    file=reference.path, keyword=keyword)
            break


def insert_references(document: MappingDocument, references: Sequence[ReferenceInput], *,
                      old_name: str, new_name: str,
                      options: InsertOptions = InsertOptions()) -> EditResult:
    """Insert ``references`` in order into the rmap ``document`` (writing spec §3).

    ``old_name``/``new_name`` are the basenames of the source rmap and of the file being
    written: ``derived_from`` becomes ``old_name`` and, unless ``options.crds_compat``,
    ``name`` becomes ``new_name``.  Raises before anything is written: the caller writes
    the returned document only when this returns.
    """
    inserter = _Inserter(document, options)
    selector = document.selector
    insertions: list[Insertion] = []
    notes: list[str] = []
    for reference in references:
        if not options.crds_compat and not options.force:
            _check_identity(inserter.info, reference, reference.cards)
        header, reference_notes = reference_header(document, reference, options=options)
        notes.extend(reference_notes)
        keys = inserter.build_keys(reference, header, selector)
        selector, effect, replaced = inserter.insert(selector, keys, reference.name, reference)
        for earlier in insertions:
            if replaced == earlier.reference and earlier.reference != reference.name:
                raise IdenticalMatchError(
                    f"Both '{reference.name}' and '{earlier.reference}' identically match case {keys!r}: "
                    f"'{reference.name}' would replace '{earlier.reference}'. Give them different "
                    "match parameters or dates, or insert only one.", file=reference.path)
        insertions.append(Insertion(reference.name, keys, effect, replaced, header))
    present = {choice for _, choice in selector.leaves()}
    for insertion in insertions:
        if insertion.reference not in present:
            raise IdenticalMatchError(
                f"Rules update failure. '{insertion.reference}' does not appear in new rmap.  "
                "May be identical match with other submitted references.")
    changes = {"derived_from": old_name}
    if not options.crds_compat:
        changes["name"] = new_name
    edited = document.with_selector(selector).with_header(**changes)
    warnings = [n[len("WARNING: "):] for n in notes if n.startswith("WARNING: ")] + inserter.warnings
    infos = [n for n in notes if not n.startswith("WARNING: ")] + inserter.infos
    return EditResult(edited, tuple(insertions), (), tuple(warnings), tuple(infos))


# --------------------------------------------------------------------------- delete


def _delete_from(node: SelectorNode, names: set[str], path: tuple[Any, ...],
                 removed: list[tuple[tuple[Any, ...], str]]) -> SelectorNode | None:
    rows = []
    for key, choice in node.rows:
        if isinstance(choice, SelectorNode):
            child = _delete_from(choice, names, path + (key,), removed)
            if child is not None:
                rows.append((key, child))
        elif isinstance(choice, str) and choice in names:
            removed.append((path + (key,), choice))
        else:
            rows.append((key, choice))
    if not rows and path:
        return None  # an inner selector left without any file goes with its key
    return replace(node, rows=tuple(rows))


def delete_references(document: MappingDocument, references: Sequence[str], *,
                      old_name: str, new_name: str, crds_compat: bool = False) -> EditResult:
    """Remove every entry whose choice is one of ``references`` (basenames), at any depth.

    A nested selector left empty is removed with its key; removing the last file leaves an
    empty top selector.  A name found nowhere is an error and nothing is written.
    """
    if not isinstance(document.selector, SelectorNode):
        raise MappingError(f"'{document.name}' is not an rmap", file=document.name)
    names = {os.path.basename(str(r)) for r in references}
    removed: list[tuple[tuple[Any, ...], str]] = []
    selector = _delete_from(document.selector, names, (), removed)
    assert selector is not None
    found = {name for _, name in removed}
    for name in sorted(names - found):
        raise MissingFileError(f"Terminal '{name}' could not be found and deleted.",
                               file=document.name, keyword=name)
    changes = {"derived_from": old_name}
    if not crds_compat:
        changes["name"] = new_name
    edited = document.with_selector(selector).with_header(**changes)
    return EditResult(edited, (), tuple(removed))
