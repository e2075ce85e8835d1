"""Why a reference was (or was not) chosen: the explanation behind ``bestrefs --explain``.

Owns issue item 5.  For each reference type it reports the path pmap -> imap -> rmap, the
parameter values the rules saw (and which were UNDEFINED, conditioned, cross-strapped from a
FITS keyword or forced to N/A), the Match rows that survive with their weights, the chosen
UseAfter date with its neighbours, and for a failure the nearest rows with the parameters
that differ and the values the rules accept.

The explanation never decides anything: the answer shown is the one the rules engine gives
(``select_references``); the walk below re-traces the engine's steps with its own public
objects (``MatchSelector.winnow``, ``UseAfterSelector.neighbours``...) only to describe them.
"""
from __future__ import annotations

__all__ = [
    "ParameterUse",
    "RowReport",
    "Step",
    "TypeExplanation",
    "DatasetExplanation",
    "explain_dataset",
    "explain_header",
]

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from crdsmini.bestrefs import TypeResult, classify, instrument_of, lookup_header
from crdsmini.errors import CrdsminiError, InvalidValueError, LookupFailure, MissingKeyError
from crdsmini.headers import TMT_KEYWORDS, KeywordTable, normalise_keys

_NEAREST = 3  # rows shown for a failed Match


@dataclasses.dataclass(frozen=True)
class ParameterUse:
    """One rmap parameter: what the dataset said and what the rules compared."""

    name: str
    fits_keyword: str | None
    dataset_value: str | None
    source: str | None
    value: str
    notes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class RowReport:
    """One Match row as seen for this dataset."""

    index: int
    key: tuple[str, ...]
    choice: str
    weight: int | None = None
    differences: tuple[tuple[str, str, str], ...] = ()   # (parameter, dataset value, rule value)
    chosen: bool = False


