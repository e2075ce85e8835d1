"""HST: the do-not-reprocess rule and the ACS/WFC3 biasfile and WFPC2 flatfile hooks.

These run inside lookups, so they are part of what CRDS answers (rules-language §10,
conformance README quirks 7 and 13).  A missing header key inside a hook is reported the way
CRDS reports its bare ``KeyError``: the quoted key name, category missing-key.
"""
from __future__ import annotations

from typing import Any, Mapping

from crdsmini.conditioning import condition_value
from crdsmini.errors import InvalidDateError, MissingKeyError
from crdsmini.observatories import ObservatoryPlugin
from crdsmini.timestamps import DateFormatError, UndefinedDateError, reformat_date

__all__ = ["PLUGIN", "do_not_reprocess"]

_SM4 = "2009-05-14 00:00:00"  # Servicing Mission 4: ACS bias selection changed then
_ACS_HALF_CHIP_COLUMNS = 2048


def do_not_reprocess(header: Mapping[str, Any]) -> bool:
    """WFC data taken at gain 0.5 or 1.4 is not reprocessed: a failed lookup means N/A."""
    try:
        return header["DETECTOR"] == "WFC" and float(header["CCDGAIN"]) in (0.5, 1.4)
    except (KeyError, ValueError, TypeError):
        return False


def _get(header: Mapping[str, Any], key: str) -> Any:
    try:
        return header[key]
    except KeyError:
        raise MissingKeyError(repr(key), keyword=key) from None


_EXPOSURE_TIMES: dict[str, str] = {}  # 'DATE TIME' text -> normalised (successes only)
_EXPOSURE_TIMES_LIMIT = 65536


def _exposure_time(header: Mapping[str, Any]) -> str:
    text = _get(header, "DATE-OBS") + " " + _get(header, "TIME-OBS")
    when = _EXPOSURE_TIMES.get(text)
    if when is not None:
        return when
    try:
        when = reformat_date(text)
    except UndefinedDateError as exc:
        raise MissingKeyError(str(exc)) from None
    except DateFormatError as exc:
        raise InvalidDateError(str(exc)) from None
    if len(_EXPOSURE_TIMES) < _EXPOSURE_TIMES_LIMIT:
        _EXPOSURE_TIMES[text] = when
    return when


def precondition_header_acs_biasfile_v1(rmap: Any, header_in: Mapping[str, Any]) -> dict:
    """Pre-SM4 exposures ignore APERTURE and pair amplifiers on wide readouts; WFC
    full-frame-corner readouts halve NUMROWS."""
    header = dict(header_in)
    before_sm4 = _exposure_time(header) < _SM4
    if before_sm4:
        header["APERTURE"] = "N/A"
    try:  # the first key missing, in the order they are read, is the error (as _get's)
        try:
            numcols = int(float(header["NUMCOLS"]))
        except ValueError:
            pass
        else:
            header["NUMCOLS"] = condition_value(str(numcols))
            if before_sm4 and numcols > _ACS_HALF_CHIP_COLUMNS:
                if header["CCDAMP"] in ("A", "D"):
                    header["CCDAMP"] = "AD"
                elif header["CCDAMP"] in ("B", "C"):
                    header["CCDAMP"] = "BC"
        if header["DETECTOR"] == "WFC" and header["XCORNER"] == "0.0" and header["YCORNER"] == "0.0":
            try:
                numrows = int(float(header["NUMROWS"])) / 2
            except ValueError:
                pass
            else:
                header["NUMROWS"] = condition_value(str(numrows))
    except KeyError as exc:
        key = exc.args[0]
        raise MissingKeyError(repr(key), keyword=key) from None
    return header


def precondition_header_wfc3_biasfile_v1(rmap: Any, header_in: Mapping[str, Any]) -> dict:
    """Full-frame-aperture subarray exposures do not select on APERTURE."""
    header = dict(header_in)
    if _get(header, "SUBARRAY") == "T" and "SUB" not in _get(header, "APERTURE"):
        header["APERTURE"] = "N/A"
    return header


def fallback_header_wfpc2_flatfile_v1(rmap: Any, header_in: Mapping[str, Any]) -> dict:
    """A flat for the filters in the other wheel order is as good: swap FILTER1/FILTER2."""
    header = dict(header_in)
    header["FILTER1"], header["FILTER2"] = _get(header, "FILTER2"), _get(header, "FILTER1")
    return header


PLUGIN = ObservatoryPlugin(
    name="hst",
    dnr_check=do_not_reprocess,
    hooks={
        "precondition_header_acs_biasfile_v1": precondition_header_acs_biasfile_v1,
        "precondition_header_wfc3_biasfile_v1": precondition_header_wfc3_biasfile_v1,
        "fallback_header_wfpc2_flatfile_v1": fallback_header_wfpc2_flatfile_v1,
    },
)
