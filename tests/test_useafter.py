"""Rules-language §7: UseAfter — dataset time, accepted date syntax, string order of keys.

Every rmap is real text written to ``tmp_path``; lookups are at the rmap level, values
passed exactly as written.  Rows marked "verified" are the oracle's answers quoted by the spec.
"""
from __future__ import annotations

import pytest

from crdsmini.errors import InvalidDateError, MissingKeyError, NoSelectionError
from mapping_factory import best_ref, make_rmap

DATE_TIME = ("DATE-OBS", "TIME-OBS")
INVALID = "NOT FOUND UseAfter Invalid date/time format for ('DATE-OBS', 'TIME-OBS') value = "

# The spec's test rmap: a, b, c around noon of 2000-01-01, under an always-matching Match
# (an empty parkey level matches any header), so failures read "No match found.".
ABC = """Match({ () : UseAfter({
    '2000-01-01 00:00:00' : 'a.fits',
    '2000-01-01 12:00:00' : 'b.fits',
    '2000-01-02 00:00:00' : 'c.fits',
}) })"""
ABC_PARKEY = ((), DATE_TIME)

# (DATE-OBS, TIME-OBS, answer) — §7.2, all verified.
DATASET_TIMES = [
    ("2000-01-01", "12:00:00", "b.fits"),                    # inclusive: a key equal to the time
    ("2000-01-01", "11:59:59.999", "a.fits"),
    ("2000-01-01", "12:00", "b.fits"),
    ("2000-01-01", "12:00:00.000001", "b.fits"),
    ("2000-01-01", "12",
     INVALID + "'2000-01-01 12' exception is 'not enough values to unpack (expected 4, got 1)'"),
    ("2000/01/01", "12:00:00", "b.fits"),
    ("01/01/2000", "12:00:00", "b.fits"),
    ("01-01-2000", "12:00:00", "b.fits"),
    ("01/01/00", "12:00:00", "b.fits"),
    ("Jan 01 2000", "12:00:00", "b.fits"),
    ("Jan 1, 2000", "12:00:00", "b.fits"),
    ("01/01/99", "12:00:00", "NOT FOUND No match found."),  # 1999
    ("2000-01-01T12:00:00", "", "b.fits"),
    ("2000-01-01", "12:00:00 PM", "b.fits"),
    ("2000-01-01", "12:00:00 AM", "a.fits"),
    ("2000-01-01", "12:00:00:50", "b.fits"),
    ("20000101:120000", "", "b.fits"),
    ("2000-1-1", "12:00:00",
     INVALID + "'2000-1-1 12:00:00' exception is \"Unknown numerical date format: '2000/1/1 12:00:00'\""),
    (" 2000-01-01 ", " 12:00:00 ", "b.fits"),
    ("2000-01-01", "", "a.fits"),
    ("2000-01-01T12:00:00", "13:00:00",
     INVALID + "'2000-01-01T12:00:00 13:00:00' exception is "
               "\"Unknown numerical date format: '2000/01/01T12:00:00 13:00:00'\""),
    ("2000-01-01 12:00:00", "", "b.fits"),
    # top level upper-cases values first; the forms still parse (§7.2 note)
    ("JAN 1, 2000", "12:00:00", "b.fits"),
    ("2000-01-01", "12:00:00 pm", "b.fits"),
    ("2000-01-01", "01:00:00 PM", "b.fits"),                # 13:00 on 2000-01-01
    ("2000-01-02", "00:00:00", "c.fits"),
    ("2099-12-31", "23:59:59", "c.fits"),
]


@pytest.mark.parametrize(("date", "time", "answer"), DATASET_TIMES)
def test_dataset_time_syntax(tmp_path, date, time, answer):
    assert best_ref(tmp_path, ABC, {"DATE-OBS": date, "TIME-OBS": time}, parkey=ABC_PARKEY) == answer


# (DATE-OBS, TIME-OBS, words the invalid-date reason must contain) — §7.2 step 6 range checks.
RANGE_ERRORS = [
    ("2000-13-01", "00:00:00", "month must be in 1..12"),
    ("2000-02-30", "00:00:00", "day is out of range for month"),
    ("2000-01-01", "24:00:00", "hour must be in 0..23"),
]


@pytest.mark.parametrize(("date", "time", "reason"), RANGE_ERRORS)
def test_calendar_and_clock_ranges(tmp_path, date, time, reason):
    answer = best_ref(tmp_path, ABC, {"DATE-OBS": date, "TIME-OBS": time}, parkey=ABC_PARKEY)
    assert answer.startswith(INVALID + f"'{date} {time}' exception is ")
    assert reason in answer


