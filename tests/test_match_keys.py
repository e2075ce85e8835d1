"""Rules-language §6: the Match selector, one table per rule, in the order of the spec.

Every rmap here is real text written to ``tmp_path`` and loaded with ``load_mapping``; the
lookups run at the rmap level (``get_best_ref``), so header values are used exactly as given
(no conditioning).  Rows marked "verified" in a comment are the oracle's own answers quoted
by the spec; the others restate a rule of the spec as a concrete case.
"""
from __future__ import annotations

import re

import pytest

from crdsmini.errors import (
    AmbiguousMatchError, CrdsminiError, InvalidValueError, MappingError, MissingKeyError, NoMatchError,
)
from mapping_factory import best_ref, make_rmap

MATCH, DONT_CARE, NO_MATCH = 1, 0, -1
NOT_FOUND_NO_MATCH = "NOT FOUND No match found."


# --------------------------------------------------------------------------- §6.1 normalisation

# (raw key element as written in the rmap, normalised element).  One parameter, so the
# element is the whole key; the engine's stored key is read back from the loaded selector.
NORMALISATION = [
    ("UVIS", "UVIS"),
    ("hrc", "HRC"),                                 # conditioned (§5): upper case
    (" B | a |", "B|A"),                            # verified: split, strip, drop empty, sort raw, condition
    ("A|1|1.0", "1.0|1.0|A"),                       # verified: sorted before conditioning
    (("b", "a"), "B|A"),                            # verified: nested tuple joined, not sorted
    ("a |", "A"),                                   # verified
    ("|", ""),                                      # verified
    ("ANY|X", "*|X"),                               # verified
    ("any", "*"),
    ("(a|b)", "(a|b)"),                             # verified: regex kept verbatim
    ("{a|b}", "{a|b}"),                             # verified: literal kept verbatim
    ("(hrc)", "(hrc)"),                             # regexes are never upper-cased
    ("NOT a|b", "NOT A|B"),                         # verified: esoteric, conditioned as one value
    ("# >3000 and <=4200 #", "# >3000 AND <=4200 #"),
    ("between 1 5", "BETWEEN 1 5"),
    ("not hrc", "NOT HRC"),
    (1, "1.0"),
    (1.5, "1.5"),
    (True, "T"),
    (None, "NONE"),
    ("1", "1.0"),
    (" 7 ", "7.0"),
    ("n/a", "N/A"),
    ("not_applicable", "N/A"),
    ("true", "T"),
]


@pytest.mark.parametrize(("element", "normalised"), NORMALISATION)
def test_key_element_normalisation(tmp_path, element, normalised):
    rmap = make_rmap(tmp_path, f"Match({{ ({element!r},) : 'x.fits' }})")
    assert rmap.selector.rows[0].key == (normalised,)


# A bare scalar key is a 1-tuple (§6.1 step 2).
BARE_KEYS = [
    ("'UVIS'", ("UVIS",)),
    ("'a|b'", ("A|B",)),
    ("3", ("3.0",)),
    ("True", ("T",)),
]


@pytest.mark.parametrize(("key_text", "normalised"), BARE_KEYS)
def test_bare_scalar_key_is_a_one_tuple(tmp_path, key_text, normalised):
    rmap = make_rmap(tmp_path, f"Match({{ {key_text} : 'x.fits' }})")
    assert rmap.selector.rows[0].key == normalised


G280 = {"CCDAMP": {"G280_AMPS": ("ABCD", "A", "B"), "GENERIC": "N/A"}}

# (substitutions header, parkey, raw key, normalised key) — §6.1 step 1.
SUBSTITUTIONS = [
    (G280, ("DETECTOR", "CCDAMP"), ("UVIS", "G280_AMPS"), ("UVIS", "ABCD|A|B")),   # verified
    (G280, ("DETECTOR", "CCDAMP"), ("IR", "GENERIC"), ("IR", "N/A")),              # verified
    (G280, ("DETECTOR", "CCDAMP"), ("UVIS", "g280_amps"), ("UVIS", "G280_AMPS")),  # exact, before conditioning
    (G280, ("CCDAMP", "DETECTOR"), ("UVIS", "G280_AMPS"), ("UVIS", "G280_AMPS")),  # only P's own position
    ({"AMP": {"BOTH": ["A", "B"]}}, ("AMP",), ("BOTH",), ("A|B",)),                # list target -> tuple
    (None, ("SUBARRAY",), ("GENERIC",), ("N/A",)),                                 # built-in default
    (None, ("META.SUBARRAY.NAME",), ("GENERIC",), ("N/A",)),                       # built-in default
    (None, ("APERTURE",), ("GENERIC",), ("GENERIC",)),                             # defaults name two keys only
]


@pytest.mark.parametrize(("substitutions", "parkey", "raw", "normalised"), SUBSTITUTIONS)
def test_substitutions_rewrite_keys_at_load(tmp_path, substitutions, parkey, raw, normalised):
    extra = {} if substitutions is None else {"substitutions": substitutions}
    rmap = make_rmap(tmp_path, f"Match({{ {raw!r} : 'x.fits' }})", parkey=(parkey,), **extra)
    assert rmap.selector.rows[0].key == normalised


# (selector text, parkey, message the load must fail with) — §6.1 steps 1, 4, 5.
KEY_LOAD_ERRORS = [
    ("Match({ ('HRC', 'X') : 'x.fits' })", (("DETECTOR",),),
     "Match key=('HRC', 'X') is wrong length for parameters ('DETECTOR',)"),
    ("Match({ 'G280_AMPS' : 'x.fits' })", (("CCDAMP",),),
     "Match key=('ABCD', 'A', 'B') is wrong length for parameters ('CCDAMP',)"),
    ("Match({ ('HRC',) : 'a.fits', ('hrc',) : 'b.fits' })", (("DETECTOR",),),
     "Key ('HRC',) appears more than once "),
    ("Match({ ('1',) : 'a.fits', ('1.0',) : 'b.fits' })", (("N",),),
     "Key ('1.0',) appears more than once "),
    ("Match({ ('A|B',) : 'a.fits', ('b|a',) : 'b.fits' })", (("N",),),
     "Key ('A|B',) appears more than once "),
]


