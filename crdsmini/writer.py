"""Canonical mapping text: the exact bytes CRDS writes for a mapping (writing spec §2).

This module owns the way back from the literal tree to text.  A :class:`MappingDocument`
is the editable, immutable form a write starts from: the header as a plain dict (the values
*as written*, with their Python types), the optional comment block and the selector -- a
plain dict for pmaps/imaps, a :class:`SelectorNode` tree for rmaps, whose keys keep their
raw spelling (``7`` stays ``7``, ``('FUV',)`` stays a 1-tuple).  Edits build new documents;
nothing here reads files or knows about selection.

Canonical text = header dict with sorted keys, one blank line, the ``comment = \"\"\"...\"\"\"``
block when non-empty, one blank line, the selector with rows sorted by ``str()`` of each key
field, one final newline.  Scalars are rendered with Python's ``repr()``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Mapping

from crdsmini.checksum import compute_checksum
from crdsmini.literals import DictEntry, DictLiteral, SelectorCall, plain_value
from crdsmini.syntax import MappingSource

__all__ = [
    "SelectorNode",
    "MappingDocument",
    "document_from_source",
    "canonical_text",
    "render",
    "selector_sort_key",
    "Duplicate",
    "find_duplicates",
]


@dataclass(frozen=True)
class SelectorNode:
    """One selector call of an rmap (``Match({...})``): its name and its rows.

    ``rows`` holds ``(raw key, choice)`` pairs; a choice is a nested SelectorNode or a
    plain value (a file name, ``'N/A'``, ``'OMIT'``, a tuple of names...).
    """

    name: str
    rows: tuple[tuple[Any, Any], ...] = ()

    def get(self, key: Any, default: Any = None) -> Any:
        """The choice stored under ``key`` (Python equality), or ``default``."""
        for row_key, choice in self.rows:
            if row_key == key:
                return choice
        return default

    def with_row(self, key: Any, choice: Any, *, replace_key: Any = None) -> "SelectorNode":
        """A copy with ``key : choice`` set; ``replace_key`` names the row to replace.

        The row replaced keeps its position so that a later sort is the only reordering.
        """
        target = key if replace_key is None else replace_key
        rows = list(self.rows)
        for index, (row_key, _) in enumerate(rows):
            if row_key == target:
                rows[index] = (key, choice)
                return replace(self, rows=tuple(rows))
        rows.append((key, choice))
        return replace(self, rows=tuple(rows))

    def without_row(self, key: Any) -> "SelectorNode":
        """A copy without the row whose key equals ``key``."""
        return replace(self, rows=tuple((k, c) for k, c in self.rows if k != key))

    def leaves(self, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
        """Every (key path, terminal choice) pair, depth first in row order."""
        for key, choice in self.rows:
            if isinstance(choice, SelectorNode):
                yield from choice.leaves(path + (key,))
            else:
                yield path + (key,), choice


@dataclass(frozen=True)
class MappingDocument:
    """What a mapping write needs: header values as written, comment, selector.

    ``header`` is a plain dict that must not be mutated; use :meth:`with_header` to edit.
    """

    header: Mapping[str, Any]
    selector: Any  # dict for pmap/imap, SelectorNode for rmaps
    comment: str | None = None
    name: str = field(default="<document>", compare=False)

    def with_header(self, **changes: Any) -> "MappingDocument":
        """A copy with the given header keys set (others unchanged)."""
        header = dict(self.header)
        header.update(changes)
        return replace(self, header=header)

    def without_header(self, key: str) -> "MappingDocument":
        """A copy without header ``key``."""
        header = dict(self.header)
        header.pop(key, None)
        return replace(self, header=header)

    def with_selector(self, selector: Any) -> "MappingDocument":
        """A copy with a new selector."""
        return replace(self, selector=selector)


def document_from_source(source: MappingSource) -> MappingDocument:
    """Build the document CRDS would write back from a parsed mapping.

    Dict semantics are Python's (the last duplicate wins, the first key object is kept),
    which is what CRDS's loader does before it writes.
    """
    return MappingDocument(
        header=plain_value(source.header),
        selector=_selector_value(source.selector),
        comment=source.comment,
        name=source.name,
    )


def _selector_value(value: Any) -> Any:
    if isinstance(value, SelectorCall):
        rows = tuple((key, _selector_value(choice)) for key, choice in value.argument.resolved().items())
        return SelectorNode(value.name, rows)
    return plain_value(value)


def selector_sort_key(key: Any) -> tuple[str, ...]:
    """Row order of a written selector: ``str()`` of each key field (bare key = 1-tuple)."""
    if isinstance(key, tuple):
        return tuple(str(part) for part in key)
    return (str(key),)


def _format_dict(value: Mapping[Any, Any], level: int) -> str:
    pad = "    " * level
    lines = ["{"]
    for key, item in sorted(value.items()):
        text = _format_dict(item, level + 1) if isinstance(item, dict) else repr(item)
        lines.append(f"{pad}    {key!r} : {text},")
    lines.append(pad + "}")
    return "\n".join(lines)


def _format_selector(node: SelectorNode, level: int) -> str:
    lines = [node.name + "({"]
    inner = "    " * (level + 1)
    for key, choice in sorted(node.rows, key=lambda row: selector_sort_key(row[0])):
        if isinstance(choice, SelectorNode):
            text = _format_selector(choice, level + 1)
        elif isinstance(choice, dict):
            text = _format_dict(choice, level + 1)
        else:
            text = repr(choice)
        lines.append(f"{inner}{key!r} : {text},")
    lines.append("    " * level + "})")
    return "\n".join(lines)


def canonical_text(document: MappingDocument) -> str:
    """The canonical text of ``document`` with its header exactly as it is (no new sum)."""
    parts = ["header = " + _format_dict(document.header, 0)]
    if document.comment:
        parts.append('comment = """' + document.comment + '"""')
    selector = document.selector
    if isinstance(selector, SelectorNode):
        parts.append("selector = " + _format_selector(selector, 0))
    elif isinstance(selector, dict):
        parts.append("selector = " + _format_dict(selector, 0))
    else:
        parts.append("selector = " + repr(selector))
    return "\n\n".join(parts) + "\n"


def render(document: MappingDocument) -> tuple[MappingDocument, str]:
    """Set the header ``sha1sum`` to the sum of the canonical text; return (document, text).

    The sum line itself is excluded from the sum, so its old value (or absence) does not
    matter: the text is rendered once to sum it, once more with the new sum in place.
    """
    summed = document.with_header(sha1sum=compute_checksum(canonical_text(document)))
    return summed, canonical_text(summed)


@dataclass(frozen=True)
class Duplicate:
    """A key written more than once in one dict literal."""

    where: str
    key: Any
    line: int
    first_line: int
    message: str


def _short(value: Any) -> str:
    if isinstance(value, SelectorCall):
        return value.name
    if isinstance(value, DictLiteral):
        return "{...}"
    return repr(plain_value(value))


def _dict_duplicates(literal: DictLiteral, where: str) -> Iterator[Duplicate]:
    first: dict[Any, DictEntry] = {}
    for entry in literal.entries:
        try:
            earlier = first.get(entry.key)
        except TypeError:  # unhashable key: the loader reports it
            continue
        if earlier is None:
            first[entry.key] = entry
            continue
        yield Duplicate(
            where, entry.key, entry.line, earlier.line,
            f"Duplicate entry at {where} {entry.key!r} = {_short(entry.value)} vs. {_short(earlier.value)}"
            + (f" (first written at line {earlier.line})" if earlier.line else ""))


def _walk_dicts(value: Any, where: str) -> Iterator[Duplicate]:
    if isinstance(value, SelectorCall):
        yield from _dict_duplicates(value.argument, where)
        for entry in value.argument.entries:
            yield from _walk_dicts(entry.value, f"{value.name}({entry.key!r})")
    elif isinstance(value, DictLiteral):
        yield from _dict_duplicates(value, where)
        for entry in value.entries:
            if isinstance(entry.value, (DictLiteral, SelectorCall)):
                yield from _walk_dicts(entry.value, f"{where} {entry.key!r}")


def find_duplicates(source: MappingSource) -> list[Duplicate]:
    """Keys written twice in the header, any nested header dict or any selector level."""
    found = list(_walk_dicts(source.header, "header"))
    if isinstance(source.selector, SelectorCall):
        found.extend(_dict_duplicates(source.selector.argument, "selector"))
        for entry in source.selector.argument.entries:
            found.extend(_walk_dicts(entry.value, f"selector {source.selector.name}({entry.key!r})"))
    else:
        found.extend(_walk_dicts(source.selector, "selector"))
    return found
