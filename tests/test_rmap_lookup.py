"""Rules-language §4, §9, §10: the rmap lookup procedure around the selector tree.

Order of the steps (omit, relevance, precondition hook, parkey relevance, choose, HST
do-not-reprocess, fallback hook, reffile_required, terminal specials), the header fields
that drive them, and the observatory behaviours.  rmaps are real text in ``tmp_path``;
lookups are at the rmap level.  Rows marked "verified" are the oracle's answers.
"""
from __future__ import annotations

import logging

import pytest

from crdsmini.errors import CrdsminiError as LookupError_, ExpressionError, MappingError
from mapping_factory import best_ref, make_rmap

NA = "NOT FOUND n/a"
OMITTED = None
A_OR_STAR = "Match({ ('A',) : 'a.fits', ('*',) : 'star.fits' })"
DET = (("DET",),)


# --------------------------------------------------------------------------- §4 step 8: terminal specials

# (choice as written, answer) — verified.
TERMINALS = [
    ("'N/A'", NA),
    ("'n/a'", NA),
    ("'TEMP_N/A'", NA),
    ("'temp_n/a'", NA),
    ("'OMIT'", OMITTED),
    ("'omit'", OMITTED),
    ("'TEMP_OMIT'", OMITTED),
    ("'Omit'", "Omit"),                  # exact strings only
    ("'N/a'", "N/a"),
    ("'NOT FOUND n/a'", "NOT FOUND n/a"),  # a file name like any other
    ("'x.fits'", "x.fits"),
]


@pytest.mark.parametrize(("choice", "answer"), TERMINALS)
def test_terminal_special_values(tmp_path, choice, answer):
    assert best_ref(tmp_path, f"Match({{ ('X',) : {choice} }})", {"A": "X"}) == answer


@pytest.mark.parametrize(("choice", "answer"), [("'N/A'", NA), ("'OMIT'", OMITTED), ("'x.fits'", "x.fits")])
def test_terminal_specials_under_useafter(tmp_path, choice, answer):
    selector = f"UseAfter({{ '2000-01-01 00:00:00' : {choice} }})"
    header = {"DATE-OBS": "2001-01-01", "TIME-OBS": "00:00:00"}
    assert best_ref(tmp_path, selector, header, parkey=(("DATE-OBS", "TIME-OBS"),)) == answer


# --------------------------------------------------------------------------- §9.2 rmap_relevance / rmap_omit

# (header field, expression as written, DET, answer) — selector A_OR_STAR; verified unless noted.
RELEVANCE_AND_OMIT = [
    ("rmap_relevance", '(DET == "A")', "B", NA),
    ("rmap_relevance", '(DET == "A")', "A", ("star.fits", "a.fits")),
    ("rmap_relevance", 'DET == "A"', "B", "star.fits"),          # read as 'det == "a"': fails open
    ("rmap_relevance", '(DET == "a")', "A", NA),                 # case matters inside the parentheses
    ("rmap_relevance", '(DETX == "A")', "B", "star.fits"),       # unknown name: warning, relevant
    ("rmap_relevance", '(1 if DET == "A" else 0)', "B", NA),
    ("rmap_relevance", "ALWAYS", "B", "star.fits"),
    ("rmap_relevance", "always", "B", "star.fits"),
    ("rmap_relevance", '(DET != "OMIT")', "OMIT", NA),
    ("rmap_relevance", '(DET in ["B", "C"])', "B", "star.fits"),
    ("rmap_relevance", '(DET not in ("B", "C"))', "B", NA),
    ("rmap_relevance", "(DET == 'B')", "B", "star.fits"),         # single quotes accepted too
    ("rmap_omit", "True", "B", "star.fits"),                     # read as 'true': warning, not omitted
    ("rmap_omit", "TRUE", "B", "star.fits"),
    ("rmap_omit", "(True)", "B", OMITTED),
    ("rmap_omit", "(True)", "A", OMITTED),
    ("rmap_omit", '(DET == "A")', "A", OMITTED),
    ("rmap_omit", '(DET == "A")', "B", "star.fits"),
    ("rmap_omit", '(FLAG == "OMIT")', "B", "star.fits"),         # FLAG absent: warning, not omitted
]


@pytest.mark.parametrize(("field", "expression", "det", "answer"), RELEVANCE_AND_OMIT)
def test_rmap_relevance_and_omit(tmp_path, field, expression, det, answer):
    assert best_ref(tmp_path, A_OR_STAR, {"DET": det}, parkey=DET, **{field: expression}) == answer