@pytest.mark.parametrize(("selector", "parkey", "message"), KEY_LOAD_ERRORS)
def test_bad_keys_fail_at_load(tmp_path, selector, parkey, message):
    with pytest.raises(MappingError) as caught:
        make_rmap(tmp_path, selector, parkey=parkey, substitutions={"CCDAMP": G280["CCDAMP"]})
    assert message in str(caught.value)


def test_rows_are_stored_sorted_by_normalised_key(tmp_path):
    rmap = make_rmap(tmp_path, "Match({ ('b',) : 'b.fits', ('A|C',) : 'ac.fits', ('*',) : 's.fits', "
                               "('(z)',) : 'z.fits', (1,) : 'one.fits' })")
    assert [row.key for row in rmap.selector.rows] == [("(z)",), ("*",), ("1.0",), ("A|C",), ("B",)]


# --------------------------------------------------------------------------- §6.2 element matchers

def element_score(tmp_path, key, value):
    """Score of one key element for one header value, observed through a real rmap.

    The rmap has the key under test -> hit.fits and an ``N/A`` row -> other.fits.  The N/A
    row switches the valid-value pre-check off (§6.3 rule 2) and always scores 0, so:
    hit.fits = 1 (match), both tied = 0 (don't care), other.fits = -1 (no match).
    """
    answer = best_ref(tmp_path, f"Match({{ ({key!r},) : 'hit.fits', ('N/A',) : 'other.fits' }})", {"A": value})
    if answer == "hit.fits":
        return MATCH
    if answer == "other.fits":
        return NO_MATCH
    if isinstance(answer, tuple) and sorted(answer) == ["hit.fits", "other.fits"]:
        return DONT_CARE
    return answer


# (key element, header value, score).  Grouped by the dispatch rule of §6.2.
REGEX_KEYS = [
    ("(HRC)", "HRC", MATCH),              # verified
    ("(HRC)", "HRCX", MATCH),             # verified: anchored at the start only
    ("(HRC)", "XHRC", NO_MATCH),          # verified
    ("(HRC)", "hrc", NO_MATCH),           # verified: case-sensitive, never upper-cased
    ("(^W.C$)", "WFC", MATCH),            # verified
    ("(^W.C$)", "WXCY", NO_MATCH),        # verified
    ("(X.*)", "*", MATCH),                # pre-step: header * matches everything
    ("(X.*)", "N/A", DONT_CARE),          # pre-step: header N/A does not care
    ("(X|Y)", "Y", MATCH),                # | inside parentheses is regex alternation
    ("([0-9]+)", "12", MATCH),
    ("([0-9]+)", "A1", NO_MATCH),
]

LITERAL_KEYS = [
    ("{S|B*C}", "S|B*C", MATCH),          # verified
    ("{S|B*C}", "S", NO_MATCH),           # verified
    ("{S|B*C}", "SBC", NO_MATCH),         # verified
    ("{S|B*C}", "*", MATCH),              # pre-step
    ("{S|B*C}", "N/A", DONT_CARE),        # pre-step
    ("{hrc}", "hrc", MATCH),              # never upper-cased
    ("{hrc}", "HRC", NO_MATCH),
]

RELATIONAL_KEYS = [
    ("# >3000 and <=4200 #", "3500", MATCH),          # verified
    ("# >3000 and <=4200 #", "4200", MATCH),          # verified
    ("# >3000 and <=4200 #", "4200.0", MATCH),        # verified
    ("# >3000 and <=4200 #", "4201", NO_MATCH),       # verified
    ("# >3000 and <=4200 #", "3000", NO_MATCH),
    ("#>4200 AND <=5800#", "4201", MATCH),            # verified
    ("# >5800 or <1000 #", "900", MATCH),             # verified
    ("# >5800 or <1000 #", "6000", MATCH),            # verified
    ("# >5800 or <1000 #", "150", MATCH),             # verified
    ("# >5800 or <1000 #", "50", MATCH),              # verified
    ("# >5800 or <1000 #", "3000", NO_MATCH),
    ("# >=100 #", "150", NO_MATCH),                   # verified: ' >=100 ' is a plain literal
    ("# >=100 #", "100", NO_MATCH),                   # verified
    ("#>=100#", "150", MATCH),                        # verified
    ("#>=100#", "99", NO_MATCH),
    ("#>1 and <5 and >2#", "1.5", MATCH),             # verified: third clause ignored
    ("#>1 and <5 or >7#", "3", MATCH),                # split on AND first: '>1' and '<5 OR >7' ...
    ("#>1 and <5 or >7#", "8", NO_MATCH),             # ... which reads as '<5' (text after the number ignored)
    ("#==5#", "5", NO_MATCH),                         # == is not an operator: plain literal '==5'
    ("#==5#", "==5", MATCH),
    ("#>1 AND <5#", "#>1 AND <5#", MATCH),            # pre-step: the upper-cased element itself
    ("#>1 AND <5#", "*", MATCH),
    ("#>1 AND <5#", "N/A", DONT_CARE),
    ("#>1 AND <5#", "ABC", NO_MATCH),
]

BETWEEN_KEYS = [
    ("between 3000 3200", "2999.99", NO_MATCH),       # verified
    ("between 3000 3200", "3000", MATCH),             # verified: lower bound inclusive
    ("between 3000 3200", "3199.99", MATCH),          # verified
    ("between 3000 3200", "3200", NO_MATCH),          # verified: upper bound exclusive
    ("between 3000 3200", ">=3000 AND <3200", MATCH),  # pre-step: the synthesised text
    ("between 3000 3200", "*", MATCH),
    ("between 3000 3200", "N/A", DONT_CARE),
    ("BETWEEN 1 1", "1", NO_MATCH),                   # lo == hi is legal and empty
]

