"""Value conditioning: the normalisation CRDS applies to header values and Match keys.

Owns rules-language §5 and nothing else.  The top-level lookup conditions every header
value and the rmap loader conditions every Match key with the same function, which is what
makes ``'1'``, ``'1.'`` and ``'1.0'`` (or ``'any'`` and ``'*'``) compare equal.  The rmap-level
lookup deliberately does *not* call this.
"""
from __future__ import annotations

__all__ = ["condition_value"]

import re
from functools import lru_cache

# Spec §5 step 2, verbatim.  ASCII [0-9] on purpose: '١' must stay text, as in CRDS.
_NUMBER = re.compile(r"^([-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?|[+-]?[0-9]+\.)$")

# Spec §5 step 3, verbatim: the unescaped '.' in -2147483648.0 is a wildcard in CRDS
# too, so '-2147483648X0' is N/A as well.  Keeping it bug-compatible is the point.
_NOT_APPLICABLE = re.compile(r"^(-2147483648.0|\(\)|N/A|NOT APPLICABLE|NOT_APPLICABLE)$")

# Spec §5 step 4.  A dict lookup is cheaper than a chain of comparisons on the hot path.
_SPECIAL = {
    "ANY": "*",
    "4294967295.0": "-1.0",
    "T": "T",
    "TRUE": "T",
    "F": "F",
    "FALSE": "F",
}


def condition_value(value: object) -> str:
    """Return the CRDS-conditioned text of one header value or Match key (spec §5).

    Any object is accepted because CRDS applies ``str()`` first: ``True`` becomes ``'T'``,
    ``None`` becomes ``'NONE'`` and ``1`` becomes ``'1.0'``.
    """
    return _condition_text(value if type(value) is str else str(value))


# Pure function of a small, highly repetitive vocabulary (instrument words, a few numbers):
# memoising turns the hot path into one dict probe.  The bound keeps odd inputs harmless.
@lru_cache(maxsize=8192)
def _condition_text(raw: str) -> str:
    text = raw.strip().upper()
    # The first character decides cheaply whether the number regex can match at all;
    # most values are instrument words ('HRC', 'F606W') and skip both regexes.
    if text and (text[0] in "0123456789.+-"):
        if _NUMBER.match(text):
            text = str(float(text))
        if _NOT_APPLICABLE.match(text):
            return "N/A"
    elif text in ("()", "N/A", "NOT APPLICABLE", "NOT_APPLICABLE"):
        return "N/A"
    return _SPECIAL.get(text, text)
