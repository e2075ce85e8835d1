"""The Match selector: rows of parameter keys, winnowed and weighted (rules-language §6).

Built once at load: keys normalised and sorted, one compiled matcher per element, and per
column a dict from plain key text to rows, so a lookup touches only the rows that can match
instead of running every matcher of every row.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from crdsmini.conditioning import condition_value
from crdsmini.errors import AmbiguousMatchError, InvalidValueError, LookupFailure, MappingError, MissingKeyError, NoMatchError
from crdsmini.literals import SelectorCall
from crdsmini.matchers import COMPLEX, NOT_APPLICABLE, PLAIN, ElementMatcher, compile_element, is_esoteric, normalize_element
from crdsmini.selectors.base import BuildContext, Selector, build_choice

__all__ = ["MatchRow", "MatchColumn", "MatchSelector"]

_WILD = frozenset({"*", "ANY", "N/A"})


@dataclass(frozen=True)
class MatchRow:
    """One Match entry: the key as written, its normalised form, and its choice."""

    raw_key: Any
    key: tuple[str, ...]
    choice: Any


class MatchColumn:
    """Everything a lookup needs about one parameter of a Match node."""

    __slots__ = ("param", "matchers", "exact", "na_rows", "complex_rows", "valid", "accept_all",
                 "has_na", "range", "substitutions")

    def __init__(self, param: str, elements: list[str], substitutions: Mapping[Any, Any], where: str) -> None:
        self.param = param
        compiled: dict[str, ElementMatcher] = {}
        self.matchers = tuple(compiled.setdefault(e, compile_element(e, where)) if e not in compiled
                              else compiled[e] for e in elements)
        exact: dict[str, list[int]] = {}
        na_rows, complex_rows = [], []
        for row, matcher in enumerate(self.matchers):
            if matcher.kind == PLAIN:
                exact.setdefault(matcher.text, []).append(row)
            elif matcher.kind == NOT_APPLICABLE:
                na_rows.append(row)
            else:
                complex_rows.append(row)
        self.exact = {text: tuple(rows) for text, rows in exact.items()}
        self.na_rows = tuple(na_rows)
        self.complex_rows = tuple(complex_rows)
        if any(is_esoteric(e) for e in elements):
            valid: frozenset[str] = frozenset()
        else:
            valid = frozenset(part for e in elements for part in e.split("|"))
        self.valid = valid
        self.accept_all = not valid or bool(valid & _WILD)
        self.has_na = "N/A" in valid
        self.range = None
        if len(valid) == 1:
            (only,) = valid
            if ":" in only:
                low, _, high = only.partition(":")
                try:
                    self.range = (float(low), float(high))
                except ValueError:
                    self.range = None
        self.substitutions = substitutions

    def scores(self, value: str) -> dict[int, int]:
        """Surviving rows of this column for ``value`` with their score (1 or 0)."""
        if value == "*" or value == "N/A":
            result = {}
            for row, matcher in enumerate(self.matchers):
                score = matcher.match(value)
                if score >= 0:
                    result[row] = score
            return result
        result = dict.fromkeys(self.exact.get(value, ()), 1)
        for row in self.na_rows:
            result[row] = 0
        matchers = self.matchers
        for row in self.complex_rows:
            score = matchers[row].match(value)
            if score >= 0:
                result[row] = score
        return result

    def precheck(self, value: Any) -> None:
        """The valid-value check of §6.3; raises InvalidValueError."""
        if value in self.valid or self.accept_all:
            return
        self._verdict(str(value))

    def _verdict(self, value: str) -> None:
        valid = self.valid
        if value in valid or condition_value(value) in valid or self.accept_all:
            return
        if value.startswith("NOT"):
            return self._verdict(value[3:].strip())
        if is_esoteric(value) or value in _WILD:
            return
        if self.range is not None:
            low, high = self.range
            try:
                inside = low <= float(value) <= high
            except ValueError:
                inside = False
            if inside:
                return
            raise InvalidValueError(
                f" parameter='{self.param}' value ='{value}' is not in range [{low} .. {high}]",
                keyword=self.param)
        target = _substitution_target(self.substitutions, value)
        if target is not None:
            for part in target if isinstance(target, tuple) else (target,):
                self._verdict(str(part))
            return
        raise InvalidValueError(f" parameter='{self.param}' value='{value}' is not in {sorted(valid)!r}",
                                keyword=self.param)


def _substitution_target(table: Mapping[Any, Any], value: str) -> Any:
    try:
        target = table.get(value) if value in table else None
    except TypeError:
        return None
    if isinstance(target, list):
        target = tuple(target)
    return target


def _substitute(raw_key: Any, params: tuple[str, ...], substitutions: Mapping[str, Mapping[Any, Any]]) -> tuple:
    """Apply the rmap's substitutions to a raw key (§6.1 step 1); bare keys become 1-tuples."""
    def replace(param: str, element: Any) -> Any:
        table = substitutions.get(param)
        if table is None:
            return element
        try:
            if element in table:
                target = table[element]
                return tuple(target) if isinstance(target, list) else target
        except TypeError:
            pass
        return element

    if not isinstance(raw_key, tuple):
        replaced = replace(params[0], raw_key) if params else raw_key
        return replaced if isinstance(replaced, tuple) else (replaced,)
    return tuple(replace(params[i], element) if i < len(params) else element
                 for i, element in enumerate(raw_key))