@dataclasses.dataclass(frozen=True)
class Step:
    """One selector level: a Match, a UseAfter or another selector kind."""

    kind: str
    params: tuple[str, ...]
    summary: str
    rows: tuple[RowReport, ...] = ()
    dates: tuple[tuple[str, str, str], ...] = ()   # (date, choice, role)
    time: str | None = None
    error: str | None = None
    category: str | None = None
    accepted: Mapping[str, Sequence[str]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TypeExplanation:
    """The explanation for one reference type."""

    reftype: str
    result: TypeResult
    path: tuple[str, ...]
    parameters: tuple[ParameterUse, ...] = ()
    steps: tuple[Step, ...] = ()
    notes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class DatasetExplanation:
    """The explanation for one dataset under one context."""

    dataset: str
    context: str
    instrument: str | None
    types: tuple[TypeExplanation, ...]
    error: CrdsminiError | None = None
    hints: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (lists, strings, numbers, None)."""
        return {
            "dataset": self.dataset,
            "context": self.context,
            "instrument": self.instrument,
            "error": None if self.error is None else {
                "category": self.error.category, "message": str(self.error)},
            "hints": list(self.hints),
            "types": [_type_json(t) for t in self.types],
        }

    def to_text(self) -> str:
        """The human explanation (several lines, ends with a newline)."""
        lines = [f"{self.dataset}: context {self.context}"
                 + (f", instrument {self.instrument}" if self.instrument else "")]
        if self.error is not None:
            lines.append(f"  ERROR [{self.error.category}] {self.error}")
            lines.extend(f"  hint: {hint}" for hint in self.hints)
            return "\n".join(lines) + "\n"
        for explanation in self.types:
            lines.extend(_type_text(explanation))
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Rendering

def _result_text(result: TypeResult) -> str:
    if result.status == "found":
        return str(result.value)
    if result.status == "n/a":
        return "n/a (the rules say this type does not apply)"
    if result.status == "not-found":
        return f"n/a -- NOT FOUND: {result.message}"
    return f"ERROR [{result.category}] {result.message}"


def _type_text(explanation: TypeExplanation) -> list[str]:
    lines = [f"  {explanation.reftype}: {_result_text(explanation.result)}",
             f"    rules: {' -> '.join(explanation.path)}"]
    if explanation.parameters:
        lines.append("    parameters:")
        width = max(len(_label(p)) for p in explanation.parameters)
        for param in explanation.parameters:
            text = f"      {_label(param):<{width}} = {param.value!r}"
            if param.notes:
                text += "  (" + "; ".join(param.notes) + ")"
            lines.append(text)
    for step in explanation.steps:
        lines.extend(_step_text(step))
    lines.extend(f"    note: {note}" for note in explanation.notes)
    return lines


def _label(param: ParameterUse) -> str:
    return f"{param.name} [{param.fits_keyword}]" if param.fits_keyword else param.name


def _short(params: Sequence[str]) -> str:
    """Parameters by their FITS keyword where the table knows one (``META.SUBARRAY.NAME`` -> SUBARRAY)."""
    return ", ".join(TMT_KEYWORDS.fits_keyword(p) or p for p in params)


def _step_text(step: Step) -> list[str]:
    lines = [f"    {step.kind}({_short(step.params)}): {step.summary}"]
    for row in step.rows:
        mark = "->" if row.chosen else "  "
        weight = f"weight {row.weight}" if row.weight is not None else "no match"
        text = f"     {mark} {weight:<9} {row.key!r}  {row.choice}"
        if row.differences:
            diffs = "; ".join(f"{param}: dataset {value!r}, rule {rule!r}"
                              for param, value, rule in row.differences)
            text += f"   differs in {diffs}"
        lines.append(text)
    if step.time is not None and step.dates:
        lines.append(f"       dataset time {step.time}")
    for date, choice, role in step.dates:
        mark = "->" if role == "chosen" else "  "
        lines.append(f"     {mark} {date}  {choice}   ({role})")
    for param, values in step.accepted.items():
        shown = ", ".join(repr(v) for v in values) if values else "(not checked)"
        lines.append(f"       values the rules accept for {param}: {shown}")
    return lines


def _type_json(explanation: TypeExplanation) -> dict[str, Any]:
    result = explanation.result
    return {
        "reftype": explanation.reftype,
        "result": {"bestref": result.bestref, "status": result.status,
                   "crds": list(result.value) if isinstance(result.value, tuple) else result.value,
                   "category": result.category, "message": result.message},
        "path": list(explanation.path),
        "parameters": [dataclasses.asdict(p) | {"notes": list(p.notes)}
                       for p in explanation.parameters],
        "steps": [_step_json(step) for step in explanation.steps],
        "notes": list(explanation.notes),
    }


def _step_json(step: Step) -> dict[str, Any]:
    return {
        "kind": step.kind,
        "params": list(step.params),
        "summary": step.summary,
        "rows": [{"index": r.index, "key": list(r.key), "choice": r.choice, "weight": r.weight,
                  "chosen": r.chosen,
                  "differences": [{"parameter": p, "dataset": v, "rule": k}
                                  for p, v, k in r.differences]} for r in step.rows],
        "time": step.time,
        "dates": [{"date": d, "choice": c, "role": role} for d, c, role in step.dates],
        "error": step.error,
        "category": step.category,
        "accepted": {k: list(v) for k, v in step.accepted.items()},
    }


# --------------------------------------------------------------------------------------------
# Tracing the rules

def _describe_choice(choice: Any) -> str:
    from crdsmini.selectors import Selector

    if isinstance(choice, Selector):
        size = len(getattr(choice, "keys", getattr(choice, "rows", ())) or ())
        what = {"UseAfter": "date", "Match": "row"}.get(choice.kind, "entry")
        return f"-> {choice.kind} ({size} {what}{'s' if size != 1 else ''})"
    if isinstance(choice, tuple):
        return repr(choice)
    return str(choice)


def _trace(selector: Any, header: Mapping[str, Any], steps: list[Step]) -> Any:
    """Walk one selector level as the engine does, recording a Step; return the terminal.

    Raises the engine's error for this level (so the caller can fall back like the engine).
    """
    kind = getattr(selector, "kind", type(selector).__name__)
    if kind == "Match":
        return _trace_match(selector, header, steps)
    if kind == "UseAfter":
        return _trace_useafter(selector, header, steps)
    params = tuple(getattr(selector, "params", ()))
    try:
        value = selector.choose(header)
    except CrdsminiError as exc:
        steps.append(Step(kind, params, f"failed: {exc}", error=str(exc), category=exc.category))
        raise
    steps.append(Step(kind, params, f"selected {_describe_choice(value)}"))
    return value


def _row_differences(selector: Any, values: Sequence[Any]) -> list[tuple[int, list[tuple[str, str, str]]]]:
    """Per row, the parameters whose matcher rejects the dataset value."""
    found = []
    for index, row in enumerate(selector.rows):
        diffs = []
        for column, (position, value) in zip(selector.columns, enumerate(values)):
            text = value if isinstance(value, str) else str(value)
            if column.matchers[index].match(text) < 0:
                diffs.append((column.param, text, row.key[position]))
        found.append((index, diffs))
    return found


def _nearest_rows(selector: Any, values: Sequence[Any]) -> tuple[RowReport, ...]:
    ranked = sorted(_row_differences(selector, values), key=lambda item: (len(item[1]), item[0]))
    rows = []
    for index, diffs in ranked[:_NEAREST]:
        row = selector.rows[index]
        rows.append(RowReport(index, tuple(row.key), _describe_choice(row.choice),
                              None, tuple(diffs)))
    return tuple(rows)


def _trace_match(selector: Any, header: Mapping[str, Any], steps: list[Step]) -> Any:
    params = tuple(selector.params)
    accepted = {param: list(values) for param, values in selector.valid_values.items()}
    try:
        values = selector.lookup_values(header)
    except MissingKeyError as exc:
        steps.append(Step("Match", params,
                          f"parameter {exc.keyword!r} is missing and its column has no N/A row",
                          error=str(exc), category=exc.category,
                          accepted={exc.keyword: accepted.get(exc.keyword, [])}))
        raise
    for column, value in zip(selector.columns, values):
        try:
            column.precheck(value)
        except InvalidValueError as exc:
            steps.append(Step(
                "Match", params,
                f"{column.param} = {value!r} is not a value these rules use (checked before "
                "matching)", rows=_nearest_rows(selector, values), error=str(exc),
                category=exc.category, accepted={column.param: accepted[column.param]}))
            raise
    ranked = selector.winnow(header)
    if not ranked:
        nearest = _nearest_rows(selector, values)
        differing = {param for row in nearest for param, _, _ in row.differences}
        steps.append(Step("Match", params,
                          f"no row matches ({len(selector.rows)} rows); the nearest ones:",
                          rows=nearest, error="No match found.", category="not-found",
                          accepted={p: accepted[p] for p in params if p in differing}))
        raise _no_match()
    # Groups of equal weight, best first, exactly as the engine tries them.
    groups: list[list[tuple[int, int]]] = []
    for index, weight in ranked:
        if groups and groups[-1][0][1] == weight:
            groups[-1].append((index, weight))
        else:
            groups.append([(index, weight)])
    tried: list[str] = []
    for group in groups:
        indexes = [index for index, _ in group]
        rows = selector.rows
        first = rows[indexes[0]].choice
        from crdsmini.selectors import Selector

        if len(indexes) > 1 and isinstance(first, Selector) and selector.merge_overlaps:
            target = first.merge([rows[i].choice for i in indexes[1:]])
            merged = f" (rows {', '.join(str(i) for i in indexes)} tie and are merged)"
        else:
            target = first if len(indexes) == 1 else None
            merged = ""
        reports = tuple(RowReport(i, tuple(rows[i].key), _describe_choice(rows[i].choice), w,
                                  chosen=True) for i, w in ranked if i in indexes)
        others = tuple(RowReport(i, tuple(rows[i].key), _describe_choice(rows[i].choice), w)
                       for i, w in ranked if i not in indexes)
        summary = (f"{len(ranked)} of {len(rows)} rows match (weight = parameters matched, "
                   f"N/A cells count 0); weight {group[0][1]} chosen"
                   + merged + ("; before that, " + "; ".join(tried) if tried else ""))
        step = Step("Match", params, summary, rows=reports + others)
        if target is None:  # a tie of plain choices, or merging switched off
            steps.append(step)
            return selector.choose(header)
        steps.append(step)
        if not isinstance(target, Selector):
            return target
        mark = len(steps)
        try:
            return _trace(target, header, steps)
        except LookupFailure:
            keys = ", ".join(repr(tuple(rows[i].key)) for i in indexes)
            reason = steps[mark].summary if len(steps) > mark else "no selection"
            tried.append(f"weight {group[0][1]} {keys}: {reason}, fell back")
            del steps[mark - 1:]
            continue
    steps.append(Step("Match", params,
                      f"{len(ranked)} of {len(selector.rows)} rows match, but none has a date at "
                      "or before the dataset time: " + "; ".join(tried),
                      rows=tuple(RowReport(i, tuple(selector.rows[i].key),
                                           _describe_choice(selector.rows[i].choice), w)
                                 for i, w in ranked),
                      error="No match found.", category="not-found"))
    raise _no_match()


def _no_match() -> LookupFailure:
    from crdsmini.errors import NoMatchError
    return NoMatchError("No match found.")


def _trace_useafter(selector: Any, header: Mapping[str, Any], steps: list[Step]) -> Any:
    params = tuple(selector.params)
    dates = list(selector.dates)
    choices = list(selector.choices)
    try:
        when, index = selector.neighbours(header)
    except CrdsminiError as exc:
        steps.append(Step("UseAfter", params, f"the dataset date cannot be used: {exc}",
                          error=str(exc), category=exc.category))
        raise
    shown: list[tuple[str, str, str]] = []
    if index < 0:
        if dates:
            shown.append((dates[0], _describe_choice(choices[0]), "first date, after the dataset"))
        steps.append(Step("UseAfter", params,
                          f"no date at or before {when}" + (f"; the first is {dates[0]}" if dates else ""),
                          dates=tuple(shown), time=when, error=f"No selection <= {when!r}",
                          category="not-found"))
        return selector.choose(header)  # raises the engine's NoSelectionError
    if index > 0:
        shown.append((dates[index - 1], _describe_choice(choices[index - 1]), "earlier"))
    shown.append((dates[index], _describe_choice(choices[index]), "chosen"))
    if index + 1 < len(dates):
        shown.append((dates[index + 1], _describe_choice(choices[index + 1]),
                      "later than the dataset"))
    steps.append(Step("UseAfter", params,
                      f"latest of {len(dates)} dates at or before {when} is {dates[index]}",
                      dates=tuple(shown), time=when))
    choice = choices[index]
    from crdsmini.selectors import Selector
    if isinstance(choice, Selector):
        return _trace(choice, header, steps)
    return choice


def _parameters(rmap: Any, minimized: Mapping[str, str], prepared: Mapping[str, Any],
                dataset: Mapping[str, str], raw: Mapping[str, str] | None,
                table: KeywordTable) -> tuple[ParameterUse, ...]:
    raw_upper = normalise_keys(raw) if raw is not None else None
    result = []
    for name in dict.fromkeys(rmap.required_parkeys):
        value = str(prepared.get(name, minimized.get(name, "UNDEFINED")))
        original = dataset.get(name)
        source = None
        if raw_upper is not None and name not in raw_upper and original is not None:
            source = table.source_of(raw_upper, name)
        notes = []
        if original is None:
            notes.append("not in the dataset: UNDEFINED")
        elif original == "UNDEFINED":
            notes.append("UNDEFINED in the dataset")
        else:
            if source:
                notes.append(f"from {source}")
            if str(minimized.get(name)) != original:
                notes.append(f"dataset value {original!r}, conditioned")
        if value == "N/A" and minimized.get(name) != "N/A":
            notes.append("forced to N/A: irrelevant for this dataset (parkey_relevance)")
        substitution = (rmap.substitutions.get(name) or {})
        if isinstance(substitution, Mapping) and value in substitution:
            notes.append(f"{value!r} counts as {substitution[value]!r} (substitutions)")
        result.append(ParameterUse(name, table.fits_keyword(name), original, source, value,
                                   tuple(notes)))
    return tuple(result)


def _prepared_header(rmap: Any, header: Mapping[str, Any]) -> Mapping[str, Any]:
    # The engine's own per-rmap preparation (observatory hook, then parkey_relevance);
    # when it fails the real lookup reports that error, so explain shows the raw header.
    try:
        return rmap.preprocess(header)
    except CrdsminiError:
        return header


def _explain_type(context: Any, imap: Any, reftype: str, result: TypeResult,
                  minimized: Mapping[str, str], dataset: Mapping[str, str],
                  raw: Mapping[str, str] | None, table: KeywordTable) -> TypeExplanation:
    path = [context.name] if context is not imap else []
    path.append(imap.name)
    choice = imap.selections.get(reftype)
    if choice is None:
        return TypeExplanation(reftype, result, tuple(path),
                               notes=(f"{imap.name} has no type {reftype!r}; it has: "
                                      + ", ".join(imap.selections),))
    if isinstance(choice, str):
        path.append(choice)
        return TypeExplanation(reftype, result, tuple(path),
                               notes=(f"{imap.name} maps {reftype!r} to {choice!r} for every dataset",))
    rmap = choice
    path.append(rmap.name)
    prepared = _prepared_header(rmap, minimized)
    parameters = _parameters(rmap, minimized, prepared, dataset, raw, table)
    steps: list[Step] = []
    notes: list[str] = []
    traced: Any = None
    try:
        traced = _trace(rmap.selector, prepared, steps)
    except CrdsminiError:
        traced = None
    if result.status == "n/a" and traced is not None:
        reasons = [f"{key}: {rmap.header[key]}" for key in
                   ("rmap_relevance", "reffile_required", "rmap_omit") if key in rmap.header]
        if isinstance(traced, str) and traced.upper() in ("N/A", "TEMP_N/A"):
            notes.append("the matching rule's file is N/A: this type does not apply")
        else:
            notes.append("the rmap's header makes this type not apply"
                         + (f" ({'; '.join(reasons)})" if reasons else ""))
    elif result.status == "n/a" and traced is None and "reffile_required" in rmap.header:
        notes.append(f"reffile_required = {rmap.header['reffile_required']!r}: a failed lookup "
                     "counts as n/a")
    if result.status == "not-found":
        notes.append("crds bestrefs reports this as n/a; no rule covers this dataset")
    return TypeExplanation(reftype, result, tuple(path), parameters, tuple(steps), tuple(notes))


def _whole_call_hints(context: Any, error: CrdsminiError, dataset: Mapping[str, str]) -> list[str]:
    hints = []
    if getattr(context, "kind", None) == "pmap":
        known = ", ".join(sorted(context.selections))
        hints.append(f"{context.name} knows the instruments: {known}")
        key = context.instrument_key
        present = {k: v for k, v in dataset.items()
                   if k in (key.upper(), "INSTRUME", "META.INSTRUMENT.NAME", "INSTRUMENT")}
        if present:
            hints.append("the dataset says: " + ", ".join(f"{k}={v!r}" for k, v in present.items()))
        else:
            hints.append(f"the dataset has no {key} (FITS: INSTRUME) keyword")
    return hints


def explain_header(context: Any, header: Mapping[str, str], *, dataset_id: str = "<header>",
                   raw: Mapping[str, str] | None = None, types: Sequence[str] | None = None,
                   skip_types: Iterable[str] = (),
                   table: KeywordTable = TMT_KEYWORDS) -> DatasetExplanation:
    """Explain every requested type of one dataset header under a loaded context.

    ``header`` is the lookup header as bestrefs builds it (keys upper-case, FITS keywords
    cross-strapped); ``raw`` (optional) is the header as read, to say where values came from.
    """
    try:
        minimized = lookup_header(context, header)
        instrument = instrument_of(context, header)
        imap = context if getattr(context, "kind", None) == "imap" else context.get_imap(instrument)
        include = [t.lower() for t in types] if types else None
        answers = context.select_references(minimized, include=include)
    except CrdsminiError as exc:
        return DatasetExplanation(dataset_id, context.name, None, (), exc,
                                  tuple(_whole_call_hints(context, exc, header)))
    skipped = {t.lower() for t in skip_types}
    explained = []
    for reftype, value in answers.items():
        if value is None or reftype in skipped:
            continue
        result = classify(reftype, value)
        explained.append(_explain_type(context, imap, reftype, result, minimized, header, raw,
                                       table))
    return DatasetExplanation(dataset_id, context.name, instrument, tuple(explained))


def explain_dataset(context: Any, dataset: Any, *, types: Sequence[str] | None = None,
                    skip_types: Iterable[str] = ()) -> DatasetExplanation:
    """Explain one :class:`~crdsmini.headers.Dataset` (its header and where values came from)."""
    return explain_header(context, dataset.header, dataset_id=dataset.id, raw=dataset.raw,
                          types=types, skip_types=skip_types)
