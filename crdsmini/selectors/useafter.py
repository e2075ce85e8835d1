"""The UseAfter family: choose by date (UseAfter, ClosestTime) or version (VersionAfter).

These are the only selectors that merge when Match rows tie (rules-language §6.6, §7, §8.1,
§8.3).  Keys are kept sorted at load so a lookup is one bisect.
"""
from __future__ import annotations

from bisect import bisect_right
import re
from typing import Any, Mapping

from crdsmini.errors import CrdsminiError, InvalidVersionError, MappingError, MissingKeyError, NoSelectionError
from crdsmini.literals import SelectorCall
from crdsmini.selectors.base import (BuildContext, Selector, build_choice, chosen, float32, resolve_choice,
                                     string_keyed_choices)
from crdsmini.timestamps import DateFormatError, canonical_pair, dataset_time, parse_datetime

__all__ = ["UseAfterSelector", "VersionAfterSelector", "ClosestTimeSelector", "parse_version"]


# (date, time) string pairs -> their normalised time, shared by every UseAfter node: the
# nodes of one context (and of one rmap) all see the same dataset pair, so a lookup is one
# probe here and one bisect.  A pair that fails is remembered with its parameter names
# (they are in the message).  Both bounded: past the bound a pair is normalised again.
_PAIR_TIMES: dict[tuple[str, str], str] = {}
_PAIR_ERRORS: dict[tuple[tuple[str, ...], tuple[str, str]], CrdsminiError] = {}
_PAIR_LIMIT = 65536


def _pair_time(params: tuple[str, ...], pair: tuple[str, str]) -> Any:
    """The normalised time of a (date, time) pair of strings, or its (shared) error."""
    when = canonical_pair(*pair)
    if when is None:
        error = _PAIR_ERRORS.get((params, pair))
        if error is not None:
            return error
        try:
            when = dataset_time(dict(zip(params, pair)), params, "UseAfter")
        except CrdsminiError as exc:
            if len(_PAIR_ERRORS) < _PAIR_LIMIT:
                _PAIR_ERRORS[(params, pair)] = exc
            return exc
    if len(_PAIR_TIMES) < _PAIR_LIMIT:
        _PAIR_TIMES[pair] = when
    return when


_ABSENT_ERRORS: dict[str, MissingKeyError] = {}  # parameter name -> its (shared) error


def _absent_parameter_error(header: Mapping[str, Any], params: tuple[str, ...], values: tuple) -> Any:
    """``dataset_time``'s error when a parameter is absent from the header (it looks every
    parameter up before checking any value, so the first absent one is the error), or None.
    One shared error object per name: a header without its date is a common failure."""
    for name, value in zip(params, values):
        if value is None and name not in header:
            error = _ABSENT_ERRORS.get(name)
            if error is None:
                error = _ABSENT_ERRORS[name] = MissingKeyError(
                    f"UseAfter required lookup parameter '{name}' is undefined.", keyword=name)
            return error
    return None


def _merge_sorted(kind: str, selectors: list["_Sequential"], max_of_equal) -> tuple[list, list]:
    """Union of the keys of several selectors; on an equal key keep the greater choice."""
    merged = dict(zip(selectors[0].keys, selectors[0].choices))
    for selector in selectors[1:]:
        other = dict(zip(selector.keys, selector.choices))
        for key in merged.keys() & other.keys():
            other[key] = max_of_equal(merged[key], other[key])
        merged.update(other)
    keys = sorted(merged)
    return keys, list(map(merged.__getitem__, keys))


def _greater(a: Any, b: Any) -> Any:
    return a if str(a) >= str(b) else b


class _Sequential(Selector):
    """Shared shape: sorted keys, aligned choices, the same parameters."""

    mergeable = True

    def __init__(self, params: tuple[str, ...], keys: list, choices: list, raw_keys: list | None = None) -> None:
        self.params = params
        self.keys = keys
        self.choices = choices
        self.raw_keys = raw_keys if raw_keys is not None else list(keys)

    def children(self) -> list[Any]:
        return list(self.choices)

    def merge(self, others: list[Any]) -> Selector:
        group = [self]
        for other in others:
            if type(other) is not type(self):
                return super().merge(others)
            group.append(other)
        keys, choices = _merge_sorted(self.kind, group, _greater)
        return self._with(keys, choices)

    def _with(self, keys: list, choices: list) -> "_Sequential":
        return type(self)(self.params, keys, choices)