NOT_KEYS = [
    ("not HRC", "WFC", MATCH),            # verified
    ("not HRC", "N/A", DONT_CARE),        # verified: match with weight 0
    ("not HRC", "HRC", NO_MATCH),         # verified
    ("not HRC", "*", NO_MATCH),           # verified: * never matches a NOT key
    ("NOT between 1 5", "0", MATCH),      # verified
    ("NOT between 1 5", "3", NO_MATCH),   # verified
    ("NOT between 1 5", "5", MATCH),      # verified
    ("not (X.*)", "AX", MATCH),           # verified
    ("not (X.*)", "XA", NO_MATCH),        # verified
    ("NOT N/A", "X", DONT_CARE),          # verified: anything -> weight 0
    ("NOT N/A", "HRC", DONT_CARE),        # verified
    ("NOT N/A", "*", DONT_CARE),
    ("NOT *", "X", NO_MATCH),             # verified: nothing ...
    ("NOT *", "*", NO_MATCH),
    ("NOT *", "N/A", DONT_CARE),          # verified: ... except header N/A
    ("NOT A|B", "A", NO_MATCH),
    ("NOT A|B", "C", MATCH),
    ("NOT >5", "7", NO_MATCH),
    ("NOT >5", "3", MATCH),
]

GLOB_KEYS = [
    ("F?W|G", "FXW", MATCH),              # verified
    ("F?W|G", "F?W", MATCH),              # verified
    ("F?W|G", "G", MATCH),                # verified
    ("F?W|G", "FW", NO_MATCH),            # ? is exactly one character
    ("F?W", "FXW", NO_MATCH),             # verified: ? alone does not make a glob
    ("F?W", "F?W", MATCH),
    ("[AB]X", "AX", NO_MATCH),            # [ alone does not make a glob either
    ("[AB]X|Z", "AX", MATCH),             # character class
    ("[AB]X|Z", "CX", NO_MATCH),
    ("F*", "F555W", MATCH),
    ("F*", "F", MATCH),                   # * is any run, including none
    ("F*", "XF555W", NO_MATCH),           # anchored at the start ...
    ("*W", "F555WX", NO_MATCH),           # ... and at the end
    ("F*", "f555w", NO_MATCH),            # case-sensitive
    ("A|B", "A", MATCH),
    ("A|B", "B", MATCH),
    ("A|B", "C", NO_MATCH),
    ("A|B", "A|B", NO_MATCH),             # stored text is the regex: no literal match
    ("A|B", "*", MATCH),
    ("A|B", "N/A", DONT_CARE),
    ("*", "ANYTHING", MATCH),             # * scores 1, like an exact value
    ("*", "UNDEFINED", MATCH),
]

INEQUALITY_KEYS = [
    (">=2.5e1", "25", MATCH),             # verified
    (">=2.5e1", "24.9", NO_MATCH),        # verified
    ("> 3", "4", MATCH),                  # verified: spaces after the operator
    ("> 3", "INF", MATCH),                # verified: float('INF')
    ("> 3", "1_000", MATCH),              # verified: float('1_000')
    ("> 3", "NAN", NO_MATCH),             # verified
    ("> 3", " 4 ", MATCH),                # float() accepts surrounding spaces
    ("> 3", "3", NO_MATCH),
    ("> 3", "ABC", NO_MATCH),             # not a number -> no match
    (">3abc", "4", MATCH),                # trailing text after the number is ignored
    (">3abc", "2", NO_MATCH),
    ("<5", "4.99", MATCH),
    ("<5", "5", NO_MATCH),
    ("<=5", "5", MATCH),
    ("<=-1", "-2", MATCH),
    (">5", ">5", MATCH),                  # pre-step: the element text itself
    (">5", "*", MATCH),
    (">5", "N/A", DONT_CARE),
]

PLAIN_KEYS = [
    ("HRC", "HRC", MATCH),
    ("HRC", "hrc", NO_MATCH),             # rmap level: no conditioning of header values
    ("hrc", "HRC", MATCH),                # ... but keys are conditioned at load
    ("HRC", "HRCX", NO_MATCH),
    ("1", "1.0", MATCH),                  # key '1' is stored as '1.0'
    ("1", "1", NO_MATCH),
    ("HRC", "*", MATCH),
    ("HRC", "N/A", DONT_CARE),
    ("10:20", "10:20", MATCH),
]


@pytest.mark.parametrize(
    ("key", "value", "score"),
    REGEX_KEYS + LITERAL_KEYS + RELATIONAL_KEYS + BETWEEN_KEYS + NOT_KEYS + GLOB_KEYS + INEQUALITY_KEYS + PLAIN_KEYS)
def test_element_matcher(tmp_path, key, value, score):
    assert element_score(tmp_path, key, value) == score


# (key element, message fragment) — elements that cannot be compiled fail at load (§6.2).
ELEMENT_LOAD_ERRORS = [
    (">abc", "'NoneType' object has no attribute 'group'"),
    ("<=", "'NoneType' object has no attribute 'group'"),
    ("BETWEEN 5 1", "Invalid between relation 'BETWEEN 5 1' should be 'between lower_bound upper_bound'"),
    ("between 5 1", "Invalid between relation 'BETWEEN 5 1' should be 'between lower_bound upper_bound'"),
    ("BETWEEN 5", "Invalid between relation 'BETWEEN 5'"),
    ("BETWEEN 1 2 3", "Invalid between relation 'BETWEEN 1 2 3'"),
    ("(A[)", "unterminated character set at position 1"),
    ("NOT (A[)", "unterminated character set at position 1"),
]


@pytest.mark.parametrize(("key", "message"), ELEMENT_LOAD_ERRORS)
def test_bad_key_element_fails_at_load(tmp_path, key, message):
    with pytest.raises(MappingError) as caught:
        make_rmap(tmp_path, f"Match({{ ({key!r},) : 'x.fits' }})")
    assert message in str(caught.value)


