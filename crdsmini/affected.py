"""Which datasets get different references under a new context (``crdsmini affected``).

Owns the old/new comparison for many datasets.  The two loaded contexts are compared first
(their *logical* difference), so that only what can change is evaluated again:

1. instruments whose imap is the same file on both sides are skipped, and so are, within a
   changed imap, the filekinds whose rmap is the same file (same name and text);
2. for a changed rmap whose header and Match columns are unchanged (only rows or their
   UseAfter dates/files differ), a dataset is a *candidate* only if one of the changed rows
   survives its parameter values on either side -- every other row, and the valid-value
   check, are identical on both sides, so its answer cannot change;
3. candidates are evaluated under both contexts with the bulk engine (``crdsmini.bulk``),
   restricted to the changed filekinds, and only the datasets whose answers differ are
   reported.

Step 2 is a filter, never a decision: every candidate is compared on its real answers, so the
result is exactly "the datasets whose references change", only computed faster.
"""
from __future__ import annotations

__all__ = ["Change", "ContextDifference", "context_difference", "affected_datasets"]

import dataclasses
import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from crdsmini.bulk import BulkSelector, crds_value
from crdsmini.errors import CrdsminiError
from crdsmini.model import InstrumentContext, PipelineContext, ReferenceMapping
from crdsmini.selectors import Selector
from crdsmini.selectors.match import MatchSelector

_HEADER_NOISE = ("name", "sha1sum", "derived_from", "description", "comment")
_CHUNK = 20_000


@dataclasses.dataclass(frozen=True)
class Change:
    """One dataset whose references differ: ``{filekind: (old, new)}`` in CRDS's strings
    (None: the filekind is absent, i.e. OMIT); ``old_error``/``new_error`` for a whole call
    that fails on one side (missing or unknown instrument)."""

    dataset: str
    instrument: str | None
    types: Mapping[str, tuple[Any, Any]]
    old_error: str | None = None
    new_error: str | None = None


@dataclasses.dataclass(frozen=True)
class ContextDifference:
    """What may differ between two contexts, per instrument (lower case)."""

    old: Any
    new: Any
    #: instrument -> filekinds whose selection changed (all of them when the imap is new/gone)
    changed: Mapping[str, tuple[str, ...]]
    #: (instrument, filekind) -> the row filter of step 2, when one applies
    filters: Mapping[tuple[str, str], "_RowFilter"]

    def filekinds(self, instrument: str) -> tuple[str, ...]:
        return self.changed.get(instrument, ())


def _imaps(context: Any) -> dict[str, InstrumentContext]:
    if isinstance(context, PipelineContext):
        return dict(context.selections)
    if isinstance(context, InstrumentContext):
        return {context.instrument: context}
    raise TypeError(f"not a context: {context!r}")


def _same_file(old: Any, new: Any) -> bool:
    if isinstance(old, str) or isinstance(new, str):
        return old == new
    return old.name == new.name and old.source.text == new.source.text


def _signature(node: Any) -> Any:
    """A comparable description of a selector subtree (its keys and terminal choices)."""
    if isinstance(node, MatchSelector):
        keys: tuple = tuple(row.key for row in node.rows)
    elif isinstance(node, Selector):
        keys = tuple(getattr(node, "keys", ()))
    else:
        return repr(node)
    return (type(node).__name__, tuple(node.params), keys, tuple(_signature(c) for c in node.children()))