def test_relevance_evaluation_failure_is_logged(tmp_path, caplog):
    rmap = make_rmap(tmp_path, A_OR_STAR, parkey=DET, rmap_relevance='DET == "A"')
    with caplog.at_level(logging.WARNING):
        assert rmap.get_best_ref({"DET": "B"}) == "star.fits"
    assert "Failed checking relevance for 'inst' 'kind' with expr 'det == \"a\"' : name 'det' is not defined" \
        in caplog.text


def test_omit_evaluation_failure_is_logged(tmp_path, caplog):
    rmap = make_rmap(tmp_path, A_OR_STAR, parkey=DET, rmap_omit="(FLAG == 'OMIT')")
    with caplog.at_level(logging.WARNING):
        assert rmap.get_best_ref({"DET": "B"}) == "star.fits"
    assert "Failed checking OMIT for 'inst' 'kind'" in caplog.text


# (header fields, message fragment) — expression problems are load errors (§9.1, §9.2).
EXPRESSION_LOAD_ERRORS = [
    ({"rmap_omit": True}, "compile() arg 1 must be a string, bytes or AST object"),        # verified
    ({"rmap_relevance": '(DET x= "SBC")'}, "(DET x= \"SBC\")"),                            # corpus badexpr
    ({"parkey_relevance": {"det": '(DET x= "SBC")'}}, "(DET x= \"SBC\")"),
    ({"rmap_relevance": "(META.EXPOSURE.TYPE == 'X')"}, "META"),                          # dotted, not a parkey
    ({"rmap_relevance": "(len(DET) == 1)"}, "len"),                                       # calls are rejected
    ({"rmap_relevance": "(DET.upper() == 'A')"}, "DET"),                                  # attributes are rejected
    ({"rmap_relevance": "(DET[0] == 'A')"}, "DET"),                                       # subscripts are rejected
    ({"rmap_relevance": "(__import__('os'))"}, "__import__"),
]


@pytest.mark.parametrize(("fields", "fragment"), EXPRESSION_LOAD_ERRORS)
def test_bad_expressions_fail_at_load(tmp_path, fields, fragment):
    with pytest.raises(MappingError) as caught:
        make_rmap(tmp_path, A_OR_STAR, parkey=DET, **fields)
    assert caught.value.category == "invalid-mapping"
    assert fragment in str(caught.value)


# Dotted parkeys are visible to expressions with '_' (§4 step 1, §9.1).
DOTTED = [
    ("(META.EXPOSURE.TYPE not in ('MIR_IMAGE', 'NRC_IMAGE', 'NIS_IMAGE'))", "MIR_IMAGE", NA),
    ("(META.EXPOSURE.TYPE not in ('MIR_IMAGE', 'NRC_IMAGE', 'NIS_IMAGE'))", "MIR_LRS", "any.fits"),
    ("(META_EXPOSURE_TYPE == 'MIR_LRS')", "MIR_LRS", "any.fits"),
    ("(META_EXPOSURE_TYPE == 'MIR_LRS')", "MIR_IMAGE", NA),
]


@pytest.mark.parametrize(("expression", "exp_type", "answer"), DOTTED)
def test_dotted_parkeys_in_expressions(tmp_path, expression, exp_type, answer):
    assert best_ref(tmp_path, "Match({ ('*',) : 'any.fits' })", {"META.EXPOSURE.TYPE": exp_type},
                    parkey=(("META.EXPOSURE.TYPE",),), rmap_relevance=expression) == answer


# --------------------------------------------------------------------------- §9.3 parkey_relevance, comment_parkeys

AMP_GAIN = """Match({
    ('UVIS', 'A', 'N/A') : 'uvis_a.fits',
    ('UVIS', 'B', 'N/A') : 'uvis_b.fits',
    ('IR', 'N/A', 'G1') : 'ir_g1.fits',
    ('IR', 'N/A', 'N/A') : 'ir_na.fits',
})"""
AMP_GAIN_FIELDS = {
    "parkey": (("DETECTOR", "AMP", "GAIN"),),
    "parkey_relevance": {"amp": '(DETECTOR == "UVIS")', "GAIN": '(DETECTOR == "IR")'},
}