# A single-parameter UseAfter (Roman style).  (value, answer) — verified rows of §7.2.
SINGLE = """UseAfter({
    '1990-01-01 00:00:00' : 'old.fits',
    '2013-01-03 00:00:00' : 'jan3_2013.fits',
    '2020-06-01 00:00:00' : 'jun2020.fits',
})"""
SINGLE_INVALID = "NOT FOUND UseAfter Invalid date/time format for ('START',) value = "

SINGLE_VALUES = [
    ("2020-06-01T00:00:00.123", "jun2020.fits"),                   # verified
    ("2020-06-01 00:00:00.1234567", "jun2020.fits"),               # verified: ok with a space ...
    ("2020-06-01T00:00:00.1234567", SINGLE_INVALID),               # verified: ... not with T
    ("2020-06-01T00:00", "jun2020.fits"),                          # verified
    ("2020-06-01T00:00:00Z", SINGLE_INVALID),                      # verified
    ("2020-06-01T00", SINGLE_INVALID),                             # verified
    ("Jun 01 2020", "jun2020.fits"),                               # verified
    ("03-Jan-2013", "jan3_2013.fits"),                             # alphabetic forms of §7.2 step 4
    ("02-Jan-2013", "old.fits"),
    ("Dec 01 1993 00:00:00 UT", "old.fits"),
    ("2013-01-03 00:00:00 UT", "jan3_2013.fits"),                  # a trailing ' UT' is removed
]


@pytest.mark.parametrize(("value", "answer"), SINGLE_VALUES)
def test_single_parameter_useafter(tmp_path, value, answer):
    result = best_ref(tmp_path, SINGLE, {"START": value}, parkey=(("START",),))
    if answer == SINGLE_INVALID:
        assert result.startswith(SINGLE_INVALID + repr(value))
    else:
        assert result == answer


# Microseconds come from binary-float truncation (§7.2 step 6): 12.7 s is .699999, and
# UseAfter compares *strings*, so a key written '...:12.7' sorts after the dataset time.
# (keys, TIME-OBS, answer)
MICROSECONDS = [
    ({"2000-01-01 12:00:12.7": "x.fits"}, "12:00:12.7", "early.fits"),
    ({"2000-01-01 12:00:12.699999": "x.fits"}, "12:00:12.7", "x.fits"),
    ({"2000-01-01 12:00:33.299999": "x.fits"}, "12:00:33.3", "x.fits"),
    ({"2000-01-01 12:00:33.3": "x.fits"}, "12:00:33.3", "early.fits"),
    ({"2000-01-01 12:00:01.123000": "x.fits"}, "12:00:01.123", "x.fits"),
    ({"2000-01-01 12:00:01": "x.fits"}, "12:00:01.000000", "x.fits"),   # no fraction when zero
]


@pytest.mark.parametrize(("keys", "time", "answer"), MICROSECONDS)
def test_fraction_of_seconds(tmp_path, keys, time, answer):
    entries = {"1990-01-01 00:00:00": "early.fits", **keys}
    selector = "UseAfter(" + repr(entries) + ")"
    assert best_ref(tmp_path, selector, {"DATE-OBS": "2000-01-01", "TIME-OBS": time},
                    parkey=(DATE_TIME,)) == answer


# --------------------------------------------------------------------------- §7.1 parameters

# (header, answer) for a top-level UseAfter.
PARAMETERS = [
    ({"DATE-OBS": "2000-01-01"}, "NOT FOUND UseAfter required lookup parameter 'TIME-OBS' is undefined."),
    ({"TIME-OBS": "00:00:00"}, "NOT FOUND UseAfter required lookup parameter 'DATE-OBS' is undefined."),
    ({"DATE-OBS": "2000-01-01", "TIME-OBS": "UNDEFINED"}, "NOT FOUND UseAfter parameter 'TIME-OBS' is UNDEFINED."),
    ({"DATE-OBS": "UNDEFINED", "TIME-OBS": "00:00:00"}, "NOT FOUND UseAfter parameter 'DATE-OBS' is UNDEFINED."),
    ({"DATE-OBS": " UNDEFINED ", "TIME-OBS": "00:00:00"}, "NOT FOUND UseAfter parameter 'DATE-OBS' is UNDEFINED."),
    ({"DATE-OBS": "2000-01-01", "TIME-OBS": ""}, "a.fits"),
]