class _RowFilter:
    """Step 2: does a (preprocessed) header let a changed Match row survive on either side?"""

    def __init__(self, old: ReferenceMapping, new: ReferenceMapping) -> None:
        self.old, self.new = old, new
        old_rows = {row.key: _signature(row.choice) for row in old.selector.rows}
        new_rows = {row.key: _signature(row.choice) for row in new.selector.rows}
        self.old_bits = sum(1 << i for i, row in enumerate(old.selector.rows)
                            if new_rows.get(row.key, self) != old_rows[row.key])
        self.new_bits = sum(1 << i for i, row in enumerate(new.selector.rows)
                            if old_rows.get(row.key, self) != new_rows[row.key])
        self._memo: dict[tuple, bool] = {}

    @staticmethod
    def applies(old: ReferenceMapping, new: ReferenceMapping) -> bool:
        if not (isinstance(old.selector, MatchSelector) and isinstance(new.selector, MatchSelector)):
            return False
        if old.dependency_keys is None or new.dependency_keys is None:
            return False  # hooks may read anything
        strip = lambda header: {k: v for k, v in header.items() if k not in _HEADER_NOISE}  # noqa: E731
        if strip(old.header) != strip(new.header) or old.selector.params != new.selector.params:
            return False
        return all((a.valid, a.accept_all, a.has_na, a.range) == (b.valid, b.accept_all, b.has_na, b.range)
                   for a, b in zip(old.selector.columns, new.selector.columns))

    def candidate(self, header: Mapping[str, Any]) -> bool:
        try:
            prepared = self.old.preprocess(header)  # same header keys and expressions on both sides
            values = self.old.selector.lookup_values(prepared)
            key = tuple(v if type(v) is str else str(v) for v in values) + tuple(map(type, values))
        except CrdsminiError:
            return False  # the same error on both sides (unchanged header, parameters, columns)
        except TypeError:
            return True
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self._survives(values)
        return found

    def _survives(self, values: list[Any]) -> bool:
        try:
            for column, value in zip(self.old.selector.columns, values):
                column.precheck(value)
        except CrdsminiError:
            return False  # identical valid-value check on both sides
        return bool(self._bits(self.old.selector, values) & self.old_bits
                    or self._bits(self.new.selector, values) & self.new_bits)

    @staticmethod
    def _bits(selector: MatchSelector, values: list[Any]) -> int:
        survivors = -1
        for column, value in zip(selector.columns, values):
            ones, zeros = column.bits(value if isinstance(value, str) else str(value))
            survivors &= ones | zeros
        return survivors if selector.columns else (1 << len(selector.rows)) - 1


def context_difference(old: Any, new: Any) -> ContextDifference:
    """Step 1 (and the filters of step 2): the logical difference of two loaded contexts."""
    old_imaps, new_imaps = _imaps(old), _imaps(new)
    changed: dict[str, tuple[str, ...]] = {}
    filters: dict[tuple[str, str], _RowFilter] = {}
    for instrument in sorted(set(old_imaps) | set(new_imaps)):
        before, after = old_imaps.get(instrument), new_imaps.get(instrument)
        if before is None or after is None:
            changed[instrument] = tuple((after or before).selections)
            continue
        if _same_file(before, after) and all(_same_file(before.selections[k], after.selections[k])
                                             for k in before.selections):
            continue
        kinds = []
        for filekind in dict.fromkeys(list(before.selections) + list(after.selections)):
            a, b = before.selections.get(filekind), after.selections.get(filekind)
            if a is not None and b is not None and _same_file(a, b):
                continue
            kinds.append(filekind)
            if isinstance(a, ReferenceMapping) and isinstance(b, ReferenceMapping) and _RowFilter.applies(a, b):
                filters[(instrument, filekind)] = _RowFilter(a, b)
        if kinds:
            changed[instrument] = tuple(kinds)
    return ContextDifference(old, new, changed, filters)


def _instrument(context: Any, header: Mapping[str, Any]) -> str | None:
    try:
        if isinstance(context, PipelineContext):
            return context.get_instrument(header)
        return context.instrument
    except CrdsminiError:
        return None