# --------------------------------------------------------------------------- §6.3 pre-check

# (selector, header, answer).  One parameter A unless the header says otherwise.
PRECHECK = [
    # verified: a glob-only column rejects values it would match
    ("Match({ ('FR*',) : 'fr.fits', ('F555W',) : 'f555.fits' })", {"FILTNAM1": "FR533N"},
     "NOT FOUND  parameter='FILTNAM1' value='FR533N' is not in ['F555W', 'FR*']"),
    # verified: inequality keys are not esoteric
    ("Match({ ('>5',) : 'gt5.fits', ('<=5',) : 'le5.fits' })", {"CCDGAIN": "7"},
     "NOT FOUND  parameter='CCDGAIN' value='7' is not in ['<=5', '>5']"),
    ("Match({ ('>5',) : 'gt5.fits', ('<=5',) : 'le5.fits' })", {"CCDGAIN": ">5"}, "gt5.fits"),  # verified
    # verified: an N/A row in the column switches the check off
    ("Match({ ('>5',) : 'gt5.fits', ('<=5',) : 'le5.fits', ('N/A',) : 'na.fits' })", {"CCDGAIN": "7"},
     "gt5.fits"),
    ("Match({ ('>5',) : 'gt5.fits', ('<=5',) : 'le5.fits', ('N/A',) : 'na.fits' })", {"CCDGAIN": "3.5"},
     "le5.fits"),
    # verified: alternatives are split into the valid set
    ("Match({ ('A|B | C',) : 'abc.fits', ('D',) : 'd.fits' })", {"FILTER": "E"},
     "NOT FOUND  parameter='FILTER' value='E' is not in ['A', 'B', 'C', 'D']"),
    ("Match({ ('A|B | C',) : 'abc.fits', ('D',) : 'd.fits' })", {"FILTER": "A|B"},
     "NOT FOUND  parameter='FILTER' value='A|B' is not in ['A', 'B', 'C', 'D']"),
    ("Match({ ('A|B | C',) : 'abc.fits', ('D',) : 'd.fits' })", {"FILTER": " B"}, NOT_FOUND_NO_MATCH),
    ("Match({ ('A|B | C',) : 'abc.fits', ('D',) : 'd.fits' })", {"FILTER": "b"}, NOT_FOUND_NO_MATCH),
    ("Match({ ('A|B | C',) : 'abc.fits', ('D',) : 'd.fits' })", {"FILTER": "B"}, "abc.fits"),
    # rule 2: *, ANY or N/A in the column accepts everything
    ("Match({ ('HRC',) : 'hrc.fits', ('*',) : 'star.fits' })", {"A": "ZZZ"}, "star.fits"),
    ("Match({ ('HRC',) : 'hrc.fits', ('any',) : 'star.fits' })", {"A": "ZZZ"}, "star.fits"),
    ("Match({ ('HRC',) : 'hrc.fits', ('WFC|*',) : 'star.fits' })", {"A": "ZZZ"}, "star.fits"),
    # rule 3: one esoteric element anywhere in the column empties the valid set
    ("Match({ ('HRC',) : 'hrc.fits', ('(W.*)',) : 'w.fits' })", {"A": "ZZZ"}, NOT_FOUND_NO_MATCH),
    ("Match({ ('HRC',) : 'hrc.fits', ('{W}',) : 'w.fits' })", {"A": "ZZZ"}, NOT_FOUND_NO_MATCH),
    ("Match({ ('HRC',) : 'hrc.fits', ('# >1 #',) : 'w.fits' })", {"A": "ZZZ"}, NOT_FOUND_NO_MATCH),
    ("Match({ ('HRC',) : 'hrc.fits', ('between 1 5',) : 'w.fits' })", {"A": "ZZZ"}, NOT_FOUND_NO_MATCH),
    ("Match({ ('HRC',) : 'hrc.fits', ('NOT WFC',) : 'w.fits' })", {"A": "WFC"}, NOT_FOUND_NO_MATCH),
    ("Match({ ('HRC',) : 'hrc.fits', ('(W.*',) : 'w.fits' })", {"A": "ZZZ"},          # starts ( ends *: not esoteric
     "NOT FOUND  parameter='A' value='ZZZ' is not in ['(W.*', 'HRC']"),
    ("Match({ ('HRC',) : 'hrc.fits', ('#W)',) : 'w.fits' })", {"A": "ZZZ"}, NOT_FOUND_NO_MATCH),  # any mix of ends
    # rule 4: a value starting NOT is checked as the rest (case-sensitive, no space needed)
    ("Match({ ('HRC',) : 'hrc.fits', ('WFC',) : 'wfc.fits' })", {"A": "NOTE"},
     "NOT FOUND  parameter='A' value='E' is not in ['HRC', 'WFC']"),                 # verified
    ("Match({ ('HRC',) : 'hrc.fits', ('WFC',) : 'wfc.fits' })", {"A": "NOT HRC"}, NOT_FOUND_NO_MATCH),
    ("Match({ ('HRC',) : 'hrc.fits', ('WFC',) : 'wfc.fits' })", {"A": "not ZZZ"},
     NOT_FOUND_NO_MATCH),                                   # not rule 4 (lower case), but esoteric: rule 5
    # rule 5: esoteric, *, ANY and N/A values pass
    ("Match({ ('HRC',) : 'hrc.fits', ('WFC',) : 'wfc.fits' })", {"A": "(H.*)"}, NOT_FOUND_NO_MATCH),
    ("Match({ ('HRC',) : 'hrc.fits', ('WFC',) : 'wfc.fits' })", {"A": "between 1 5"}, NOT_FOUND_NO_MATCH),
    ("Match({ ('HRC',) : 'hrc.fits', ('WFC',) : 'wfc.fits' })", {"A": "ANY"}, NOT_FOUND_NO_MATCH),
    ("Match({ ('HRC',) : 'hrc.fits', ('WFC',) : 'wfc.fits' })", {"A": "*"}, ("hrc.fits", "wfc.fits")),
    ("Match({ ('HRC',) : 'hrc.fits', ('WFC',) : 'wfc.fits' })", {"A": "N/A"}, ("hrc.fits", "wfc.fits")),
    # rule 6: a single 'lo:hi' element is a numeric range (verified with '10:20')
    ("Match({ ('10:20',) : 'range.fits' })", {"A": "15"}, NOT_FOUND_NO_MATCH),
    ("Match({ ('10:20',) : 'range.fits' })", {"A": "10:20"}, "range.fits"),
    ("Match({ ('10:20',) : 'range.fits' })", {"A": "10"}, NOT_FOUND_NO_MATCH),
    # rule 8: anything else is rejected, listing the sorted valid set
    ("Match({ ('WFC',) : 'wfc.fits', ('HRC',) : 'hrc.fits', ('SBC',) : 'sbc.fits' })", {"A": "XYZ"},
     "NOT FOUND  parameter='A' value='XYZ' is not in ['HRC', 'SBC', 'WFC']"),
]


