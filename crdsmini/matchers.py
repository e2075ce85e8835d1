"""Match-key elements: normalisation at load and the per-element matchers.

A Match key element (``'HRC'``, ``'A|B'``, ``'(regex)'``, ``'# >1 and <5 #'``, ...) becomes one
matcher: a function of a header value returning 1 (match), 0 (don't care) or -1 (no match).
Rules are those of rules-language §6.1–6.2; they are compiled once, when the rmap loads.
"""
from __future__ import annotations

import fnmatch
import re
from typing import Any, Callable

from crdsmini.conditioning import condition_value
from crdsmini.errors import MappingError

__all__ = [
    "ElementMatcher",
    "PLAIN",
    "NOT_APPLICABLE",
    "COMPLEX",
    "normalize_element",
    "is_esoteric",
    "compile_element",
    "ALTERNATIVES",
    "alternatives",
]

Matcher = Callable[[str], int]

PLAIN = "plain"            # rule 9: equality; indexed by a dict at lookup
NOT_APPLICABLE = "n/a"     # rule 7: always 0
ALTERNATIVES = "alternatives"  # rule 8 without glob characters ('A|B'): equality with any part
COMPLEX = "complex"        # every other rule: call the function

_INEQUALITY = re.compile(r"^([><]=?)\s*([-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?)")


class ElementMatcher:
    """A compiled key element: its kind, its text and its matching function."""

    __slots__ = ("kind", "text", "match")

    def __init__(self, kind: str, text: str, match: Matcher) -> None:
        self.kind = kind
        self.text = text
        self.match = match


def _split_alternatives(text: str) -> list[str]:
    return [part.strip() for part in text.split("|") if part.strip()]


def alternatives(element: str) -> tuple[str, ...]:
    """The strings an ALTERNATIVES element (``'A|B'``) equals.

    Its matcher scores 1 for exactly these (and for '*' and for its own regex text, the
    pre-step, which starts with ``(?:``), 0 for 'N/A' and -1 otherwise, so a Match column
    indexes it in its equality dict instead of running the regex.
    """
    return tuple(_split_alternatives(element))


def _esoteric_for_normalization(text: str) -> bool:
    upper = text.upper()
    return (text.startswith("#") and text.endswith("#")) or upper.startswith("NOT ") or upper.startswith("BETWEEN")


def normalize_element(element: Any) -> str:
    """One raw key element -> its normalised string (rules-language §6.1 step 3)."""
    if isinstance(element, str):
        if (element.startswith("{") and element.endswith("}")) or (element.startswith("(") and element.endswith(")")):
            return element
        if "|" in element and not _esoteric_for_normalization(element):
            return "|".join(condition_value(part) for part in sorted(_split_alternatives(element)))
        return condition_value(element)
    if isinstance(element, (tuple, list)):
        return "|".join(condition_value(part) for part in element)
    return condition_value(element)


def is_esoteric(element: str) -> bool:
    """True for elements that switch off the valid-value pre-check (§6.3)."""
    upper = element.upper()
    return ((upper[:1] in "{(#" and upper[-1:] in "})#" and upper != "")
            or upper.startswith("BETWEEN") or upper.startswith("NOT"))


def _with_prestep(stored: str, test: Matcher) -> Matcher:
    """The common pre-step: the stored text or '*' matches, 'N/A' doesn't care."""
    def match(value: str) -> int:
        if value == stored or value == "*":
            return 1
        if value == "N/A":
            return 0
        return test(value)
    return match


def _inequality(element: str, where: str) -> Matcher:
    found = _INEQUALITY.match(element)
    if found is None:
        raise MappingError(f"{where}'NoneType' object has no attribute 'group' (bad inequality key {element!r})")
    operator, bound = found.group(1), float(found.group(2))
    compare = {
        ">": lambda x: x > bound,
        ">=": lambda x: x >= bound,
        "<": lambda x: x < bound,
        "<=": lambda x: x <= bound,
    }[operator]

    def test(value: str) -> int:
        try:
            number = float(value)
        except (ValueError, TypeError):
            return -1
        if number != number:  # NaN never compares
            return -1
        return 1 if compare(number) else -1
    return _with_prestep(element, test)