@pytest.mark.parametrize(("header", "answer"), PARAMETERS)
def test_useafter_parameters(tmp_path, header, answer):
    selector = "UseAfter({ '2000-01-01 00:00:00' : 'a.fits' })"
    assert best_ref(tmp_path, selector, header, parkey=(DATE_TIME,)) == answer


# (header, error class, category)
TYPED_ERRORS = [
    ({"DATE-OBS": "2000-01-01"}, MissingKeyError, "missing-key"),
    ({"DATE-OBS": "2000-01-01", "TIME-OBS": "UNDEFINED"}, MissingKeyError, "missing-key"),  # corpus category
    ({"DATE-OBS": "2000-1-1", "TIME-OBS": "00:00:00"}, InvalidDateError, "invalid-date"),
    ({"DATE-OBS": "1999-01-01", "TIME-OBS": "00:00:00"}, NoSelectionError, "not-found"),
]


@pytest.mark.parametrize(("header", "error", "category"), TYPED_ERRORS)
def test_useafter_typed_errors(tmp_path, header, error, category):
    rmap = make_rmap(tmp_path, "UseAfter({ '2000-01-01 00:00:00' : 'a.fits' })", parkey=(DATE_TIME,))
    with pytest.raises(error) as caught:
        rmap.select(header)
    assert caught.value.category == category


# --------------------------------------------------------------------------- §7.3 keys are strings

T_KEY = "UseAfter({ '2000-01-01T12:00:00' : 'tsep.fits' })"
DATE_ONLY = "UseAfter({ '2000-01-01' : 'day.fits' })"
FRACTION_KEY = "UseAfter({ '2000-01-01 12:00:00.5' : 'half.fits' })"
ALPHA_KEY = "UseAfter({ 'Jan 01 2000 12:00:00' : 'alpha.fits', '1999-01-01 00:00:00' : 'early.fits' })"
MIXED = ("UseAfter({ '1999-01-01 00:00:00' : 'early.fits', '2000-01-01T12:00:00' : 'tsep.fits',"
         " '2000-01-01 13:00:00' : 'space13.fits' })")
INVALID_KEY = "UseAfter({ '2002-03- 00:34:31' : 'bad.fits', '2001-01-01 00:00:00' : 'good.fits' })"

# (selector, DATE-OBS, TIME-OBS, answer) — verified.
STRING_ORDER = [
    (T_KEY, "2000-01-01", "00:00:00", "NOT FOUND No selection <= '2000-01-01 00:00:00'"),
    (T_KEY, "2000-01-01", "23:59:59", "NOT FOUND No selection <= '2000-01-01 23:59:59'"),  # T sorts after space
    (T_KEY, "2000-01-02", "00:00:00", "tsep.fits"),
    (DATE_ONLY, "2000-01-01", "00:00:00", "day.fits"),
    (DATE_ONLY, "2000-01-01", "23:59:59", "day.fits"),
    (DATE_ONLY, "1999-12-31", "23:59:59", "NOT FOUND No selection <= '1999-12-31 23:59:59'"),
    (FRACTION_KEY, "2000-01-01", "12:00:00", "NOT FOUND No selection <= '2000-01-01 12:00:00'"),
    (FRACTION_KEY, "2000-01-01", "12:00:00.5", "half.fits"),
    (ALPHA_KEY, "2999-01-01", "00:00:00", "early.fits"),                   # never selected for 2xxx years
    (ALPHA_KEY, "2000-01-01", "12:00:00", "early.fits"),
    (MIXED, "2000-01-01", "12:30:00", "early.fits"),
    (MIXED, "2000-01-01", "13:30:00", "space13.fits"),
    (MIXED, "2000-01-02", "00:00:00", "tsep.fits"),
    (INVALID_KEY, "2001-06-01", "00:00:00", "good.fits"),                  # invalid keys load (certify checks them)
    (INVALID_KEY, "2002-02-28", "00:00:00", "good.fits"),
    (INVALID_KEY, "2002-03-01", "00:00:00", "bad.fits"),                   # '2002-03- ' < '2002-03-01': string order
]


@pytest.mark.parametrize(("selector", "date", "time", "answer"), STRING_ORDER)
def test_keys_compare_as_strings(tmp_path, selector, date, time, answer):
    assert best_ref(tmp_path, selector, {"DATE-OBS": date, "TIME-OBS": time}, parkey=(DATE_TIME,)) == answer


# --------------------------------------------------------------------------- §7.4 no selection, duplicates

DUPLICATE_DATES = """UseAfter({
    '2002-03-20 00:00:00' : 'before.fits',
    '2002-03-24 00:34:28' : 'first_line.fits',
    '2002-03-24 00:34:28' : 'second_line.fits',
})"""

