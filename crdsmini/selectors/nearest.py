"""Numeric selectors: GeometricallyNearest, Bracket and SelectVersion (rules-language §8)."""
from __future__ import annotations

import sys
from typing import Any, Mapping

from crdsmini.conditioning import condition_value
from crdsmini.errors import InvalidNumberError, MappingError, MissingKeyError, OtherError
from crdsmini.literals import SelectorCall
from crdsmini.selectors.base import BuildContext, Selector, build_choice, float32, resolve_choice

__all__ = ["GeometricallyNearestSelector", "BracketSelector", "SelectVersionSelector"]




def _only_param(params: tuple[str, ...]) -> str:
    """The one parameter of these selectors; an empty parkey level fails the lookup as in CRDS."""
    if not params:
        raise OtherError("tuple index out of range")
    return params[0]


def _number(header: Mapping[str, Any], param: str, kind: str, missing_message: str) -> float:
    if param not in header:
        raise MissingKeyError(missing_message, keyword=param)
    value = header[param]
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidNumberError(f"{kind} Invalid number for {param!r} value = {str(value)!r}",
                                 keyword=param) from None


class _Keyed(Selector):
    def __init__(self, params: tuple[str, ...], keys: list, choices: list) -> None:
        self.params = params
        self.keys = keys
        self.choices = choices

    def children(self) -> list[Any]:
        return list(self.choices)


class GeometricallyNearestSelector(_Keyed):
    """``GeometricallyNearest({number: choice})``: the key nearest the value, float32 distance."""

    kind = "GeometricallyNearest"

    @classmethod
    def build(cls, call: SelectorCall, context: BuildContext, depth: int) -> "GeometricallyNearestSelector":
        params = context.params(depth)
        table = {condition_value(key): build_choice(value, context, depth + 1)
                 for key, value in call.argument.resolved().items()}
        keys = sorted(table)
        for key in keys:
            try:
                float(key)
            except ValueError:
                raise MappingError(f"Can't load file {context.name} : GeometricallyNearest key {key!r} is not a "
                                   "number", file=context.name) from None
        return cls(params, keys, [table[key] for key in keys])

    def __init__(self, params, keys, choices) -> None:
        super().__init__(params, keys, choices)
        self._numbers = [float32(float(key)) for key in keys]

    def choose(self, header: Mapping[str, Any]) -> Any:
        param = _only_param(self.params)
        value = float32(_number(header, param, self.kind,
                                 f"GeometricallyNearest required lookup parameter '{param}' is undefined."))
        best, best_distance = 0, None
        for index, number in enumerate(self._numbers):
            distance = float32(abs(float32(number - value)))
            if best_distance is None or distance < best_distance:
                best, best_distance = index, distance
        if best_distance is None:
            raise OtherError("GeometricallyNearest has no keys")
        return resolve_choice(self.choices[best], header)


class BracketSelector(_Keyed):
    """``Bracket({number: choice})``: the pair of choices around the value."""

    kind = "Bracket"

    @classmethod
    def build(cls, call: SelectorCall, context: BuildContext, depth: int) -> "BracketSelector":
        params = context.params(depth)
        table = {key: build_choice(value, context, depth + 1) for key, value in call.argument.resolved().items()}
        try:
            keys = sorted(table)
        except TypeError as exc:
            raise MappingError(f"Can't load file {context.name} : {exc}", file=context.name) from None
        return cls(params, keys, [table[key] for key in keys])

    def choose(self, header: Mapping[str, Any]) -> Any:
        param = _only_param(self.params)
        value = _number(header, param, self.kind, f"{param!r}")
        keys = self.keys
        for key in keys:
            if isinstance(key, bool) or not isinstance(key, (int, float)):
                raise OtherError(f"'>' not supported between instances of 'float' and '{type(key).__name__}'")
        if not keys:
            raise OtherError("list index out of range")
        if value != value:
            raise InvalidNumberError(f"{self.kind} Invalid number for {param!r} value = {str(header[param])!r}",
                                     keyword=param)
        if value <= keys[0]:
            low = high = 0
        elif value >= keys[-1]:
            low = high = len(keys) - 1
        else:
            high = next(i for i, k in enumerate(keys) if k >= value)
            low = high if keys[high] == value else high - 1
        return (resolve_choice(self.choices[low], header), resolve_choice(self.choices[high], header))


_RELATIONS = ("<", "<=", "=")


def _parse_version_key(key: Any, where: str) -> tuple[Any, str]:
    text = str(key).strip()
    if text.lower() == "default":
        return sys.maxsize, "="
    for prefix, relation in (("<=", "<="), ("==", "="), ("<", "<"), ("=", "=")):
        if text.startswith(prefix):
            text = text[len(prefix):].strip()
            break
    else:
        relation = "="
    return _literal_number(text, where), relation


def _literal_number(text: str, where: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise MappingError(f"{where}invalid SelectVersion key {text!r}") from None


class SelectVersionSelector(_Keyed):
    """``SelectVersion({'<v': choice, 'default': choice})``: first entry not below the value."""

    kind = "SelectVersion"

    @classmethod
    def build(cls, call: SelectorCall, context: BuildContext, depth: int) -> "SelectVersionSelector":
        params = context.params(depth)
        where = f"Can't load file {context.name} : "
        entries = []
        for key, value in call.argument.resolved().items():
            number, relation = _parse_version_key(key, where)
            entries.append(((number, _RELATIONS.index(relation)), build_choice(value, context, depth + 1)))
        entries.sort(key=lambda entry: entry[0])
        return cls(params, [e[0] for e in entries], [e[1] for e in entries])

    def choose(self, header: Mapping[str, Any]) -> Any:
        param = _only_param(self.params)
        if param not in header:
            raise MissingKeyError(f"{param!r}", keyword=param)
        text = str(header[param]).strip()
        if text.lower() == "default":
            value: Any = sys.maxsize
        else:
            try:
                float(text)
                value = _literal_number(text, "")
            except (ValueError, MappingError):
                raise InvalidNumberError(f"SelectVersion Invalid number for {param!r} value = {text!r}",
                                         keyword=param) from None
        probe = (value, _RELATIONS.index("="))
        for key, choice in zip(self.keys, self.choices):
            if key >= probe:
                return resolve_choice(choice, header)
        raise OtherError("list index out of range")