def _conjunction(stored: str, parts: list[str], need_all: bool, where: str) -> Matcher:
    first, second = (compile_element(part.strip(), where).match for part in parts[:2])

    def test(value: str) -> int:
        value = value.upper()
        a, b = first(value), second(value)
        if need_all:
            return 1 if a == 1 and b == 1 else -1
        return 1 if a == 1 or b == 1 else -1
    return _with_prestep(stored, test)


def _alternatives_regex(element: str) -> str:
    """The regex of an ``A|B*`` element: its alternatives as globs, each anchored."""
    return "|".join(f"(?:{fnmatch.translate(part)})" for part in _split_alternatives(element)) or r"(?!)"


def _glob_matcher(element: str, compile_now: bool) -> Matcher:
    """The matcher of an ``A|B*`` element.

    Plain alternatives (no glob character, kind ALTERNATIVES) are answered by Match columns
    from their equality index, so their regex is built only if this function is ever
    asked about a value other than '*' or 'N/A' (explain, or a value starting '(?:'):
    fnmatch and re.compile stay out of load time.  Real globs (``compile_now``) compile at
    once, so that no lookup pays for it.  A race only builds the same regex twice.
    """
    built: list[Any] = []
    if compile_now:
        text = _alternatives_regex(element)
        built[:] = (text, re.compile(text).match)

    def match(value: str) -> int:
        if value == "*":
            return 1
        if value == "N/A":  # never the regex text, which starts '(?:'
            return 0
        if not built:
            text = _alternatives_regex(element)
            built[:] = (text, re.compile(text).match)
        text, test = built
        if value == text:
            return 1
        return 1 if test(value) else -1
    return match


_GLOB_CHARACTERS = re.compile(r"[*?\[]")


def compile_element(element: str, where: str = "") -> ElementMatcher:
    """Compile one normalised element into a matcher (dispatch of §6.2, first rule wins)."""
    upper = element.upper()
    if element.startswith("(") and element.endswith(")"):
        pattern = element[1:-1]
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise MappingError(f"{where}{exc}") from None
        return ElementMatcher(COMPLEX, element,
                              _with_prestep(pattern, lambda v: 1 if regex.match(v) else -1))
    if element.startswith("{") and element.endswith("}"):
        inner = element[1:-1]
        return ElementMatcher(COMPLEX, element, _with_prestep(inner, lambda v: -1))
    if element.startswith("#") and element.endswith("#") and len(element) >= 2:
        if " AND " in upper:
            return ElementMatcher(COMPLEX, element,
                                  _conjunction(upper, upper[1:-1].split(" AND "), True, where))
        if " OR " in upper:
            return ElementMatcher(COMPLEX, element,
                                  _conjunction(upper, upper[1:-1].split(" OR "), False, where))
        inner = compile_element(element[1:-1], where)
        return ElementMatcher(COMPLEX, element, inner.match)
    if upper.startswith("BETWEEN"):
        tokens = upper.split()
        try:
            if len(tokens) != 3 or float(tokens[1]) > float(tokens[2]):
                raise ValueError
        except ValueError:
            suffix = " should be 'between lower_bound upper_bound'" if len(tokens) == 3 else ""
            raise MappingError(f"{where}Invalid between relation {upper!r}{suffix}") from None
        stored = f">={tokens[1]} AND <{tokens[2]}"
        return ElementMatcher(COMPLEX, element,
                              _conjunction(stored, [f">={tokens[1]}", f"<{tokens[2]}"], True, where))
    if upper.startswith("NOT "):
        inner_match = compile_element(element[4:].strip(), where).match
        return ElementMatcher(COMPLEX, element, lambda v: -inner_match(v))
    if "|" in element or "*" in element:
        kind = COMPLEX if _GLOB_CHARACTERS.search(element) else ALTERNATIVES
        return ElementMatcher(kind, element, _glob_matcher(element, kind == COMPLEX))
    if element == "N/A":
        return ElementMatcher(NOT_APPLICABLE, element, lambda v: 0)
    if element.startswith(">") or element.startswith("<"):
        return ElementMatcher(COMPLEX, element, _inequality(element, where))
    return ElementMatcher(PLAIN, element, _with_prestep(element, lambda v: -1))
