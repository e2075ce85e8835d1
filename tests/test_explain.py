"""The explanation behind ``bestrefs --explain`` / ``crdsmini explain`` (issue item 5)."""
from __future__ import annotations

import json

import pytest

from crdsmini import load_mapping
from crdsmini.explain import explain_dataset, explain_header
from crdsmini.headers import read_datasets
from test_bestrefs_cli import build_cache, cache, run, write_raw  # noqa: F401 (fixture)


@pytest.fixture
def pmap(tmp_path):
    root = build_cache(tmp_path / "cache")
    return load_mapping(root / "mappings" / "tmt" / "tmt_0002.pmap")


def explain_raw(pmap, tmp_path, **cards):
    raw = write_raw(tmp_path / "raw.fits", **cards)
    (dataset,) = read_datasets([raw])
    return explain_dataset(pmap, dataset)


def by_type(explanation):
    return {t.reftype: t for t in explanation.types}


def test_found_reference_path_parameters_rows_and_dates(pmap, tmp_path):
    flat = by_type(explain_raw(pmap, tmp_path, FILTER="k"))["flat"]
    assert flat.result.value == "tmt_iris_flat_k_0002.fits"
    assert flat.path == ("tmt_0002.pmap", "tmt_iris_0002.imap", "tmt_iris_flat_0002.rmap")
    params = {p.name: p for p in flat.parameters}
    assert params["META.INSTRUMENT.FILTER"].value == "K"
    assert params["META.INSTRUMENT.FILTER"].dataset_value == "k"
    assert params["META.INSTRUMENT.FILTER"].fits_keyword == "FILTER"
    assert params["META.INSTRUMENT.FILTER"].source == "FILTER"
    assert any("conditioned" in note for note in params["META.INSTRUMENT.FILTER"].notes)
    match, useafter = flat.steps
    assert match.kind == "Match"
    chosen = [row for row in match.rows if row.chosen]
    assert [(row.key, row.weight) for row in chosen] == [(("IRIS1", "K", "CLEAR"), 3)]
    assert useafter.kind == "UseAfter"
    assert useafter.time == "2019-03-01 12:00:00"
    assert useafter.dates == (
        ("2015-06-01 00:00:00", "tmt_iris_flat_k_0001.fits", "earlier"),
        ("2018-01-01 00:00:00", "tmt_iris_flat_k_0002.fits", "chosen"),
        ("2020-01-01 00:00:00", "tmt_iris_flat_k_0003.fits", "later than the dataset"),
    )


def test_invalid_value_shows_accepted_values_and_nearest_rows(pmap, tmp_path):
    dark = by_type(explain_raw(pmap, tmp_path, SUBARRAY="SUB128"))["dark"]
    assert dark.result.status == "error" and dark.result.category == "invalid-value"
    (step,) = dark.steps
    assert step.category == "invalid-value"
    assert step.accepted == {"META.SUBARRAY.NAME": ["FULL", "SUB64"]}
    assert {row.key for row in step.rows} == {("IRIS1", "FULL"), ("IRIS1", "SUB64")}
    assert all(row.differences == (("META.SUBARRAY.NAME", "SUB128", row.key[1]),)
               for row in step.rows)


def test_date_before_every_useafter_says_which_date(pmap, tmp_path):
    flat = by_type(explain_raw(pmap, tmp_path, DETECTOR="IRIS2", FILTER="H",
                               DATE_OBS="2010-01-01"))["flat"]
    assert flat.result.status == "not-found"
    (step,) = flat.steps
    assert step.category == "not-found"
    assert "no date at or before 2010-01-01 12:00:00; the first is 2015-06-01 00:00:00" \
        in step.summary


def test_no_row_matches_nearest_rows_and_differing_parameters(pmap, tmp_path):
    # every value is one the rules use, but no row has this combination
    flat = by_type(explain_raw(pmap, tmp_path, FILTER="J"))["flat"]
    assert flat.result.status == "not-found"
    (step,) = flat.steps
    assert step.category == "not-found" and "no row matches" in step.summary
    nearest = [(row.key, row.differences) for row in step.rows]
    assert nearest == [
        (("IRIS1", "H", "CLEAR"), (("META.INSTRUMENT.FILTER", "J", "H"),)),
        (("IRIS1", "K", "CLEAR"), (("META.INSTRUMENT.FILTER", "J", "K"),)),
        (("IRIS2", "H|K", "CLEAR"), (("META.INSTRUMENT.DETECTOR", "IRIS1", "IRIS2"),
                                     ("META.INSTRUMENT.FILTER", "J", "H|K"))),
    ]
    assert step.accepted["META.INSTRUMENT.FILTER"] == ["H", "J", "K"]


