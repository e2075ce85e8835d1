"""Rules-language §3: pipeline (.pmap) and instrument (.imap) contexts.

Instrument resolution, minimising and conditioning at the top level, N/A and OMIT entries in
imaps, unknown reference types, ``include``, and the two errors that are raised rather than
returned.  Every context is a real pmap -> imap -> rmap tree written to ``tmp_path`` by
``mapping_factory.make_tree`` (with correct sha1sums, so checksums are verified on load).
"""
from __future__ import annotations

import pickle

import pytest

from crdsmini import load_mapping
from crdsmini.errors import (
    CrdsminiError, MappingError, MissingKeyError, NoMatchError, UnknownInstrumentError, UnknownReftypeError,
)
from mapping_factory import imap_text, make_tree, pmap_text, rmap_text, write_mapping

NA = "NOT FOUND n/a"


def top_level(context, header, include=None):
    """CRDS's top-level lookup: minimise + condition, then walk the context (§3.1)."""
    return context.get_best_references(context.minimize_header(header), include=include)


# --------------------------------------------------------------------------- the spec's example tree (§3.3)

DEADTAB = ("Match({ ('FUV', 1105, True) : UseAfter({ '1990-01-01 00:00:00' : 'fuv_1105.fits' }) })",
           {"parkey": (("DETECTOR", "CENWAVE", "FLAG"), ("DATE-OBS", "TIME-OBS")),
            "reffile_switch": "deadcorr", "rmap_relevance": '(DEADCORR != "OMIT")'})
LAMPTAB = ("Match({ ('G130M',) : 'g130m.fits' })", {"parkey": (("OPT_ELEM",),), "reffile_required": "NO"})
COS_HEADER = {"INSTRUME": "cos", "DETECTOR": "fuv", "CENWAVE": "1105", "FLAG": "true", "DATE-OBS": "2000-01-01",
              "TIME-OBS": "00:00:00", "DEADCORR": "PERFORM", "OPT_ELEM": "G130M"}


@pytest.fixture
def cos(tmp_path):
    pmap = make_tree(tmp_path, {"DEADTAB": DEADTAB, "lamptab": LAMPTAB}, instrument="COS", observatory="HST",
                     imap_selections={"flatfile": "N/A", "xtractab": "OMIT"})
    return load_mapping(pmap)


def test_minimised_and_conditioned_header(cos):
    # verified (before conditioning), then conditioned by §5
    assert cos.minimize_header(COS_HEADER) == {
        "CENWAVE": "1105.0", "DATE-OBS": "2000-01-01", "DEADCORR": "PERFORM", "DETECTOR": "FUV", "FLAG": "T",
        "OPT_ELEM": "G130M", "REFTYPE": "UNDEFINED", "TIME-OBS": "00:00:00", "INSTRUME": "COS"}


# (header changes, conditioned?, answer) — first two rows verified.
COS_ROWS = [
    ({}, True, {"deadtab": "fuv_1105.fits", "flatfile": NA, "lamptab": "g130m.fits"}),
    ({}, False, {"deadtab": "NOT FOUND No match found.", "flatfile": NA, "lamptab": "g130m.fits"}),
    ({"DEADCORR": "OMIT"}, True, {"deadtab": NA, "flatfile": NA, "lamptab": "g130m.fits"}),
    ({"DEADCORR": None}, True, {"deadtab": "fuv_1105.fits", "flatfile": NA, "lamptab": "g130m.fits"}),  # UNDEFINED
    ({"OPT_ELEM": "G140L"}, True, {"deadtab": "fuv_1105.fits", "flatfile": NA, "lamptab": NA}),  # required NO
    ({"DATE-OBS": "1980-01-01"}, True, {"deadtab": "NOT FOUND No match found.", "flatfile": NA,
                                        "lamptab": "g130m.fits"}),
    ({"CENWAVE": "1105.", "FLAG": "T", "DETECTOR": " Fuv "}, True,
     {"deadtab": "fuv_1105.fits", "flatfile": NA, "lamptab": "g130m.fits"}),
    ({"Detector": "fuv", "DETECTOR": None}, True,                   # keys are upper-cased before minimising
     {"deadtab": "fuv_1105.fits", "flatfile": NA, "lamptab": "g130m.fits"}),
    ({"detector": "fuv", "DETECTOR": None}, True,
     {"deadtab": "fuv_1105.fits", "flatfile": NA, "lamptab": "g130m.fits"}),
]


