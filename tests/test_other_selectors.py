"""Rules-language §8: VersionAfter, SelectVersion, ClosestTime, GeometricallyNearest, Bracket.

One table per selector, holding every verified example of the spec (marked "verified") plus
the error messages of §11.  rmaps are real text in ``tmp_path``; lookups at the rmap level.
"""
from __future__ import annotations

import pytest

from crdsmini import load_mapping
from crdsmini.errors import InvalidNumberError, InvalidVersionError, MappingError, NoSelectionError
from mapping_factory import best_ref, make_rmap, make_tree

# --------------------------------------------------------------------------- §8.1 VersionAfter

VERSIONS = """VersionAfter({
    '0.0.2' : 'v002.fits',
    '0.50.1' : 'v0501.fits',
    '5.2' : 'v52.fits',
    '50.1' : 'v501.fits',
    '1.2.3.4' : 'v1234.fits',
})"""

# (VER, answer) — verified.
VERSION_AFTER = [
    ("0.0.1", "NOT FOUND No selection <= (0, 0, 1)"),
    ("0.0.2", "v002.fits"),
    ("0.6.0", "v002.fits"),
    ("0.50.0", "v002.fits"),
    ("0.50.1", "v0501.fits"),
    ("1.2.3", "v1234.fits"),           # '1.2.3.4' is (1, 2, 3): extra components dropped
    ("1.2.4", "v1234.fits"),
    ("1.3rc1", "v1234.fits"),          # trailing text after the numbers is ignored
    ("5.2", "v52.fits"),
    ("50.0", "v52.fits"),
    ("100", "v501.fits"),
    ("5.2.0.dev45+g123", "v52.fits"),
    ("abc", "NOT FOUND Invalid version string 'abc'"),
    ("UNDEFINED", "NOT FOUND Invalid version string 'UNDEFINED'"),
    ("1.2.3 ", "NOT FOUND Invalid version string '1.2.3 '"),
]


@pytest.mark.parametrize(("version", "answer"), VERSION_AFTER)
def test_version_after(tmp_path, version, answer):
    assert best_ref(tmp_path, VERSIONS, {"VER": version}, parkey=(("VER",),)) == answer


# Several parameters are joined with '.'.  (MAJ, MIN, PT, answer)
VERSION_PARTS = [
    ("1", "5", "0", "v150.fits"),
    ("1", "4", "9", "v100.fits"),
    ("2", "0", "0", "v150.fits"),
    ("0", "9", "9", "NOT FOUND No selection <= (0, 9, 9)"),
    ("1", "x", "0", "v100.fits"),          # '1.x.0' is valid syntax: numeric part '1' -> (1, 0, 0)
    ("1", "5 ", "0", "NOT FOUND Invalid version string '1.5 .0'"),
]


@pytest.mark.parametrize(("major", "minor", "patch", "answer"), VERSION_PARTS)
def test_version_after_joins_parameters(tmp_path, major, minor, patch, answer):
    selector = "VersionAfter({ '1.0.0' : 'v100.fits', '1.5.0' : 'v150.fits' })"
    header = {"MAJ": major, "MIN": minor, "PT": patch}
    assert best_ref(tmp_path, selector, header, parkey=(("MAJ", "MIN", "PT"),)) == answer


# (header, answer): errors and their kinds.
VERSION_ERRORS = [
    ({}, "NOT FOUND VersionAfter required lookup parameter 'VER' is undefined."),
    # an invalid version is fatal, not a lookup failure: the weaker N/A row is not tried
    ({"VER": "abc", "DET": "HRC"}, "NOT FOUND Invalid version string 'abc'"),
    # a version before every key is a lookup failure: Match falls back
    ({"VER": "0.1", "DET": "HRC"}, "na.fits"),
    ({"VER": "2.0", "DET": "HRC"}, "v1.fits"),
]


@pytest.mark.parametrize(("header", "answer"), VERSION_ERRORS)
def test_version_after_errors(tmp_path, header, answer):
    if "DET" in header:
        selector = "Match({ ('HRC',) : VersionAfter({ '1.0' : 'v1.fits' }), ('N/A',) : 'na.fits' })"
        parkey = (("DET",), ("VER",))
    else:
        selector, parkey = "VersionAfter({ '1.0' : 'v1.fits' })", (("VER",),)
    assert best_ref(tmp_path, selector, header, parkey=parkey) == answer