def test_values_rejected_before_matching_name_the_accepted_values(pmap, tmp_path):
    header = {"META.INSTRUMENT.NAME": "IRIS", "META.INSTRUMENT.DETECTOR": "IRIS2",
              "META.INSTRUMENT.FILTER": "K", "META.INSTRUMENT.PUPIL": "CLEAR",
              "META.SUBARRAY.NAME": "FULL", "META.OBSERVATION.DATE": "2019-01-01",
              "META.OBSERVATION.TIME": "00:00:00"}
    (mask,) = explain_header(pmap, header, types=["mask"]).types
    assert mask.result.category == "invalid-value"
    assert mask.steps[0].accepted == {"META.INSTRUMENT.DETECTOR": ["IRIS1"]}
    header["META.INSTRUMENT.FILTER"] = "Y"
    (flat,) = explain_header(pmap, header, types=["flat"]).types
    assert flat.steps[0].accepted == {"META.INSTRUMENT.FILTER": ["H", "J", "K"]}


def test_an_imap_context_works_too(tmp_path):
    root = build_cache(tmp_path / "cache")
    imap = load_mapping(root / "mappings" / "tmt" / "tmt_iris_0001.imap")
    header = {"META.INSTRUMENT.DETECTOR": "IRIS2", "META.INSTRUMENT.FILTER": "K",
              "META.INSTRUMENT.PUPIL": "CLEAR", "META.SUBARRAY.NAME": "FULL",
              "META.OBSERVATION.DATE": "2019-01-01", "META.OBSERVATION.TIME": "00:00:00"}
    (flat,) = explain_header(imap, header, types=["flat"]).types
    assert flat.path == ("tmt_iris_0001.imap", "tmt_iris_flat_0001.rmap")
    assert flat.result.value == "tmt_iris_flat_2_0001.fits"


def explain_raw_again(pmap, tmp_path, **cards):
    raw = write_raw(tmp_path / "again.fits", **cards)
    (dataset,) = read_datasets([raw])
    return explain_dataset(pmap, dataset)


def test_undefined_parameters_are_flagged(pmap, tmp_path):
    raw = write_raw(tmp_path / "raw.fits", drop=("PUPIL",))
    (dataset,) = read_datasets([raw])
    flat = by_type(explain_dataset(pmap, dataset))["flat"]
    pupil = {p.name: p for p in flat.parameters}["META.INSTRUMENT.PUPIL"]
    assert pupil.value == "UNDEFINED" and pupil.dataset_value is None
    assert "not in the dataset: UNDEFINED" in pupil.notes
    assert flat.result.category == "invalid-value"


def test_imap_specials_and_whole_call_errors(pmap, tmp_path):
    explanation = explain_raw(pmap, tmp_path)
    dflat = by_type(explanation)["dflat"]
    assert dflat.path[-1] == "N/A" and "for every dataset" in dflat.notes[0]
    assert "xtalk" not in by_type(explanation)
    failed = explain_raw_again(pmap, tmp_path, INSTRUME="NIRCAM")
    assert failed.error.category == "unknown-instrument"
    assert any("iris" in hint for hint in failed.hints)
    text = failed.to_text()
    assert "ERROR [unknown-instrument]" in text and "hint:" in text


def test_text_and_json_renderings(pmap, tmp_path):
    explanation = explain_raw(pmap, tmp_path, SUBARRAY="SUB128")
    text = explanation.to_text()
    assert "rules: tmt_0002.pmap -> tmt_iris_0002.imap -> tmt_iris_flat_0002.rmap" in text
    assert "-> 2018-01-01 00:00:00  tmt_iris_flat_k_0002.fits   (chosen)" in text
    assert "values the rules accept for META.SUBARRAY.NAME: 'FULL', 'SUB64'" in text
    document = explanation.to_json()
    json.dumps(document)  # serialisable
    types = {t["reftype"]: t for t in document["types"]}
    assert types["flat"]["steps"][1]["dates"][1] == {
        "date": "2018-01-01 00:00:00", "choice": "tmt_iris_flat_k_0002.fits", "role": "chosen"}
    assert types["dark"]["result"]["category"] == "invalid-value"


def test_explain_never_changes_the_answer(pmap, tmp_path):
    for number, cards in enumerate([{}, {"FILTER": "h"}, {"DATE_OBS": "2021-06-01"},
                                    {"SUBARRAY": "GENERIC"}, {"DETECTOR": "IRIS2"}]):
        raw = write_raw(tmp_path / f"r{number}.fits", **cards)
        (dataset,) = read_datasets([raw])
        minimized = pmap.minimize_header(dict(dataset.header))
        expected = pmap.get_best_references(minimized)
        got = {t.reftype: t.result.value for t in explain_dataset(pmap, dataset).types}
        assert got == expected


# -- the commands -------------------------------------------------------------------------------

def test_bestrefs_explain_and_explain_command(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits", SUBARRAY="SUB128")
    first = run("bestrefs", "--explain", str(raw))
    second = run("explain", str(raw))
    assert first.exit_code == second.exit_code == 1
    assert first.stdout == second.stdout
    assert "values the rules accept for META.SUBARRAY.NAME: 'FULL', 'SUB64'" in first.stdout


def test_explain_json(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits")
    result = run("explain", "--format", "json", "-t", "flat", str(raw))
    assert result.exit_code == 0
    record = json.loads(result.stdout)["datasets"][0]
    assert record["explain"]["types"][0]["reftype"] == "flat"
    assert record["types"]["flat"]["bestref"] == "tmt_iris_flat_k_0002.fits"
