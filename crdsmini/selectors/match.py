"""The Match selector: rows of parameter keys, winnowed and weighted (rules-language §6).

Built once at load: keys normalised and sorted, one compiled matcher per element, and per
column a dict from plain key text to rows, so a lookup touches only the rows that can match
instead of running every matcher of every row.

Rows are sets of bits (Python ints, bit i = row i): a column answers a value with the rows
it scores 1 and the rows it scores 0, and the survivors of a lookup are one AND per column.
Lookups remember what they computed, per column (value -> row bits) and per node (value
tuple -> groups of rows by weight): these are pure functions of the values, and real
headers repeat a small vocabulary, so the second lookup with the same values is a dict probe.
The memos are bounded, never change an answer, and are safe to share between threads
(CPython dict reads and writes are atomic; a race only computes the same entry twice).
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from crdsmini.conditioning import condition_value
from crdsmini.errors import (AmbiguousMatchError, CrdsminiError, InvalidValueError, LookupFailure, MappingError,
                             MissingKeyError, NoMatchError)
from crdsmini.literals import SelectorCall
from crdsmini.matchers import (ALTERNATIVES, NOT_APPLICABLE, PLAIN, ElementMatcher, alternatives, compile_element,
                               is_esoteric, normalize_element)
from crdsmini.selectors.base import BuildContext, Selector, build_choice, chosen

__all__ = ["MatchRow", "MatchColumn", "MatchSelector"]

_WILD = frozenset({"*", "ANY", "N/A"})

class _Absent:
    """A parameter missing from the header (never equal to a header value)."""

    __slots__ = ()

    def __reduce__(self) -> str:
        return "_ABSENT"


_ABSENT = _Absent()
_KEY_TYPES = frozenset({str, _Absent})  # the value types a memo key may hold

_SEVERAL = object()  # several weight groups: find_in_groups decides (never pickled: memos are not)


# Distinct values (per column) and value tuples (per Match node) remembered; past that a
# lookup just computes.  Bounds memory under adversarial or high-cardinality inputs.
_MEMO_LIMIT = 4096


@dataclass(frozen=True)
class MatchRow:
    """One Match entry: the key as written, its normalised form, and its choice."""

    raw_key: Any
    key: tuple[str, ...]
    choice: Any


class MatchColumn:
    """Everything a lookup needs about one parameter of a Match node."""

    __slots__ = ("param", "matchers", "exact", "na_bits", "complex_rows", "alternative_rows", "valid",
                 "accept_all", "has_na", "range", "substitutions", "_memo")

    def __init__(self, param: str, elements: list[str], substitutions: Mapping[Any, Any], where: str) -> None:
        self.param = param
        compiled: dict[str, ElementMatcher] = {}
        self.matchers = tuple(compiled.setdefault(e, compile_element(e, where)) if e not in compiled
                              else compiled[e] for e in elements)
        exact: dict[str, int] = {}
        na_bits = 0
        complex_rows = []
        alternative_rows = []
        for row, matcher in enumerate(self.matchers):
            if matcher.kind == PLAIN:
                exact[matcher.text] = exact.get(matcher.text, 0) | (1 << row)
            elif matcher.kind == NOT_APPLICABLE:
                na_bits |= 1 << row
            elif matcher.kind == ALTERNATIVES:  # 'A|B': equality with any part, indexed like a plain key
                alternative_rows.append(row)
                for part in alternatives(matcher.text):
                    exact[part] = exact.get(part, 0) | (1 << row)
            else:
                complex_rows.append(row)
        self.exact = exact                     # plain key text -> bits of its rows
        self.na_bits = na_bits                 # rows whose key is N/A (always score 0)
        self.complex_rows = tuple(complex_rows)
        self.alternative_rows = tuple(alternative_rows)  # indexed in exact, but see _bits
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
        self._memo: dict[str, tuple[int, int]] = {}

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        state = {name: getattr(self, name) for name in self.__slots__}
        state["_memo"] = {}
        return (None, state)

    def bits(self, value: str) -> tuple[int, int]:
        """The rows of this column that ``value`` matches: (bits scoring 1, bits scoring 0)."""
        found = self._memo.get(value)
        if found is None:
            found = self._bits(value)
            if len(self._memo) < _MEMO_LIMIT:
                self._memo[value] = found
        return found

    def _bits(self, value: str) -> tuple[int, int]:
        ones = zeros = 0
        if value == "*" or value == "N/A":
            for row, matcher in enumerate(self.matchers):
                score = matcher.match(value)
                if score > 0:
                    ones |= 1 << row
                elif score == 0:
                    zeros |= 1 << row
            return ones, zeros
        ones = self.exact.get(value, 0)
        zeros = self.na_bits
        matchers = self.matchers
        if value[:3] == "(?:":  # an 'A|B' matcher also accepts its own regex text (pre-step)
            for row in self.alternative_rows:
                if matchers[row].match(value) > 0:
                    ones |= 1 << row
        for row in self.complex_rows:
            score = matchers[row].match(value)
            if score > 0:
                ones |= 1 << row
            elif score == 0:
                zeros |= 1 << row
        return ones, zeros

    def precheck(self, value: Any) -> None:
        """The valid-value check of §6.3; raises InvalidValueError."""
        if value in self.valid or self.accept_all:
            return
        error = self._verdict(str(value))
        if error is not None:
            raise error

    def _verdict(self, value: str) -> InvalidValueError | None:
        """The pre-check's error for ``value``, or None when it passes (returned, not
        raised: the lookup path answers failures without raising)."""
        valid = self.valid
        if value in valid or condition_value(value) in valid or self.accept_all:
            return None
        if value.startswith("NOT"):
            return self._verdict(value[3:].strip())
        if is_esoteric(value) or value in _WILD:
            return None
        if self.range is not None:
            low, high = self.range
            try:
                inside = low <= float(value) <= high
            except ValueError:
                inside = False
            if inside:
                return None
            return InvalidValueError(
                f" parameter='{self.param}' value ='{value}' is not in range [{low} .. {high}]",
                keyword=self.param)
        target = _substitution_target(self.substitutions, value)
        if target is not None:
            for part in target if isinstance(target, tuple) else (target,):
                error = self._verdict(str(part))
                if error is not None:
                    return error
            return None
        return InvalidValueError(f" parameter='{self.param}' value='{value}' is not in {sorted(valid)!r}",
                                 keyword=self.param)


def _rows_of(bits: int) -> list[int]:
    """The row numbers set in ``bits``, ascending."""
    rows = []
    while bits:
        low = bits & -bits
        rows.append(low.bit_length() - 1)
        bits ^= low
    return rows


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
        self._groups: dict[tuple[str, ...], tuple[tuple[int, ...], ...]] = {}
        # Raw header values (str, or _ABSENT) -> (_single_target's answer: a choice, a
        # merged selector, an error or _SEVERAL; and the weight groups).
        self._checked: dict[tuple, tuple[Any, tuple[tuple[int, ...], ...]]] = {}
        self._defaults = tuple("UNDEFINED" if column.has_na else _ABSENT for column in self.columns)
        self._absents = (_ABSENT,) * len(self.columns)
        # The parameter values of a plain dict header in one C call (3-4x faster than
        # map(header.get)); itemgetter gives a tuple only for two keys or more.
        self._getter = operator.itemgetter(*params) if len(params) >= 2 else None
        # The columns whose pre-check can fail (the others accept every value).
        self._prechecked = tuple(index for index, column in enumerate(self.columns) if not column.accept_all)

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
        values = list(map(header.get, self.params, self._defaults))
        if any(value is _ABSENT for value in values):
            raise self._missing_key(values)
        return values

    def _missing_key(self, values: Sequence[Any]) -> MissingKeyError:
        """The error for the first absent parameter of ``values`` (the header's values with
        ``_defaults`` filled in: "UNDEFINED" where the column has an N/A key, else _ABSENT)."""
        param = next(column.param for column, value in zip(self.columns, values) if value is _ABSENT)
        return MissingKeyError(f"Match required lookup parameter '{param}' is undefined.", keyword=param)

    def winnow(self, header: Mapping[str, Any]) -> list[tuple[int, int]]:
        """Surviving ``(row index, score)`` pairs, best score first, stored order within."""
        values = self.lookup_values(header)
        for column, value in zip(self.columns, values):
            column.precheck(value)
        return self._ranked(values)

    def _ranked(self, values: list[Any] | tuple[Any, ...]) -> list[tuple[int, int]]:
        if not self.columns:
            return [(row, 0) for row in range(len(self.rows))]
        survivors = -1  # every row
        scoring = []
        for column, value in zip(self.columns, values):
            ones, zeros = column.bits(value if isinstance(value, str) else str(value))
            survivors &= ones | zeros
            if not survivors:
                return []
            scoring.append(ones)
        ranked = [(row, sum(ones >> row & 1 for ones in scoring)) for row in _rows_of(survivors)]
        ranked.sort(key=lambda pair: (-pair[1], pair[0]))
        return ranked

    def _group(self, key: tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
        if self.columns:
            groups = self._grouped(key)
        else:  # a Match without parameters: every row, all of weight 0
            groups = (tuple(range(len(self.rows))),) if self.rows else ()
        if len(self._groups) < _MEMO_LIMIT:
            self._groups[key] = groups
        return groups

    def _grouped(self, key: tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
        """``_ranked`` grouped by weight, computed on row bitsets: no per-row Python work.

        A surviving row's weight is the number of columns minus the number of columns that
        score it 0 (an N/A key, or a '*' key against an N/A value), so rows are grouped by
        how many 0 scores they have, fewest first.  Zero scores are rare: usually no
        survivor has one and the survivors are a single group.  Otherwise the 0 scores are
        counted in binary across the rows at once, one bitset per bit of the count
        (``planes``), and a count's rows are the AND of each plane or its complement.
        This is the first lookup of every new value tuple: it runs once per distinct header
        in a bulk run.
        """
        survivors = -1  # every row
        zero_sets = []
        for column, value in zip(self.columns, key):
            ones, zeros = column.bits(value)
            survivors &= ones | zeros
            if not survivors:
                return ()
            if zeros:
                zero_sets.append(zeros)
        if not survivors & (survivors - 1):  # the usual case: a single row survives
            return ((survivors.bit_length() - 1,),)
        zero_sets = [zeros & survivors for zeros in zero_sets if zeros & survivors]
        if not zero_sets:
            return (tuple(_rows_of(survivors)),)
        planes: list[int] = []
        for carry in zero_sets:
            for index, plane in enumerate(planes):  # planes += carry, a ripple-carry add
                if not carry:
                    break
                planes[index] = plane ^ carry
                carry &= plane
            if carry:
                planes.append(carry)
        found = []
        remaining = survivors
        for count in range(1 << len(planes)):
            rows = remaining
            for index, plane in enumerate(planes):
                rows &= plane if count >> index & 1 else ~plane
                if not rows:
                    break
            if rows:
                found.append(tuple(_rows_of(rows)))
                remaining ^= rows
                if not remaining:
                    break
        return tuple(found)

    def choose(self, header: Mapping[str, Any]) -> Any:
        return chosen(self.find(header))

    def find(self, header: Mapping[str, Any]) -> Any:
        # The hot path of every lookup: the parameter values in one C-level pass, then one
        # probe of the values already pre-checked and grouped.  Anything else (a missing
        # key, a value not seen yet) takes the full path below.
        getter = self._getter
        if getter is not None and type(header) is dict:
            try:
                values = getter(header)
            except KeyError:  # a missing key: its default
                values = tuple(map(header.get, self.params, self._defaults))
        elif len(self.params) == 1:
            values = (header.get(self.params[0], self._defaults[0]),)
        else:
            values = tuple(map(header.get, self.params, self._defaults))
        # Only tuples of strings and _ABSENT are stored, so no other value (1 == 1.0 ==
        # True) can match; an unhashable value takes the full path.
        try:
            found = self._checked.get(values)
        except TypeError:
            found = None
        if found is None:
            return self._find_checked(header, values)
        target, groups = found
        if type(target) is str:  # a file name right below this level
            return target
        if target is _SEVERAL:
            return self.find_in_groups(groups, header)
        if not isinstance(target, Selector):  # a tuple of tied files, or a remembered error
            return target
        found = target.find(header)
        if isinstance(found, LookupFailure):
            return NoMatchError("No match found.")
        return found

    def _find_checked(self, header: Mapping[str, Any], values: tuple) -> Any:
        # The missing-key rule, the pre-check and the weight groups; a failure of these is
        # a function of the values alone, so it is remembered like a choice.
        plain = _KEY_TYPES.issuperset(map(type, values))
        rememberable = plain and len(self._checked) < _MEMO_LIMIT
        error = self._precheck_error(values, plain)
        if error is not None:
            if rememberable:
                self._checked[values] = (error, ())
            return error
        # No _ABSENT is left (the missing-key rule passed): plain values are all str.
        key_tuple = values if plain else tuple(map(str, values))
        groups = self._groups.get(key_tuple)
        if groups is None:
            groups = self._group(key_tuple)
        if rememberable:
            self._checked[values] = (self._single_target(groups), groups)
        return self.find_in_groups(groups, header)

    def _precheck_error(self, values: tuple, plain: bool = False) -> CrdsminiError | None:
        """The first failure of the missing-key rule (every key first), then of the
        valid-value pre-check, for ``values`` (the header's, ``_defaults`` filled in).
        ``plain``: the values are all str or _ABSENT, so columns that accept every value
        need no look (any other value still meets ``in``, which may raise TypeError)."""
        if any(map(operator.is_, values, self._absents)):
            return self._missing_key(values)
        columns = self.columns
        for index in self._prechecked if plain else range(len(columns)):
            value = values[index]
            column = columns[index]
            if not (value in column.valid or column.accept_all):
                error = column._verdict(value if type(value) is str else str(value))
                if error is not None:
                    return error
        return None

    def _single_target(self, groups: tuple[tuple[int, ...], ...]) -> Any:
        """What ``find_in_groups`` would look at when there is one group only, remembered
        with the groups so the usual lookup skips re-deriving it: the one best row's
        choice, the merged selector (or tuple) of a tie, the error of an empty match or of
        a tie that may not merge; _SEVERAL when weaker groups may be tried after a failure.

        A one-group failure below the target is "No match found." either way, which is
        what ``find`` answers for a failing target.
        """
        if not groups:
            return NoMatchError("No match found.")
        if len(groups) > 1:
            return _SEVERAL
        (group,) = groups
        rows = self.rows
        if len(group) == 1:
            return rows[group[0]].choice
        if not self.merge_overlaps:
            return AmbiguousMatchError("More than one match clause matched.")
        if not isinstance(rows[group[0]].choice, Selector):
            return tuple(rows[index].choice for index in group)
        try:
            return self._merged_group(group)
        except CrdsminiError as exc:  # the tied selectors cannot merge
            return exc

    def find_in_groups(self, groups: tuple[tuple[int, ...], ...], header: Mapping[str, Any]) -> Any:
        """Try the weight groups in order (§6.5-6.6); ``header`` feeds the nested selectors.
        A failure is answered as the error object, not raised."""
        rows = self.rows
        for group in groups:
            if len(group) > 1:
                if not self.merge_overlaps:
                    return AmbiguousMatchError("More than one match clause matched.")
                first = rows[group[0]].choice
                if not isinstance(first, Selector):
                    return tuple(rows[index].choice for index in group)
                target = self._merged_group(group)
            else:
                target = rows[group[0]].choice
            if isinstance(target, Selector):
                found = target.find(header)
                if isinstance(found, LookupFailure):
                    continue
                return found
            return target
        return NoMatchError("No match found.")

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
        state["_groups"] = {}
        state["_checked"] = {}
        return state