# (header, answer) — verified.
PARKEY_RELEVANCE = [
    ({"DETECTOR": "UVIS", "AMP": "A", "GAIN": "G1"}, "uvis_a.fits"),
    ({"DETECTOR": "UVIS", "AMP": "B", "GAIN": "XX"}, "uvis_b.fits"),
    ({"DETECTOR": "IR", "AMP": "A", "GAIN": "G1"}, "ir_g1.fits"),
    ({"DETECTOR": "IR", "AMP": "ZZZ", "GAIN": "G2"}, "ir_na.fits"),
    ({"DETECTOR": "IR"}, "ir_na.fits"),
]


@pytest.mark.parametrize(("header", "answer"), PARKEY_RELEVANCE)
def test_parkey_relevance(tmp_path, header, answer):
    assert best_ref(tmp_path, AMP_GAIN, header, **AMP_GAIN_FIELDS) == answer


# (selector, fields, header, answer)
PARKEY_RELEVANCE_RULES = [
    # verified: comment parkeys are always N/A
    ("Match({ ('UVIS', 'FOO') : 'foo.fits', ('UVIS', 'BAR') : 'bar.fits' })",
     {"parkey": (("DETECTOR", "DESCRIP"),), "comment_parkeys": ("DESCRIP",)},
     {"DETECTOR": "UVIS", "DESCRIP": "FOO"}, ("bar.fits", "foo.fits")),
    ("Match({ ('UVIS', 'FOO') : 'foo.fits', ('UVIS', 'BAR') : 'bar.fits' })",
     {"parkey": (("DETECTOR", "DESCRIP"),), "comment_parkeys": ("DESCRIP",)},
     {"DETECTOR": "UVIS", "DESCRIP": "ZZZ"}, ("bar.fits", "foo.fits")),
    ("Match({ ('UVIS', 'FOO') : 'foo.fits', ('UVIS', 'BAR') : 'bar.fits' })",
     {"parkey": (("DETECTOR", "DESCRIP"),), "comment_parkeys": ("descrip",)},   # names are case-insensitive
     {"DETECTOR": "UVIS", "DESCRIP": "ZZZ"}, ("bar.fits", "foo.fits")),
    # verified: a name error in parkey_relevance is fatal ...
    ("Match({ ('X',) : 'x.fits' })", {"parkey_relevance": {"a": '(OTHER == "X")'}},
     {"A": "X"}, "NOT FOUND name 'OTHER' is not defined"),
    # ... unless the name is a required key (extra_keys): then it is UNDEFINED
    ("Match({ ('X',) : 'x.fits', ('N/A',) : 'na.fits' })",
     {"parkey_relevance": {"a": '(OTHER == "X")'}, "extra_keys": ("OTHER",)}, {"A": "X"}, ("na.fits", "x.fits")),
    ("Match({ ('X',) : 'x.fits', ('N/A',) : 'na.fits' })",
     {"parkey_relevance": {"a": '(OTHER == "X")'}, "extra_keys": ("OTHER",)}, {"A": "X", "OTHER": "X"}, "x.fits"),
    # entries for names that are not required parkeys are ignored
    ("Match({ ('X',) : 'x.fits' })", {"parkey_relevance": {"nothere": '(BOGUS == "X")'}}, {"A": "X"}, "x.fits"),
    # every expression sees the same namespace: forcing AMP to N/A does not change DETECTOR's test
    ("Match({ ('N/A', 'IR') : 'ir.fits', ('N/A', 'N/A') : 'na.fits' })",
     {"parkey": (("AMP", "DETECTOR"),),
      "parkey_relevance": {"amp": '(DETECTOR == "UVIS")', "detector": '(AMP == "A")'}},
     {"AMP": "A", "DETECTOR": "IR"}, "ir.fits"),
    # keep_comments is False in the namespace
    ("Match({ ('X',) : 'x.fits', ('N/A',) : 'na.fits' })", {"parkey_relevance": {"a": "(keep_comments)"}},
     {"A": "X"}, ("na.fits", "x.fits")),
    # a missing or UNDEFINED required parkey reads as 'UNDEFINED'
    ("Match({ ('X', 'N/A') : 'x.fits', ('N/A', 'N/A') : 'na.fits' })",
     {"parkey": (("A", "B"),), "parkey_relevance": {"a": '(B == "UNDEFINED")'}}, {"A": "X"}, "x.fits"),
    # a fatal parkey_relevance error is not softened by reffile_required NO (§4 step 5)
    ("Match({ ('X',) : 'x.fits' })", {"parkey_relevance": {"a": '(OTHER == "X")'}, "reffile_required": "NO"},
     {"A": "X"}, "NOT FOUND name 'OTHER' is not defined"),
]


