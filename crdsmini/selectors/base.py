"""What every selector shares, and the dispatch from a literal call to a selector class."""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Mapping

from crdsmini.errors import AmbiguousMatchError, CrdsminiError, MappingError
from crdsmini.literals import DictLiteral, SelectorCall, plain_value

__all__ = ["BuildContext", "Selector", "build_selector", "build_choice", "resolve_choice", "float32", "string_keyed_choices"]


@dataclass(frozen=True)
class BuildContext:
    """What selectors need to know about their rmap while they are built."""

    name: str                                   # the rmap file name, for messages
    parkey: tuple[tuple[str, ...], ...]         # one parameter tuple per nesting level
    substitutions: Mapping[str, Mapping[Any, Any]] = field(default_factory=dict)
    merge_overlaps: bool = True

    def params(self, depth: int) -> tuple[str, ...]:
        if depth >= len(self.parkey):
            raise MappingError(f"Can't load file {self.name} : tuple index out of range", file=self.name)
        level = self.parkey[depth]
        if not isinstance(level, (tuple, list)):
            raise MappingError(f"Can't load file {self.name} : parameters should be a list or tuple of header keys",
                               file=self.name)
        return tuple(level)


class Selector:
    """Base of all selectors: ``choose(header)`` returns a terminal choice or raises."""

    kind = "Selector"
    mergeable = False
    params: tuple[str, ...] = ()

    def choose(self, header: Mapping[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def find(self, header: Mapping[str, Any]) -> Any:
        """``choose`` that answers a failed lookup with the error object instead of raising.

        The lookup path (Match, UseAfter and ``ReferenceMapping.apply_rules``) uses it: a
        third of real lookups fail, and raising costs more than the whole successful
        lookup.  The result is a terminal choice or a :class:`CrdsminiError` (never a
        valid choice); unusual failures may still raise.  Selectors that do not override
        it fall back on ``choose``.
        """
        try:
            return self.choose(header)
        except CrdsminiError as exc:
            return exc

    def merge(self, others: list[Any]) -> "Selector":
        """Combine tied selectors; only the UseAfter family can."""
        raise AmbiguousMatchError(
            f"More than one match was found at the same weight and {self.kind} does not support merging.")

    def children(self) -> list[Any]:
        """The choices below this node (selectors or terminals), in stored order."""
        raise NotImplementedError  # pragma: no cover - abstract

    def walk_terminals(self):
        """Every terminal choice below this node, depth first."""
        for child in self.children():
            if isinstance(child, Selector):
                yield from child.walk_terminals()
            else:
                yield child


def chosen(found: Any) -> Any:
    """``choose``'s answer from a ``find`` answer: the choice, or the error raised (a copy:
    ``find`` may answer a remembered, shared error object)."""
    if isinstance(found, CrdsminiError):
        raise found.detached()
    return found


def resolve_choice(choice: Any, header: Mapping[str, Any]) -> Any:
    """Descend into a nested selector, or return a terminal choice as it is."""
    return choice.choose(header) if isinstance(choice, Selector) else choice


def float32(value: float) -> float:
    """``value`` rounded to single precision, as CRDS's numpy.float32 distances are."""
    return struct.unpack("f", struct.pack("f", value))[0]


def string_keyed_choices(call: SelectorCall, context: BuildContext, depth: int) -> tuple[list[str], list[Any]]:
    """Keys as strings in string order, and their built choices (UseAfter, ClosestTime)."""
    table = {str(key): build_choice(value, context, depth + 1) for key, value in call.argument.resolved().items()}
    keys = sorted(table)
    return keys, [table[key] for key in keys]


def build_choice(value: Any, context: BuildContext, depth: int) -> Any:
    """A nested selector call becomes a selector; anything else is a terminal value."""
    if isinstance(value, SelectorCall):
        return build_selector(value, context, depth)
    if isinstance(value, (DictLiteral, tuple, list)):
        return plain_value(value)
    return value


def build_selector(call: Any, context: BuildContext, depth: int = 0) -> Selector:
    """Build the selector object for a ``SelectorCall`` at nesting ``depth``."""
    # Imported here: the family modules import this one for Selector and build_choice.
    from crdsmini.selectors.match import MatchSelector
    from crdsmini.selectors.nearest import BracketSelector, GeometricallyNearestSelector, SelectVersionSelector
    from crdsmini.selectors.useafter import ClosestTimeSelector, UseAfterSelector, VersionAfterSelector

    if not isinstance(call, SelectorCall):
        if isinstance(call, DictLiteral):
            raise MappingError(f"Can't load file {context.name} : an rmap selector must be a Selector call "
                               "such as Match({...}), not a plain dict", file=context.name)
        raise MappingError(f"Can't load file {context.name} : selector must be a dict or a Selector.",
                           file=context.name)
    families = {
        "Match": MatchSelector,
        "UseAfter": UseAfterSelector,
        "VersionAfter": VersionAfterSelector,
        "ClosestTime": ClosestTimeSelector,
        "SelectVersion": SelectVersionSelector,
        "GeometricallyNearest": GeometricallyNearestSelector,
        "Bracket": BracketSelector,
    }
    return families[call.name].build(call, context, depth)
