"""``crdsmini check``: findings about mapping files, one per problem (writing spec §7).

Each finding has the file, the line, a severity (``error``/``warning``/``info``) and a
stable code (the codes are part of the interface: scripts filter on them).  Checks work
from the literal tree with line numbers, so they can report what the loader silently
resolves (duplicate keys), and recurse from a pmap into its imaps and rmaps.

Codes::

    syntax              the file is not in the mapping grammar
    invalid-mapping     the file parses but would not load (section, selector shape, expression...)
    duplicate-key       a key written twice in one dict (header, nested header dict, any selector level)
    identical-keys      Match keys distinct as written but equal after conditioning (a load error)
    checksum-missing    no sha1sum in the header
    checksum-mismatch   the stated sha1sum is not the sum of the text (the expected sum is printed)
    missing-header-key  a header key the mapping kind requires is absent
    mapping-kind        header 'mapping' does not match the file extension
    name-mismatch       header 'name' differs from the file name
    derived-from-missing  'derived_from' names a mapping that is not in the folder
    key-arity           a Match key has a different number of fields than its parkeys
    useafter-date       a UseAfter key is not 'YYYY-MM-DD HH:MM:SS[.ffffff]' or not a real date
    useafter-order      UseAfter dates are not written in increasing order
    shadowed-row        two rows are identical after substitutions: one can never be chosen alone
    ambiguous-overlap   a row is an equal-weight special case of another (both can match)
    invalid-value       a Match value outside the configured valid values
    nested-missing      a pmap/imap names a mapping that does not exist
    instrument-key      a pmap key differs from the nested imap's 'instrument'
    filekind-key        an imap key differs from the nested rmap's 'filekind'
    observatory-mismatch  a nested mapping is for another observatory
    reference-missing   an rmap names a reference file not in the cache (--check-references)
    not-canonical       the file is not in canonical form (``crdsmini checksum`` would rewrite it)
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from crdsmini.cache import Cache
from crdsmini.checksum import compute_checksum, read_mapping_text
from crdsmini.errors import CrdsminiError, MappingSyntaxError
from crdsmini.loading import load_mapping
from crdsmini.literals import DictEntry, DictLiteral, SelectorCall, plain_value
from crdsmini.matchers import is_esoteric, normalize_element
from crdsmini.syntax import MappingSource, parse_mapping_text
from crdsmini.refactor import REQUIRED_HEADER_KEYS, covers, equal_weight, load_document, mapping_kind
from crdsmini.timestamps import DateFormatError, reformat_date
from crdsmini.writer import canonical_text, document_from_source, find_duplicates

__all__ = [
    "Finding",
    "CheckOptions",
    "check_paths",
    "check_mapping",
    "format_findings",
    "SPECIAL_CHOICES",
]

ERROR, WARNING, INFO = "error", "warning", "info"
SPECIAL_CHOICES = {"N/A", "OMIT"}
_USEAFTER_KEY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$")
# derived_from values CRDS treats as "no parent" (plus the TMT repository's NONE and '').
_NO_PARENT = ("generated", "cloning", "by hand")
_KIND_OF_MAPPING = {"pmap": "PIPELINE", "imap": "INSTRUMENT", "rmap": "REFERENCE"}


@dataclass(frozen=True)
class Finding:
    """One problem found in one file."""

    file: str
    line: int | None
    severity: str
    code: str
    message: str

    def text(self) -> str:
        """``file:line: severity [code] message`` (the line left out when unknown)."""
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.severity} [{self.code}] {self.message}"


@dataclass(frozen=True)
class CheckOptions:
    """What to check and how strictly.

    ``cache``: where reference files are looked up (``check_references``).
    ``mapping_dirs``: folders searched for nested mappings named without a folder, after the
    folder of the mapping that names them.  ``valid_values``: {parkey: values} applied to
    every rmap checked.
    """

    strict: bool = False
    ignore_checksum: bool = False
    check_references: bool = False
    recursive: bool = True
    cache: Cache | None = None
    mapping_dirs: tuple[Path, ...] = ()
    valid_values: Mapping[str, Sequence[str]] | None = None


# --------------------------------------------------------------------------- one mapping


class _Collector:
    def __init__(self, file: str) -> None:
        self.file = file
        self.findings: list[Finding] = []

    def add(self, severity: str, code: str, message: str, line: int | None = None) -> None:
        self.findings.append(Finding(self.file, line, severity, code, message))

    @property
    def has_errors(self) -> bool:
        return any(f.severity == ERROR for f in self.findings)


def _entry_lines(literal: Any) -> dict[Any, int]:
    lines: dict[Any, int] = {}
    if isinstance(literal, DictLiteral):
        for entry in literal.entries:
            try:
                lines.setdefault(entry.key, entry.line)
            except TypeError:
                continue
    return lines


def _kind(path: Path, header: Mapping[str, Any]) -> str:
    return mapping_kind(path.name, header)


def check_mapping(path: str | Path, options: CheckOptions = CheckOptions(), *,
                  _seen: set[Path] | None = None) -> list[Finding]:
    """Every finding for one mapping file (and, for pmaps/imaps, the mappings they name)."""
    seen = _seen if _seen is not None else set()
    file = Path(path)
    seen.add(file.resolve())
    out = _Collector(str(path))
    if not file.is_file():
        out.add(ERROR, "nested-missing", f"No such mapping file '{path}'")
        return out.findings
    text = read_mapping_text(file)
    try:
        source = parse_mapping_text(text, file.name, with_lines=True)
    except MappingSyntaxError as exc:
        out.add(ERROR, "syntax", exc.message, exc.line)
        return out.findings
    except CrdsminiError as exc:
        out.add(ERROR, "invalid-mapping", exc.message, exc.line)
        return out.findings
    for duplicate in find_duplicates(source):
        out.add(ERROR, "duplicate-key", duplicate.message, duplicate.line)
    try:
        header = plain_value(source.header)
    except CrdsminiError as exc:
        out.add(ERROR, "invalid-mapping", exc.message, exc.line)
        return out.findings
    lines = _entry_lines(source.header)
    kind = _kind(file, header)

    # checksum
    stated = header.get("sha1sum")
    computed = compute_checksum(text)
    severity = WARNING if options.ignore_checksum else ERROR
    if stated is None:
        out.add(severity, "checksum-missing", f"sha1sum is missing in '{file.name}' (expected "
                f"'{computed}'; run 'crdsmini checksum {file.name}')", source.header_line)
    elif stated != computed:
        out.add(severity, "checksum-mismatch", f"sha1sum mismatch in '{file.name}': stated '{stated}', "
                f"expected '{computed}' (run 'crdsmini checksum {file.name}')", lines.get("sha1sum"))

    # header
    for key in REQUIRED_HEADER_KEYS[kind]:
        if key not in header:
            out.add(ERROR, "missing-header-key", f"Required header key '{key}' is missing", source.header_line)
    mapping_value = str(header.get("mapping", "")).upper()
    if "mapping" in header and mapping_value != _KIND_OF_MAPPING[kind]:
        out.add(ERROR, "mapping-kind", f"header 'mapping' is {header['mapping']!r} but a .{kind} is a "
                f"{_KIND_OF_MAPPING[kind]!r} mapping", lines.get("mapping"))
    name = header.get("name")
    if name is not None and name != file.name:
        out.add(ERROR if options.strict else WARNING, "name-mismatch",
                f"header 'name' is {name!r} but the file is '{file.name}'", lines.get("name"))
    parent = header.get("derived_from")
    if _names_a_mapping(parent) and not any(word in parent for word in _NO_PARENT):
        if not _find_mapping(parent, file.parent, options):
            out.add(WARNING, "derived-from-missing",
                    f"'derived_from' names {parent!r}, which is not in '{file.parent}'", lines.get("derived_from"))

    if not out.has_errors:
        _check_loads(file, kind, out)

    selector = source.selector
    if kind == "rmap":
        if isinstance(selector, SelectorCall):
            _check_rmap(file, header, selector, out, options)
        else:
            out.add(ERROR, "invalid-mapping", "an rmap selector must be a selector call such as Match({...})",
                    source.selector_line)
    elif isinstance(selector, DictLiteral):
        _check_nested(file, kind, header, selector, out, options, seen)
    else:
        out.add(ERROR, "invalid-mapping", f"a {kind} selector must be a dict", source.selector_line)

    if not out.has_errors:
        _check_canonical(file, text, source, out, options)
    return out.findings


def _names_a_mapping(value: Any) -> bool:
    """True for a mapping file name; free text ('generated from CDBS...', 'NONE', '') is not."""
    return (isinstance(value, str) and not any(c.isspace() for c in value.strip())
            and value.strip().lower().endswith((".pmap", ".imap", ".rmap")))


def _check_loads(file: Path, kind: str, out: _Collector) -> None:
    """What the engine's loader refuses (key arity, bad expressions, keys equal after
    conditioning...), reported once.  pmaps/imaps are loaded alone: the files they name are
    checked one by one, with their own findings."""
    try:
        load_document(file)
        if kind == "rmap":
            load_mapping(file, ignore_checksum=True)
    except CrdsminiError as exc:
        code = "identical-keys" if "appears more than once" in exc.message else "invalid-mapping"
        out.add(ERROR, code, exc.message, exc.line)


def _check_canonical(file: Path, text: str, source: MappingSource, out: _Collector,
                     options: CheckOptions) -> None:
    try:
        canonical = canonical_text(document_from_source(source))
    except (CrdsminiError, TypeError) as exc:  # unsortable keys and the like
        out.add(WARNING, "not-canonical", f"cannot be written canonically: {exc}")
        return
    if canonical != text:
        out.add(WARNING if options.strict else INFO, "not-canonical",
                f"not in canonical form; 'crdsmini checksum {file.name}' would rewrite it")


# --------------------------------------------------------------------------- rmaps


def _check_rmap(file: Path, header: Mapping[str, Any], selector: SelectorCall, out: _Collector,
                options: CheckOptions) -> None:
    parkey = header.get("parkey", ())
    levels = parkey if isinstance(parkey, tuple) else ()
    substitutions = dict(header.get("substitutions", {}) or {})
    for name in ("SUBARRAY", "META.SUBARRAY.NAME"):
        substitutions.setdefault(name, {"GENERIC": "N/A"})
    references: list[tuple[str, int]] = []
    merge = header.get("merge_overlaps")
    merges = str(header.get("observatory", "")).upper() == "HST" and (merge is None or str(merge).upper() in ("TRUE", "1"))
    _walk_selector(selector, 0, levels, substitutions, out, options, references, not merges)
    if options.check_references:
        instrument = str(header.get("instrument", "")).lower()
        observatory = str(header.get("observatory", "")).lower()
        if options.cache is None:
            out.add(WARNING, "reference-missing", "no cache to look for reference files in (give --cache)")
            return
        for name, line in references:
            if not _find_reference(name, observatory, instrument, options):
                out.add(WARNING, "reference-missing", f"reference file '{name}' is not in the cache", line)


def _walk_selector(call: SelectorCall, level: int, levels: Sequence[Any], substitutions: Mapping[str, Any],
                   out: _Collector, options: CheckOptions, references: list[tuple[str, int]],
                   overlaps_matter: bool) -> None:
    params = levels[level] if level < len(levels) and isinstance(levels[level], tuple) else None
    entries = call.argument.entries
    if call.name == "Match" and params is not None:
        _check_match_rows(entries, params, substitutions, out, options, overlaps_matter)
    elif call.name == "UseAfter":
        _check_useafter_rows(entries, out)
    for entry in entries:
        if isinstance(entry.value, SelectorCall):
            _walk_selector(entry.value, level + 1, levels, substitutions, out, options, references, overlaps_matter)
        else:
            for choice in _choices(plain_value(entry.value)):
                references.append((choice, entry.line))


def _choices(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if value.upper() not in SPECIAL_CHOICES:
            yield value
    elif isinstance(value, tuple):
        for item in value:
            yield from _choices(item)


def _fields(key: Any) -> tuple[Any, ...]:
    return key if isinstance(key, tuple) else (key,)


def _check_match_rows(entries: Sequence[DictEntry], params: tuple[Any, ...], substitutions: Mapping[str, Any],
                      out: _Collector, options: CheckOptions, overlaps_matter: bool) -> None:
    """Arity, valid values, rows identical after substitutions, equal-weight overlaps.

    Overlaps are not reported for HST rmaps that merge them (``merge_overlaps`` on, the
    default): there CRDS combines the rows by design.
    """
    rows: list[tuple[Any, tuple[str, ...], tuple[str, ...], int]] = []
    for entry in entries:
        fields = _fields(entry.key)
        if len(fields) != len(params):
            out.add(ERROR, "key-arity", f"Match key {entry.key!r} has {len(fields)} fields but the parkeys "
                    f"are {params!r}", entry.line)
            continue
        try:
            plain = tuple(normalize_element(f) for f in fields)
            substituted = tuple(normalize_element(_substitute(f, p, substitutions)) for f, p in zip(fields, params))
        except Exception as exc:  # a field the conditioning cannot read
            out.add(ERROR, "invalid-mapping", f"Match key {entry.key!r}: {exc}", entry.line)
            continue
        rows.append((entry.key, plain, substituted, entry.line))
        if options.valid_values:
            _check_valid_values(entry, fields, params, options.valid_values, out)
    for index, (key, plain, substituted, line) in enumerate(rows):
        for other_key, other_plain, other_substituted, other_line in rows[:index]:
            if plain == other_plain:
                continue  # the same key twice: reported as duplicate-key / identical-keys
            if substituted == other_substituted:
                out.add(WARNING, "shadowed-row", f"Match key {key!r} is identical to {other_key!r} (line "
                        f"{other_line}) after substitutions: both always match together", line)
            elif overlaps_matter and equal_weight(plain, other_plain):
                if covers(other_plain, plain):
                    narrow, narrow_line, wide, wide_line = key, line, other_key, other_line
                elif covers(plain, other_plain):
                    narrow, narrow_line, wide, wide_line = other_key, other_line, key, line
                else:
                    continue
                out.add(WARNING, "ambiguous-overlap", f"Match key {narrow!r} is an equal-weight special case of "
                        f"{wide!r} (line {wide_line}): datasets of that case match both rows", narrow_line)


def _substitute(value: Any, param: Any, substitutions: Mapping[str, Any]) -> Any:
    table = substitutions.get(param)
    if isinstance(table, dict) and isinstance(value, str) and value in table:
        target = table[value]
        return tuple(target) if isinstance(target, list) else target
    return value


def _check_valid_values(entry: DictEntry, fields: tuple[Any, ...], params: tuple[Any, ...],
                        valid: Mapping[str, Sequence[str]], out: _Collector) -> None:
    for value, param in zip(fields, params):
        allowed = valid.get(param)
        if not allowed or not isinstance(value, (str, int, float)):
            continue
        text = str(value)
        if is_esoteric(text):
            continue
        allowed_set = {str(v) for v in allowed}
        for part in (p.strip() for p in text.split("|") if p.strip()):
            if part in ("*", "N/A", "ANY") or part in allowed_set or normalize_element(part) in allowed_set:
                continue
            out.add(ERROR, "invalid-value", f"Match key {entry.key!r}: parameter='{param}' value='{part}' is "
                    f"not in {tuple(allowed)!r}", entry.line)


def _check_useafter_rows(entries: Sequence[DictEntry], out: _Collector) -> None:
    previous: str | None = None
    for entry in entries:
        key = entry.key
        if not isinstance(key, str) or not _USEAFTER_KEY.match(key):
            out.add(ERROR, "useafter-date", f"UseAfter key {key!r} is not 'YYYY-MM-DD HH:MM:SS[.ffffff]'",
                    entry.line)
            continue
        try:
            reformat_date(key)
        except DateFormatError as exc:
            out.add(ERROR, "useafter-date", f"UseAfter key {key!r} is not a valid date: {exc}", entry.line)
            continue
        if previous is not None and key < previous:
            out.add(WARNING, "useafter-order", f"UseAfter date {key!r} is written after the later date "
                    f"{previous!r}", entry.line)
        previous = key if previous is None or key > previous else previous


# --------------------------------------------------------------------------- pmaps and imaps


def _find_mapping(name: str, folder: Path, options: CheckOptions) -> Path | None:
    candidate = Path(name)
    if candidate.parent != Path("."):
        return candidate if candidate.is_file() else None
    for directory in (folder, *options.mapping_dirs):
        if (directory / name).is_file():
            return directory / name
    return None


def _find_reference(name: str, observatory: str, instrument: str, options: CheckOptions) -> bool:
    if options.cache is None:
        return False
    try:
        options.cache.locate_reference(name, observatory, instrument or None)
    except CrdsminiError:
        return False
    return True


def _nested_header(path: Path) -> Mapping[str, Any] | None:
    try:
        return plain_value(parse_mapping_text(read_mapping_text(path), path.name).header)
    except CrdsminiError:
        return None


def _check_nested(file: Path, kind: str, header: Mapping[str, Any], selector: DictLiteral, out: _Collector,
                  options: CheckOptions, seen: set[Path]) -> None:
    observatory = str(header.get("observatory", "")).upper()
    nested_field, code, nested_kind = (("instrument", "instrument-key", "imap") if kind == "pmap"
                                       else ("filekind", "filekind-key", "rmap"))
    for entry in selector.entries:
        value = plain_value(entry.value)
        if not isinstance(value, str) or value.upper() in SPECIAL_CHOICES or \
                not value.lower().endswith((".pmap", ".imap", ".rmap")):
            continue
        nested = _find_mapping(value, file.parent, options)
        if nested is None:
            out.add(ERROR, "nested-missing", f"{kind} entry {entry.key!r} names '{value}', which does not exist",
                    entry.line)
            continue
        nested_header = _nested_header(nested)
        if nested_header is not None:
            stated = str(nested_header.get(nested_field, ""))
            if stated.upper() != str(entry.key).upper():
                out.add(ERROR, code, f"{kind} key {entry.key!r} names '{value}' whose {nested_field} is "
                        f"{stated!r}", entry.line)
            nested_observatory = str(nested_header.get("observatory", "")).upper()
            if observatory and nested_observatory and nested_observatory != observatory:
                out.add(ERROR, "observatory-mismatch", f"'{value}' is for observatory {nested_observatory!r}, "
                        f"not {observatory!r}", entry.line)
            if not value.lower().endswith("." + nested_kind):
                out.add(ERROR, code, f"{kind} entry {entry.key!r} names '{value}', which is not a .{nested_kind}",
                        entry.line)
        if options.recursive and nested.resolve() not in seen:
            out.findings.extend(check_mapping(nested, options, _seen=seen))


# --------------------------------------------------------------------------- many files


def check_paths(paths: Iterable[str | Path], options: CheckOptions = CheckOptions()) -> list[Finding]:
    """Findings for every file (each checked once even when several contexts share it)."""
    seen: set[Path] = set()
    findings: list[Finding] = []
    for path in paths:
        if Path(path).resolve() in seen:
            continue
        findings.extend(check_mapping(path, options, _seen=seen))
    return findings


def format_findings(findings: Sequence[Finding], fmt: str = "text") -> str:
    """Findings as text lines (plus a summary line) or as a JSON document."""
    counts = {severity: sum(1 for f in findings if f.severity == severity) for severity in (ERROR, WARNING, INFO)}
    if fmt == "json":
        return json.dumps({"findings": [asdict(f) for f in findings], "summary": counts}, indent=1, sort_keys=True)
    lines = [f.text() for f in findings]
    lines.append(f"{counts[ERROR]} errors, {counts[WARNING]} warnings, {counts[INFO]} infos")
    return "\n".join(lines)