@pytest.mark.parametrize(("selector", "fields", "header", "answer"), PARKEY_RELEVANCE_RULES)
def test_parkey_relevance_rules(tmp_path, selector, fields, header, answer):
    assert best_ref(tmp_path, selector, header, **fields) == answer


def test_parkey_relevance_error_is_typed(tmp_path):
    rmap = make_rmap(tmp_path, "Match({ ('X',) : 'x.fits' })", parkey_relevance={"a": '(OTHER == "X")'})
    with pytest.raises(ExpressionError) as caught:
        rmap.select({"A": "X"})
    assert caught.value.category == "expression-error"


# --------------------------------------------------------------------------- §9.4 substitutions

G280 = """Match({
    ('UVIS', 'G280_AMPS') : 'g280.fits',
    ('UVIS', 'ABCD') : 'abcd.fits',
    ('IR', 'GENERIC') : 'ir_generic.fits',
})"""
G280_FIELDS = {"parkey": (("DETECTOR", "CCDAMP"),),
               "substitutions": {"CCDAMP": {"G280_AMPS": ("ABCD", "A", "B"), "GENERIC": "N/A"}}}

# (DETECTOR, CCDAMP, answer) — verified.
SUBSTITUTIONS = [
    ("UVIS", "A", "g280.fits"),
    ("UVIS", "B", "g280.fits"),
    ("UVIS", "ABCD", ("abcd.fits", "g280.fits")),
    ("UVIS", "C", "NOT FOUND No match found."),
    ("UVIS", "G280_AMPS", "NOT FOUND No match found."),   # header values are never rewritten
    ("UVIS", "GENERIC", "NOT FOUND No match found."),
    ("IR", "C", "ir_generic.fits"),
]


@pytest.mark.parametrize(("detector", "ccdamp", "answer"), SUBSTITUTIONS)
def test_substitutions(tmp_path, detector, ccdamp, answer):
    assert best_ref(tmp_path, G280, {"DETECTOR": detector, "CCDAMP": ccdamp}, **G280_FIELDS) == answer


SUBARRAYS = "Match({ ('NRCA1', 'GENERIC') : 'generic.fits', ('NRCA1', 'SUB64') : 'sub64.fits' })"

# (subarray parkey, observatory, value, answer) — verified: the built-in default applies everywhere.
DEFAULT_SUBSTITUTIONS = [
    (param, observatory, value, answer)
    for param in ("SUBARRAY", "META.SUBARRAY.NAME")
    for observatory in ("TOBS", "JWST")
    for value, answer in (("SUB64", "sub64.fits"), ("FULL", "generic.fits"), ("GENERIC", "generic.fits"))
]


@pytest.mark.parametrize(("param", "observatory", "value", "answer"), DEFAULT_SUBSTITUTIONS)
def test_default_subarray_substitution(tmp_path, param, observatory, value, answer):
    header = {"DETECTOR": "NRCA1", param: value,
              "META.VISIT.TSOVISIT": "F", "META.INSTRUMENT.LAMP_STATE": "NONE"}
    assert best_ref(tmp_path, SUBARRAYS, header, parkey=(("DETECTOR", param),), observatory=observatory) == answer


# --------------------------------------------------------------------------- §2.2, §9.5 required parkeys

# (header fields, required parkeys in order)
REQUIRED = [
    ({"parkey": (("DETECTOR",), ("DATE-OBS", "TIME-OBS")), "reffile_switch": "darkcorr", "extra_keys": ("FOO", "BAR")},
     ("DETECTOR", "DATE-OBS", "TIME-OBS", "DARKCORR", "FOO", "BAR")),                                    # verified
    ({"parkey": (("DETECTOR",), ("DATE-OBS", "TIME-OBS")), "reffile_switch": "NONE"},
     ("DETECTOR", "DATE-OBS", "TIME-OBS")),
    ({"parkey": (("DETECTOR",), ("DATE-OBS", "TIME-OBS"), ("EXTRA",))},
     ("DETECTOR", "DATE-OBS", "TIME-OBS", "EXTRA")),              # more levels than nesting: still required
    ({"parkey": (("META.INSTRUMENT.DETECTOR",), ("DATE-OBS", "TIME-OBS")), "observatory": "JWST"},
     ("META.INSTRUMENT.DETECTOR", "DATE-OBS", "TIME-OBS", "META.VISIT.TSOVISIT", "META.INSTRUMENT.LAMP_STATE")),
]