def test_version_after_typed_errors(tmp_path):
    rmap = make_rmap(tmp_path, "VersionAfter({ '1.0' : 'v1.fits' })", parkey=(("VER",),))
    with pytest.raises(InvalidVersionError):
        rmap.select({"VER": "abc"})
    with pytest.raises(NoSelectionError) as caught:
        rmap.select({"VER": "0.5"})
    assert caught.value.category == "not-found"


BAD_VERSION_KEYS = ["'1.0|2.0'", "'abc'", "'v1.0'", "'1.0 beta'", "''"]


@pytest.mark.parametrize("key", BAD_VERSION_KEYS)
def test_version_after_rejects_bad_keys_at_load(tmp_path, key):
    with pytest.raises(MappingError):
        make_rmap(tmp_path, f"VersionAfter({{ {key} : 'x.fits' }})", parkey=(("VER",),))


# Conditioning trap (verified through the top level): '1.10' is conditioned to '1.1'.
# (CAL_VER, top-level answer, rmap-level answer)
CONDITIONING_TRAP = [
    ("1.10", "NOT FOUND No match found.", "v1_10.json"),
    ("1.20", "v1_2.json", "v1_10.json"),
    ("1.10.0", "v1_10.json", "v1_10.json"),
    ("2", "v1_10.json", "v1_10.json"),
]


@pytest.mark.parametrize(("version", "top_level", "rmap_level"), CONDITIONING_TRAP)
def test_version_conditioning_trap(tmp_path, version, top_level, rmap_level):
    selector = "Match({ () : VersionAfter({ '1.2' : 'v1_2.json', '1.10' : 'v1_10.json' }) })"
    pmap = load_mapping(make_tree(tmp_path, {"calver": (selector, {"parkey": ((), ("CAL_VER",))})}),
                        ignore_checksum=False)
    header = {"INSTRUME": "inst", "CAL_VER": version}
    assert pmap.get_best_references(pmap.minimize_header(header)) == {"calver": top_level}
    assert pmap.get_best_references(header) == {"calver": rmap_level}


# --------------------------------------------------------------------------- §8.2 SelectVersion

# (keys as written, SW, answer) — verified.
SELECT_VERSION = [
    *[("{'<3.1' : 'lt31.fits', '<5' : 'lt5.fits', '= 6' : 'eq6.fits', 'default' : 'default.fits'}", sw, answer)
      for sw, answer in [
          ("2", "lt31.fits"), ("3.1", "lt5.fits"), ("4.99", "lt5.fits"), ("5", "eq6.fits"),
          ("5.5", "eq6.fits"), ("6", "eq6.fits"), ("6.0", "eq6.fits"), ("6.00001", "default.fits"),
          ("7", "default.fits"), ("default", "default.fits"), ("-1", "lt31.fits"),
      ]],
    *[("{'<3' : 'lt3.fits', '==4' : 'eq4.fits'}", sw, answer)
      for sw, answer in [
          ("2", "lt3.fits"), ("3", "eq4.fits"), ("4", "eq4.fits"), ("4.5", "NOT FOUND list index out of range"),
      ]],
    *[("{'<=5' : 'le5.fits', '< 7' : 'lt7.fits', 'default' : 'default.fits'}", sw, answer)
      for sw, answer in [
          ("4", "le5.fits"), ("5", "lt7.fits"), ("6", "lt7.fits"), ("7", "default.fits"),
      ]],
    # a bare value means '=v'
    ("{'4' : 'eq4.fits', 'default' : 'default.fits'}", "3", "eq4.fits"),
    ("{'4' : 'eq4.fits', 'default' : 'default.fits'}", "4", "eq4.fits"),
    ("{'4' : 'eq4.fits', 'default' : 'default.fits'}", "4.1", "default.fits"),
    # errors (§11)
    ("{'<3' : 'lt3.fits'}", "1.2.3", "NOT FOUND SelectVersion Invalid number for 'SW' value = '1.2.3'"),
    ("{'<3' : 'lt3.fits'}", "abc", "NOT FOUND SelectVersion Invalid number for 'SW' value = 'abc'"),
]


