"""Dataset date/time parsing for the time-based selectors (rules-language §7.1, §7.2, §8.3).

Owns three things: the lenient date/time syntax CRDS accepts in dataset headers
(:func:`reformat_date`, :func:`parse_datetime`), the way UseAfter/ClosestTime build one time
string from their parameters (:func:`dataset_time`), and the error texts of both.

UseAfter compares *strings*, so the exact normalised text matters as much as the instant:
``YYYY-MM-DD HH:MM:SS`` with ``.ffffff`` only when the microseconds are non-zero, and the
microseconds come from binary-float truncation (``12.7`` s gives ``.699999``), not rounding.

The parser keeps the oracle's error order and texts (Python's own ``int()``/``float()``/
unpacking/``datetime`` messages) because they are shown to users inside
``UseAfter Invalid date/time format ... exception is '<reason>'``.  The range checks are
done here rather than by ``datetime`` so the texts do not drift with the Python version.
"""
from __future__ import annotations

__all__ = [
    "DateFormatError",
    "UndefinedDateError",
    "reformat_date",
    "parse_datetime",
    "dataset_time",
]

import datetime
import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

from crdsmini.errors import InvalidDateError, MissingKeyError


class DateFormatError(ValueError):
    """Raised when a date/time string is not in an accepted form; str() is CRDS's reason text."""


class UndefinedDateError(DateFormatError):
    """Raised when the date/time text contains ``UNDEFINED`` (hooks map it to missing-key)."""


_UNDEFINED_REASON = "One or more required date/time values is UNDEFINED"

# Fast path: the canonical form used by essentially every real header.  ASCII digits and
# in-range fields only, so a match is already its own normal form once _is_canonical has
# ruled out year 0000 and days 29-31 that the month lacks.
_CANONICAL = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01]) "
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]")

# §7.2 step 3, verbatim (re.match + '$', so a trailing newline is tolerated as in CRDS).
_ISO_T = re.compile(r"^\d{4}[-/]\d\d[-/]\d\dT\d\d(:\d\d){1,2}(\.\d{1,6})?$")
# §7.2 step 4: any run of 3+ ASCII letters selects the alphabetic form.
_LETTERS = re.compile(r"[A-Za-z]{3,10}")
# ' am'/' pm' glued onto the preceding time so the time stays one token.
_SPACED_AMPM = re.compile(r" ([aApP][mM])")

# §7.2 step 5 numeric date tokens, in the order they are tried.
_MDY = re.compile(r"^(\d\d)/(\d\d)/(\d\d\d\d)$")
_YMD = re.compile(r"^(\d\d\d\d)/(\d\d)/(\d\d)$")
_DMY_19 = re.compile(r"^(\d\d)/(\d\d)/(9\d)$")
_DMY_20 = re.compile(r"^(\d\d)/(\d\d)/([0-3]\d)$")
_COMPACT = re.compile(r"^(\d\d\d\d)(\d\d)(\d\d):(\d\d)(\d\d)(\d\d)$")

_MONTHS = {
    name: number for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun",
         "jul", "aug", "sep", "oct", "nov", "dec"), start=1)
}
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# (year, month, day, hour, minute, second, microsecond), already range-checked.
_Fields = tuple[int, int, int, int, int, int, int]


def _days_in_month(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month]


def _check(year: int, month: int, day: int, hour: int, minute: int, second: int,
           microsecond: int) -> _Fields:
    """Range-check like ``datetime.datetime()`` does, in its order and with its texts."""
    if not 1 <= year <= 9999:
        raise DateFormatError(f"year {year} is out of range")
    if not 1 <= month <= 12:
        raise DateFormatError("month must be in 1..12")
    if not 1 <= day <= _days_in_month(year, month):
        raise DateFormatError("day is out of range for month")
    if not 0 <= hour <= 23:
        raise DateFormatError("hour must be in 0..23")
    if not 0 <= minute <= 59:
        raise DateFormatError("minute must be in 0..59")
    if not 0 <= second <= 59:
        raise DateFormatError("second must be in 0..59")
    if not 0 <= microsecond <= 999999:
        raise DateFormatError("microsecond must be in 0..999999")
    return (year, month, day, hour, minute, second, microsecond)


