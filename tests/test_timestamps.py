"""Rules-language §7.1/§7.2: dataset time building and the accepted date/time syntax."""
from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdsmini.errors import InvalidDateError, MissingKeyError
from crdsmini.timestamps import (
    DateFormatError,
    UndefinedDateError,
    dataset_time,
    parse_datetime,
    reformat_date,
)

NOON = "2000-01-01 12:00:00"
MIDNIGHT = "2000-01-01 00:00:00"

# (text, normalised) — §7.2's verified examples written as the joined DATE TIME string
# dataset_time hands over, then the forms the step list names, then float-second traps.
ACCEPTED = [
    # §7.2 verified table
    ("2000-01-01 12:00:00", NOON),
    ("2000-01-01 11:59:59.999", "2000-01-01 11:59:59.999000"),
    ("2000-01-01 12:00", NOON),
    ("2000-01-01 12:00:00.000001", "2000-01-01 12:00:00.000001"),
    ("2000/01/01 12:00:00", NOON),
    ("01/01/2000 12:00:00", NOON),
    ("01-01-2000 12:00:00", NOON),
    ("01/01/00 12:00:00", NOON),
    ("Jan 01 2000 12:00:00", NOON),
    ("Jan 1, 2000 12:00:00", NOON),
    ("01/01/99 12:00:00", "1999-01-01 12:00:00"),
    ("2000-01-01T12:00:00", NOON),
    ("2000-01-01 12:00:00 PM", NOON),
    ("2000-01-01 12:00:00 AM", MIDNIGHT),
    ("2000-01-01 12:00:00:50", NOON),
    ("20000101:120000", NOON),
    ("2000-01-01", MIDNIGHT),
    ("2020-06-01T00:00:00.123", "2020-06-01 00:00:00.123000"),
    ("2020-06-01 00:00:00.1234567", "2020-06-01 00:00:00.123456"),
    ("2020-06-01T00:00", "2020-06-01 00:00:00"),
    ("Jun 01 2020", "2020-06-01 00:00:00"),
    # §7.2 named forms
    ("Jan 1, 2000", MIDNIGHT),
    ("03-Jan-2013", "2013-01-03 00:00:00"),
    ("Dec 01 1993 00:00:00 UT", "1993-12-01 00:00:00"),
    ("2000-01-01 12:00:00 UT", NOON),
    ("January 15, 2004", "2004-01-15 00:00:00"),
    ("15 Feb 2004 10:20", "2004-02-15 10:20:00"),
    ("15/Feb/2004", "2004-02-15 00:00:00"),
    ("feb 29 2004", "2004-02-29 00:00:00"),
    ("Mar 3 2004 1:02:03 pm", "2004-03-03 13:02:03"),
    ("Mar 3 2004 12:30 am", "2004-03-03 00:30:00"),
    ("2000-01-01T12:00:00.5", "2000-01-01 12:00:00.500000"),
    ("2000/01/01T12:00", NOON),
    ("31/12/95", "1995-12-31 00:00:00"),
    ("31-12-39 23:59:59", "2039-12-31 23:59:59"),
    ("12/31/1995", "1995-12-31 00:00:00"),
    ("19991231:235959", "1999-12-31 23:59:59"),
    ("2000-01-01 1:2:3", "2000-01-01 01:02:03"),
    ("2000-01-01 01:00 PM", "2000-01-01 13:00:00"),
    ("2000-01-01 01:00pm", "2000-01-01 13:00:00"),
    ("2000-01-01 13:00 PM", "2000-01-01 13:00:00"),  # PM only lifts hours < 12
    ("2000-02-29 00:00:00", "2000-02-29 00:00:00"),  # 400-year leap
    ("0001-01-01 00:00:00", "0001-01-01 00:00:00"),
    ("9999-12-31 23:59:59", "9999-12-31 23:59:59"),
    # float seconds: binary truncation, not rounding
    ("2000-01-01 00:00:12.7", "2000-01-01 00:00:12.699999"),
    ("2000-01-01 00:00:33.3", "2000-01-01 00:00:33.299999"),
    ("2000-01-01 00:00:01.123", "2000-01-01 00:00:01.123000"),
    ("2000-01-01 00:00:00.0", MIDNIGHT),                # zero fraction is not printed
    ("2000-01-01 00:00:1e1", "2000-01-01 00:00:10"),    # seconds go through float()
    ("2000-01-01 00:00:59.9999999", "2000-01-01 00:00:59.999999"),
    ("2000-01-01 00:00:01.000001", "2000-01-01 00:00:01"),  # 0.99999..us truncates to 0
]