@pytest.mark.parametrize(("keys", "sw", "answer"), SELECT_VERSION)
def test_select_version(tmp_path, keys, sw, answer):
    assert best_ref(tmp_path, f"SelectVersion({keys})", {"SW": sw}, parkey=(("SW",),)) == answer


def test_select_version_missing_parameter_is_the_bare_name(tmp_path):
    assert best_ref(tmp_path, "SelectVersion({'<3' : 'lt3.fits'})", {}, parkey=(("SW",),)) == "NOT FOUND 'SW'"


def test_select_version_invalid_number_is_typed(tmp_path):
    rmap = make_rmap(tmp_path, "SelectVersion({'<3' : 'lt3.fits'})", parkey=(("SW",),))
    with pytest.raises(InvalidNumberError) as caught:
        rmap.select({"SW": "x"})
    assert caught.value.category == "invalid-value"


# --------------------------------------------------------------------------- §8.3 ClosestTime

CLOSEST = """ClosestTime({
    '2017-04-24 00:00:00' : 'a.fits',
    '2018-02-01 00:00:00' : 'b.fits',
    '2019-04-15 00:00:00' : 'c.fits',
})"""
CLOSEST_ALPHA = """ClosestTime({
    '2017-04-24 00:00:00' : 'a.fits',
    'Feb 01 2018' : 'b.fits',
    '2019-04-15 00:00:00' : 'c.fits',
})"""

# (selector, DATE-OBS, TIME-OBS, answer) — verified, then the §11 messages.
CLOSEST_TIME = [
    (CLOSEST, "2016-05-05", "00:00:00", "a.fits"),
    (CLOSEST, "2017-09-12", "12:00:00", "a.fits"),      # exact midpoint: first key in string order
    (CLOSEST, "2017-09-13", "00:00:00", "b.fits"),
    (CLOSEST, "2018-09-07", "12:00:00", "b.fits"),
    (CLOSEST, "2030-01-01", "00:00:00", "c.fits"),
    (CLOSEST_ALPHA, "2017-09-13", "00:00:00", "b.fits"),  # keys are parsed with §7.2
    (CLOSEST_ALPHA, "2018-02-01", "00:00:00", "b.fits"),
    (CLOSEST_ALPHA, "2030-01-01", "00:00:00", "c.fits"),
    (CLOSEST, "2000-01-01", "UNDEFINED", "NOT FOUND UseAfter parameter 'TIME-OBS' is UNDEFINED."),
    (CLOSEST, "2000-01-01", None, "NOT FOUND ClosestTime required lookup parameter 'TIME-OBS' is undefined."),
]


@pytest.mark.parametrize(("selector", "date", "time", "answer"), CLOSEST_TIME)
def test_closest_time(tmp_path, selector, date, time, answer):
    header = {"DATE-OBS": date} if time is None else {"DATE-OBS": date, "TIME-OBS": time}
    assert best_ref(tmp_path, selector, header, parkey=(("DATE-OBS", "TIME-OBS"),)) == answer


def test_closest_time_invalid_date(tmp_path):
    answer = best_ref(tmp_path, CLOSEST, {"DATE-OBS": "2000-1-1", "TIME-OBS": "00:00:00"},
                      parkey=(("DATE-OBS", "TIME-OBS"),))
    assert answer.startswith("NOT FOUND ClosestTime Invalid date/time format for ('DATE-OBS', 'TIME-OBS') "
                             "value = '2000-1-1 00:00:00' exception is ")


# --------------------------------------------------------------------------- §8.4 GeometricallyNearest

NEAREST_A = "GeometricallyNearest({ 1.2 : 'g120.fits', '1.5' : 'g150.fits', 5 : 'g500.fits' })"
NEAREST_B = "GeometricallyNearest({ 5.0 : 'g5.fits', 10.0 : 'g10.fits', 1.0 : 'g1.fits' })"

