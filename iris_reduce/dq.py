"""The data-quality flag table (JWST bit values) and the flags iris_reduce sets itself."""
from __future__ import annotations

__all__ = [
    "FLAGS", "GOOD", "DO_NOT_USE", "NO_FLAT_FIELD", "NO_LIN_CORR", "UNRELIABLE_DARK",
    "flag_names",
]

_NAMES = (
    "DO_NOT_USE", "SATURATED", "JUMP_DET", "DROPOUT", "OUTLIER", "PERSISTENCE", "AD_FLOOR",
    "CHARGELOSS", "UNRELIABLE_ERROR", "NON_SCIENCE", "DEAD", "HOT", "WARM", "LOW_QE", "RC",
    "TELEGRAPH", "NONLINEAR", "BAD_REF_PIXEL", "NO_FLAT_FIELD", "NO_GAIN_VALUE", "NO_LIN_CORR",
    "NO_SAT_CHECK", "UNRELIABLE_BIAS", "UNRELIABLE_DARK", "UNRELIABLE_SLOPE", "UNRELIABLE_FLAT",
    "OPEN", "ADJ_OPEN", "FLUX_ESTIMATED", "MSA_FAILED_OPEN", "OTHER_BAD_PIXEL",
    "REFERENCE_PIXEL",
)

#: Flag name -> bit value (2**n), in bit order.  GOOD (0) is listed first.
FLAGS: dict[str, int] = {"GOOD": 0, **{name: 1 << bit for bit, name in enumerate(_NAMES)}}

GOOD = 0
DO_NOT_USE = FLAGS["DO_NOT_USE"]
NO_FLAT_FIELD = FLAGS["NO_FLAT_FIELD"]
NO_LIN_CORR = FLAGS["NO_LIN_CORR"]
UNRELIABLE_DARK = FLAGS["UNRELIABLE_DARK"]


def flag_names(value: int) -> list[str]:
    """Names of the flags set in ``value`` (for logs and the demo)."""
    return [name for bit, name in enumerate(_NAMES) if value >> bit & 1]
