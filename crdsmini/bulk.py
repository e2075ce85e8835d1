"""Bulk selection: many dataset headers through one context, each distinct case evaluated once.

Owns the library side of ``crdsmini bulk-bestrefs`` (and of the Dask engine): the answers are
exactly those of ``get_best_references`` / ``select_references`` per header, computed by
projecting the headers onto what the rules read, de-duplicating, evaluating each distinct
projection once and joining the answers back in input order.

How a header is projected, per instrument (imap):

* the raw values of every key any of its rmaps reads (``ReferenceMapping.dependency_keys``:
  parkeys, names in relevance/omit/parkey_relevance expressions), with their types, so that
  ``1``, ``1.0`` and ``'1'`` stay apart;
* for date parameters that the rules only use through UseAfter (``DATE-OBS``/``TIME-OBS``...),
  not the date itself but its *bin*: the position of the normalised dataset time among all
  the UseAfter dates of those parameters in the imap.  Every UseAfter answer is a bisect
  among a subset of those dates, so two times in the same bin get the same answer, and a
  million distinct timestamps collapse to a handful of bins.  A date that does not normalise
  is kept raw (its error message quotes it).

Exactness is kept where the projection cannot see everything: a lookup whose selector fails
goes through CRDS's recovery rules (the HST do-not-reprocess rule reads keys of its own), and
an rmap with an observatory hook may read any key, so those are evaluated header by header
with the ordinary per-header code.  Results therefore cannot drift from the one-at-a-time API:
the tests replay the conformance corpus through this module.

``jobs > 1`` runs chunks in a process pool; the loaded context is pickled once and sent to
each worker when it starts (``initializer``), never with the chunks.
"""
from __future__ import annotations

__all__ = [
    "BulkSelector",
    "best_references",
    "iter_best_references",
    "best_refs",
    "crds_value",
]

import bisect
import concurrent.futures
import functools
import itertools
import operator
import pickle
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from crdsmini.errors import CrdsminiError, MappingError, UnknownReftypeError
from crdsmini.model import (_INSTRUMENT_KEYS, NA, NA_VALUES, NOT_FOUND_NA, OMIT_VALUES, OMITTED, InstrumentContext,
                            PipelineContext, ReferenceMapping, _Failure, _namespace)
from crdsmini.selectors import Selector
from crdsmini.selectors.useafter import UseAfterSelector
from crdsmini.timestamps import dataset_time

