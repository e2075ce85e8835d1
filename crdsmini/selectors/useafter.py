"""The UseAfter family: choose by date (UseAfter, ClosestTime) or version (VersionAfter).

These are the only selectors that merge when Match rows tie (rules-language §6.6, §7, §8.1,
§8.3).  Keys are kept sorted at load so a lookup is one bisect.
"""
from __future__ import annotations

import bisect
import re
from typing import Any, Mapping

from crdsmini.errors import CrdsminiError, InvalidVersionError, MappingError, MissingKeyError, NoSelectionError
from crdsmini.literals import SelectorCall
from crdsmini.selectors.base import (BuildContext, Selector, build_choice, float32, resolve_choice,
                                     string_keyed_choices)
from crdsmini.timestamps import DateFormatError, canonical_pair, dataset_time, parse_datetime

__all__ = ["UseAfterSelector", "VersionAfterSelector", "ClosestTimeSelector", "parse_version"]


# (date, time) string pairs -> their normalised time, shared by every UseAfter node: the
# nodes of one context (and of one rmap) all see the same dataset pair.  Successes only;
# bounded, and past the bound a pair is simply normalised again.
_PAIR_TIMES: dict[tuple[str, str], str] = {}
_PAIR_TIMES_LIMIT = 65536

_UNKNOWN = object()  # not yet in a UseAfter memo
_MEMO_LIMIT = 4096  # (date, time) pairs remembered per UseAfter node; past that, computed


def _merge_sorted(kind: str, selectors: list["_Sequential"], max_of_equal) -> tuple[list, list]:
    """Union of the keys of several selectors; on an equal key keep the greater choice."""
    merged: dict[Any, Any] = {}
    for selector in selectors:
        for key, choice in zip(selector.keys, selector.choices):
            if key in merged:
                merged[key] = max_of_equal(merged[key], choice)
            else:
                merged[key] = choice
    keys = sorted(merged)
    return keys, [merged[key] for key in keys]


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
        self._memo: dict[tuple, Any] = {}  # (date, time) strings -> choice (UseAfter only)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_memo"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("_memo", {})
        self.__dict__.update(state)

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
        found = self.find(header)
        if isinstance(found, CrdsminiError):
            raise found.detached()
        return found

    def find(self, header: Mapping[str, Any]) -> Any:
        # The usual (DATE, TIME) pair of strings: its choice, or its error, is remembered
        # per pair (a pure function of the two strings), so a repeated lookup is one dict
        # probe.  Failures are answered as error objects (Selector.find).
        params = self.params
        if len(params) == 2:
            date, time = header.get(params[0]), header.get(params[1])
            if type(date) is str and type(time) is str:
                pair = (date, time)
                choice = self._memo.get(pair, _UNKNOWN)
                if choice is _UNKNOWN:
                    choice = self._pair_choice(pair)
                    if len(self._memo) < _MEMO_LIMIT:
                        self._memo[pair] = choice
                return choice.find(header) if isinstance(choice, Selector) else choice
        try:
            choice = self._choice(dataset_time(header, params, "UseAfter"))
        except CrdsminiError as exc:
            return exc
        return choice.find(header) if isinstance(choice, Selector) else choice

    def _pair_choice(self, pair: tuple[str, str]) -> Any:
        """The choice for a (date, time) pair of strings, or the lookup's error object."""
        when = _PAIR_TIMES.get(pair)
        if when is None:
            when = canonical_pair(*pair)
            if when is None:
                try:
                    when = dataset_time(dict(zip(self.params, pair)), self.params, "UseAfter")
                except CrdsminiError as exc:
                    return exc
            if len(_PAIR_TIMES) < _PAIR_TIMES_LIMIT:
                _PAIR_TIMES[pair] = when
        index = bisect.bisect_right(self.keys, when) - 1
        if index < 0:
            return NoSelectionError(f"No selection <= {when!r}")
        return self.choices[index]

    def _choice(self, when: str) -> Any:
        """The choice of the greatest date <= ``when``; raises NoSelectionError."""
        index = bisect.bisect_right(self.keys, when) - 1
        if index < 0:
            raise NoSelectionError(f"No selection <= {when!r}")
        return self.choices[index]

    def neighbours(self, header: Mapping[str, Any]) -> tuple[str, int]:
        """The dataset time and the index of the chosen date (-1: none), for ``explain``."""
        when = dataset_time(header, self.params, "UseAfter")
        return when, bisect.bisect_right(self.keys, when) - 1


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
        index = bisect.bisect_right(self.keys, version) - 1
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