@pytest.mark.parametrize(("fields", "required"), REQUIRED)
def test_required_parkeys(tmp_path, fields, required):
    selector = "Match({ ('X',) : UseAfter({ '2000-01-01 00:00:00' : 'x.fits' }) })"
    assert tuple(make_rmap(tmp_path, selector, **fields).required_parkeys) == required


# --------------------------------------------------------------------------- §2, §4 step 7c: reffile_required

DATED = "Match({ ('A',) : UseAfter({ '2000-01-01 00:00:00' : 'a.fits' }) })"
DATED_PARKEY = (("DET",), ("DATE-OBS", "TIME-OBS"))
GOOD = {"DET": "A", "DATE-OBS": "2001-01-01", "TIME-OBS": "00:00:00"}

# (reffile_required or None for absent, header, answer)
REFFILE_REQUIRED = [
    ("NO", {"DET": "A", "DATE-OBS": "1999-99-01", "TIME-OBS": "00:00:00"}, NA),       # verified: bad date
    ("NO", {"DET": "A", "DATE-OBS": "2001-01-01"}, NA),                               # missing key
    ("NO", {"DET": "B", "DATE-OBS": "2001-01-01", "TIME-OBS": "00:00:00"}, NA),       # pre-check failure
    ("NO", {"DET": "A", "DATE-OBS": "1999-01-01", "TIME-OBS": "00:00:00"}, NA),       # no match
    ("NO", GOOD, "a.fits"),
    ("MAYBE", {"DET": "B", "DATE-OBS": "2001-01-01", "TIME-OBS": "00:00:00"}, NA),    # verified
    ("no", {"DET": "B", "DATE-OBS": "2001-01-01", "TIME-OBS": "00:00:00"}, NA),
    ("YES", {"DET": "B", "DATE-OBS": "2001-01-01", "TIME-OBS": "00:00:00"},
     "NOT FOUND  parameter='DET' value='B' is not in ['A']"),
    ("yes", {"DET": "A", "DATE-OBS": "1999-01-01", "TIME-OBS": "00:00:00"}, "NOT FOUND No match found."),
    ("NONE", {"DET": "A", "DATE-OBS": "1999-01-01", "TIME-OBS": "00:00:00"}, "NOT FOUND No match found."),
    (None, {"DET": "A", "DATE-OBS": "1999-01-01", "TIME-OBS": "00:00:00"}, "NOT FOUND No match found."),
]


@pytest.mark.parametrize(("required", "header", "answer"), REFFILE_REQUIRED)
def test_reffile_required(tmp_path, required, header, answer):
    fields = {} if required is None else {"reffile_required": required}
    assert best_ref(tmp_path, DATED, header, parkey=DATED_PARKEY, **fields) == answer


# --------------------------------------------------------------------------- §4: the order of the steps

# (header fields, header, answer): each row pits two steps against each other.
STEP_ORDER = [
    # omit (2) before relevance (3)
    ({"rmap_omit": '(DET == "A")', "rmap_relevance": '(DET == "B")'}, {"DET": "A"}, OMITTED),
    # relevance (3) before choosing (6): a header the selector would reject
    ({"rmap_relevance": '(DET == "B")'}, {"DET": "Z"}, NA),
    ({"rmap_relevance": '(DET == "B")'}, {}, "na.fits"),   # DET absent: evaluation error, so relevant
    # relevance (3) before parkey relevance (5), whose error would be fatal
    ({"rmap_relevance": '(DET == "B")', "parkey_relevance": {"det": '(OTHER == "X")'}}, {"DET": "A"}, NA),
    # omit (2) before choosing (6)
    ({"rmap_omit": '(DET == "Z")'}, {"DET": "Z"}, OMITTED),
    # parkey relevance (5) feeds choosing (6)
    ({"parkey_relevance": {"det": '(DET == "B")'}}, {"DET": "A"}, ("a.fits", "na.fits")),
    # relevance is evaluated on the header as passed, not on the parkey-relevance result
    ({"parkey_relevance": {"det": "(False)"}, "rmap_relevance": '(DET == "A")'}, {"DET": "A"},
     ("a.fits", "na.fits")),
]