@pytest.mark.parametrize(("selector", "header", "answer"), PRECHECK)
def test_valid_value_precheck(tmp_path, selector, header, answer):
    parkey = (tuple(header),)
    assert best_ref(tmp_path, selector, header, parkey=parkey) == answer


RANGE_OUTSIDE = [("25",), ("9.99",), ("20.01",)]


@pytest.mark.parametrize(("value",), RANGE_OUTSIDE)
def test_range_precheck_rejects_values_outside(tmp_path, value):
    rmap = make_rmap(tmp_path, "Match({ ('10:20',) : 'range.fits' })")
    with pytest.raises(InvalidValueError) as caught:
        rmap.select({"A": value})
    assert re.fullmatch(rf" parameter='A' value ='{value}' is not in range \[10(\.0)? \.\. 20(\.0)?\]",
                        caught.value.message)


# rule 7: a header value that is a substitution *source* is checked as its target.
SUBSTITUTION_PRECHECK = [
    ({"AMP": "OLD"}, NOT_FOUND_NO_MATCH),    # checked as 'A': passes, but header values are never rewritten
    ({"AMP": "A"}, "a.fits"),
    ({"AMP": "NEW"}, "NOT FOUND  parameter='AMP' value='NEW' is not in ['A', 'B']"),
]


@pytest.mark.parametrize(("header", "answer"), SUBSTITUTION_PRECHECK)
def test_precheck_follows_substitutions(tmp_path, header, answer):
    assert best_ref(tmp_path, "Match({ ('OLD',) : 'a.fits', ('B',) : 'b.fits' })", header,
                    parkey=(("AMP",),), substitutions={"AMP": {"OLD": "A"}}) == answer


def test_precheck_failure_is_a_typed_error(tmp_path):
    rmap = make_rmap(tmp_path, "Match({ ('HRC',) : 'hrc.fits' })")
    with pytest.raises(InvalidValueError) as caught:
        rmap.select({"A": "WFC"})
    assert caught.value.category == "invalid-value"


# --------------------------------------------------------------------------- §6.4 missing parameters

# (selector over parameters A, B; header; answer)
MISSING = [
    ("Match({ ('X', '*') : 'star.fits', ('Y', 'Q') : 'q.fits' })", {"A": "X"},
     "NOT FOUND Match required lookup parameter 'B' is undefined."),                     # verified
    ("Match({ ('X', '*') : 'star.fits', ('Y', 'Q') : 'q.fits' })", {"A": "X", "B": "UNDEFINED"},
     "star.fits"),                                                                        # verified
    ("Match({ ('X', 'N/A') : 'na.fits', ('Y', 'Q') : 'q.fits' })", {"A": "X"}, "na.fits"),  # verified
    ("Match({ ('X', 'N/A') : 'na.fits', ('Y', 'Q') : 'q.fits' })", {"A": "Y"}, NOT_FOUND_NO_MATCH),  # verified
    ("Match({ ('X', 'N/A') : 'na.fits', ('Y', '(Q.*)') : 'q.fits' })", {"A": "X"},
     "NOT FOUND Match required lookup parameter 'B' is undefined."),                     # verified
    ("Match({ ('X', 'N/A') : 'na.fits', ('Y', '(Q.*)') : 'q.fits' })", {"A": "X", "B": "UNDEFINED"},
     "na.fits"),                                                                          # verified
    ("Match({ ('X', 'N/A') : 'na.fits', ('Y', 'Q') : 'q.fits' })", {"B": "Q"},
     "NOT FOUND Match required lookup parameter 'A' is undefined."),
    ("Match({ ('X', 'N/A') : 'na.fits', ('Y', 'UND*') : 'und.fits' })", {"A": "Y"}, "und.fits"),  # absent = 'UNDEFINED'
    ("Match({ ('X', 'N/A') : 'na.fits', ('Y', 'NOT Q') : 'notq.fits' })", {"A": "Y"},
     "NOT FOUND Match required lookup parameter 'B' is undefined."),                     # NOT is esoteric
]


@pytest.mark.parametrize(("selector", "header", "answer"), MISSING)
def test_missing_parameters(tmp_path, selector, header, answer):
    assert best_ref(tmp_path, selector, header, parkey=(("A", "B"),)) == answer


def test_missing_parameter_is_a_typed_error(tmp_path):
    rmap = make_rmap(tmp_path, "Match({ ('X',) : 'x.fits' })")
    with pytest.raises(MissingKeyError) as caught:
        rmap.select({})
    assert caught.value.category == "missing-key"
    assert caught.value.message == "Match required lookup parameter 'A' is undefined."


# --------------------------------------------------------------------------- §6.5 weights