class MatchSelector(Selector):
    """``Match({key: choice})``: choose the best-weighted rows, falling back to weaker ones."""

    kind = "Match"

    def __init__(self, params: tuple[str, ...], rows: tuple[MatchRow, ...], merge_overlaps: bool,
                 substitutions: Mapping[str, Mapping[Any, Any]], where: str) -> None:
        self.params = params
        self.rows = rows
        self.merge_overlaps = merge_overlaps
        self.columns = tuple(
            MatchColumn(param, [row.key[i] for row in rows], substitutions.get(param, {}), where)
            for i, param in enumerate(params))
        self._merged: dict[tuple[int, ...], Selector] = {}

    @classmethod
    def build(cls, call: SelectorCall, context: BuildContext, depth: int) -> "MatchSelector":
        params = context.params(depth)
        where = f"Can't load file {context.name} : "
        entries: dict[tuple[str, ...], MatchRow] = {}
        for raw_key, raw_choice in call.argument.resolved().items():
            key = _substitute(raw_key, params, context.substitutions)
            if len(key) != len(params):
                raise MappingError(f"{where}Match key={key!r} is wrong length for parameters {params!r}",
                                   file=context.name)
            normalized = tuple(normalize_element(element) for element in key)
            if normalized in entries:
                raise MappingError(f"{where}Key {normalized!r} appears more than once ", file=context.name)
            choice = build_choice(raw_choice, context, depth + 1)
            entries[normalized] = MatchRow(raw_key, normalized, choice)
        rows = tuple(entries[key] for key in sorted(entries))
        return cls(params, rows, context.merge_overlaps, context.substitutions, where)

    @property
    def valid_values(self) -> dict[str, list[str]]:
        """Per parameter, the values the pre-check accepts (empty: unchecked)."""
        return {column.param: sorted(column.valid) for column in self.columns}

    def children(self) -> list[Any]:
        return [row.choice for row in self.rows]

    def lookup_values(self, header: Mapping[str, Any]) -> list[Any]:
        """The header value per parameter after the missing-key rule (§6.4)."""
        values = []
        for column in self.columns:
            param = column.param
            if param in header:
                values.append(header[param])
            elif column.has_na:
                values.append("UNDEFINED")
            else:
                raise MissingKeyError(f"Match required lookup parameter '{param}' is undefined.", keyword=param)
        return values

    def winnow(self, header: Mapping[str, Any]) -> list[tuple[int, int]]:
        """Surviving ``(row index, score)`` pairs, best score first, stored order within."""
        values = self.lookup_values(header)
        for column, value in zip(self.columns, values):
            column.precheck(value)
        return self._ranked(values)

    def _ranked(self, values: list[Any]) -> list[tuple[int, int]]:
        if not self.columns:
            return [(row, 0) for row in range(len(self.rows))]
        per_column = [column.scores(value if isinstance(value, str) else str(value))
                      for column, value in zip(self.columns, values)]
        per_column.sort(key=len)
        first, rest = per_column[0], per_column[1:]
        survivors = []
        for row, score in first.items():
            total = score
            for other in rest:
                part = other.get(row)
                if part is None:
                    break
                total += part
            else:
                survivors.append((row, total))
        survivors.sort(key=lambda pair: (-pair[1], pair[0]))
        return survivors

    def choose(self, header: Mapping[str, Any]) -> Any:
        ranked = self.winnow(header)
        rows = self.rows
        start = 0
        while start < len(ranked):
            score = ranked[start][1]
            end = start
            while end < len(ranked) and ranked[end][1] == score:
                end += 1
            group = tuple(index for index, _ in ranked[start:end])
            start = end
            if len(group) > 1:
                if not self.merge_overlaps:
                    raise AmbiguousMatchError("More than one match clause matched.")
                first = rows[group[0]].choice
                if not isinstance(first, Selector):
                    return tuple(rows[index].choice for index in group)
                target = self._merged_group(group)
            else:
                target = rows[group[0]].choice
            if isinstance(target, Selector):
                try:
                    return target.choose(header)
                except LookupFailure:
                    continue
            return target
        raise NoMatchError("No match found.")

    def _merged_group(self, group: tuple[int, ...]) -> Selector:
        merged = self._merged.get(group)
        if merged is None:
            first = self.rows[group[0]].choice
            merged = first.merge([self.rows[index].choice for index in group[1:]])
            self._merged[group] = merged
        return merged

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_merged"] = {}
        return state