# (text, reason) — rejected forms and the exact CRDS reason text.
REJECTED = [
    ("2000-01-01 12", "not enough values to unpack (expected 4, got 1)"),
    ("2000-01-01 1:2:3:4:5", "too many values to unpack (expected 4)"),
    ("2000-1-1 12:00:00", "Unknown numerical date format: '2000/1/1 12:00:00'"),
    ("2000-01-01T12:00:00 13:00:00",
     "Unknown numerical date format: '2000/01/01T12:00:00 13:00:00'"),
    ("2020-06-01T00:00:00.1234567",
     "Unknown numerical date format: '2020/06/01T00:00:00.1234567'"),
    ("2020-06-01T00:00:00Z", "Unknown numerical date format: '2020/06/01T00:00:00Z'"),
    ("2020-06-01T00", "Unknown numerical date format: '2020/06/01T00'"),
    # not stripped: the T rule is anchored, so an unstripped T form fails (ACS bias hook)
    ("2001-02-03T04:05:06 ", "Unknown numerical date format: '2001/02/03T04:05:06 '"),
    ("01/01/45", "Unknown numerical date format: '01/01/45'"),
    ("", "Unknown numerical date format: ''"),
    ("2004-02-30 00:00:00", "day is out of range for month"),
    ("1900-02-29", "day is out of range for month"),
    ("2000-13-01 00:00:00", "month must be in 1..12"),
    ("2000-00-01", "month must be in 1..12"),
    ("0000-01-01", "year 0 is out of range"),
    ("2000-01-01 24:00:00", "hour must be in 0..23"),
    ("2000-01-01 00:60:00", "minute must be in 0..59"),
    ("2000-01-01 00:00:60", "second must be in 0..59"),
    ("2000-01-01 00:00:60.5", "second must be in 0..59"),
    ("2000-01-01 1x:00", "invalid literal for int() with base 10: '1x'"),
    ("2000-01-01 00:00:", "could not convert string to float: ''"),
    ("Jan 01 2000 1:1:nan", "cannot convert float NaN to integer"),
    ("Jan 01 2000 1:1:inf", "cannot convert float infinity to integer"),
    ("bad-x-date 01:02:03", "Invalid month value 'x' in base date 'bad-x-date 01:02:03'"),
    ("Foo 1 2000", "Invalid month value '1' in base date 'Foo 1 2000'"),
    ("Jan 2000", "not enough values to unpack (expected 4, got 2)"),
    ("2000-01-01 12:00:00 UTC", "too many values to unpack (expected 4)"),
    ("Jan xx 2000", "invalid literal for int() with base 10: 'xx'"),
    ("Feb 30 2001", "day is out of range for month"),
    ("2000-01-01 UNDEFINED", "One or more required date/time values is UNDEFINED"),
]


def _upper_ids(table: list[tuple[str, str]]) -> list[str]:
    return [repr(text) for text, _ in table]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED, ids=_upper_ids(ACCEPTED))
def test_reformat_date_accepts(text: str, expected: str) -> None:
    assert reformat_date(text) == expected


@pytest.mark.parametrize(("text", "expected"), ACCEPTED, ids=_upper_ids(ACCEPTED))
def test_reformat_date_accepts_upper_cased(text: str, expected: str) -> None:
    # The top level conditions (upper-cases) header values before UseAfter sees them.
    assert reformat_date(text.upper()) == expected


WHOLE_SECONDS = [(text, expected) for text, expected in ACCEPTED if "." not in expected]


@pytest.mark.parametrize(("text", "expected"), WHOLE_SECONDS, ids=_upper_ids(WHOLE_SECONDS))
def test_reformat_date_is_a_fixed_point(text: str, expected: str) -> None:
    # Only for whole seconds: re-parsing '.299999' truncates again (to .299998), as CRDS does.
    assert reformat_date(expected) == expected


def test_fraction_is_not_a_fixed_point() -> None:
    assert reformat_date("2000-01-01 00:00:33.299999") == "2000-01-01 00:00:33.299998"