XNA = "Match({ ('X', 'N/A') : 'x_na.fits', ('N/A', 'Y') : 'na_y.fits', ('N/A', 'N/A') : 'na_na.fits' })"
STAR = "Match({ ('*', 'X') : 'star.fits', ('A', 'X') : 'a.fits' })"
NA_ROW = "Match({ ('N/A', 'X') : 'na.fits', ('A', 'X') : 'a.fits' })"
PATTERNS = "Match({ ('X', 'N/A') : 'x_na.fits', ('X*', 'Y') : 'xglob_y.fits', ('(X.*)', 'Y') : 'xre_y.fits' })"

# (selector, A, B, answer) — all verified.  Exact, *, glob, regex all score 1; N/A scores 0.
WEIGHTS = [
    (XNA, "X", "Y", ("na_y.fits", "x_na.fits")),
    (XNA, "X", "Z", "x_na.fits"),
    (XNA, "Q", "Y", "na_y.fits"),
    (XNA, "Q", "Z", "na_na.fits"),
    (STAR, "A", "X", ("star.fits", "a.fits")),
    (STAR, "B", "X", "star.fits"),
    (STAR, "*", "X", ("star.fits", "a.fits")),
    (STAR, "N/A", "X", ("star.fits", "a.fits")),
    (STAR, "UNDEFINED", "X", "star.fits"),
    (NA_ROW, "A", "X", "a.fits"),
    (NA_ROW, "B", "X", "na.fits"),
    (NA_ROW, "*", "X", "a.fits"),
    (NA_ROW, "N/A", "X", ("a.fits", "na.fits")),
    (PATTERNS, "X", "Y", ("xre_y.fits", "xglob_y.fits")),
    (PATTERNS, "X", "Q", "x_na.fits"),
]


@pytest.mark.parametrize(("selector", "a", "b", "answer"), WEIGHTS)
def test_weights(tmp_path, selector, a, b, answer):
    assert best_ref(tmp_path, selector, {"A": a, "B": b}, parkey=(("A", "B"),)) == answer


# --------------------------------------------------------------------------- §6.6 ties and merging

AMPS = """Match({
    ('HRC', 'A|B') : UseAfter({ '2000-01-01 00:00:00' : 'ab_2000.fits', '2005-01-01 00:00:00' : 'ab_2005.fits' }),
    ('HRC', 'A') : UseAfter({ '2002-01-01 00:00:00' : 'a_2002.fits', '2005-01-01 00:00:00' : 'a_2005.fits' }),
    ('HRC', 'N/A') : UseAfter({ '1990-01-01 00:00:00' : 'na_1990.fits' }),
})"""
AMPS_PARKEY = (("DETECTOR", "AMP"), ("DATE-OBS", "TIME-OBS"))

# (merge_overlaps header value or None for absent, AMP, date, answer) — verified unless noted.
MERGES = [
    (None, "A", "1995-01-01", "na_1990.fits"),      # merged group has nothing <= 1995: fall back
    (None, "A", "2001-01-01", "ab_2000.fits"),
    (None, "A", "2003-01-01", "a_2002.fits"),
    (None, "A", "2006-01-01", "ab_2005.fits"),      # collision on 2005-01-01: greater file name
    (None, "B", "2001-01-01", "ab_2000.fits"),
    (None, "B", "2006-01-01", "ab_2005.fits"),
    (None, "C", "2006-01-01", "na_1990.fits"),
    ("0", "A", "2001-01-01", "NOT FOUND More than one match clause matched."),
    ("0", "A", "1995-01-01", "NOT FOUND More than one match clause matched."),
    ("0", "B", "2001-01-01", "ab_2000.fits"),       # a one-row group is not a tie
    # merge_overlaps is on iff str(value).upper() is TRUE or 1 (§2)
    ("False", "A", "2001-01-01", "NOT FOUND More than one match clause matched."),
    ("no", "A", "2001-01-01", "NOT FOUND More than one match clause matched."),
    (0, "A", "2001-01-01", "NOT FOUND More than one match clause matched."),
    ("yes", "A", "2001-01-01", "NOT FOUND More than one match clause matched."),
    ("true", "A", "2003-01-01", "a_2002.fits"),
    ("TRUE", "A", "2003-01-01", "a_2002.fits"),
    ("1", "A", "2003-01-01", "a_2002.fits"),
    (True, "A", "2003-01-01", "a_2002.fits"),
    (1, "A", "2003-01-01", "a_2002.fits"),
]


@pytest.mark.parametrize(("merge_overlaps", "amp", "date", "answer"), MERGES)
def test_tied_useafters_merge(tmp_path, merge_overlaps, amp, date, answer):
    extra = {} if merge_overlaps is None else {"merge_overlaps": merge_overlaps}
    header = {"DETECTOR": "HRC", "AMP": amp, "DATE-OBS": date, "TIME-OBS": "00:00:00"}
    assert best_ref(tmp_path, AMPS, header, parkey=AMPS_PARKEY, **extra) == answer


def test_merge_disabled_is_a_typed_ambiguity(tmp_path):
    rmap = make_rmap(tmp_path, AMPS, parkey=AMPS_PARKEY, merge_overlaps="0")
    with pytest.raises(AmbiguousMatchError) as caught:
        rmap.select({"DETECTOR": "HRC", "AMP": "A", "DATE-OBS": "2001-01-01", "TIME-OBS": "00:00:00"})
    assert caught.value.category == "ambiguous"