@pytest.mark.parametrize(("fields", "header", "answer"), STEP_ORDER)
def test_order_of_lookup_steps(tmp_path, fields, header, answer):
    selector = "Match({ ('A',) : 'a.fits', ('N/A',) : 'na.fits' })"
    assert best_ref(tmp_path, selector, header, parkey=DET, **fields) == answer


# --------------------------------------------------------------------------- §10.1 HST do-not-reprocess

WFC_GAIN = "Match({ ('WFC', '2.0') : 'wfc_2.fits' })"
WFC_PARKEY = (("DETECTOR", "CCDGAIN"),)

# (observatory, DETECTOR, CCDGAIN, answer) — verified unless noted.
DO_NOT_REPROCESS = [
    ("HST", "WFC", "1.4", NA),
    ("HST", "WFC", "0.5", NA),
    ("HST", "WFC", "0.50", NA),
    ("HST", "WFC", "1.0", "NOT FOUND  parameter='CCDGAIN' value='1.0' is not in ['2.0']"),
    ("TOBS", "WFC", "1.4", "NOT FOUND  parameter='CCDGAIN' value='1.4' is not in ['2.0']"),
    ("HST", "WFC", "2.0", "wfc_2.fits"),                          # only failed lookups are affected
    ("HST", "HRC", "1.4", "NOT FOUND  parameter='DETECTOR' value='HRC' is not in ['WFC']"),
    ("HST", "WFC", "abc", "NOT FOUND  parameter='CCDGAIN' value='abc' is not in ['2.0']"),  # rule cannot fire
    ("hst", "WFC", "1.4", NA),                                    # observatory is case-insensitive
]


@pytest.mark.parametrize(("observatory", "detector", "gain", "answer"), DO_NOT_REPROCESS)
def test_hst_do_not_reprocess(tmp_path, observatory, detector, gain, answer):
    assert best_ref(tmp_path, WFC_GAIN, {"DETECTOR": detector, "CCDGAIN": gain}, parkey=WFC_PARKEY,
                    observatory=observatory, instrument="ACS", filekind="DARKFILE") == answer


def test_hst_do_not_reprocess_needs_ccdgain(tmp_path):
    # CCDGAIN missing: the rule errors, so it does not fire and the lookup error stands.
    answer = best_ref(tmp_path, "Match({ ('WFC',) : 'wfc.fits' })", {"DETECTOR": "HRC"}, parkey=(("DETECTOR",),),
                      observatory="HST", instrument="ACS", filekind="DARKFILE")
    assert answer == "NOT FOUND  parameter='DETECTOR' value='HRC' is not in ['WFC']"


# --------------------------------------------------------------------------- §10.1 JWST extra keys

# (TSOVISIT, answer) — verified.
JWST_TSO = [("T", "a.fits"), ("F", NA)]


@pytest.mark.parametrize(("tso", "answer"), JWST_TSO)
def test_jwst_global_keys_are_visible_to_expressions(tmp_path, tso, answer):
    header = {"META.INSTRUMENT.DETECTOR": "NRCA1", "META.VISIT.TSOVISIT": tso}
    assert best_ref(tmp_path, "Match({ ('NRCA1',) : 'a.fits' })", header,
                    parkey=(("META.INSTRUMENT.DETECTOR",),), observatory="JWST",
                    rmap_relevance='(META.VISIT.TSOVISIT == "T")') == answer


# --------------------------------------------------------------------------- §10.2 hooks

FLATS = """Match({
    ('AREA', '2.0', '4.0') : 'j4t11109u.r4h',
    ('FULL', '4.0', '3.0') : 'full.r4h',
})"""
FLAT_PARKEY = (("MODE", "FILTER1", "FILTER2"),)