MERGED_DUPLICATES = """Match({
    ('HRC', 'A') : UseAfter({ '2000-01-01 00:00:00' : 'zzz_first.fits', '2000-01-01 00:00:00' : 'aaa_second.fits' }),
    ('HRC', '*') : UseAfter({ '2000-01-01 00:00:00' : 'mmm.fits', '2003-01-01 00:00:00' : 'later.fits' }),
})"""

# (selector, parkey, header, answer)
NO_SELECTION_AND_DUPLICATES = [
    ("UseAfter({ '2000-01-01 00:00:00' : 'a.fits' })", (DATE_TIME,),
     {"DATE-OBS": "1999-01-01", "TIME-OBS": "00:00:00"}, "NOT FOUND No selection <= '1999-01-01 00:00:00'"),
    ("UseAfter({})", (DATE_TIME,),
     {"DATE-OBS": "1999-01-01", "TIME-OBS": "00:00:00"}, "NOT FOUND No selection <= '1999-01-01 00:00:00'"),
    ("UseAfter({})", (DATE_TIME,),
     {"DATE-OBS": "2000-01-01", "TIME-OBS": "12:00:00.25"}, "NOT FOUND No selection <= '2000-01-01 12:00:00.250000'"),
    ("Match({ ('X',) : UseAfter({ '2000-01-01 00:00:00' : 'a.fits' }) })", (("A",), DATE_TIME),
     {"A": "X", "DATE-OBS": "1999-01-01", "TIME-OBS": "00:00:00"}, "NOT FOUND No match found."),
    # the last duplicate line wins (verified with hst_acs_darkfile.rmap's repeated date)
    (DUPLICATE_DATES, (DATE_TIME,), {"DATE-OBS": "2002-03-24", "TIME-OBS": "01:00:00"}, "second_line.fits"),
    (DUPLICATE_DATES, (DATE_TIME,), {"DATE-OBS": "2002-03-23", "TIME-OBS": "01:00:00"}, "before.fits"),
    # verified: inside one UseAfter the last line wins, across merged ones the greater name
    (MERGED_DUPLICATES, (("DETECTOR", "AMP"), DATE_TIME),
     {"DETECTOR": "HRC", "AMP": "A", "DATE-OBS": "2001-01-01", "TIME-OBS": "00:00:00"}, "mmm.fits"),
    (MERGED_DUPLICATES, (("DETECTOR", "AMP"), DATE_TIME),
     {"DETECTOR": "HRC", "AMP": "A", "DATE-OBS": "2004-01-01", "TIME-OBS": "00:00:00"}, "later.fits"),
    (MERGED_DUPLICATES, (("DETECTOR", "AMP"), DATE_TIME),
     {"DETECTOR": "HRC", "AMP": "B", "DATE-OBS": "2001-01-01", "TIME-OBS": "00:00:00"}, "mmm.fits"),
]


@pytest.mark.parametrize(("selector", "parkey", "header", "answer"), NO_SELECTION_AND_DUPLICATES)
def test_no_selection_and_duplicates(tmp_path, selector, parkey, header, answer):
    assert best_ref(tmp_path, selector, header, parkey=parkey) == answer


# --------------------------------------------------------------------------- nesting (§6.8)

# Any selector may nest inside UseAfter; it consumes the next parkey level.
NESTED = """UseAfter({
    '2000-01-01 00:00:00' : Match({ ('HRC',) : 'hrc_2000.fits', ('WFC',) : 'wfc_2000.fits' }),
    '2005-01-01 00:00:00' : Match({ ('HRC',) : 'hrc_2005.fits' }),
})"""

NESTED_ROWS = [
    ({"DETECTOR": "WFC", "DATE-OBS": "2001-01-01", "TIME-OBS": "00:00:00"}, "wfc_2000.fits"),
    ({"DETECTOR": "HRC", "DATE-OBS": "2006-01-01", "TIME-OBS": "00:00:00"}, "hrc_2005.fits"),
    # the chosen date's Match is final: no fallback to an earlier date
    ({"DETECTOR": "WFC", "DATE-OBS": "2006-01-01", "TIME-OBS": "00:00:00"},
     "NOT FOUND  parameter='DETECTOR' value='WFC' is not in ['HRC']"),
]


@pytest.mark.parametrize(("header", "answer"), NESTED_ROWS)
def test_selector_nested_in_useafter(tmp_path, header, answer):
    assert best_ref(tmp_path, NESTED, header, parkey=(DATE_TIME, ("DETECTOR",))) == answer