# (selector, parkey, header, answer) — other tie shapes of §6.6.
TIES = [
    # verified: '1.0E3' and 'ANY' tie; the merged dates collide; max file name wins
    ("Match({ ('NUV', '1.0E3', 'F') : UseAfter({ '1996-10-01 00:00:00' : 'nuv_1000.fits' }),"
     " ('NUV', 'ANY', 'F') : UseAfter({ '1996-10-01 00:00:00' : 'nuv_any.fits' }) })",
     (("DETECTOR", "CENWAVE", "FLAG"), ("DATE-OBS", "TIME-OBS")),
     {"DETECTOR": "NUV", "CENWAVE": "1000.0", "FLAG": "F", "DATE-OBS": "2000-01-01", "TIME-OBS": "00:00:00"},
     "nuv_any.fits"),
    # verified: terminal ties give the tuple of choices in stored (sorted key) order
    ("Match({ ('X*',) : 'g.fits', ('X',) : 'x.fits' })", (("A",),), {"A": "X"}, ("x.fits", "g.fits")),
    # verified: a tuple result is not an N/A value, even if it holds one
    ("Match({ ('X',) : 'x.fits', ('*',) : 'N/A' })", (("A",),), {"A": "X"}, ("N/A", "x.fits")),
    ("Match({ ('X',) : 'x.fits', ('*',) : 'N/A' })", (("A",),), {"A": "Y"}, "NOT FOUND n/a"),
    # three-way terminal tie, stored order
    ("Match({ ('C',) : 'c.fits', ('*',) : 's.fits', ('C|D',) : 'cd.fits' })", (("A",),), {"A": "C"},
     ("s.fits", "c.fits", "cd.fits")),
    # verified: tied nested Match selectors cannot merge
    ("Match({ ('HRC',) : Match({ ('A',) : 'x.fits' }), ('*',) : Match({ ('A',) : 'y.fits' }) })",
     (("DETECTOR",), ("AMP",)), {"DETECTOR": "HRC", "AMP": "A"},
     "NOT FOUND More than one match was found at the same weight and Match does not support merging."),
    ("Match({ ('HRC',) : Match({ ('A',) : 'x.fits' }), ('*',) : Match({ ('A',) : 'y.fits' }) })",
     (("DETECTOR",), ("AMP",)), {"DETECTOR": "WFC", "AMP": "A"}, "y.fits"),
    # the message names the selector type that cannot merge
    ("Match({ ('HRC',) : GeometricallyNearest({ 1.0 : 'x.fits' }),"
     " ('*',) : GeometricallyNearest({ 2.0 : 'y.fits' }) })",
     (("DETECTOR",), ("WAVE",)), {"DETECTOR": "HRC", "WAVE": "1.0"},
     "NOT FOUND More than one match was found at the same weight and GeometricallyNearest does not support merging."),
    # VersionAfter selectors merge like UseAfter
    ("Match({ ('HRC',) : VersionAfter({ '1.0' : 'v1_hrc.fits', '3.0' : 'v3_hrc.fits' }),"
     " ('*',) : VersionAfter({ '2.0' : 'v2_star.fits', '3.0' : 'v3_star.fits' }) })",
     (("DETECTOR",), ("VER",)), {"DETECTOR": "HRC", "VER": "2.5"}, "v2_star.fits"),
    ("Match({ ('HRC',) : VersionAfter({ '1.0' : 'v1_hrc.fits', '3.0' : 'v3_hrc.fits' }),"
     " ('*',) : VersionAfter({ '2.0' : 'v2_star.fits', '3.0' : 'v3_star.fits' }) })",
     (("DETECTOR",), ("VER",)), {"DETECTOR": "HRC", "VER": "3.1"}, "v3_star.fits"),
    ("Match({ ('HRC',) : VersionAfter({ '1.0' : 'v1_hrc.fits', '3.0' : 'v3_hrc.fits' }),"
     " ('*',) : VersionAfter({ '2.0' : 'v2_star.fits', '3.0' : 'v3_star.fits' }) })",
     (("DETECTOR",), ("VER",)), {"DETECTOR": "HRC", "VER": "1.5"}, "v1_hrc.fits"),
]


@pytest.mark.parametrize(("selector", "parkey", "header", "answer"), TIES)
def test_ties(tmp_path, selector, parkey, header, answer):
    assert best_ref(tmp_path, selector, header, parkey=parkey) == answer


def test_terminal_tie_with_merging_off_is_ambiguous(tmp_path):
    rmap = make_rmap(tmp_path, "Match({ ('X*',) : 'g.fits', ('X',) : 'x.fits' })", merge_overlaps="0")
    assert rmap.get_best_ref({"A": "X"}) == "NOT FOUND More than one match clause matched."


def test_tie_of_selector_and_file_is_an_error_not_a_crash(tmp_path):
    # The oracle crashes here ('str' object has no attribute '_selections'); the spec lets
    # crdsmini raise AmbiguousMatchError instead.  ('*' sorts before 'HRC': the selector is first.)
    rmap = make_rmap(tmp_path, "Match({ ('*',) : UseAfter({ '2000-01-01 00:00:00' : 'u.fits' }),"
                               " ('HRC',) : 'plain.fits' })",
                     parkey=(("DETECTOR",), ("DATE-OBS", "TIME-OBS")))
    with pytest.raises(CrdsminiError):
        rmap.select({"DETECTOR": "HRC", "DATE-OBS": "2001-01-01", "TIME-OBS": "00:00:00"})


# --------------------------------------------------------------------------- §6.7 fallback

NESTED_1 = "Match({ ('HRC',) : Match({ ('A',) : 'hrc_a.fits' }), ('N/A',) : Match({ ('B',) : 'na_b.fits', ('A',) : 'na_a.fits' }) })"
NESTED_2 = "Match({ ('HRC',) : Match({ ('A',) : 'hrc_a.fits', ('N/A',) : 'hrc_na.fits' }), ('N/A',) : Match({ ('B',) : 'na_b.fits' }) })"
DATED = ("Match({ ('HRC',) : UseAfter({ '2005-01-01 00:00:00' : 'hrc_2005.fits' }),"
         " ('N/A',) : UseAfter({ '1990-01-01 00:00:00' : 'na_1990.fits' }) })")
DATED_TERMINAL = "Match({ ('HRC',) : UseAfter({ '2005-01-01 00:00:00' : 'hrc_2005.fits' }), ('N/A',) : 'na.fits' })"
DATED_ONLY = "Match({ ('HRC',) : UseAfter({ '2005-01-01 00:00:00' : 'hrc_2005.fits' }) })"