def _int(text: str) -> int:
    # Python's int() on purpose (it accepts ' 7', '+7', '0_7' and non-ASCII digits, as the
    # oracle does); only its exception type is translated.
    try:
        return int(text)
    except ValueError as exc:
        raise DateFormatError(str(exc)) from None


def _unpack_error(count: int) -> DateFormatError:
    # The texts of CPython 3.10-3.12's unpacking errors, which is what the oracle shows.
    if count < 4:
        return DateFormatError(f"not enough values to unpack (expected 4, got {count})")
    return DateFormatError("too many values to unpack (expected 4)")


def _parse_time(text: str) -> tuple[int, int, int, int]:
    """Parse ``H:M``, ``H:M:S`` or ``H:M:S:x`` with an optional AM/PM suffix (§7.2 step 6)."""
    suffix = text[-2:].upper()
    if suffix == "AM" or suffix == "PM":
        text = text[:-2]
    else:
        suffix = ""
    fields = text.split(":")
    if len(fields) == 2:
        hour_text, minute_text = fields
        second_text = "0"
    elif len(fields) in (3, 4):  # H:M:S:x -- the oracle accepts and ignores x
        hour_text, minute_text, second_text = fields[:3]
    else:
        raise _unpack_error(len(fields))
    hour = _int(hour_text)
    minute = _int(minute_text)
    try:
        seconds = float(second_text)
        whole = math.trunc(seconds)
        # Truncation of the binary difference, not rounding: 12.7 -> 699999 us.
        microsecond = math.trunc((seconds - whole) * 1e6)
    except (ValueError, OverflowError) as exc:  # bad text, nan, inf
        raise DateFormatError(str(exc)) from None
    if suffix == "PM":
        if hour < 12:
            hour += 12
    elif suffix == "AM" and hour == 12:
        hour = 0
    return hour, minute, whole, microsecond


def _parse_alphabetic(text: str) -> _Fields:
    """``Jan 1, 2000``, ``03-Jan-2013``, ``Dec 01 1993 00:00:00``... (§7.2 step 4)."""
    base = text
    parts = _SPACED_AMPM.sub(r"\1", text).replace("-", " ").replace("/", " ").split()
    if len(parts) == 3:
        parts.append("00:00")
    if len(parts) != 4:
        raise _unpack_error(len(parts))
    month_text, day_text, year_text, time_text = parts
    if month_text[:3].lower() not in _MONTHS:
        month_text, day_text = day_text, month_text
    month = _MONTHS.get(month_text[:3].lower())
    if month is None:
        raise DateFormatError(f"Invalid month value {month_text!r} in base date {base!r}")
    if day_text.endswith(","):
        day_text = day_text[:-1]
    day = _int(day_text)
    year = _int(year_text)
    return _check(year, month, day, *_parse_time(time_text))


def _parse_numeric(text: str) -> _Fields:
    """``YYYY/MM/DD``, ``MM/DD/YYYY``, ``DD/MM/YY``, ``YYYYMMDD:HHMMSS`` (§7.2 step 5)."""
    text = text.replace("-", "/")
    parts = text.split()
    date_text = parts[0] if parts else ""
    time_text = " ".join(parts[1:]) or "00:00:00"
    if match := _MDY.match(date_text):
        month, day, year = match.groups()
    elif match := _YMD.match(date_text):
        year, month, day = match.groups()
    elif match := _DMY_19.match(date_text):
        day, month, short_year = match.groups()
        year = str(1900 + int(short_year))
    elif match := _DMY_20.match(date_text):
        day, month, short_year = match.groups()
        year = str(2000 + int(short_year))
    elif match := _COMPACT.match(date_text):
        year, month, day, hh, mm, ss = match.groups()
        time_text = f"{hh}:{mm}:{ss}"
    else:
        raise DateFormatError(f"Unknown numerical date format: {text!r}")
    return _check(int(year), int(month), int(day), *_parse_time(time_text))