class UseAfterSelector(_Sequential):
    """``UseAfter({date: choice})``: the greatest date string <= the dataset time."""

    kind = "UseAfter"

    @property
    def dates(self) -> list[str]:
        return self.keys

    @classmethod
    def build(cls, call: SelectorCall, context: BuildContext, depth: int) -> "UseAfterSelector":
        keys, choices = string_keyed_choices(call, context, depth)
        return cls(context.params(depth), keys, choices)

    def choose(self, header: Mapping[str, Any]) -> Any:
        return chosen(self.find(header))

    def find(self, header: Mapping[str, Any]) -> Any:
        # The usual (DATE, TIME) pair of strings: its normalised time is one probe of the
        # shared table, then one bisect.  Failures are answered as error objects.
        params = self.params
        if len(params) == 2:
            date, time = header.get(params[0]), header.get(params[1])
            if type(date) is str and type(time) is str:
                pair = (date, time)
                when = _PAIR_TIMES.get(pair)
                if when is None:
                    when = _pair_time(params, pair)
                    if type(when) is not str:
                        return when
                index = bisect_right(self.keys, when) - 1
                if index < 0:
                    return NoSelectionError(f"No selection <= {when!r}")
                choice = self.choices[index]
                if type(choice) is str:  # the usual answer: a file name
                    return choice
                return choice.find(header) if isinstance(choice, Selector) else choice
            absent = _absent_parameter_error(header, params, (date, time))
            if absent is not None:
                return absent
        try:
            choice = self._choice(dataset_time(header, params, "UseAfter"))
        except CrdsminiError as exc:
            return exc
        return choice.find(header) if isinstance(choice, Selector) else choice

    def _choice(self, when: str) -> Any:
        """The choice of the greatest date <= ``when``; raises NoSelectionError."""
        index = bisect_right(self.keys, when) - 1
        if index < 0:
            raise NoSelectionError(f"No selection <= {when!r}")
        return self.choices[index]

    def neighbours(self, header: Mapping[str, Any]) -> tuple[str, int]:
        """The dataset time and the index of the chosen date (-1: none), for ``explain``."""
        when = dataset_time(header, self.params, "UseAfter")
        return when, bisect_right(self.keys, when) - 1


_VERSION = re.compile(r"^(\d{1,8}(\.\d{1,8}(\.\d{1,8})?)?)[A-Za-z0-9_+\-.]{0,128}$")


def parse_version(text: Any) -> tuple[int, int, int] | None:
    """A version string -> (major, minor, patch), or None when it is not a version."""
    found = _VERSION.match(str(text))
    if found is None:
        return None
    parts = [int(p) for p in found.group(1).split(".")]
    return tuple((parts + [0, 0, 0])[:3])  # type: ignore[return-value]


class VersionAfterSelector(_Sequential):
    """``VersionAfter({version: choice})``: the greatest version <= the dataset's."""

    kind = "VersionAfter"

    @classmethod
    def build(cls, call: SelectorCall, context: BuildContext, depth: int) -> "VersionAfterSelector":
        params = context.params(depth)
        table: dict[tuple, Any] = {}
        raw: dict[tuple, Any] = {}
        for key, value in call.argument.resolved().items():
            version = parse_version(key)
            if version is None:
                raise MappingError(f"Can't load file {context.name} : Invalid version string {str(key)!r}",
                                   file=context.name)
            table[version] = build_choice(value, context, depth + 1)
            raw[version] = key
        keys = sorted(table)
        return cls(params, keys, [table[k] for k in keys], [raw[k] for k in keys])

    def choose(self, header: Mapping[str, Any]) -> Any:
        parts = []
        for param in self.params:
            if param not in header:
                raise MissingKeyError(f"VersionAfter required lookup parameter '{param}' is undefined.",
                                      keyword=param)
            parts.append(str(header[param]))
        text = ".".join(parts)
        version = parse_version(text)
        if version is None:
            raise InvalidVersionError(f"Invalid version string {text!r}")
        index = bisect_right(self.keys, version) - 1
        if index < 0:
            raise NoSelectionError(f"No selection <= {version!r}")
        return resolve_choice(self.choices[index], header)



class ClosestTimeSelector(_Sequential):
    """``ClosestTime({date: choice})``: the date nearest the dataset time (float32 seconds)."""

    kind = "ClosestTime"

    def __init__(self, params, keys, choices, raw_keys=None) -> None:
        super().__init__(params, keys, choices, raw_keys)
        self._times = [parse_datetime(key) for key in keys]

    @classmethod
    def build(cls, call: SelectorCall, context: BuildContext, depth: int) -> "ClosestTimeSelector":
        keys, choices = string_keyed_choices(call, context, depth)
        try:
            return cls(context.params(depth), keys, choices)
        except DateFormatError as exc:
            raise MappingError(f"Can't load file {context.name} : bad ClosestTime key: {exc}",
                               file=context.name) from None

    def choose(self, header: Mapping[str, Any]) -> Any:
        when = parse_datetime(dataset_time(header, self.params, "ClosestTime"))
        best, best_distance = -1, None
        for index, moment in enumerate(self._times):
            distance = float32(abs((moment - when).total_seconds()))
            if best_distance is None or distance < best_distance:
                best, best_distance = index, distance
        if best < 0:
            raise NoSelectionError(f"No selection near {when!r}")
        return resolve_choice(self.choices[best], header)