NESTED_PARKEY = (("DETECTOR",), ("AMP",))
DATED_PARKEY = (("DETECTOR",), ("DATE-OBS", "TIME-OBS"))

# (selector, parkey, header, answer)
FALLBACK = [
    (NESTED_1, NESTED_PARKEY, {"DETECTOR": "HRC", "AMP": "A"}, "hrc_a.fits"),                  # verified
    (NESTED_1, NESTED_PARKEY, {"DETECTOR": "WFC", "AMP": "B"}, "na_b.fits"),                   # verified
    (NESTED_1, NESTED_PARKEY, {"DETECTOR": "HRC", "AMP": "B"},
     "NOT FOUND  parameter='AMP' value='B' is not in ['A']"),                                  # verified: fatal
    (NESTED_2, NESTED_PARKEY, {"DETECTOR": "HRC", "AMP": "B"}, "hrc_na.fits"),                 # verified
    (NESTED_2, NESTED_PARKEY, {"DETECTOR": "HRC", "AMP": "A"}, "hrc_a.fits"),
    # a nested "no selection" is a lookup failure: fall back to the weaker group
    (DATED, DATED_PARKEY, {"DETECTOR": "HRC", "DATE-OBS": "2000-01-01", "TIME-OBS": "00:00:00"}, "na_1990.fits"),
    (DATED, DATED_PARKEY, {"DETECTOR": "HRC", "DATE-OBS": "2006-01-01", "TIME-OBS": "00:00:00"}, "hrc_2005.fits"),
    (DATED, DATED_PARKEY, {"DETECTOR": "HRC", "DATE-OBS": "1980-01-01", "TIME-OBS": "00:00:00"},
     NOT_FOUND_NO_MATCH),                                                                       # all groups failed
    (DATED_TERMINAL, DATED_PARKEY, {"DETECTOR": "HRC", "DATE-OBS": "2000-01-01", "TIME-OBS": "00:00:00"},
     "na.fits"),
    (DATED_ONLY, DATED_PARKEY, {"DETECTOR": "HRC", "DATE-OBS": "2000-01-01", "TIME-OBS": "00:00:00"},
     NOT_FOUND_NO_MATCH),                                        # §7.4: not "No selection <= ..."
    # a date-format error is not a lookup failure: it aborts, the N/A group is never tried
    (DATED_TERMINAL, DATED_PARKEY, {"DETECTOR": "HRC", "DATE-OBS": "2000-1-1", "TIME-OBS": "00:00:00"},
     "NOT FOUND UseAfter Invalid date/time format for ('DATE-OBS', 'TIME-OBS') value = '2000-1-1 00:00:00' "
     "exception is \"Unknown numerical date format: '2000/1/1 00:00:00'\""),
    (DATED_TERMINAL, DATED_PARKEY, {"DETECTOR": "HRC", "DATE-OBS": "UNDEFINED", "TIME-OBS": "00:00:00"},
     "NOT FOUND UseAfter parameter 'DATE-OBS' is UNDEFINED."),
]


@pytest.mark.parametrize(("selector", "parkey", "header", "answer"), FALLBACK)
def test_fallback_to_weaker_groups(tmp_path, selector, parkey, header, answer):
    assert best_ref(tmp_path, selector, header, parkey=parkey) == answer


def test_no_surviving_row_is_a_lookup_failure(tmp_path):
    rmap = make_rmap(tmp_path, "Match({ ('X', 'N/A') : 'x.fits', ('*', 'Q') : 'q.fits' })", parkey=(("A", "B"),))
    with pytest.raises(NoMatchError) as caught:
        rmap.select({"A": "Y", "B": "Z"})
    assert (caught.value.category, caught.value.message) == ("not-found", "No match found.")


# Column index vs. matchers: a Match column answers most values from its equality index
# ('A|B' keys included) instead of running each element's matcher; both must agree.
INDEXED_COLUMN_KEYS = ["HRC", "HRC|WFC", "WFC|SBC|HRC", "A*|B", "N/A", "*", "(W.*)", "# >1 #", "1", "X|Y?"]


@pytest.mark.parametrize("value", ["HRC", "WFC", "SBC", "B", "AX", "A", "X", "XY", "W1", "2", "1.0", "0.5",
                                   "*", "N/A", "UNDEFINED", "", "(?:(?s:HRC)\\Z)|(?:(?s:WFC)\\Z)"])
def test_column_index_agrees_with_element_matchers(tmp_path, value):
    body = ", ".join(f"({key!r},) : 'r{row}.fits'" for row, key in enumerate(INDEXED_COLUMN_KEYS))
    rmap = make_rmap(tmp_path, "Match({ " + body + " })", parkey=(("A",),))
    column = rmap.selector.columns[0]
    ones, zeros = column.bits(value)
    for row, matcher in enumerate(column.matchers):
        score = matcher.match(value)
        assert (ones >> row & 1, zeros >> row & 1) == (int(score > 0), int(score == 0)), (column.matchers[row].text,
                                                                                       value)


def test_alternative_key_matches_its_own_regex_text_like_crds(tmp_path):
    # CRDS's matcher pre-step compares the value with the stored regex text first.
    rmap = make_rmap(tmp_path, "Match({ ('HRC|WFC',) : 'hw.fits', ('SBC',) : 's.fits' })", parkey=(("A",),))
    column = rmap.selector.columns[0]
    regex_text = next(m for m in column.matchers if "|" in m.text)
    assert regex_text.match("(?:(?s:HRC)\\Z)|(?:(?s:WFC)\\Z)") == 1
    assert rmap.get_best_ref({"A": "(?:(?s:HRC)\\Z)|(?:(?s:WFC)\\Z)"}) == "hw.fits"
    assert rmap.get_best_ref({"A": "WFC"}) == "hw.fits"
