"""Logical differences between two mappings or two whole contexts (``crdsmini diff``).

Not a text diff: two rmaps are compared by their *leaves* -- (match row, date) -> file --
with Match keys compared after conditioning (``('FUV',)`` and ``'fuv'`` are the same row),
so re-sorting, quoting or comments never show up.  Headers are compared key by key (the
``sha1sum`` is left out: it changes with every edit).  For a pmap or imap the selections are
compared and, when both sides name different mapping files, those are compared in turn.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from crdsmini.errors import AuthoringError
from crdsmini.matchers import normalize_element
from crdsmini.refactor import load_document, mapping_kind
from crdsmini.writer import MappingDocument, SelectorNode

__all__ = ["Difference", "diff_mappings", "diff_documents", "format_differences"]

_IGNORED_HEADER_KEYS = ("sha1sum",)


@dataclass(frozen=True)
class Difference:
    """One logical change from OLD to NEW.

    ``kind``: ``header-added``, ``header-deleted``, ``header-changed``, ``added``,
    ``deleted``, ``replaced`` (a file at a row/date, or a selection of a pmap/imap).
    ``where``: the key path (header key; Match row and date; instrument or filekind) as
    text.  ``old``/``new``: the values on each side (None when absent).
    """

    old_mapping: str
    new_mapping: str
    kind: str
    where: tuple[str, ...]
    old: Any = None
    new: Any = None

    def text(self) -> str:
        """One line: ``OLD -> NEW: kind where: old -> new``."""
        location = " ".join(self.where)
        if self.kind in ("added", "header-added"):
            change = f"{self.new!r}"
        elif self.kind in ("deleted", "header-deleted"):
            change = f"{self.old!r}"
        else:
            change = f"{self.old!r} -> {self.new!r}"
        return f"{self.old_mapping} -> {self.new_mapping}: {self.kind} {location} : {change}"


def _leaf_key(level_key: Any, node_name: str) -> tuple[str, ...]:
    if node_name == "Match":
        fields = level_key if isinstance(level_key, tuple) else (level_key,)
        return tuple(normalize_element(f) for f in fields)
    return (str(level_key),)


def _leaves(node: SelectorNode, path: tuple[Any, ...] = (),
            raw: tuple[str, ...] = ()) -> Iterator[tuple[tuple[Any, ...], tuple[str, ...], Any]]:
    for key, choice in node.rows:
        normal = path + ((node.name, _leaf_key(key, node.name)),)
        shown = raw + (repr(key),)
        if isinstance(choice, SelectorNode):
            yield from _leaves(choice, normal, shown)
        else:
            yield normal, shown, choice


def _header_differences(old: MappingDocument, new: MappingDocument, names: tuple[str, str]) -> list[Difference]:
    found = []
    for key in sorted(set(old.header) | set(new.header)):
        if key in _IGNORED_HEADER_KEYS:
            continue
        before, after = old.header.get(key), new.header.get(key)
        if key not in new.header:
            found.append(Difference(*names, "header-deleted", (repr(key),), before, None))
        elif key not in old.header:
            found.append(Difference(*names, "header-added", (repr(key),), None, after))
        elif before != after or type(before) is not type(after):
            found.append(Difference(*names, "header-changed", (repr(key),), before, after))
    return found


def diff_documents(old: MappingDocument, new: MappingDocument, *, old_name: str | None = None,
                   new_name: str | None = None) -> list[Difference]:
    """Differences between two loaded documents of the same kind (no recursion)."""
    names = (old_name or old.name, new_name or new.name)
    found = _header_differences(old, new, names)
    if isinstance(old.selector, SelectorNode) and isinstance(new.selector, SelectorNode):
        before = {normal: (shown, choice) for normal, shown, choice in _leaves(old.selector)}
        after = {normal: (shown, choice) for normal, shown, choice in _leaves(new.selector)}
        for normal in sorted(set(before) | set(after), key=repr):
            if normal not in after:
                shown, choice = before[normal]
                found.append(Difference(*names, "deleted", shown, choice, None))
            elif normal not in before:
                shown, choice = after[normal]
                found.append(Difference(*names, "added", shown, None, choice))
            elif before[normal][1] != after[normal][1]:
                found.append(Difference(*names, "replaced", after[normal][0], before[normal][1], after[normal][1]))
        return found
    if isinstance(old.selector, dict) and isinstance(new.selector, dict):
        before = {str(k).upper(): (k, v) for k, v in old.selector.items()}
        after = {str(k).upper(): (k, v) for k, v in new.selector.items()}
        for key in sorted(set(before) | set(after)):
            if key not in after:
                found.append(Difference(*names, "deleted", (repr(before[key][0]),), before[key][1], None))
            elif key not in before:
                found.append(Difference(*names, "added", (repr(after[key][0]),), None, after[key][1]))
            elif before[key][1] != after[key][1]:
                found.append(Difference(*names, "replaced", (repr(after[key][0]),), before[key][1], after[key][1]))
        return found
    raise AuthoringError(f"'{names[0]}' and '{names[1]}' have different selector kinds; compare like with like")


def diff_mappings(old: str | Path, new: str | Path, *, recurse: bool = True) -> list[Difference]:
    """Differences between two mapping files; for contexts also between the files they name."""
    old_path, new_path = Path(old), Path(new)
    old_kind, new_kind = mapping_kind(old_path.name), mapping_kind(new_path.name)
    if old_kind != new_kind:
        raise AuthoringError(f"Cannot compare a .{old_kind} with a .{new_kind}: '{old}' vs '{new}'")
    return _diff(old_path, new_path, recurse, set())


def _diff(old_path: Path, new_path: Path, recurse: bool, seen: set[tuple[Path, Path]]) -> list[Difference]:
    pair = (old_path.resolve(), new_path.resolve())
    if pair in seen or pair[0] == pair[1]:
        return []
    seen.add(pair)
    old_doc, new_doc = load_document(old_path), load_document(new_path)
    found = diff_documents(old_doc, new_doc, old_name=old_path.name, new_name=new_path.name)
    if not recurse or isinstance(old_doc.selector, SelectorNode):
        return found
    nested = []
    for difference in found:
        if difference.kind != "replaced":
            continue
        before, after = difference.old, difference.new
        if not (_is_mapping_name(before) and _is_mapping_name(after)):
            continue
        before_path, after_path = old_path.parent / before, new_path.parent / after
        if before_path.is_file() and after_path.is_file():
            nested.extend(_diff(before_path, after_path, recurse, seen))
    return found + nested


def _is_mapping_name(value: Any) -> bool:
    return isinstance(value, str) and value.lower().endswith((".pmap", ".imap", ".rmap"))


def format_differences(differences: Sequence[Difference], fmt: str = "text") -> str:
    """Text (one line per difference) or JSON (a list of objects)."""
    if fmt == "json":
        return json.dumps([asdict(d) for d in differences], indent=1, sort_keys=True, default=repr)
    return "\n".join(d.text() for d in differences)
