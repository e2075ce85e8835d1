"""Header records of what was done (spec 8): S_* status, R_* references, versions, HISTORY."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from astropy.io import fits

import iris_reduce
from iris_reduce.calibration import RefChoice
from iris_reduce.config import STEP_KEYWORDS, STEP_ORDER
from iris_reduce.fitsio import utc_now
from iris_reduce.refs import crdsmini_version

__all__ = ["write_records", "cal_version"]

_COMMENTS = {
    "S_DQINIT": "dq_init (MASK) step status",
    "S_NLCORR": "nonlin (NONLINCOEFF) step status",
    "S_DARK": "dark subtraction step status",
    "S_FLAT": "flat field step status",
    "S_SKYSUB": "sky subtraction step status",
    "S_NORMAL": "normalization step status",
    "R_MASK": "MASK reference used",
    "R_NONLIN": "NONLINCOEFF reference used",
    "R_DARK": "DARK reference used",
    "R_FLAT": "FLAT reference used",
}
_R_KEYWORDS = {"dq_init": "R_MASK", "nonlin": "R_NONLIN", "dark": "R_DARK", "flat": "R_FLAT"}


def cal_version() -> str:
    return f"iris_reduce {iris_reduce.__version__}"


def _set(header: fits.Header, key: str, value: Any, comment: str = "") -> None:
    header[key] = (value, comment or _COMMENTS.get(key, ""))


def write_records(header: fits.Header, *, ran: Iterable[str], attempted: Iterable[str],
                  choices: Mapping[str, RefChoice], context: str | None,
                  extra: Mapping[str, Any] | None = None,
                  history: Iterable[str] = ()) -> None:
    """Write the spec-8 records into ``header`` (a copy of the input primary header).

    ``ran``: steps completed now.  ``attempted``: steps selected now (a selected reference
    step whose rules said N/A was attempted but did not run).  A step neither run nor
    attempted keeps the input's status if present, else SKIPPED; COMPLETE is never
    downgraded.  R_* are written for attempted reference steps only.
    """
    ran, attempted = set(ran), set(attempted)
    for step in STEP_ORDER:
        key = STEP_KEYWORDS[step]
        previous = header.get(key)
        previous = previous.strip().upper() if isinstance(previous, str) else None
        if step in ran:
            value = "COMPLETE"
        elif step in attempted:
            value = "COMPLETE" if previous == "COMPLETE" else "SKIPPED"
        else:
            value = previous or "SKIPPED"
        _set(header, key, value)
    for step, choice in choices.items():
        if step in attempted:
            _set(header, _R_KEYWORDS[step], choice.record)
    for key, value in (extra or {}).items():
        if isinstance(value, tuple):
            _set(header, key, value[0], value[1])
        else:
            _set(header, key, value)
    if context is not None:
        _set(header, "CRDS_CTX", context, "crdsmini context used for references")
    _set(header, "CRDS_VER", crdsmini_version(), "reference selection software")
    _set(header, "CAL_VER", cal_version(), "calibration software")
    _set(header, "DATE", utc_now(), "UTC date this file was written")
    for line in history:
        header.add_history(line)