@pytest.mark.parametrize(("changes", "conditioned", "answer"), COS_ROWS)
def test_example_tree(cos, changes, conditioned, answer):
    header = dict(COS_HEADER)
    for key, value in changes.items():
        if value is None:
            header.pop(key, None)
        else:
            header[key] = value
    result = top_level(cos, header) if conditioned else cos.get_best_references(header)
    assert result == answer


def test_results_follow_imap_file_order(cos):
    assert list(top_level(cos, COS_HEADER)) == ["deadtab", "lamptab", "flatfile"]


# (include, answer) — include names are lower-cased; unknown types are reported, not raised.
INCLUDE = [
    (None, {"deadtab": "fuv_1105.fits", "flatfile": NA, "lamptab": "g130m.fits"}),
    ([], {"deadtab": "fuv_1105.fits", "flatfile": NA, "lamptab": "g130m.fits"}),
    (["lamptab"], {"lamptab": "g130m.fits"}),
    (["LAMPTAB", "DeadTab"], {"lamptab": "g130m.fits", "deadtab": "fuv_1105.fits"}),
    (["dark"], {"dark": "NOT FOUND Unknown reference type 'dark'"}),               # verified
    (["DARK"], {"dark": "NOT FOUND Unknown reference type 'dark'"}),
    (["xtractab"], {}),                                                            # OMIT: absent
    (["flatfile"], {"flatfile": NA}),
]


@pytest.mark.parametrize(("include", "answer"), INCLUDE)
def test_include(cos, include, answer):
    assert top_level(cos, COS_HEADER, include=include) == answer


def test_typed_results(cos):
    header = dict(COS_HEADER, **{"DATE-OBS": "1980-01-01"})
    results = cos.select_references(cos.minimize_header(header), include=["deadtab", "dark", "flatfile"])
    assert isinstance(results["deadtab"], NoMatchError)
    assert isinstance(results["dark"], UnknownReftypeError)
    assert results["dark"].category == "unknown-reftype"
    assert results["flatfile"] == NA


def test_an_imap_is_a_context_too(tmp_path):
    make_tree(tmp_path, {"dark": "Match({ ('X',) : 'x.fits' })"}, imap_selections={"flat": "N/A"})
    imap = load_mapping(tmp_path / "tobs_inst.imap")
    assert imap.get_best_references({"A": "X"}) == {"dark": "x.fits", "flat": NA}
    assert top_level(imap, {"a": "x"}) == {"dark": "x.fits", "flat": NA}


# --------------------------------------------------------------------------- imap special values (§3.3)

# (imap value, answer for that filekind; None = absent)
IMAP_SPECIALS = [
    ("N/A", NA),
    ("TEMP_N/A", NA),
    ("n/a", NA),
    ("temp_n/a", NA),
    ("OMIT", None),
    ("TEMP_OMIT", None),
    ("omit", None),
]


@pytest.mark.parametrize(("value", "answer"), IMAP_SPECIALS)
def test_imap_special_values(tmp_path, value, answer):
    pmap = load_mapping(make_tree(tmp_path, {"dark": "Match({ ('X',) : 'x.fits' })"},
                                  imap_selections={"special": value}))
    result = pmap.get_best_references({"INSTRUME": "inst", "A": "X"})
    assert result.get("special") == answer
    assert ("special" in result) == (answer is not None)
    assert result["dark"] == "x.fits"


# (rmap header fields, rmap selector, header, answer for that filekind; None = absent)
RMAP_OUTCOMES = [
    ({}, "Match({ ('X',) : 'x.fits' })", {"A": "X"}, "x.fits"),
    ({}, "Match({ ('X',) : 'OMIT' })", {"A": "X"}, None),
    ({}, "Match({ ('X',) : 'N/A' })", {"A": "X"}, NA),
    ({"rmap_omit": "(A == 'X')"}, "Match({ ('X',) : 'x.fits' })", {"A": "X"}, None),
    ({}, "Match({ ('X',) : 'x.fits' })", {"A": "Y"}, "NOT FOUND  parameter='A' value='Y' is not in ['X']"),
    ({}, "Match({ ('X',) : 'x.fits' })", {}, "NOT FOUND Match required lookup parameter 'A' is undefined."),
    ({}, "Match({ ('X*',) : 'g.fits', ('X',) : 'x.fits' })", {"A": "X"}, ("x.fits", "g.fits")),
]


@pytest.mark.parametrize(("fields", "selector", "header", "answer"), RMAP_OUTCOMES)
def test_rmap_outcomes_in_a_context(tmp_path, fields, selector, header, answer):
    pmap = load_mapping(make_tree(tmp_path, {"dark": (selector, fields)}))
    result = pmap.get_best_references(dict(header, INSTRUME="inst"))
    assert result.get("dark") == answer
    assert ("dark" in result) == (answer is not None)