# (selector, WAVE, answer) — verified, then §11.
GEOMETRICALLY_NEAREST = [
    (NEAREST_A, "1.0", "g120.fits"),
    (NEAREST_A, "1.35", "g120.fits"),      # float32 rounding makes this a tie: '1.2' sorts first
    (NEAREST_A, "1.3501", "g150.fits"),
    (NEAREST_A, "3.25", "g150.fits"),
    (NEAREST_A, "3.26", "g500.fits"),
    (NEAREST_A, "1e9", "g120.fits"),       # all distances equal in float32
    (NEAREST_B, "7.5", "g10.fits"),        # tie: '10.0' sorts before '5.0' as a string
    (NEAREST_B, "7.4", "g5.fits"),
    (NEAREST_B, "3.0", "g1.fits"),
    (NEAREST_B, "N/A", "NOT FOUND GeometricallyNearest Invalid number for 'WAVE' value = 'N/A'"),
    (NEAREST_B, "abc", "NOT FOUND GeometricallyNearest Invalid number for 'WAVE' value = 'abc'"),
    (NEAREST_B, None, "NOT FOUND GeometricallyNearest required lookup parameter 'WAVE' is undefined."),
]


@pytest.mark.parametrize(("selector", "wave", "answer"), GEOMETRICALLY_NEAREST)
def test_geometrically_nearest(tmp_path, selector, wave, answer):
    header = {} if wave is None else {"WAVE": wave}
    assert best_ref(tmp_path, selector, header, parkey=(("WAVE",),)) == answer


# --------------------------------------------------------------------------- §8.5 Bracket

BRACKET = "Bracket({ 1.2 : 'b120.fits', 1.5 : 'b150.fits', 5.0 : 'b500.fits' })"

# (selector, WAVE, answer) — verified, then §11.
BRACKETS = [
    (BRACKET, "1.0", ("b120.fits", "b120.fits")),
    (BRACKET, "1.2", ("b120.fits", "b120.fits")),
    (BRACKET, "1.25", ("b120.fits", "b150.fits")),
    (BRACKET, "1.5", ("b150.fits", "b150.fits")),
    (BRACKET, "4.9", ("b150.fits", "b500.fits")),
    (BRACKET, "6", ("b500.fits", "b500.fits")),
    ("Bracket({ 5.0 : 'b5.fits', 1 : 'b1.fits' })", "3", ("b1.fits", "b5.fits")),   # sorted numerically
    ("Bracket({ '1.0' : 'b1.fits', '5.0' : 'b5.fits' })", "3",
     "NOT FOUND '>' not supported between instances of 'float' and 'str'"),
    (BRACKET, "abc", "NOT FOUND Bracket Invalid number for 'WAVE' value = 'abc'"),
    (BRACKET, None, "NOT FOUND 'WAVE'"),
]


@pytest.mark.parametrize(("selector", "wave", "answer"), BRACKETS)
def test_bracket(tmp_path, selector, wave, answer):
    header = {} if wave is None else {"WAVE": wave}
    assert best_ref(tmp_path, selector, header, parkey=(("WAVE",),)) == answer


def test_bracket_resolves_nested_choices(tmp_path):
    selector = ("Bracket({ 1.0 : Match({ ('A',) : 'a1.fits', ('B',) : 'b1.fits' }),"
                " 2.0 : Match({ ('A',) : 'a2.fits', ('B',) : 'b2.fits' }) })")
    rmap = make_rmap(tmp_path, selector, parkey=(("WAVE",), ("MODE",)))
    assert rmap.get_best_ref({"WAVE": "1.5", "MODE": "B"}) == ("b1.fits", "b2.fits")


# --------------------------------------------------------------------------- §8.6 choice types

# (terminal choice as written, answer) — tuples and dicts are returned unchanged (verified).
CHOICES = [
    ("'a.fits'", "a.fits"),
    ("('a1.fits', 'a2.fits')", ("a1.fits", "a2.fits")),
    ("{'x' : 'bx.fits'}", {"x": "bx.fits"}),
    ("'Omit'", "Omit"),
]


@pytest.mark.parametrize(("choice", "answer"), CHOICES)
def test_terminal_choice_types(tmp_path, choice, answer):
    assert best_ref(tmp_path, f"Match({{ ('X',) : {choice} }})", {"A": "X"}) == answer