# (instrument, filekind, hooks header or None, FILTER1, FILTER2, answer)
FALLBACK_HOOK = [
    # verified: the implicit WFPC2 flatfile hook swaps FILTER1 and FILTER2 after a failure
    ("WFPC2", "FLATFILE", None, "4.0", "2.0", "j4t11109u.r4h"),
    ("WFPC2", "FLATFILE", None, "4.0", "3.0", "NOT FOUND No match found."),   # swapped fails too: first error
    ("WFPC2", "FLATFILE", None, "2.0", "4.0", "j4t11109u.r4h"),
    # a hooks header replaces the implicit names; 'none' unplugs
    ("WFPC2", "FLATFILE", {"fallback_header": "none"}, "4.0", "2.0",
     "NOT FOUND  parameter='FILTER2' value='2.0' is not in ['3.0', '4.0']"),
    ("WFPC2", "FLATFILE", {"precondition_header": "none"}, "4.0", "2.0",
     "NOT FOUND  parameter='FILTER2' value='2.0' is not in ['3.0', '4.0']"),  # 'fallback_header' has no function
    ("ACS", "FOO", {"fallback_header": "fallback_header_wfpc2_flatfile_v1"}, "4.0", "2.0", "j4t11109u.r4h"),
    # the implicit name includes instrument and filekind
    ("ACS", "FLATFILE", None, "4.0", "2.0", "NOT FOUND  parameter='FILTER2' value='2.0' is not in ['3.0', '4.0']"),
]


@pytest.mark.parametrize(("instrument", "filekind", "hooks", "filter1", "filter2", "answer"), FALLBACK_HOOK)
def test_fallback_hook(tmp_path, instrument, filekind, hooks, filter1, filter2, answer):
    fields = {} if hooks is None else {"hooks": hooks}
    header = {"MODE": "AREA", "FILTER1": filter1, "FILTER2": filter2}
    assert best_ref(tmp_path, FLATS, header, parkey=FLAT_PARKEY, observatory="HST", instrument=instrument,
                    filekind=filekind, **fields) == answer


def test_fallback_hook_is_not_used_by_other_observatories(tmp_path):
    answer = best_ref(tmp_path, FLATS, {"MODE": "AREA", "FILTER1": "4.0", "FILTER2": "2.0"}, parkey=FLAT_PARKEY,
                      observatory="TOBS", instrument="WFPC2", filekind="FLATFILE")
    assert answer == "NOT FOUND  parameter='FILTER2' value='2.0' is not in ['3.0', '4.0']"


def test_acs_biasfile_precondition_hook_needs_date(tmp_path):
    # verified message: the implicit ACS BIASFILE precondition reads DATE-OBS before choosing.
    selector = "Match({ ('WFC',) : UseAfter({ '2000-01-01 00:00:00' : 'bias.fits' }) })"
    answer = best_ref(tmp_path, selector, {"DETECTOR": "WFC", "TIME-OBS": "00:00:00"},
                      parkey=(("DETECTOR",), ("DATE-OBS", "TIME-OBS")), observatory="HST",
                      instrument="ACS", filekind="BIASFILE")
    assert answer == "NOT FOUND 'DATE-OBS'"


# (instrument, filekind, hooks the rmap uses)
IMPLICIT_HOOKS = [
    ("ACS", "BIASFILE", {"precondition_header": "precondition_header_acs_biasfile_v1"}),
    ("WFC3", "BIASFILE", {"precondition_header": "precondition_header_wfc3_biasfile_v1"}),
    ("WFPC2", "FLATFILE", {"fallback_header": "fallback_header_wfpc2_flatfile_v1"}),
    ("ACS", "DARKFILE", {}),
]


@pytest.mark.parametrize(("instrument", "filekind", "hooks"), IMPLICIT_HOOKS)
def test_implicit_hook_names(tmp_path, instrument, filekind, hooks):
    rmap = make_rmap(tmp_path, "Match({ ('X',) : 'x.fits' })", observatory="HST", instrument=instrument,
                     filekind=filekind)
    assert rmap.plugin_hooks == hooks


# Selector.find: the lookup path's form of choose() that answers a failure with the error
# object instead of raising it.  Both must describe every failure identically.
FIND_CASES = [
    ({"A": "X", "DATE": "2020-01-01", "TIME": "00:00:00"}, "x_2019.fits"),
    ({"A": "X", "DATE": "2018-01-01", "TIME": "00:00:00"}, "NoMatchError"),       # before every date
    ({"A": "Q", "DATE": "2020-01-01", "TIME": "00:00:00"}, "InvalidValueError"),
    ({"DATE": "2020-01-01", "TIME": "00:00:00"}, "MissingKeyError"),
    ({"A": "X", "DATE": "2020-13-45", "TIME": "00:00:00"}, "InvalidDateError"),
    ({"A": "X", "DATE": "2020-01-01"}, "MissingKeyError"),
    ({"A": "Y", "DATE": "2020-01-01", "TIME": "00:00:00"}, "AmbiguousMatchError"),
]