def test_result_keys_are_lower_case_for_every_observatory(tmp_path):
    pmap = load_mapping(make_tree(tmp_path, {"FLAT": "Match({ ('X',) : 'x.fits' })"}, observatory="JWST",
                                  pmap_parkey=("META.INSTRUMENT.NAME",)))
    header = {"META.INSTRUMENT.NAME": "inst", "A": "X"}
    assert pmap.get_best_references(header) == {"flat": "x.fits"}


# --------------------------------------------------------------------------- instrument selection (§3.2)

# (header, answer for filekind 'dark', direct pmap call)
INSTRUMENT_KEYS = [
    ({"INSTRUME": "inst"}, "x.fits"),
    ({"instrume": "inst"}, "x.fits"),                       # the pmap key lower-cased
    ({"INSTRUME": "INST"}, "x.fits"),                       # case-insensitive
    ({"META.INSTRUMENT.NAME": "inst"}, "x.fits"),
    ({"META_INSTRUMENT_NAME": "inst"}, "x.fits"),
    ({"INSTRUMENT": "inst"}, "x.fits"),                     # verified on a direct pmap call
    ({"ROMAN.META.INSTRUMENT.NAME": "inst"}, "x.fits"),
    ({"META.INSTRUMENT.TYPE": "inst"}, "x.fits"),
    ({"META_INSTRUMENT_TYPE": "inst"}, "x.fits"),
    ({"INSTRUME": "UNDEFINED", "INSTRUMENT": "inst"}, "x.fits"),   # UNDEFINED is skipped
    ({"INSTRUME": "undefined", "INSTRUMENT": "inst"}, "x.fits"),
    ({"INSTRUME": "inst", "INSTRUMENT": "other"}, "x.fits"),        # first present wins
]


@pytest.mark.parametrize(("instrument_keys", "answer"), INSTRUMENT_KEYS)
def test_instrument_keys(tmp_path, instrument_keys, answer):
    pmap = load_mapping(make_tree(tmp_path, {"dark": "Match({ ('X',) : 'x.fits' })"}, extra_instruments=["OTHER"]))
    assert pmap.get_best_references(dict(instrument_keys, A="X")) == {"dark": answer}


def test_wfii_is_an_alias_of_wfpc2(tmp_path):
    pmap = load_mapping(make_tree(tmp_path, {"dark": "Match({ ('X',) : 'x.fits' })"}, instrument="WFPC2"))
    assert pmap.get_best_references({"INSTRUME": "wfii", "A": "X"}) == {"dark": "x.fits"}
    assert pmap.get_instrument({"INSTRUME": "WFII"}) == "wfpc2"


# (pmap parkey, header, error class, message) — raised, never turned into strings.
INSTRUMENT_ERRORS = [
    (("INSTRUME",), {"A": "X"}, MissingKeyError, "Missing 'INSTRUME' keyword in header for determining instrument."),
    (("INSTRUME",), {"INSTRUME": "UNDEFINED"}, MissingKeyError,
     "Missing 'INSTRUME' keyword in header for determining instrument."),
    (("META.INSTRUMENT.NAME",), {"A": "X"}, MissingKeyError,
     "Missing 'META.INSTRUMENT.NAME' keyword in header for determining instrument."),
    (("INSTRUME",), {"INSTRUME": "nircam"}, UnknownInstrumentError, "Unknown instrument 'nircam' for context 'tobs.pmap'"),
]


@pytest.mark.parametrize(("parkey", "header", "error", "message"), INSTRUMENT_ERRORS)
def test_instrument_errors_are_raised(tmp_path, parkey, header, error, message):
    pmap = load_mapping(make_tree(tmp_path, {"dark": "Match({ ('X',) : 'x.fits' })"}, pmap_parkey=parkey))
    with pytest.raises(error) as caught:
        pmap.get_best_references(header)
    assert caught.value.message == message
    with pytest.raises(error):
        pmap.select_references(header)


def test_alternate_instrument_key_is_lost_at_top_level(tmp_path):
    # verified: minimising keeps only the pmap key, so INSTRUMENT alone fails at top level.
    pmap = load_mapping(make_tree(tmp_path, {"dark": "Match({ ('X',) : 'x.fits' })"}))
    with pytest.raises(MissingKeyError) as caught:
        top_level(pmap, {"INSTRUMENT": "inst", "A": "X"})
    assert caught.value.message == "Missing 'INSTRUME' keyword in header for determining instrument."


