"""Rule edits as a library (writing spec §3, §4): insert, delete, header edits, new contexts.

Also home of :func:`make_tmt_cache`, a small TMT-style CRDS cache written from scratch
(pmap -> imap -> flat/dark rmaps, reference FITS files) that the CLI, check and diff tests
reuse.  The tables below follow the spec: USEAFTER forms, key building, where a file goes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import pytest

from crdsmini.errors import (
    AmbiguousMatchError,
    AuthoringError,
    HeaderError,
    IdenticalMatchError,
    InvalidDateError,
    InvalidValueError,
    MappingError,
    MissingFileError,
    MissingKeyError,
    UnknownInstrumentError,
    UnsupportedError,
)
from crdsmini.newcontext import find_context_for, next_name, plan_new_context
from crdsmini.refactor import (
    InsertOptions,
    ReferenceInput,
    del_header,
    delete_references,
    insert_references,
    load_document,
    parse_header_value,
    read_references,
    reference_header,
    set_header,
)
from crdsmini.writer import MappingDocument, SelectorNode, render

DATE, TIME = "META.OBSERVATION.DATE", "META.OBSERVATION.TIME"
DETECTOR, FILTER = "META.INSTRUMENT.DETECTOR", "META.INSTRUMENT.FILTER"


# --------------------------------------------------------------------------- fixtures


def useafter(*pairs: tuple[str, str]) -> SelectorNode:
    return SelectorNode("UseAfter", tuple(pairs))


def match(*rows: tuple[Any, Any]) -> SelectorNode:
    return SelectorNode("Match", tuple(rows))


def tmt_rmap(name: str, filekind: str, match_parkeys: tuple[str, ...], selector: SelectorNode,
             **extra: Any) -> MappingDocument:
    header = {
        "classes": ("Match", "UseAfter"),
        "derived_from": "NONE",
        "filekind": filekind,
        "instrument": "IRIS",
        "mapping": "REFERENCE",
        "name": name,
        "observatory": "TMT",
        "parkey": (match_parkeys, (DATE, TIME)),
    }
    header.update(extra)
    return MappingDocument(header=header, selector=selector, name=name)


def write_mapping(folder: Path, document: MappingDocument) -> Path:
    path = folder / str(document.header["name"])
    path.write_text(render(document)[1], encoding="utf-8")
    return path


def write_fits(path: Path, cards: Iterable[tuple[str, Any]], ext_cards: Iterable[tuple[str, Any]] = ()) -> Path:
    from astropy.io import fits

    def header(pairs: Iterable[tuple[str, Any]]) -> "fits.Header":
        result = fits.Header()
        for key, value in pairs:
            result["HIERARCH " + key if "." in key or len(key) > 8 else key] = value
        return result

    hdus = [fits.PrimaryHDU(header=header(cards))]
    ext = list(ext_cards)
    if ext:
        hdus.append(fits.ImageHDU(header=header(ext)))
    fits.HDUList(hdus).writeto(path)
    return path


def flat_cards(detector: str = "IRIS1", filter_: str = "K", useafter_value: str | None = "2016-01-01T00:00:00",
               **more: Any) -> list[tuple[str, Any]]:
    cards = [("TELESCOP", "TMT"), ("INSTRUME", "IRIS"), ("REFTYPE", "FLAT"), ("DETECTOR", detector),
             ("FILTER", filter_)]
    if useafter_value is not None:
        cards.append(("USEAFTER", useafter_value))
    cards.extend(more.items())
    return cards


def make_tmt_cache(root: Path) -> Path:
    """A small TMT-style cache: tmt_0001.pmap -> tmt_iris_0001.imap -> flat + dark rmaps."""
    mappings = root / "mappings" / "tmt"
    references = root / "references" / "tmt" / "iris"
    config = root / "config" / "tmt"
    for folder in (mappings, references, config):
        folder.mkdir(parents=True)
    (config / "ref_cache_subdir_mode").write_text("instrument\n")
    flat = tmt_rmap("tmt_iris_flat_0001.rmap", "FLAT", (DETECTOR, FILTER), match(
        (("IRIS1", "K"), useafter(("2015-06-01 00:00:00", "tmt_iris_flat_0001.fits"))),
        (("IRIS1", "H|J"), useafter(("2015-06-01 00:00:00", "tmt_iris_flat_0002.fits"))),
    ))
    dark = tmt_rmap("tmt_iris_dark_0001.rmap", "DARK", (DETECTOR,), match(
        ("IRIS1", useafter(("1900-01-01 00:00:00", "tmt_iris_dark_0001.fits"))),
    ))
    imap = MappingDocument(header={
        "derived_from": "", "instrument": "IRIS", "mapping": "INSTRUMENT", "name": "tmt_iris_0001.imap",
        "observatory": "TMT", "parkey": ("REFTYPE",),
    }, selector={"DARK": "tmt_iris_dark_0001.rmap", "FLAT": "tmt_iris_flat_0001.rmap"})
    pmap = MappingDocument(header={
        "derived_from": "", "mapping": "PIPELINE", "name": "tmt_0001.pmap", "observatory": "TMT",
        "parkey": ("META.INSTRUMENT.NAME",),
    }, selector={"IRIS": "tmt_iris_0001.imap"})
    for document in (flat, dark, imap, pmap):
        write_mapping(mappings, document)
    write_fits(references / "tmt_iris_flat_0001.fits", flat_cards(useafter_value="2015-06-01T00:00:00"))
    write_fits(references / "tmt_iris_flat_0002.fits", flat_cards(filter_="H", useafter_value="2015-06-01T00:00:00",
                                                                  P_FILTER="H|J"))
    write_fits(references / "tmt_iris_dark_0001.fits", [("INSTRUME", "IRIS"), ("REFTYPE", "DARK"),
                                                        ("DETECTOR", "IRIS1"), ("USEAFTER", "1900-01-01")])
    return mappings


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return make_tmt_cache(tmp_path / "cache")


def ref(name: str, cards: Sequence[tuple[str, Any]]) -> ReferenceInput:
    return ReferenceInput(name, name, {key.upper(): str(value) for key, value in cards})


def insert(document: MappingDocument, *references: ReferenceInput, new: str = "new.rmap",
           **options: Any) -> tuple[MappingDocument, Any]:
    result = insert_references(document, references, old_name=document.name, new_name=new,
                               options=InsertOptions(**options))
    return result.document, result


def leaves(document: MappingDocument) -> dict[tuple[Any, ...], Any]:
    return dict(document.selector.leaves())


# --------------------------------------------------------------------------- insertion


def test_new_date_under_existing_row_and_name_fix(cache):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    new, result = insert(old, ref("f3.fits", flat_cards()), new="tmt_iris_flat_0002.rmap")
    assert leaves(new)[(("IRIS1", "K"), "2016-01-01 00:00:00")] == "f3.fits"
    assert result.insertions[0].effect == "new-date"
    assert new.header["derived_from"] == "tmt_iris_flat_0001.rmap"
    assert new.header["name"] == "tmt_iris_flat_0002.rmap"


def test_crds_compat_keeps_the_old_name(cache):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    new, _ = insert(old, ref("f3.fits", flat_cards()), new="tmt_iris_flat_0002.rmap", crds_compat=True)
    assert new.header["name"] == "tmt_iris_flat_0001.rmap"
    assert new.header["derived_from"] == "tmt_iris_flat_0001.rmap"


def test_same_date_replaces_the_file(cache):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    new, result = insert(old, ref("f3.fits", flat_cards(useafter_value="2015-06-01T00:00:00")))
    assert leaves(new)[(("IRIS1", "K"), "2015-06-01 00:00:00")] == "f3.fits"
    assert result.insertions[0].effect == "replace"
    assert result.insertions[0].replaced == "tmt_iris_flat_0001.fits"


def test_new_row_keeps_raw_spelling_and_existing_row_keeps_its_key(cache):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    new, _ = insert(old, ref("low.fits", flat_cards(detector="iris1", filter_="k")),
                    ref("new.fits", flat_cards(filter_="z")))
    rows = [key for key, _ in new.selector.rows]
    assert ("IRIS1", "K") in rows and ("iris1", "k") not in rows      # joined the existing row
    assert ("IRIS1", "z") in rows                                       # JWST/TMT: no conditioning
    assert leaves(new)[(("IRIS1", "K"), "2016-01-01 00:00:00")] == "low.fits"


def test_single_parkey_gives_a_bare_key(cache):
    old = load_document(cache / "tmt_iris_dark_0001.rmap")
    cards = [("INSTRUME", "IRIS"), ("REFTYPE", "DARK"), ("DETECTOR", "IRIS2"), ("USEAFTER", "2016-01-01")]
    new, _ = insert(old, ref("d2.fits", cards))
    assert ("IRIS2", "2016-01-01 00:00:00") in leaves(new)


def test_empty_match_parkeys_give_the_empty_tuple():
    old = tmt_rmap("tmt_iris_drizpars_0001.rmap", "DRIZPARS", (),
                   match(((), useafter(("2014-01-01 00:00:00", "a.fits")))))
    new, _ = insert(old, ref("b.fits", [("INSTRUME", "IRIS"), ("REFTYPE", "DRIZPARS"), ("USEAFTER", "2016-01-01")]))
    assert leaves(new)[((), "2016-01-01 00:00:00")] == "b.fits"


def test_several_references_in_order(cache):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    new, result = insert(old, ref("a.fits", flat_cards(useafter_value="2016-06-01")),
                         ref("b.fits", flat_cards(filter_="Y")))
    assert [i.effect for i in result.insertions] == ["new-date", "new-row"]
    assert leaves(new)[(("IRIS1", "Y"), "2016-01-01 00:00:00")] == "b.fits"


# (USEAFTER as written in the FITS file, UseAfter key) -- spec §3.5
USEAFTER_FORMS = [
    ("2016-01-01T00:00:00", "2016-01-01 00:00:00"),
    ("2016-01-01 12:30:00", "2016-01-01 12:30:00"),
    ("2016-01-01", "2016-01-01 00:00:00"),
    ("2016-01-01T12:30", "2016-01-01 12:30:00"),
    ("2016/01/02", "2016-01-02 00:00:00"),
    ("02/03/2016", "2016-02-03 00:00:00"),
    ("Jan 01 2016 12:30:00", "2016-01-01 12:30:00"),
    ("Dec 01 1993 00:00:00 UT", "1993-12-01 00:00:00"),
    ("03-Jan-2013", "2013-01-03 00:00:00"),
    ("July 27, 1999", "1999-07-27 00:00:00"),
    ("20160101:123000", "2016-01-01 12:30:00"),
    ("2016-01-01T12:30:00.5", "2016-01-01 12:30:00.500000"),
    ("2017-03-04T05:06:07.123456", "2017-03-04 05:06:07.123456"),
]


@pytest.mark.parametrize(("written", "key"), USEAFTER_FORMS)
def test_useafter_forms(cache, written, key):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    new, _ = insert(old, ref("f.fits", flat_cards(useafter_value=written)))
    assert leaves(new)[(("IRIS1", "K"), key)] == "f.fits"


@pytest.mark.parametrize("written", ["2016-01-01T00:00:00Z", "sometime soon", "2016-02-30T00:00:00", ""])
def test_bad_useafter_is_invalid_date_naming_file_and_keyword(cache, written):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    with pytest.raises(InvalidDateError) as caught:
        insert(old, ref("bad.fits", flat_cards(useafter_value=written)))
    assert caught.value.keyword == "USEAFTER" and caught.value.file == "bad.fits"
    assert "Bad USEAFTER time format" in caught.value.message


def test_missing_useafter_is_missing_key_unless_allowed(cache):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    with pytest.raises(MissingKeyError) as caught:
        insert(old, ref("none.fits", flat_cards(useafter_value=None)))
    assert caught.value.keyword == "USEAFTER"
    new, result = insert(old, ref("none.fits", flat_cards(useafter_value=None)), allow_bad_useafter=True)
    assert leaves(new)[(("IRIS1", "K"), "1900-01-01 00:00:00")] == "none.fits"
    assert any("faking" in w for w in result.warnings)


def test_date_obs_used_raw_without_useafter_and_useafter_wins(cache):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    only = flat_cards(useafter_value=None) + [("DATE-OBS", "2017-01-01"), ("TIME-OBS", "01:02:03")]
    new, _ = insert(old, ref("d.fits", only))
    assert (("IRIS1", "K"), "2017-01-01 01:02:03") in leaves(new)
    both = flat_cards(useafter_value="2018-01-01T00:00:00") + [("DATE-OBS", "2017-01-01"), ("TIME-OBS", "01:02:03")]
    new, _ = insert(old, ref("d.fits", both))
    assert (("IRIS1", "K"), "2018-01-01 00:00:00") in leaves(new)


def test_pattern_keyword_overrides_and_globs_are_compressed(cache):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    new, result = insert(old, ref("p.fits", flat_cards(detector="IRIS2", P_FILTER="K|CLEAR|")))
    assert (("IRIS2", "CLEAR|K"), "2016-01-01 00:00:00") in leaves(new)
    assert any("P_FILTER" in note for note in result.infos)


def test_missing_keyword_is_an_error_naming_file_and_keyword(cache):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    cards = [card for card in flat_cards() if card[0] != "FILTER"]
    with pytest.raises(MissingKeyError) as caught:
        insert(old, ref("nofilter.fits", cards))
    assert caught.value.keyword == FILTER and caught.value.file == "nofilter.fits"
    assert "[FILTER]" in caught.value.message
    new, result = insert(old, ref("nofilter.fits", cards), allow_bad_values=True)
    assert (("IRIS1", "UNDEFINED"), "2016-01-01 00:00:00") in leaves(new)
    assert result.warnings


def test_crds_compat_inserts_undefined_like_crds(cache):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    cards = [card for card in flat_cards() if card[0] != "INSTRUME"]
    new, _ = insert(old, ref("noinstr.fits", cards), crds_compat=True)
    # Without INSTRUME CRDS cannot choose its keyword translation: every META.* is UNDEFINED.
    assert (("UNDEFINED", "UNDEFINED"), "2016-01-01 00:00:00") in leaves(new)
    new, _ = insert(old, ref("noinstr.fits", cards))  # crdsmini knows the rmap is TMT
    assert (("IRIS1", "K"), "2016-01-01 00:00:00") in leaves(new)


def test_valid_values_are_checked_unless_allowed(cache):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    valid = {FILTER: ["K", "H", "J"]}
    with pytest.raises(InvalidValueError) as caught:
        insert(old, ref("z.fits", flat_cards(filter_="Z")), valid_values=valid)
    assert caught.value.keyword == FILTER and "value='Z'" in caught.value.message
    new, _ = insert(old, ref("z.fits", flat_cards(filter_="Z")), valid_values=valid, allow_bad_values=True)
    assert (("IRIS1", "Z"), "2016-01-01 00:00:00") in leaves(new)
    new, _ = insert(old, ref("hk.fits", flat_cards(detector="IRIS2", P_FILTER="H|K")), valid_values=valid)
    assert (("IRIS2", "H|K"), "2016-01-01 00:00:00") in leaves(new)


def test_instrument_and_reftype_must_agree_unless_forced(cache):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    cards = [(k, "NIRCAM" if k == "INSTRUME" else v) for k, v in flat_cards()]
    with pytest.raises(InvalidValueError) as caught:
        insert(old, ref("nircam.fits", cards))
    assert caught.value.keyword == "INSTRUME"
    insert(old, ref("nircam.fits", cards), force=True)
    insert(old, ref("nircam.fits", cards), crds_compat=True)
    dark = [(k, "DARK" if k == "REFTYPE" else v) for k, v in flat_cards()]
    with pytest.raises(InvalidValueError):
        insert(old, ref("dark.fits", dark))


def test_equal_weight_special_case_is_ambiguous_wider_key_warns(cache):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    with pytest.raises(AmbiguousMatchError) as caught:
        insert(old, ref("h.fits", flat_cards(filter_="H")))
    assert "equal weight special case" in caught.value.message
    new, result = insert(old, ref("wide.fits", flat_cards(P_FILTER="K|Y")))
    assert (("IRIS1", "K|Y"), "2016-01-01 00:00:00") in leaves(new)
    assert any("covers" in w for w in result.warnings)
    with pytest.raises(AmbiguousMatchError):
        insert(old, ref("wide.fits", flat_cards(P_FILTER="K|Y")), strict=True)


def test_identical_references_in_one_call_are_refused(cache):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    with pytest.raises(IdenticalMatchError) as caught:
        insert(old, ref("a.fits", flat_cards()), ref("b.fits", flat_cards(useafter_value="Jan 01 2016")))
    assert "a.fits" in caught.value.message and "b.fits" in caught.value.message


def test_special_value_becomes_a_selector(cache):
    old = tmt_rmap("x.rmap", "FLAT", (DETECTOR, FILTER), match((("IRIS1", "K"), "N/A")))
    new, result = insert(old, ref("f.fits", flat_cards()))
    assert leaves(new) == {(("IRIS1", "K"), "2016-01-01 00:00:00"): "f.fits"}
    assert result.insertions[0].replaced == "N/A"


def test_match_only_rmap_replaces_or_adds_the_choice():
    header_extra = {"classes": ("Match",), "parkey": ((DETECTOR, FILTER),)}
    old = tmt_rmap("m.rmap", "FLAT", (DETECTOR, FILTER), match((("IRIS1", "K"), "old.fits")), **header_extra)
    new, _ = insert(old, ref("f.fits", flat_cards(useafter_value=None)))
    assert leaves(new) == {(("IRIS1", "K"),): "f.fits"}


def test_match_only_rmap_without_classes():
    old = tmt_rmap("m.rmap", "FLAT", (DETECTOR, FILTER), match((("IRIS1", "K"), "old.fits")),
                   parkey=((DETECTOR, FILTER),))
    old = old.without_header("classes")
    with pytest.raises(UnsupportedError):  # CRDS assumes ('Match', 'UseAfter') and fails
        insert(old, ref("f.fits", flat_cards(useafter_value=None)), crds_compat=True)
    new, _ = insert(old, ref("f.fits", flat_cards(useafter_value=None)))  # crdsmini reads the parkey levels
    assert leaves(new) == {(("IRIS1", "K"),): "f.fits"}


def test_hst_values_are_conditioned_and_relevance_applies():
    header = {"derived_from": "x", "filekind": "DARKFILE", "instrument": "ACS", "mapping": "REFERENCE",
              "name": "hst_acs_darkfile.rmap", "observatory": "HST",
              "parkey": (("DETECTOR", "CCDAMP", "CCDGAIN"), ("DATE-OBS", "TIME-OBS")),
              "parkey_relevance": {"ccdamp": '(DETECTOR != "SBC")', "ccdgain": '(DETECTOR != "SBC")'}}
    old = MappingDocument(header=header, name="hst_acs_darkfile.rmap", selector=match(
        (("HRC", "A|B", "1.0|2.0"), useafter(("1992-01-01 00:00:00", "old.fits"))),
        (("WFC", "A", 2.0), useafter(("1992-01-01 00:00:00", "wfc.fits"))),
    ))

    def cards(detector: str, amp: Any, gain: Any) -> list[tuple[str, Any]]:
        return [("INSTRUME", "ACS"), ("DETECTOR", detector), ("CCDAMP", amp), ("CCDGAIN", gain),
                ("USEAFTER", "Jan 01 2008 00:00:00")]

    new, _ = insert(old, ref("wfc.fits", cards("wfc", "a", 2)))              # joins the raw 2.0 row
    assert (("WFC", "A", 2.0), "2008-01-01 00:00:00") in leaves(new)
    new, _ = insert(old, ref("sbc.fits", cards("SBC", "A", 2)))             # relevance -> N/A
    assert (("SBC", "N/A", "N/A"), "2008-01-01 00:00:00") in leaves(new)
    new, _ = insert(old, ref("any.fits", cards("HRC", "ANY", -1)))          # HST 'any' joins the glob row
    assert (("HRC", "A|B", "1.0|2.0"), "2008-01-01 00:00:00") in leaves(new)
    new, _ = insert(old, ref("n.fits", cards("HRC", "B", 4)), allow_bad_values=True)
    assert (("HRC", "B", "4.0"), "2008-01-01 00:00:00") in leaves(new)      # numbers become '4.0'


def test_reference_header_reads_all_hdus_first_wins_and_hierarch(tmp_path, cache):
    path = write_fits(tmp_path / "r.fits", [("INSTRUME", "IRIS"), ("META.INSTRUMENT.DETECTOR", "IRIS2"),
                                            ("FILTER", "K")],
                      ext_cards=[("FILTER", "CLEAR"), ("USEAFTER", "2016-01-01")])
    [reference] = read_references([path])
    header, _ = reference_header(load_document(cache / "tmt_iris_flat_0001.rmap"), reference)
    assert header == {DETECTOR: "IRIS2", FILTER: "K", DATE: "2016-01-01", TIME: "00:00:00"}


def test_unreadable_and_missing_reference_files(tmp_path):
    garbage = tmp_path / "garbage.fits"
    garbage.write_bytes(b"this is not FITS")
    with pytest.raises(HeaderError) as caught:
        read_references([garbage])
    assert caught.value.file == str(garbage)
    with pytest.raises(MissingFileError) as caught:
        read_references([tmp_path / "absent.fits"])
    assert caught.value.category == "missing-file"


def test_broken_source_rmaps_are_invalid_mapping(tmp_path):
    path = tmp_path / "broken.rmap"
    path.write_text("header = {'name' : 'broken.rmap'}\nselector = Match({})\n")
    with pytest.raises(MappingError) as caught:
        load_document(path)
    assert caught.value.category == "invalid-mapping"


# --------------------------------------------------------------------------- delete, header edits


def test_delete_reference_everywhere_and_prunes_empty_branches(cache):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    result = delete_references(old, ["tmt_iris_flat_0002.fits"], old_name=old.name, new_name="n.rmap")
    assert [key for key, _ in result.document.selector.rows] == [("IRIS1", "K")]
    assert result.deleted == (((("IRIS1", "H|J"), "2015-06-01 00:00:00"), "tmt_iris_flat_0002.fits"),)
    assert result.document.header["name"] == "n.rmap"
    emptied = delete_references(old, ["tmt_iris_flat_0001.fits", "tmt_iris_flat_0002.fits"],
                                old_name=old.name, new_name="n.rmap", crds_compat=True)
    assert emptied.document.selector.rows == ()
    assert emptied.document.header["name"] == old.name
    assert render(emptied.document)[1].endswith("selector = Match({\n})\n")


def test_delete_of_unknown_file_is_an_error(cache):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    with pytest.raises(MissingFileError, match="could not be found and deleted"):
        delete_references(old, ["nothere.fits"], old_name=old.name, new_name="n.rmap")


@pytest.mark.parametrize(("text", "value"), [("42", 42), ("True", True), ("('A', 'B')", ("A", "B")),
                                             ("new flat for K band", "new flat for K band"), ("1.5", 1.5)])
def test_header_values_from_the_command_line(text, value):
    assert parse_header_value(text) == value


def test_set_and_del_header(cache):
    old = load_document(cache / "tmt_iris_flat_0001.rmap")
    edited = set_header(old, "description", "new flat for K band")
    assert edited.header["description"] == "new flat for K band" and "description" not in old.header
    assert "description" not in del_header(edited, "description").header
    with pytest.raises(AuthoringError):
        del_header(old, "parkey")
    with pytest.raises(AuthoringError):
        set_header(old, "sha1sum", "x")
    with pytest.raises(MissingKeyError):
        del_header(old, "nothere")


# --------------------------------------------------------------------------- names and contexts


@pytest.mark.parametrize(("existing", "old", "expected"), [
    ([], "tmt_iris_flat_0003.rmap", "tmt_iris_flat_0004.rmap"),
    (["tmt_iris_flat_0004.rmap", "tmt_iris_flat_0007.rmap"], "tmt_iris_flat_0003.rmap", "tmt_iris_flat_0008.rmap"),
    (["hst_acs_9999.imap"], "hst_acs_0491.imap", "hst_acs_10000.imap"),
    ([], "hst_cos_deadtab.rmap", "hst_cos_deadtab_0001.rmap"),
    (["hst_0001.pmap", "hst_0002.pmap"], "hst.pmap", "hst_0003.pmap"),
    (["hst_stis_x.imap"], "hst_stis_0007.imap", "hst_stis_0008.imap"),
])
def test_next_name(tmp_path, existing, old, expected):
    for name in existing:
        (tmp_path / name).write_text("")
    assert next_name(old, tmp_path) == expected


def test_plan_new_context_names_sums_and_derivation(cache):
    new_rmap = cache / "tmt_iris_flat_0002.rmap"
    write_mapping(cache, tmt_rmap("tmt_iris_flat_0002.rmap", "FLAT", (DETECTOR, FILTER), match()))
    plan = plan_new_context(cache / "tmt_0001.pmap", [(new_rmap.name, load_document(new_rmap).header)])
    names = [item.path.name for item in plan.files]
    assert names == ["tmt_iris_0002.imap", "tmt_0002.pmap"]
    imap, pmap = plan.files
    assert imap.document.selector["FLAT"] == "tmt_iris_flat_0002.rmap"
    assert imap.document.header["derived_from"] == "tmt_iris_0001.imap"
    assert imap.document.header["name"] == "tmt_iris_0002.imap"
    assert pmap.document.selector == {"IRIS": "tmt_iris_0002.imap"}
    assert pmap.document.header["derived_from"] == "tmt_0001.pmap"
    from crdsmini.checksum import compute_checksum
    assert compute_checksum(pmap.text) == pmap.document.header["sha1sum"]
    in_place = plan_new_context(cache / "tmt_0001.pmap", [(new_rmap.name, {"instrument": "IRIS",
                                                                           "filekind": "FLAT"})],
                                in_place_imap=True)
    assert [(item.path.name, item.in_place) for item in in_place.files] == [("tmt_iris_0001.imap", True)]
    assert in_place.files[0].document.header["name"] == "tmt_iris_0001.imap"


def test_unknown_instrument_and_finding_the_context(cache):
    with pytest.raises(UnknownInstrumentError):
        plan_new_context(cache / "tmt_0001.pmap", [("tmt_nfiraos_flat_0001.rmap", {"instrument": "NFIRAOS",
                                                                                   "filekind": "FLAT"})])
    assert find_context_for("tmt_iris_flat_0001.rmap", cache).name == "tmt_0001.pmap"
    with pytest.raises(AuthoringError):
        find_context_for("tmt_iris_flat_0099.rmap", cache)
