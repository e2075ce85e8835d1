"""The literal values a mapping file is made of, as written.

The parser produces these; the model is built from them; the writer writes them back.
Dicts are kept as the ordered list of entries *as written* (duplicates included, with their
line numbers) so that ``check`` can report duplicates, while ``resolved()`` gives the dict
CRDS loads (Python semantics: the last value wins, the first key object is kept).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from crdsmini.errors import MappingError

__all__ = ["DictEntry", "DictLiteral", "SelectorCall", "SELECTOR_NAMES", "plain_value"]

SELECTOR_NAMES = (
    "Bracket",
    "ClosestTime",
    "GeometricallyNearest",
    "Match",
    "SelectVersion",
    "UseAfter",
    "VersionAfter",
)


@dataclass(frozen=True)
class DictEntry:
    """One ``key : value`` entry of a dict literal and the line it starts on."""

    key: Any
    value: Any
    line: int = 0

    def __init__(self, key: Any, value: Any, line: int = 0) -> None:
        # The parser makes one per dict entry (tens of thousands per context); the generated
        # frozen __init__ costs three object.__setattr__ calls, this one dict update.
        self.__dict__.update(key=key, value=value, line=line)


@dataclass(frozen=True)
class DictLiteral:
    """A ``{...}`` literal: its entries in file order, duplicates kept."""

    entries: tuple[DictEntry, ...]
    line: int = 0

    def resolved(self) -> dict[Any, Any]:
        """The dict Python (and so CRDS) builds from this literal: last duplicate wins."""
        result: dict[Any, Any] = {}
        for entry in self.entries:
            try:
                result[entry.key] = entry.value
            except TypeError as exc:  # an unhashable key such as a list
                raise MappingError(f"invalid dict key {entry.key!r} at line {entry.line}: {exc}",
                                   line=entry.line) from None
        return result

    def duplicates(self) -> list[tuple[Any, list[int]]]:
        """Keys written more than once (Python equality), with every line they appear on."""
        lines: dict[Any, list[int]] = {}
        for entry in self.entries:
            try:
                lines.setdefault(entry.key, []).append(entry.line)
            except TypeError:
                continue
        return [(key, where) for key, where in lines.items() if len(where) > 1]

    def __iter__(self) -> Iterator[DictEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True)
class SelectorCall:
    """A selector call such as ``Match({...})``: the selector name and its one dict."""

    name: str
    argument: DictLiteral
    line: int = 0


MAX_NESTING = 100  # far deeper than any real mapping; keeps hostile input off the C stack


def plain_value(value: Any, _depth: int = 0) -> Any:
    """Turn nested literals into plain Python values (dict literals into resolved dicts)."""
    if _depth > MAX_NESTING:
        raise MappingError(f"values nested more than {MAX_NESTING} levels deep")
    if isinstance(value, DictLiteral):
        return {key: plain_value(item, _depth + 1) for key, item in value.resolved().items()}
    if isinstance(value, tuple):
        return tuple(plain_value(item, _depth + 1) for item in value)
    if isinstance(value, list):
        return [plain_value(item, _depth + 1) for item in value]
    return value