def test_unknown_instrument_category(tmp_path):
    pmap = load_mapping(make_tree(tmp_path, {"dark": "Match({ ('X',) : 'x.fits' })"}))
    with pytest.raises(UnknownInstrumentError) as caught:
        top_level(pmap, {"INSTRUME": "nircam"})
    assert caught.value.category == "unknown-instrument"


# --------------------------------------------------------------------------- required parkeys (§2.2)

def test_required_parkeys_of_contexts(tmp_path):
    pmap = load_mapping(make_tree(tmp_path, {
        "dark": ("Match({ ('X',) : UseAfter({ '2000-01-01 00:00:00' : 'x.fits' }) })",
                 {"parkey": (("A",), ("DATE-OBS", "TIME-OBS")), "extra_keys": ("E",)}),
        "flat": ("Match({ ('X', 'Y') : 'f.fits' })", {"parkey": (("B", "A"),), "reffile_switch": "flatcorr"}),
    }, imap_selections={"mask": "N/A"}))
    imap = pmap.get_imap("inst")
    assert imap.required_parkeys() == ("REFTYPE", "A", "DATE-OBS", "TIME-OBS", "E", "B", "FLATCORR")
    assert pmap.required_parkeys("inst") == ("INSTRUME", "REFTYPE", "A", "DATE-OBS", "TIME-OBS", "E", "B", "FLATCORR")


# --------------------------------------------------------------------------- malformed contexts

# (file name, text, fragment of the message)
BAD_CONTEXTS = [
    pytest.param("tobs.pmap", pmap_text({"INST": "N/A"}), "'N/A'"),
    ("tobs.pmap", pmap_text({"INST": "missing.imap"}), "missing.imap"),
    ("tobs.pmap", pmap_text({"INST": "tobs_inst_dark.rmap"}), "not an .imap"),
    ("tobs_inst.imap", imap_text({"dark": "other.pmap"}), "not an .rmap"),
    ("tobs_inst.imap", imap_text({"dark": ("x.rmap", "y.rmap")}), "must name a mapping file"),
    ("tobs.pmap", pmap_text({}).replace("selector = {\n}", "selector = Match({})"),
     "selector must be a dict or a Selector."),
]


@pytest.mark.parametrize(("name", "text", "fragment"), BAD_CONTEXTS)
def test_malformed_contexts_fail_at_load(tmp_path, name, text, fragment):
    make_tree(tmp_path, {"dark": "Match({ ('X',) : 'x.fits' })"})
    write_mapping(tmp_path, "other.pmap", pmap_text({}, name="other.pmap"))
    path = write_mapping(tmp_path, name, text)
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    assert fragment in str(caught.value)


def test_nested_mapping_errors_surface_on_load(tmp_path):
    make_tree(tmp_path, {"dark": "Match({ ('X',) : 'x.fits' })"})
    (tmp_path / "tobs_inst_dark.rmap").write_text("header = {", encoding="utf-8")
    with pytest.raises(CrdsminiError) as caught:
        load_mapping(tmp_path / "tobs.pmap")
    assert caught.value.category == "invalid-mapping"
    assert "tobs_inst_dark.rmap" in str(caught.value)


def test_cyclic_context_is_a_mapping_error(tmp_path):
    make_tree(tmp_path, {"dark": "Match({ ('X',) : 'x.fits' })"})
    write_mapping(tmp_path, "tobs_inst.imap", imap_text({"dark": "tobs.pmap"}))
    with pytest.raises(MappingError):
        load_mapping(tmp_path / "tobs.pmap")


def test_a_lone_rmap_reports_its_resolved_path_even_after_a_chdir(tmp_path, monkeypatch):
    # A lone rmap's path is resolved lazily (loading.py); it must still be the real file,
    # as for a context's rmaps, and not depend on the working directory at the time it is read.
    real = tmp_path / "real"
    real.mkdir()
    write_mapping(real, "tobs_inst_kind.rmap", rmap_text("Match({ ('X',) : 'x.fits' })"))
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    rmap = load_mapping("link/tobs_inst_kind.rmap")
    monkeypatch.chdir(real)
    assert rmap.path == (real / "tobs_inst_kind.rmap").resolve()
    assert rmap.name == "tobs_inst_kind.rmap" and rmap.get_best_ref({"A": "X"}) == "x.fits"
    assert pickle.loads(pickle.dumps(rmap)).path == rmap.path