@lru_cache(maxsize=4096)
def _parse(text: str) -> _Fields:
    """The full §7.2 parser; cached because headers repeat the same few dates."""
    if "UNDEFINED" in text:
        raise UndefinedDateError(_UNDEFINED_REASON)
    if text.endswith(" UT"):
        text = text[:-3]
    if _ISO_T.match(text):
        text = text.replace("T", " ")
    if _LETTERS.search(text):
        return _parse_alphabetic(text)
    return _parse_numeric(text)


def _is_canonical(text: str) -> bool:
    """True when ``text`` is a valid ``YYYY-MM-DD HH:MM:SS`` and hence its own normal form.

    The regex already bounds month, hour, minute and second; only year 0 and days 29-31
    need a look, and string comparison avoids int() for the usual days 01-28.
    """
    return (_CANONICAL.fullmatch(text) is not None and text[:4] != "0000"
            and (text[8:10] <= "28"
                 or int(text[8:10]) <= _days_in_month(int(text[:4]), int(text[5:7]))))


def _format(fields: _Fields) -> str:
    year, month, day, hour, minute, second, microsecond = fields
    text = f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}"
    return f"{text}.{microsecond:06d}" if microsecond else text


def reformat_date(text: str) -> str:
    """Normalise a dataset date/time to ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (spec §7.2).

    The result is what UseAfter compares, as a string, with its rmap keys.  Raises
    :class:`DateFormatError` (or its :class:`UndefinedDateError` subclass) with the
    oracle's reason text.  The input is not stripped: ``dataset_time`` strips, while the
    oracle's ACS bias hook passes ``DATE + ' ' + TIME`` unstripped, so an empty TIME after a
    ``T``-joined DATE (``'...T12:00:00 '``) must fail here as it does there.
    """
    if len(text) == 19 and _is_canonical(text):
        return text
    if len(text) == 10 and _is_canonical(text + " 00:00:00"):
        return text + " 00:00:00"
    return _format(_parse(text))


def canonical_pair(date: str, time: str) -> str | None:
    """``'DATE TIME'`` when the two strings are already ``YYYY-MM-DD`` and ``HH:MM:SS``
    (the usual header pair, its own normal form), else None: the caller takes
    ``dataset_time``.  No stripping, no parsing: one length test and one regex."""
    if len(date) == 10 and len(time) == 8:
        joined = f"{date} {time}"
        if _is_canonical(joined):
            return joined
    return None


def parse_datetime(text: str) -> datetime.datetime:
    """Parse a date/time in any §7.2 form (ClosestTime keys and dataset values)."""
    if len(text) == 19 and _is_canonical(text):
        return datetime.datetime.fromisoformat(text)
    return datetime.datetime(*_parse(text))


def dataset_time(header: Mapping[str, object], params: Sequence[str],
                 selector_name: str) -> str:
    """Build the normalised dataset time from a selector's parameters (spec §7.1).

    ``selector_name`` (``'UseAfter'``, ``'ClosestTime'``) prefixes the missing-parameter and
    invalid-date messages; the ``UNDEFINED`` message always says ``UseAfter`` because the
    oracle raises it from shared code.  All parameters are looked up before any value is
    checked, as the oracle gathers its parameters before validating them.
    """
    values = []
    for name in params:
        try:
            value = header[name]
        except KeyError:
            raise MissingKeyError(
                f"{selector_name} required lookup parameter '{name}' is undefined.",
                keyword=name) from None
        values.append((value if type(value) is str else str(value)).strip())
    if "UNDEFINED" in values:
        name = params[values.index("UNDEFINED")]
        raise MissingKeyError(f"UseAfter parameter '{name}' is UNDEFINED.", keyword=name)
    joined = " ".join(values).strip()
    try:
        return reformat_date(joined)
    except DateFormatError as exc:
        raise InvalidDateError(
            f"{selector_name} Invalid date/time format for {tuple(params)!r} "
            f"value = {joined!r} exception is {str(exc)!r}") from None