@pytest.mark.parametrize(("text", "reason"), REJECTED, ids=_upper_ids(REJECTED))
def test_reformat_date_rejects(text: str, reason: str) -> None:
    with pytest.raises(DateFormatError) as info:
        reformat_date(text)
    assert str(info.value) == reason


def test_undefined_has_its_own_class() -> None:
    # Hooks that call reformat_date directly report this as missing-key, not invalid-date.
    with pytest.raises(UndefinedDateError):
        reformat_date("UNDEFINED 00:00:00")


@pytest.mark.parametrize(("text", "expected"), [
    ("2000-01-01 12:00:00", datetime.datetime(2000, 1, 1, 12)),
    ("2000-01-01", datetime.datetime(2000, 1, 1)),
    ("Feb 01 2018", datetime.datetime(2018, 2, 1)),
    ("2000-01-01 00:00:12.7", datetime.datetime(2000, 1, 1, 0, 0, 12, 699999)),
    ("01/02/95 03:04 PM", datetime.datetime(1995, 2, 1, 15, 4)),
])
def test_parse_datetime(text: str, expected: datetime.datetime) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize(("text", "reason"), REJECTED, ids=_upper_ids(REJECTED))
def test_parse_datetime_rejects_like_reformat(text: str, reason: str) -> None:
    with pytest.raises(DateFormatError) as info:
        parse_datetime(text)
    assert str(info.value) == reason


DT = ("DATE-OBS", "TIME-OBS")

# (header, expected) — §7.1 and the §7.2 verified table as (DATE-OBS, TIME-OBS) pairs.
DATASET_TIMES = [
    ({"DATE-OBS": "2000-01-01", "TIME-OBS": "12:00:00"}, NOON),
    ({"DATE-OBS": " 2000-01-01 ", "TIME-OBS": " 12:00:00 "}, NOON),
    ({"DATE-OBS": "2000-01-01", "TIME-OBS": ""}, MIDNIGHT),
    ({"DATE-OBS": "2000-01-01T12:00:00", "TIME-OBS": ""}, NOON),
    ({"DATE-OBS": "2000-01-01 12:00:00", "TIME-OBS": ""}, NOON),
    ({"DATE-OBS": "20000101:120000", "TIME-OBS": ""}, NOON),
    ({"DATE-OBS": "Jan 1, 2000", "TIME-OBS": "12:00:00"}, NOON),
    ({"DATE-OBS": "2000-01-01", "TIME-OBS": "12:00:00 PM"}, NOON),
    ({"DATE-OBS": "2000-01-01", "TIME-OBS": "  12:00:00   AM "}, MIDNIGHT),
    ({"DATE-OBS": "01/01/99", "TIME-OBS": "12:00:00", "OTHER": "x"}, "1999-01-01 12:00:00"),
]


@pytest.mark.parametrize(("header", "expected"), DATASET_TIMES)
def test_dataset_time(header: dict[str, str], expected: str) -> None:
    assert dataset_time(header, DT, "UseAfter") == expected


@pytest.mark.parametrize(("params", "header", "expected"), [
    (("ROMAN.META.EXPOSURE.START_TIME",),
     {"ROMAN.META.EXPOSURE.START_TIME": "2020-06-01T00:00:00.123"}, "2020-06-01 00:00:00.123000"),
    (("ROMAN.META.EXPOSURE.START_TIME",),
     {"ROMAN.META.EXPOSURE.START_TIME": " 2020-06-01 00:00:00.1234567 "},
     "2020-06-01 00:00:00.123456"),
    (("D", "T", "Z"), {"D": "2000-01-01", "T": "12:00", "Z": "PM"}, NOON),
])
def test_dataset_time_other_arities(params: tuple[str, ...], header: dict[str, str],
                                    expected: str) -> None:
    assert dataset_time(header, params, "UseAfter") == expected