def affected_datasets(old: Any, new: Any, datasets: Iterable[tuple[str, Mapping[str, Any]]], *,
                      condition: bool = True, difference: ContextDifference | None = None,
                      stats: dict[str, int] | None = None) -> Iterator[Change]:
    """The datasets (``(id, header)`` pairs, in order) whose answers differ, as Changes.

    ``condition`` minimises and conditions each header for each context as ``crdsmini
    bestrefs`` does.  ``stats`` (optional) receives counts: datasets, candidates, changed.
    """
    difference = difference or context_difference(old, new)
    counts = stats if stats is not None else {}
    for name in ("datasets", "candidates", "changed"):
        counts.setdefault(name, 0)
    selectors: dict[tuple[str, str], tuple[BulkSelector, BulkSelector]] = {}
    iterator = iter(datasets)
    while True:
        chunk = list(itertools.islice(iterator, _CHUNK))
        if not chunk:
            return
        counts["datasets"] += len(chunk)
        # Route each dataset to the changed filekinds of its instrument (either side's view).
        routes: dict[tuple[str, tuple[str, ...]] | None, list[int]] = {}
        instruments: dict[int, str | None] = {}
        whole: list[int] = []
        for index, (_, header) in enumerate(chunk):
            upper = {str(k).upper(): v for k, v in header.items()} if condition else header
            before, after = _instrument(old, upper), _instrument(new, upper)
            instruments[index] = after or before
            if before != after or before is None:
                whole.append(index)  # instrument appears, disappears or is unknown/missing
                continue
            kinds = tuple(k for k in difference.filekinds(before)
                          if _is_candidate(difference, before, k, old, new, header, condition))
            if kinds:
                routes.setdefault((before, kinds), []).append(index)
        if whole:
            routes[None] = whole
        found: dict[int, Change] = {}
        for route, indices in routes.items():
            counts["candidates"] += len(indices)
            kinds = route[1] if route is not None else None
            headers = [chunk[i][1] for i in indices]
            answers = [_answers(side, route, headers, condition, selectors) for side in (old, new)]
            for index, a, b in zip(indices, *answers):
                change = _change(chunk[index][0], instruments[index], a, b, kinds)
                if change is not None:
                    found[index] = change
        for index in sorted(found):
            counts["changed"] += 1
            yield found[index]


def _answers(context: Any, route: tuple[str, tuple[str, ...]] | None, headers: list[Mapping[str, Any]],
             condition: bool, selectors: dict) -> list[Any]:
    """One side's answers for the headers of a route: only its filekinds that exist there."""
    if route is None:
        kinds: tuple[str, ...] | None = None
    else:
        instrument, wanted = route
        imap = _imaps(context).get(instrument)
        kinds = tuple(k for k in wanted if imap is not None and k in imap.selections)
        if not kinds:
            return [{} for _ in headers]
    key = (id(context), kinds)
    if key not in selectors:
        selectors[key] = BulkSelector(context, include=kinds, condition=condition)
    return selectors[key].select_shared(headers)


def _is_candidate(difference: ContextDifference, instrument: str, filekind: str, old: Any, new: Any,
                  header: Mapping[str, Any], condition: bool) -> bool:
    row_filter = difference.filters.get((instrument, filekind))
    if row_filter is None:
        return True
    if not condition:
        return row_filter.candidate(header)
    try:
        return (row_filter.candidate(old.minimize_header(header))
                or row_filter.candidate(new.minimize_header(header)))
    except CrdsminiError:
        return True


def _change(dataset: str, instrument: str | None, old: Any, new: Any,
            kinds: tuple[str, ...] | None) -> Change | None:
    old_error = crds_value(old) if isinstance(old, CrdsminiError) else None
    new_error = crds_value(new) if isinstance(new, CrdsminiError) else None
    before = {} if old_error else {k: crds_value(v) for k, v in old.items()}
    after = {} if new_error else {k: crds_value(v) for k, v in new.items()}
    names = kinds if kinds is not None else tuple(dict.fromkeys(list(before) + list(after)))
    types = {k: (before.get(k), after.get(k)) for k in names if before.get(k) != after.get(k)}
    if not types and old_error == new_error:
        return None
    return Change(dataset, instrument, types, old_error, new_error)