@pytest.mark.parametrize("selector", ["UseAfter", "VersionAfter", "ClosestTime", "SelectVersion",
                                      "GeometricallyNearest", "Bracket", "Match"])
def test_every_selector_needs_its_parkey_level(tmp_path, selector):
    # §2.1: fewer parkey levels than nesting fails at load.
    with pytest.raises(MappingError) as caught:
        make_rmap(tmp_path, f"Match({{ ('X',) : {selector}({{}}) }})", parkey=(("A",),))
    assert "tuple index out of range" in str(caught.value)


# A NaN header value compares false with every key.  The spec gives no answer for it, but a
# lookup may only fail with a crdsmini error (found by tests/test_fuzz_mappings.py).
NAN_VALUES = [
    pytest.param("Bracket", "nan"),
    pytest.param("Bracket", "-nan"),
    ("GeometricallyNearest", "nan"),
]


@pytest.mark.parametrize(("selector", "value"), NAN_VALUES)
def test_nan_values_never_crash(tmp_path, selector, value):
    rmap = make_rmap(tmp_path, f"{selector}({{ 1.2 : 'b120.fits', 5.0 : 'b500.fits' }})", parkey=(("WAVE",),))
    rmap.get_best_ref({"WAVE": value})


# Bracket keys must be numbers (§8.5).  Keys of other types fail at lookup in CRDS, which
# reports every lookup exception as "NOT FOUND <message>"; crdsmini must not crash either.
BRACKET_ODD_KEYS = [
    ("Bracket({ '1.0' : 'a.fits' })", "NOT FOUND '>' not supported between instances of 'float' and 'str'"),
    pytest.param("Bracket({ None : 'a.fits' })", None),
    pytest.param("Bracket({ (1, 2) : 'a.fits' })", None),
]


@pytest.mark.parametrize(("selector", "answer"), BRACKET_ODD_KEYS)
def test_bracket_keys_that_are_not_numbers(tmp_path, selector, answer):
    result = best_ref(tmp_path, selector, {"WAVE": "1.0"}, parkey=(("WAVE",),))
    assert result.startswith("NOT FOUND ")
    if answer is not None:
        assert result == answer


# Load errors of every selector name the rmap (STYLE: messages name the file).
BAD_KEYS_AT_LOAD = [
    ("VersionAfter({ 'abc' : 'x.fits' })", "Invalid version string 'abc'"),
    ("SelectVersion({ 'abc' : 'x.fits' })", "abc"),
    ("ClosestTime({ 'abc' : 'x.fits' })", "ClosestTime"),
    ("Bracket({ 1 : 'a.fits', None : 'x.fits' })", "not supported"),
    pytest.param("GeometricallyNearest({ 'abc' : 'x.fits' })", "ABC"),
]


@pytest.mark.parametrize(("selector", "fragment"), BAD_KEYS_AT_LOAD)
def test_bad_selector_keys_fail_at_load_naming_the_file(tmp_path, selector, fragment):
    with pytest.raises(MappingError) as caught:
        make_rmap(tmp_path, selector, parkey=(("P",),), filename="named.rmap")
    assert str(caught.value).startswith("Can't load file named.rmap : ")
    assert fragment in str(caught.value)


# An empty parkey level is legal (§2.1).  For the one-parameter selectors it leaves nothing to
# select on; CRDS fails that lookup (NOT FOUND <error>) and crdsmini must not crash either.
EMPTY_LEVEL = [
    "UseAfter({ '2000-01-01 00:00:00' : 'a.fits' })",
    "VersionAfter({ '1.0' : 'a.fits' })",
    "ClosestTime({ '2000-01-01 00:00:00' : 'a.fits' })",
    pytest.param("Bracket({ 1.0 : 'a.fits' })"),
    pytest.param("GeometricallyNearest({ 1.0 : 'a.fits' })"),
    pytest.param("SelectVersion({ 'default' : 'a.fits' })"),
]


@pytest.mark.parametrize("selector", EMPTY_LEVEL)
def test_one_parameter_selectors_with_an_empty_level(tmp_path, selector):
    assert best_ref(tmp_path, selector, {"P": "1.0"}, parkey=((),)).startswith("NOT FOUND ")