class _Missing:
    """Stands for an absent key inside a projection (its type keeps it apart from any value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()
_GROUP_LIMIT = 10_000        # distinct projections remembered per instrument (then forgotten)
_RMAP_LIMIT = 4_096          # ... and per rmap: bounds memory with many rmaps (HST: ~80)
_PER_HEADER = object()       # marks a filekind that must be evaluated header by header
_UNKNOWN = object()


class _Recover:
    """A shared selector failure whose recovery (do-not-reprocess) is redone per header."""

    __slots__ = ("error",)

    def __init__(self, error: CrdsminiError) -> None:
        self.error = error


def _answer(outcome: Any) -> Any:
    return NOT_FOUND_NA if outcome is NA else None if outcome is OMITTED else outcome


def _detached(value: Any) -> Any:
    """An error about to be kept in a memo, without its traceback: a traceback holds the
    frames it went through, and through them the whole chunk of headers being answered."""
    if isinstance(value, BaseException):
        value.__traceback__ = None
        value.__context__ = None
    return value


def _recover_one(plan: "_RmapPlan", error: CrdsminiError, header: Mapping[str, Any],
                 space: dict[str, Any] | None) -> Any:
    """One header's answer from its group's selector failure: only the recovery is its own."""
    try:
        prepared = plan.rmap.preprocess(header)
    except CrdsminiError:
        prepared = None
    if prepared is None:
        try:
            return plan.rmap.select(header, space)
        except CrdsminiError as exc:
            return exc
    return _answer(plan.rmap.recovered(_Failure(error, prepared)))


def _project(plan: "_RmapPlan", key: tuple) -> tuple:
    """An rmap's own key from its instrument's key (raw parts, then its coarser date bins)."""
    if plan.positions is None:
        return ()
    parts = plan.positions(key)
    if plan.translations:
        parts = list(parts)
        for position, table in plan.translations:
            value = parts[position]
            if type(value) is int:
                parts[position] = table[value]
        parts = tuple(parts)
    return parts


def crds_value(value: Any) -> Any:
    """A strict result (value or error object) as ``get_best_references`` returns it."""
    return "NOT FOUND " + value.message if isinstance(value, CrdsminiError) else value


@functools.lru_cache(maxsize=65536)
def _normalised_time(params: tuple[str, ...], values: tuple[str, ...]) -> str:
    return dataset_time(dict(zip(params, values)), params, "UseAfter")


def _selector_nodes(selector: Any) -> Iterator[Selector]:
    if isinstance(selector, Selector):
        yield selector
        for child in selector.children():
            yield from _selector_nodes(child)


class _RmapPlan:
    """One rmap of an instrument: which keys it reads raw, which dates it only bins."""

    __slots__ = ("filekind", "rmap", "raw_keys", "binned", "shared_failures", "shared_errors", "positions",
                 "translations", "memo")

    def __init__(self, filekind: str, rmap: ReferenceMapping) -> None:
        self.filekind = filekind
        self.rmap = rmap
        deps = rmap.dependency_keys
        self.shared_failures = self.shared_errors = False
        self.positions: Any = None      # where this rmap's parts sit in the instrument's key
        self.translations: tuple = ()   # per binned date tuple: instrument bin -> rmap bin
        self.memo: dict[tuple, Any] = {}
        if deps is None:
            self.raw_keys = None
            self.binned: dict[tuple[str, ...], set[str]] = {}
            return
        use_after: dict[tuple[str, ...], set[str]] = {}
        raw_params: set[str] = set()
        for node in _selector_nodes(rmap.selector):
            if type(node) is UseAfterSelector:
                use_after.setdefault(tuple(node.params), set()).update(node.keys)
            else:
                raw_params.update(node.params)
        # Keys read other than as UseAfter parameters: Match/other selector parameters and
        # everything the expressions name (dependency keys that are not parkeys, plus parkeys
        # named in expressions -- conservatively, any parkey that is not a UseAfter parameter).
        only_dates = {key for params in use_after for key in params} - raw_params
        only_dates -= rmap.expression_keys or set()
        self.binned = {params: dates for params, dates in use_after.items() if set(params) <= only_dates}
        binned_keys = {key for params in self.binned for key in params}
        self.raw_keys = tuple(key for key in deps if key not in binned_keys)
        # A failed selection is the same error for the whole group when its message cannot
        # quote a binned time (only a UseAfter outside any Match says "No selection <= '<t>'"),
        # and the same *answer* when recovery reads nothing else either (no do-not-reprocess
        # rule; hooks already excluded).  Otherwise only the recovery is redone per header.
        self.shared_errors = not self.binned or type(rmap.selector).__name__ == "MatchSelector"
        self.shared_failures = self.shared_errors and rmap.plugin.dnr_check is None


class _InstrumentPlan:
    """How the headers of one instrument are projected, grouped and answered."""

    def __init__(self, imap: InstrumentContext, include: Iterable[str] | None) -> None:
        self.imap = imap
        self.filekinds = list(imap.selections) if not include else [str(k).lower() for k in include]
        self.fixed: dict[str, Any] = {}          # filekind -> answer that needs no header
        self.plans: list[_RmapPlan] = []
        self.opaque: list[_RmapPlan] = []        # rmaps with hooks: always header by header
        raw: dict[str, None] = {}
        bins: dict[tuple[str, ...], set[str]] = {}
        for filekind in self.filekinds:
            choice = imap.selections.get(filekind)
            if choice is None:
                self.fixed[filekind] = UnknownReftypeError(f"Unknown reference type {filekind!r}", keyword=filekind)
            elif isinstance(choice, str):
                if choice in NA_VALUES:
                    self.fixed[filekind] = NOT_FOUND_NA
                elif choice in OMIT_VALUES:
                    self.fixed[filekind] = None
                else:
                    self.fixed[filekind] = MappingError(f"bad selection {choice!r} for {filekind!r}")
            else:
                plan = _RmapPlan(filekind, choice)
                if plan.raw_keys is None:
                    self.opaque.append(plan)
                    continue
                self.plans.append(plan)
                raw.update(dict.fromkeys(plan.raw_keys))
                for params, dates in plan.binned.items():
                    bins.setdefault(params, set()).update(dates)
        # A parameter binned for one rmap but read raw by another is simply both.
        self.raw_keys = tuple(raw)
        self.bins = tuple((params, tuple(sorted(dates))) for params, dates in bins.items())
        self.needs_namespace = any(plan.rmap.needs_namespace for plan in self.plans + self.opaque)
        # Second level: each rmap's own projection of an instrument key (its raw values and
        # types, and its own, coarser, date bins), so that headers unique for the instrument
        # as a whole still share each rmap's answer with other headers.
        width = len(self.raw_keys)
        where = {key: i for i, key in enumerate(self.raw_keys)}
        bin_index = {params: i for i, (params, _) in enumerate(self.bins)}
        for plan in self.plans:
            raw_positions = [where[key] for key in plan.raw_keys]
            positions = raw_positions + [width + i for i in raw_positions]
            translations = []
            for params, own_dates in plan.binned.items():
                position = 2 * width + bin_index[params]
                mine = sorted(own_dates)
                union = dict(self.bins)[params]
                # In instrument bin b (union[b-1] <= t < union[b]) this rmap's bisect is fixed.
                table = [0] + [bisect.bisect_right(mine, union[b - 1]) for b in range(1, len(union) + 1)]
                positions.append(position)
                translations.append((len(positions) - 1, table))
            if len(positions) == 1:  # itemgetter of one index returns the item, not a 1-tuple
                only = positions[0]
                plan.positions = lambda key, only=only: (key[only],)
            else:
                plan.positions = operator.itemgetter(*positions) if positions else None
            plan.translations = tuple(translations)
        self.groups: dict[tuple, tuple[dict[str, Any], tuple[_RmapPlan, ...]]] = {}

    def key(self, header: Mapping[str, Any]) -> tuple:
        """The projection of ``header``: raw values and types, then one bin per date tuple."""
        get = header.get
        values = tuple(map(get, self.raw_keys, itertools.repeat(_MISSING)))
        key = values + tuple(map(type, values))
        for params, dates in self.bins:
            if len(params) == 2:  # (DATE, TIME): the usual shape, spelled out for speed
                date, time = get(params[0], _MISSING), get(params[1], _MISSING)
                if type(date) is str and type(time) is str:
                    try:
                        key += (bisect.bisect_right(dates, _normalised_time(params, (date, time))),)
                        continue
                    except CrdsminiError:
                        pass
                found: tuple = (date, time)
            else:
                found = tuple(map(get, params, itertools.repeat(_MISSING)))
                if all(type(value) is str for value in found):
                    try:
                        key += (bisect.bisect_right(dates, _normalised_time(params, found)),)
                        continue
                    except CrdsminiError:
                        pass
            key += ((found, tuple(map(type, found))),)
        return key

    def evaluate(self, header: Mapping[str, Any], key: tuple | None = None
                 ) -> tuple[dict[str, Any], tuple[_RmapPlan, ...], dict[str, Any]]:
        """Answers shared by every header of ``header``'s group, the rmaps to redo for the
        other headers of the group, and ``header``'s own answers from those rmaps."""
        space = _namespace(header) if self.needs_namespace else None
        shared: dict[str, Any] = {}
        own: dict[str, Any] = {}
        per_header: list[tuple[_RmapPlan, CrdsminiError | None]] = [(plan, None) for plan in self.opaque]
        for plan in self.opaque:
            try:
                own[plan.filekind] = plan.rmap.select(header, space)
            except CrdsminiError as exc:
                own[plan.filekind] = exc
        for plan in self.plans:
            rmap_key = None
            if key is not None:
                rmap_key = _project(plan, key)
                known = plan.memo.get(rmap_key, _UNKNOWN)
                if known is _PER_HEADER:
                    per_header.append((plan, None))
                    try:
                        own[plan.filekind] = plan.rmap.select(header, space)
                    except CrdsminiError as exc:
                        own[plan.filekind] = exc
                    continue
                if type(known) is _Recover:
                    per_header.append((plan, known.error))
                    own[plan.filekind] = _recover_one(plan, known.error, header, space)
                    continue
                if known is not _UNKNOWN:
                    shared[plan.filekind] = known
                    continue
                if len(plan.memo) >= _RMAP_LIMIT:
                    plan.memo.clear()
                plan.memo[rmap_key] = _PER_HEADER  # until proven shareable below
            try:
                outcome = plan.rmap.apply_rules(header, space)
            except CrdsminiError as exc:
                per_header.append((plan, None))
                own[plan.filekind] = exc
                continue
            if type(outcome) is _Failure:
                if plan.shared_failures:
                    shared[plan.filekind] = _detached(_answer(plan.rmap.recovered(outcome)))
                    if rmap_key is not None:
                        plan.memo[rmap_key] = shared[plan.filekind]
                    continue
                if plan.shared_errors:
                    per_header.append((plan, outcome.error))
                    if rmap_key is not None:
                        plan.memo[rmap_key] = _Recover(_detached(outcome.error))
                else:
                    per_header.append((plan, None))
                own[plan.filekind] = _answer(plan.rmap.recovered(outcome))
                continue
            if outcome is NA:
                shared[plan.filekind] = NOT_FOUND_NA
            elif outcome is not OMITTED:
                shared[plan.filekind] = outcome
            else:
                shared[plan.filekind] = None
            if rmap_key is not None:
                plan.memo[rmap_key] = shared[plan.filekind]
        return shared, tuple(per_header), own

    def answer(self, headers: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``select_references`` of each header (in order), sharing work between equal keys."""
        groups = self.groups
        results: list[dict[str, Any]] = []
        order = self.filekinds
        for header in headers:
            try:
                key = self.key(header)
                found = groups.get(key)
            except TypeError:  # an unhashable header value: no sharing for this one
                key, found = None, None
            if found is None:
                shared, redo, own = self.evaluate(header, key)
                merged = dict(self.fixed)
                merged.update(shared)
                found = (self._ordered(merged) if not redo else merged, redo)
                if key is not None:
                    if len(groups) >= _GROUP_LIMIT:
                        groups.clear()
                    groups[key] = found
                if redo:  # this header's own answers are already known
                    results.append(self._ordered({**merged, **own}))
                    continue
            answers, redo = found
            if redo:
                answers = dict(answers)
                space = _namespace(header) if self.needs_namespace else None
                for plan, error in redo:
                    if error is not None:
                        answers[plan.filekind] = _recover_one(plan, error, header, space)
                        continue
                    try:
                        answers[plan.filekind] = plan.rmap.select(header, space)
                    except CrdsminiError as exc:
                        answers[plan.filekind] = exc
                answers = self._ordered(answers)
            results.append(answers)
        return results

    def _ordered(self, answers: Mapping[str, Any]) -> dict[str, Any]:
        # OMIT (None) drops the filekind, as select_references does.
        return {kind: answers[kind] for kind in self.filekinds if answers.get(kind) is not None}


class BulkSelector:
    """A loaded context ready for bulk lookups; remembers distinct cases across calls.

    ``condition=True`` first minimises and conditions each header as ``crdsmini bestrefs``
    (CRDS's ``getrecommendations``) does; False passes headers as given, like
    ``get_best_references``.  Not thread-safe (its memo is per instance): one per thread.
    """

    def __init__(self, context: PipelineContext | InstrumentContext | ReferenceMapping, *,
                 include: Iterable[str] | None = None, condition: bool = False) -> None:
        self.context = context
        self.include = list(include) if include else None
        self.condition = condition
        self._plans: dict[str, _InstrumentPlan] = {}
        self._instruments: dict[tuple, Any] = {}
        if isinstance(context, ReferenceMapping):
            raise TypeError("BulkSelector takes a context (.pmap or .imap); use best_refs for one rmap")

    def _plan(self, imap: InstrumentContext) -> _InstrumentPlan:
        plan = self._plans.get(imap.name)
        if plan is None:
            plan = self._plans[imap.name] = _InstrumentPlan(imap, self.include)
        return plan

    def _imap_of(self, header: Mapping[str, Any]) -> InstrumentContext | CrdsminiError:
        context = self.context
        if isinstance(context, InstrumentContext):
            return context
        key_names = self._instrument_keys
        values = tuple(map(header.get, key_names, itertools.repeat(_MISSING)))
        values += tuple(map(type, values))
        try:
            found = self._instruments.get(values)
        except TypeError:
            found = None
        if found is None:
            try:
                found = context.get_imap(context.get_instrument(header))
            except CrdsminiError as exc:
                found = _detached(exc)
            try:
                self._instruments[values] = found
            except TypeError:
                pass
        return found

    @functools.cached_property
    def _instrument_keys(self) -> tuple[str, ...]:
        key = self.context.instrument_key
        return tuple(dict.fromkeys((key.upper(), key.lower()) + _INSTRUMENT_KEYS))

    def select(self, headers: Sequence[Mapping[str, Any]]) -> list[dict[str, Any] | CrdsminiError]:
        """Per header (in order): ``select_references`` (errors as objects), or the error of
        the whole call (missing or unknown instrument)."""
        return [result if isinstance(result, CrdsminiError) else dict(result)
                for result in self.select_shared(headers)]

    def select_shared(self, headers: Sequence[Mapping[str, Any]]) -> list[dict[str, Any] | CrdsminiError]:
        """``select``, except that headers of one group share one answer dict: read only."""
        if self.condition:
            headers = [header if isinstance(header, CrdsminiError) else self._conditioned(header)
                       for header in headers]
        results: list[Any] = [None] * len(headers)
        batches: dict[str, tuple[_InstrumentPlan, list[int]]] = {}
        for index, header in enumerate(headers):
            if isinstance(header, CrdsminiError):
                results[index] = header
                continue
            imap = self._imap_of(header)
            if isinstance(imap, CrdsminiError):
                results[index] = imap
                continue
            batch = batches.get(imap.name)
            if batch is None:
                batch = batches[imap.name] = (self._plan(imap), [])
            batch[1].append(index)
        for plan, indices in batches.values():
            for index, answers in zip(indices, plan.answer([headers[i] for i in indices])):
                results[index] = answers
        return results

    def _conditioned(self, header: Mapping[str, Any]) -> Mapping[str, Any] | CrdsminiError:
        try:
            return self.context.minimize_header(header)
        except CrdsminiError as exc:
            return exc

    def best_references(self, headers: Sequence[Mapping[str, Any]]) -> list[dict[str, Any] | CrdsminiError]:
        """Like ``select`` with CRDS's strings for failed types (``get_best_references``)."""
        return [result if isinstance(result, CrdsminiError) else {k: crds_value(v) for k, v in result.items()}
                for result in self.select_shared(headers)]


# ------------------------------------------------------------------------------------------
# Running over many chunks, optionally in a process pool

_WORKER: dict[str, Any] = {}   # the worker process's selector (set once by _init_worker)


def _init_worker(context_bytes: bytes, include: list[str] | None, condition: bool) -> None:
    _WORKER["selector"] = BulkSelector(pickle.loads(context_bytes), include=include, condition=condition)


def _answer_chunk(selector: BulkSelector, chunk: Sequence[Any], strict: bool, with_ids: bool,
                  finish: Callable[..., Any] | None, prepare: Callable[..., Any] | None = None) -> Any:
    if prepare is not None:
        chunk = prepare(chunk)
    if with_ids:
        ids = [item[0] for item in chunk]
        chunk = [item[1] for item in chunk]
    if finish is not None:  # finish reads the shared answers once per group: fastest output
        results = selector.select_shared(chunk)
        return finish(ids, results) if with_ids else finish(results)
    results = selector.select(chunk) if strict else selector.best_references(chunk)
    return list(zip(ids, results)) if with_ids else results


def _run_chunk(chunk: Sequence[Any], strict: bool, with_ids: bool, finish: Callable[..., Any] | None,
               prepare: Callable[..., Any] | None) -> Any:
    return _answer_chunk(_WORKER["selector"], chunk, strict, with_ids, finish, prepare)


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while True:
        chunk = list(itertools.islice(iterator, size))
        if not chunk:
            return
        yield chunk


def iter_best_references(context: Any, headers: Iterable[Any], *,
                         include: Iterable[str] | None = None, condition: bool = False,
                         strict: bool = False, jobs: int = 1, chunk_size: int = 20_000,
                         with_ids: bool = False, finish: Callable[..., Any] | None = None,
                         prepare: Callable[[list[Any]], list[Any]] | None = None) -> Iterator[Any]:
    """Stream the answers of ``headers`` chunk by chunk, in input order.

    Yields one item per chunk: the list of per-header results (see ``BulkSelector``), or
    ``finish(results)`` when given.  ``finish`` runs where the chunk was answered (in the
    worker with ``jobs > 1``), gets the *strict, shared* answers (read only) and should turn
    them into output (e.g. JSON text), so that only that crosses the process boundary.
    ``with_ids``: items are ``(id, header)`` pairs; chunks then hold ``(id, result)`` pairs
    and ``finish`` is called as ``finish(ids, results)``.  Memory stays bounded by
    ``chunk_size`` and ``jobs``.  ``strict`` keeps failures as error objects instead of
    "NOT FOUND" strings.  ``prepare(chunk)`` (in the worker too) turns a chunk of raw items,
    e.g. lines of text, into the items above, so that parsing is spread over the workers.
    """
    include = list(include) if include else None
    if jobs <= 1:
        selector = BulkSelector(context, include=include, condition=condition)
        for chunk in _chunks(headers, chunk_size):
            yield _answer_chunk(selector, chunk, strict, with_ids, finish, prepare)
        return
    payload = pickle.dumps(context, protocol=pickle.HIGHEST_PROTOCOL)
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                                                initargs=(payload, include, condition)) as pool:
        pending: list[concurrent.futures.Future] = []
        for chunk in _chunks(headers, chunk_size):
            pending.append(pool.submit(_run_chunk, chunk, strict, with_ids, finish, prepare))
            if len(pending) >= 2 * jobs:  # keep the pool busy without reading everything
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def best_references(context: Any, headers: Iterable[Mapping[str, Any]], **options: Any) -> list[Any]:
    """Every header's answer, in order (``iter_best_references`` options, ``finish`` aside)."""
    return [result for chunk in iter_best_references(context, headers, **options) for result in chunk]


def best_refs(rmap: ReferenceMapping, headers: Iterable[Mapping[str, Any]]) -> list[Any]:
    """``rmap.get_best_ref`` of each header, evaluating each distinct projection once."""
    deps = rmap.dependency_keys
    memo: dict[tuple, Any] = {}
    answers = []
    for header in headers:
        if deps is None:
            answers.append(rmap.get_best_ref(header))
            continue
        values = tuple(map(header.get, deps, itertools.repeat(_MISSING)))
        key = values + tuple(map(type, values))
        try:
            found = memo.get(key, _PER_HEADER)
        except TypeError:
            answers.append(rmap.get_best_ref(header))
            continue
        if found is _PER_HEADER:
            try:
                outcome = rmap.apply_rules(header)
            except CrdsminiError:
                outcome = _PER_HEADER
            if type(outcome) is _Failure:
                outcome = _PER_HEADER
            found = memo[key] = outcome
        if found is _PER_HEADER:
            answers.append(rmap.get_best_ref(header))
        else:
            answers.append(NOT_FOUND_NA if found is NA else None if found is OMITTED else found)
    return answers