@pytest.mark.parametrize(("header", "answer"), FIND_CASES)
def test_find_answers_what_choose_raises(tmp_path, header, answer):
    rmap = make_rmap(tmp_path, """Match({
        ('X',) : UseAfter({ '2019-01-01 00:00:00' : 'x_2019.fits' }),
        ('Y|Z',) : 'y1.fits',
        ('Y',) : 'y2.fits',
    })""", parkey=(("A",), ("DATE", "TIME")), merge_overlaps=False)
    found = rmap.selector.find(header)
    if answer.endswith(".fits"):
        assert found == answer == rmap.selector.choose(header)
        return
    assert type(found).__name__ == answer
    with pytest.raises(type(found)) as caught:
        rmap.selector.choose(header)
    assert caught.value.message == found.message
    assert rmap.get_best_ref(header) == "NOT FOUND " + found.message


def test_relevance_memo_tells_an_absent_key_from_none(tmp_path, caplog):
    # rmap_relevance verdicts are remembered per value tuple; a key present with None and an
    # absent key (an unknown name: logged, counted relevant) must not share an entry.
    rmap = make_rmap(tmp_path, "Match({ ('A',) : 'a.fits', ('B',) : 'b.fits' })", parkey=(("DET",),),
                     rmap_relevance='(FLAG == "Y")')
    assert rmap.get_best_ref({"DET": "A", "FLAG": None}) == "NOT FOUND n/a"
    with caplog.at_level(logging.WARNING):
        assert rmap.get_best_ref({"DET": "A"}) == "a.fits"
    assert "name 'FLAG' is not defined" in caplog.text
    assert rmap.get_best_ref({"DET": "A", "FLAG": None}) == "NOT FOUND n/a"
    assert rmap.get_best_ref({"DET": "A", "FLAG": "Y"}) == "a.fits"


@pytest.mark.parametrize("header", [{"DATE": "2020-01-01", "TIME": "00:00:00"},                # missing A
                                    {"A": "Q", "DATE": "2020-01-01", "TIME": "00:00:00"},      # invalid value
                                    {"A": "X", "DATE": "2018-01-01", "TIME": "00:00:00"},      # no date
                                    {"A": "X", "DATE": "2020-13-45", "TIME": "00:00:00"}])     # bad date
def test_remembered_failures_are_raised_as_fresh_errors(tmp_path, header):
    # Failures are remembered per value tuple like choices; the strict API must still raise
    # a new exception each time, so that no shared instance collects tracebacks.
    rmap = make_rmap(tmp_path, "Match({ ('X',) : UseAfter({ '2019-01-01 00:00:00' : 'x_2019.fits' }) })",
                     parkey=(("A",), ("DATE", "TIME")))
    caught = []
    for _ in range(3):
        with pytest.raises(LookupError_) as raised:
            rmap.select(dict(header))
        caught.append(raised.value)
    assert len({id(error) for error in caught}) == 3
    assert len({(type(error), error.message) for error in caught}) == 1
    assert all(error.__traceback__ is not None and error.__traceback__.tb_next is not None for error in caught)
    assert rmap.get_best_ref(dict(header)) == "NOT FOUND " + caught[0].message
    assert [len(list(_frames(error.__traceback__))) for error in caught] == [len(list(_frames(caught[0].__traceback__)))] * 3


def _frames(traceback):
    while traceback is not None:
        yield traceback
        traceback = traceback.tb_next


@pytest.mark.parametrize("field", ["rmap_relevance", "parkey_relevance"])
@pytest.mark.parametrize("names", [0, 1, 2])
def test_relevance_over_zero_one_or_two_header_keys(tmp_path, field, names):
    # The memo key of a relevance verdict is built three ways (one key, several keys, none).
    expression = ['(1 == 1)', '(DET != "Z")', '(DET != "Z" and FLAG != "Z")'][names]
    extra = {field: expression} if field == "rmap_relevance" else {field: {"det": expression}}
    rmap = make_rmap(tmp_path, "Match({ ('A',) : 'a.fits', ('N/A',) : 'na.fits' })", parkey=(("DET",),),
                     extra_keys=("FLAG",), **extra)
    for _ in range(2):  # computed, then remembered
        assert rmap.get_best_ref({"DET": "A", "FLAG": "Y"}) == "a.fits"
        assert rmap.get_best_ref(_Header({"DET": "A", "FLAG": "Y"})) == "a.fits"


class _Header(dict):
    """A dict subclass: takes the header.get path (it might define __missing__)."""
