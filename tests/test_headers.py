"""Dataset headers (writing-and-tools §6.2, §3.4): FITS union, JSON, JSON lines, translation."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from astropy.io import fits

from crdsmini.errors import HeaderError
from crdsmini.headers import (TMT_KEYWORDS, cross_strap, dataset_header, is_fits_path,
                              normalise_keys, read_datasets, read_fits_header, read_json_headers)


def write_fits(path: Path, primary: dict, *extensions: dict) -> Path:
    hdus = [fits.PrimaryHDU()]
    for key, value in primary.items():
        hdus[0].header[key if len(key) <= 8 and "." not in key else f"HIERARCH {key}"] = value
    for number, cards in enumerate(extensions, start=1):
        ext = fits.ImageHDU(name=f"EXT{number}")
        for key, value in cards.items():
            ext.header[key] = value
        hdus.append(ext)
    fits.HDUList(hdus).writeto(path)
    return path


# -- FITS ------------------------------------------------------------------------------------

def test_fits_union_first_occurrence_wins_and_extension_only_keys_count(tmp_path):
    path = write_fits(tmp_path / "a.fits", {"INSTRUME": "IRIS", "FILTER": "K"},
                      {"FILTER": "CLEAR", "PUPIL": "CLEAR"}, {"PUPIL": "OTHER", "DETECTOR": "IRIS1"})
    header = read_fits_header(path)
    assert header["FILTER"] == "K"
    assert header["PUPIL"] == "CLEAR"
    assert header["DETECTOR"] == "IRIS1"
    assert header["INSTRUME"] == "IRIS"


def test_fits_values_are_text_and_hierarch_names_are_dotted(tmp_path):
    path = write_fits(tmp_path / "b.fits", {
        "BOOL": True, "NUM": 2, "FL": 2.5, "EMPTY": "", "UNDEF": None,
        "META.INSTRUMENT.DETECTOR": "IRIS2", "meta.instrument.name": "IRIS"})
    header = read_fits_header(path)
    assert header["BOOL"] == "True"
    assert header["NUM"] == "2"
    assert header["FL"] == "2.5"
    assert header["EMPTY"] == ""
    assert header["UNDEF"] == "UNDEFINED"
    assert header["META.INSTRUMENT.DETECTOR"] == "IRIS2"
    assert header["META.INSTRUMENT.NAME"] == "IRIS"
    assert "COMMENT" not in header and "HISTORY" not in header


def test_fits_errors_are_header_errors(tmp_path):
    with pytest.raises(HeaderError, match="not found"):
        read_fits_header(tmp_path / "missing.fits")
    bad = tmp_path / "bad.fits"
    bad.write_text("this is not FITS")
    with pytest.raises(HeaderError) as info:
        read_fits_header(bad)
    assert info.value.category == "invalid-header"


def test_fits_detection(tmp_path):
    path = write_fits(tmp_path / "raw.dat", {"INSTRUME": "IRIS"})
    assert is_fits_path(path)
    assert is_fits_path("x.fits.gz")
    text = tmp_path / "x.txt"
    text.write_text("SIMPLE? no")
    assert not is_fits_path(text)


# -- translation table -------------------------------------------------------------------------

@pytest.mark.parametrize("keyword, path", [
    ("INSTRUME", "META.INSTRUMENT.NAME"),
    ("DETECTOR", "META.INSTRUMENT.DETECTOR"),
    ("FILTER", "META.INSTRUMENT.FILTER"),
    ("PUPIL", "META.INSTRUMENT.PUPIL"),
    ("SUBARRAY", "META.SUBARRAY.NAME"),
    ("DATE-OBS", "META.OBSERVATION.DATE"),
    ("TIME-OBS", "META.OBSERVATION.TIME"),
    ("EXP_TYPE", "META.EXPOSURE.TYPE"),
    ("READPATT", "META.EXPOSURE.READPATT"),
    ("TELESCOP", "META.TELESCOPE"),
    ("USEAFTER", "META.USEAFTER"),
    ("CORONMSK", "META.INSTRUMENT.CORONAGRAPH"),
    ("SUBSTRT1", "META.SUBARRAY.XSTART"),
])
def test_keyword_translation_both_ways(keyword, path):
    assert cross_strap({keyword: "V"})[path] == "V"
    assert cross_strap({path: "V"})[keyword] == "V"
    assert TMT_KEYWORDS.fits_keyword(path) == keyword


def test_cross_strapping_fills_undefined_but_never_overrides():
    header = cross_strap({"DETECTOR": "IRIS1", "META.INSTRUMENT.DETECTOR": "IRIS2",
                          "FILTER": "K", "META.INSTRUMENT.FILTER": "UNDEFINED",
                          "INSTRUMENT": "IRIS"})
    assert header["DETECTOR"] == "IRIS1"
    assert header["META.INSTRUMENT.DETECTOR"] == "IRIS2"
    assert header["META.INSTRUMENT.FILTER"] == "K"
    assert header["META.INSTRUMENT.NAME"] == "IRIS"
    assert header["INSTRUME"] == "IRIS"


def test_all_undefined_stays_undefined():
    assert cross_strap({"META.INSTRUMENT.NAME": "UNDEFINED"}) == {"META.INSTRUMENT.NAME": "UNDEFINED"}


def test_annotation_and_extension():
    assert TMT_KEYWORDS.annotate("META.INSTRUMENT.FILTER") == "META.INSTRUMENT.FILTER [FILTER]"
    assert TMT_KEYWORDS.annotate("DATE-OBS") == "DATE-OBS"
    table = TMT_KEYWORDS.extended([("META.INSTRUMENT.GAIN_MODE", "gainmode")])
    assert cross_strap({"GAINMODE": "HIGH"}, table)["META.INSTRUMENT.GAIN_MODE"] == "HIGH"
    assert TMT_KEYWORDS.source_of({"FILTER": "K"}, "META.INSTRUMENT.FILTER") == "FILTER"


def test_key_normalisation_prefers_lower_then_upper_then_mixed():
    assert normalise_keys({"meta.instrument.name": "a", "META.INSTRUMENT.NAME": "b"}) \
        == {"META.INSTRUMENT.NAME": "a"}
    assert normalise_keys({"Detector": "x", "DETECTOR": "y"}) == {"DETECTOR": "y"}
    assert normalise_keys({"Detector": "x", "n": 3, "b": False}) == {"DETECTOR": "x", "N": "3", "B": "False"}
    with pytest.raises(HeaderError):
        normalise_keys({"X": {"nested": 1}})


def test_lower_case_dotted_data_model_keys_are_accepted():
    header = dataset_header({"meta.instrument.name": "IRIS", "meta.instrument.detector": "IRIS1"})
    assert header["META.INSTRUMENT.NAME"] == "IRIS"
    assert header["INSTRUME"] == "IRIS"
    assert header["DETECTOR"] == "IRIS1"


# -- JSON ----------------------------------------------------------------------------------------

def test_json_single_object(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"INSTRUME": "IRIS", "DETECTOR": "IRIS1"}))
    assert read_json_headers(path) == [("one.json", {"INSTRUME": "IRIS", "DETECTOR": "IRIS1"})]


def test_json_crds_batch_form(tmp_path):
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({"ds1": {"INSTRUME": "IRIS"}, "ds2": {"INSTRUME": "IRIS", "X": 1}}))
    assert [dataset_id for dataset_id, _ in read_json_headers(path)] == ["ds1", "ds2"]


def test_json_lines_both_forms_comments_and_blank_lines(tmp_path):
    path = tmp_path / "batch.jsonl"
    path.write_text('{"INSTRUME": "IRIS"}\n\n# comment\n{"obs42": {"INSTRUME": "IRIS"}}\n')
    assert [dataset_id for dataset_id, _ in read_json_headers(path)] == ["batch.jsonl:1", "obs42"]


@pytest.mark.parametrize("text, message", [
    ('{"INSTRUME": "IRIS"}\nnot json\n', "batch.jsonl:2"),
    ('[1, 2]\n', "expected a JSON object"),
])
def test_json_lines_errors_name_the_line(tmp_path, text, message):
    path = tmp_path / "batch.jsonl"
    path.write_text(text)
    with pytest.raises(HeaderError, match=message):
        read_json_headers(path)


def test_read_datasets_mixes_fits_json_and_header_files(tmp_path):
    fits_path = write_fits(tmp_path / "raw.fits", {"INSTRUME": "IRIS", "DETECTOR": "IRIS1"})
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"meta.instrument.name": "IRIS"}))
    lines = tmp_path / "more.jsonl"
    lines.write_text('{"a": {"INSTRUME": "IRIS"}}\n{"b": {"INSTRUME": "IRIS"}}\n')
    datasets = read_datasets([fits_path, one], [lines])
    assert [d.id for d in datasets] == [str(fits_path), "one.json", "a", "b"]
    assert datasets[0].path == fits_path and datasets[0].kind == "fits"
    assert datasets[0].header["META.INSTRUMENT.DETECTOR"] == "IRIS1"
    assert datasets[1].path is None and datasets[1].kind == "json"
    assert datasets[1].header["INSTRUME"] == "IRIS"
    assert datasets[1].instrument == "IRIS"


def test_read_datasets_refuses_unknown_files(tmp_path):
    with pytest.raises(HeaderError, match="not found"):
        read_datasets([tmp_path / "nope.fits"])
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(HeaderError, match="not a FITS file"):
        read_datasets([other])
    with pytest.raises(HeaderError, match="not found"):
        read_datasets([tmp_path / "nope.txt"])