# (selector, header, error class, category, exact message)
DATASET_ERRORS = [
    ("UseAfter", {"DATE-OBS": "2000-01-01"}, MissingKeyError, "missing-key",
     "UseAfter required lookup parameter 'TIME-OBS' is undefined."),
    ("ClosestTime", {"TIME-OBS": "00:00:00"}, MissingKeyError, "missing-key",
     "ClosestTime required lookup parameter 'DATE-OBS' is undefined."),
    # every name is looked up before any value is judged
    ("UseAfter", {"DATE-OBS": "UNDEFINED"}, MissingKeyError, "missing-key",
     "UseAfter required lookup parameter 'TIME-OBS' is undefined."),
    ("UseAfter", {"DATE-OBS": "2000-01-01", "TIME-OBS": " UNDEFINED "}, MissingKeyError,
     "missing-key", "UseAfter parameter 'TIME-OBS' is UNDEFINED."),
    ("ClosestTime", {"DATE-OBS": "UNDEFINED", "TIME-OBS": "UNDEFINED"}, MissingKeyError,
     "missing-key", "UseAfter parameter 'DATE-OBS' is UNDEFINED."),
    ("UseAfter", {"DATE-OBS": "2000-01-01", "TIME-OBS": "12"}, InvalidDateError,
     "invalid-date",
     "UseAfter Invalid date/time format for ('DATE-OBS', 'TIME-OBS') value = "
     "'2000-01-01 12' exception is 'not enough values to unpack (expected 4, got 1)'"),
    ("UseAfter", {"DATE-OBS": "2000-01-01T12:00:00", "TIME-OBS": "13:00:00"},
     InvalidDateError, "invalid-date",
     "UseAfter Invalid date/time format for ('DATE-OBS', 'TIME-OBS') value = "
     "'2000-01-01T12:00:00 13:00:00' exception is "
     "\"Unknown numerical date format: '2000/01/01T12:00:00 13:00:00'\""),
    ("UseAfter", {"DATE-OBS": "2001-02-29", "TIME-OBS": "00:00:00"}, InvalidDateError,
     "invalid-date",
     "UseAfter Invalid date/time format for ('DATE-OBS', 'TIME-OBS') value = "
     "'2001-02-29 00:00:00' exception is 'day is out of range for month'"),
    ("ClosestTime", {"DATE-OBS": "garbage", "TIME-OBS": ""}, InvalidDateError,
     "invalid-date",
     "ClosestTime Invalid date/time format for ('DATE-OBS', 'TIME-OBS') value = "
     "'garbage' exception is 'not enough values to unpack (expected 4, got 1)'"),
    # a value containing UNDEFINED without being UNDEFINED is a bad date, not a missing one
    ("UseAfter", {"DATE-OBS": "2000-01-01", "TIME-OBS": "UNDEFINED1"}, InvalidDateError,
     "invalid-date",
     "UseAfter Invalid date/time format for ('DATE-OBS', 'TIME-OBS') value = "
     "'2000-01-01 UNDEFINED1' exception is "
     "'One or more required date/time values is UNDEFINED'"),
]


@pytest.mark.parametrize(("selector", "header", "error", "category", "message"),
                         DATASET_ERRORS)
def test_dataset_time_errors(selector: str, header: dict[str, str], error: type,
                             category: str, message: str) -> None:
    with pytest.raises(error) as info:
        dataset_time(header, DT, selector)
    assert info.value.category == category
    assert str(info.value) == message


def test_dataset_time_names_the_keyword() -> None:
    with pytest.raises(MissingKeyError) as info:
        dataset_time({"DATE-OBS": "2000-01-01"}, DT, "UseAfter")
    assert info.value.keyword == "TIME-OBS"


def test_dataset_time_single_parameter_message() -> None:
    with pytest.raises(InvalidDateError) as info:
        dataset_time({"START": "2000-1-1"}, ["START"], "UseAfter")
    assert str(info.value) == (
        "UseAfter Invalid date/time format for ('START',) value = '2000-1-1' "
        "exception is \"Unknown numerical date format: '2000/1/1'\"")


_DATEISH = st.text(alphabet="0123456789-/:.T ZUAPMaJnFebDc,UNDEFI\t", max_size=40)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(st.text(max_size=40), _DATEISH))
def test_reformat_date_only_raises_date_format_error(text: str) -> None:
    try:
        result = reformat_date(text)
    except DateFormatError:
        return
    # Anything accepted is the canonical text of what parse_datetime returns.
    moment = parse_datetime(text)
    assert result == (str(moment) if moment.microsecond else str(moment)[:19])
    if "." not in result:
        assert reformat_date(result) == result


@settings(max_examples=500, deadline=None)
@given(st.datetimes().map(lambda moment: moment.replace(microsecond=0)))
def test_canonical_round_trip(moment: datetime.datetime) -> None:
    assert parse_datetime(reformat_date(str(moment))) == moment
    assert reformat_date(str(moment)) == str(moment)
