"""End-to-end tests of ``crdsmini bestrefs`` on real FITS files in a small TMT-style cache.

The cache is written here as text, the way a person writes rules, with correct checksums:
``tmt_0001.pmap`` and ``tmt_0002.pmap`` (which adds a newer K flat).  Other test modules
import :func:`build_cache` and :func:`write_raw` from here.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from astropy.io import fits
from click.testing import CliRunner

from crdsmini import load_mapping
from crdsmini.bestrefs import (Log, compute_bestrefs, lookup_header, update_dataset_header)
from crdsmini.checksum import compute_checksum
from crdsmini.cli import _expand_greedy, main
from crdsmini.headers import read_datasets

# --------------------------------------------------------------------------------------------
# Fixture cache

_HEADER = """header = {{
    'derived_from' : 'NONE',
{extra}    'mapping' : '{mapping}',
    'name' : '{name}',
    'observatory' : 'TMT',
    'parkey' : {parkey},
    'sha1sum' : '0000000000000000000000000000000000000000',
}}

selector = {selector}
"""

_DATE = "('META.OBSERVATION.DATE', 'META.OBSERVATION.TIME')"

RMAPS = {
    "tmt_iris_flat_0001.rmap": ("FLAT", f"(('META.INSTRUMENT.DETECTOR', 'META.INSTRUMENT.FILTER', 'META.INSTRUMENT.PUPIL'), {_DATE})", """Match({
    ('IRIS1', 'H', 'CLEAR') : UseAfter({
        '2015-06-01 00:00:00' : 'tmt_iris_flat_h_0001.fits',
    }),
    ('IRIS1', 'K', 'CLEAR') : UseAfter({
        '2015-06-01 00:00:00' : 'tmt_iris_flat_k_0001.fits',
        '2018-01-01 00:00:00' : 'tmt_iris_flat_k_0002.fits',
    }),
    ('IRIS2', 'H|K', 'CLEAR') : UseAfter({
        '2015-06-01 00:00:00' : 'tmt_iris_flat_2_0001.fits',
    }),
})""", ""),
    "tmt_iris_flat_0002.rmap": ("FLAT", f"(('META.INSTRUMENT.DETECTOR', 'META.INSTRUMENT.FILTER', 'META.INSTRUMENT.PUPIL'), {_DATE})", """Match({
    ('IRIS1', 'H', 'CLEAR') : UseAfter({
        '2015-06-01 00:00:00' : 'tmt_iris_flat_h_0001.fits',
    }),
    ('IRIS1', 'K', 'CLEAR') : UseAfter({
        '2015-06-01 00:00:00' : 'tmt_iris_flat_k_0001.fits',
        '2018-01-01 00:00:00' : 'tmt_iris_flat_k_0002.fits',
        '2020-01-01 00:00:00' : 'tmt_iris_flat_k_0003.fits',
    }),
    ('IRIS2', 'H|K', 'CLEAR') : UseAfter({
        '2015-06-01 00:00:00' : 'tmt_iris_flat_2_0001.fits',
    }),
    ('IRIS2', 'J', 'OPEN') : UseAfter({
        '2020-01-01 00:00:00' : 'tmt_iris_flat_2j_0001.fits',
    }),
})""", ""),
    "tmt_iris_dark_0001.rmap": ("DARK", f"(('META.INSTRUMENT.DETECTOR', 'META.SUBARRAY.NAME'), {_DATE})", """Match({
    ('IRIS1', 'FULL') : UseAfter({
        '1900-01-01 00:00:00' : 'tmt_iris_dark_0001.fits',
    }),
    ('IRIS1', 'SUB64') : UseAfter({
        '1900-01-01 00:00:00' : 'tmt_iris_dark_sub64_0001.fits',
    }),
})""", "    'substitutions' : {\n        'META.SUBARRAY.NAME' : {\n            'GENERIC' : 'N/A',\n        },\n    },\n"),
    "tmt_iris_mask_0001.rmap": ("MASK", f"(('META.INSTRUMENT.DETECTOR',), {_DATE})", """Match({
    'IRIS1' : UseAfter({
        '2016-01-01 00:00:00' : 'tmt_iris_mask_0001.fits',
    }),
})""", ""),
    "tmt_iris_nonlincoeff_0001.rmap": ("NONLINCOEFF", f"(('META.INSTRUMENT.DETECTOR',), {_DATE})", """Match({
    'IRIS1' : UseAfter({
        '2015-01-01 00:00:00' : 'tmt_iris_nonlincoeff_0001.fits',
    }),
})""", ""),
}

IMAPS = {
    "tmt_iris_0001.imap": {"DARK": "tmt_iris_dark_0001.rmap", "DFLAT": "N/A",
                           "FLAT": "tmt_iris_flat_0001.rmap", "MASK": "tmt_iris_mask_0001.rmap",
                           "NONLINCOEFF": "tmt_iris_nonlincoeff_0001.rmap", "XTALK": "OMIT"},
    "tmt_iris_0002.imap": {"DARK": "tmt_iris_dark_0001.rmap", "DFLAT": "N/A",
                           "FLAT": "tmt_iris_flat_0002.rmap", "MASK": "tmt_iris_mask_0001.rmap",
                           "NONLINCOEFF": "tmt_iris_nonlincoeff_0001.rmap", "XTALK": "OMIT"},
}

PMAPS = {"tmt_0001.pmap": "tmt_iris_0001.imap", "tmt_0002.pmap": "tmt_iris_0002.imap"}

REFERENCE_FILES = ("tmt_iris_flat_k_0002.fits", "tmt_iris_flat_k_0003.fits",
                   "tmt_iris_dark_0001.fits", "tmt_iris_mask_0001.fits",
                   "tmt_iris_nonlincoeff_0001.fits")


def _dict_text(entries: dict[str, str]) -> str:
    body = "".join(f"    '{k}' : '{v}',\n" for k, v in sorted(entries.items()))
    return "{\n" + body + "}"


def _write(path: Path, text: str) -> None:
    text = text.replace("0" * 40, compute_checksum(text))
    path.write_text(text)


def build_cache(root: Path, *, server_context: str | None = None) -> Path:
    """Write the fixture cache under ``root`` (CRDS layout) and return ``root``."""
    maps = root / "mappings" / "tmt"
    maps.mkdir(parents=True)
    for name, (filekind, parkey, selector, extra) in RMAPS.items():
        extra_lines = ("    'classes' : ('Match', 'UseAfter'),\n"
                       f"    'filekind' : '{filekind}',\n    'instrument' : 'IRIS',\n") + extra
        _write(maps / name, _HEADER.format(extra=extra_lines, mapping="REFERENCE", name=name,
                                           parkey=parkey, selector=selector))
    for name, selections in IMAPS.items():
        _write(maps / name, _HEADER.format(extra="    'instrument' : 'IRIS',\n", mapping="INSTRUMENT",
                                           name=name, parkey="('REFTYPE',)",
                                           selector=_dict_text(selections)))
    for name, imap in PMAPS.items():
        _write(maps / name, _HEADER.format(extra="", mapping="PIPELINE", name=name,
                                           parkey="('META.INSTRUMENT.NAME',)",
                                           selector=_dict_text({"IRIS": imap})))
    refs = root / "references" / "tmt" / "iris"
    refs.mkdir(parents=True)
    for name in REFERENCE_FILES:
        fits.PrimaryHDU().writeto(refs / name)
    config = root / "config" / "tmt"
    config.mkdir(parents=True)
    (config / "ref_cache_subdir_mode").write_text("instrument\n")
    if server_context:
        (config / "server_config").write_text(repr({"operational_context": server_context}))
    return root


RAW_DEFAULTS = {"INSTRUME": "IRIS", "DETECTOR": "IRIS1", "FILTER": "K", "PUPIL": "CLEAR",
                "SUBARRAY": "FULL", "DATE-OBS": "2019-03-01", "TIME-OBS": "12:00:00"}


def write_raw(path: Path, *, extension: dict | None = None, drop: tuple[str, ...] = (),
              **cards: str) -> Path:
    """A raw IRIS frame: primary header with RAW_DEFAULTS (overridden by ``cards``), a SCI
    extension holding ``extension`` cards, and a small data array."""
    import numpy as np

    values = {**RAW_DEFAULTS, **{k.replace("_", "-") if k in ("DATE_OBS", "TIME_OBS") else k: v
                                 for k, v in cards.items()}}
    primary = fits.PrimaryHDU()
    for key, value in values.items():
        if key not in drop:
            primary.header[key if len(key) <= 8 and "." not in key else f"HIERARCH {key}"] = value
    sci = fits.ImageHDU(np.arange(16, dtype="float32").reshape(4, 4), name="SCI")
    for key, value in (extension or {}).items():
        sci.header[key] = value
    fits.HDUList([primary, sci]).writeto(path)
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = build_cache(tmp_path / "cache")
    for name in ("CRDS_PATH", "CRDS_CONTEXT", "CRDS_MAPPATH", "CRDS_REFPATH", "CRDS_PATH_SINGLE",
                 "CRDS_MAPPATH_SINGLE", "CRDS_REFPATH_SINGLE", "CRDS_CFGPATH",
                 "CRDS_CFGPATH_SINGLE", "CRDS_IGNORE_MAPPING_CHECKSUM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRDS_PATH", str(root))
    monkeypatch.setenv("CRDS_CONTEXT", "tmt_0001.pmap")
    monkeypatch.chdir(tmp_path)
    return root


def run(*args: str, env: dict | None = None):
    runner = CliRunner()
    return runner.invoke(main, list(args), env=env, catch_exceptions=False)


def engine_answers(root: Path, context: str, fits_path: Path) -> dict:
    """What the rules engine itself answers for the file (the CRDS top-level lookup)."""
    pmap = load_mapping(root / "mappings" / "tmt" / context)
    (dataset,) = read_datasets([fits_path])
    return pmap.get_best_references(pmap.minimize_header(dict(dataset.header)))


# --------------------------------------------------------------------------------------------
# Basic results

def test_default_output_lists_every_type(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits")
    result = run("bestrefs", str(raw))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{raw}  (context tmt_0001.pmap, instrument iris)"
    table = dict(line.split(None, 1) for line in lines[1:] if line.strip())
    assert table == {"dark": "tmt_iris_dark_0001.fits", "dflat": "n/a",
                     "flat": "tmt_iris_flat_k_0002.fits", "mask": "tmt_iris_mask_0001.fits",
                     "nonlincoeff": "tmt_iris_nonlincoeff_0001.fits"}
    assert "xtalk" not in result.stdout  # OMIT
    assert result.stderr == ""


def test_answers_equal_the_engine(cache, tmp_path):
    cases = [write_raw(tmp_path / "a.fits"),
             write_raw(tmp_path / "b.fits", FILTER="h", DETECTOR="iris1"),
             write_raw(tmp_path / "c.fits", DATE_OBS="2015-01-01"),
             write_raw(tmp_path / "d.fits", SUBARRAY="WEIRD"),
             write_raw(tmp_path / "e.fits", DETECTOR="IRIS2", extension={"FILTER": "H"})]
    result = run("bestrefs", "--format", "json", *map(str, cases))
    document = json.loads(result.stdout)
    for record, path in zip(document["datasets"], cases):
        expected = engine_answers(cache, "tmt_0001.pmap", path)
        got = {name: entry["crds"] for name, entry in record["types"].items()}
        assert got == expected, path.name


def test_fits_union_extension_keyword_is_used(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits", drop=("FILTER",), extension={"FILTER": "H"})
    result = run("bestrefs", "--format", "json", str(raw))
    record = json.loads(result.stdout)["datasets"][0]
    assert record["types"]["flat"]["bestref"] == "tmt_iris_flat_h_0001.fits"


def test_hierarch_data_model_names_and_lower_case_values(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits", drop=("DETECTOR", "FILTER", "INSTRUME"),
                    **{"META.INSTRUMENT.DETECTOR": "iris1", "META.INSTRUMENT.FILTER": "k",
                       "meta.instrument.name": "iris"})
    result = run("bestrefs", "--format", "json", str(raw))
    assert result.exit_code == 0, result.output
    types = json.loads(result.stdout)["datasets"][0]["types"]
    assert types["flat"]["bestref"] == "tmt_iris_flat_k_0002.fits"


def test_types_and_skip_types_crds_style(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits")
    result = run("bestrefs", "--files", str(raw), "--types", "flat", "dark", "--format", "json")
    assert list(json.loads(result.stdout)["datasets"][0]["types"]) == ["flat", "dark"]
    result = run("bestrefs", "-t", "flat,mask", str(raw), "--format", "json")
    assert list(json.loads(result.stdout)["datasets"][0]["types"]) == ["flat", "mask"]
    result = run("bestrefs", str(raw), "--skip-types", "dark", "dflat", "--format", "json")
    assert list(json.loads(result.stdout)["datasets"][0]["types"]) == ["flat", "mask", "nonlincoeff"]
    result = run("bestrefs", str(raw), "--all-types", "--format", "json")
    assert len(json.loads(result.stdout)["datasets"][0]["types"]) == 5


def test_greedy_option_expansion():
    assert _expand_greedy(["--files", "a.fits", "b.fits", "-t", "flat", "dark", "c.fits"]) == \
        ["a.fits", "b.fits", "--types", "flat", "--types", "dark", "c.fits"]
    assert _expand_greedy(["--types", "flat", "raw.fits"]) == ["--types", "flat", "raw.fits"]
    assert _expand_greedy(["-k", "dark", "--format", "json"]) == ["--skip-types", "dark", "--format", "json"]
    assert _expand_greedy(["--types"]) == ["--types"]


def test_unknown_type_is_a_lookup_error(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits")
    result = run("bestrefs", str(raw), "--types", "bias", "--format", "json")
    assert result.exit_code == 1
    entry = json.loads(result.stdout)["datasets"][0]["types"]["bias"]
    assert entry["crds"] == "NOT FOUND Unknown reference type 'bias'"
    assert entry["category"] == "unknown-reftype"


def test_print_new_references_crds_line_format(cache, tmp_path):
    raw = write_raw(tmp_path / "DS1.fits", DATE_OBS="2015-07-01")
    result = run("bestrefs", "--files", str(raw), "--print-new-references")
    assert result.exit_code == 0
    name = str(raw).lower()
    assert result.stdout.splitlines() == [
        f"{name} iris dark none tmt_iris_dark_0001.fits",
        f"{name} iris dflat none n/a",
        f"{name} iris flat none tmt_iris_flat_k_0001.fits",
        f"{name} iris mask none n/a",
        f"{name} iris nonlincoeff none tmt_iris_nonlincoeff_0001.fits",
    ]
    # no match (a date before the mask's first UseAfter) is n/a for crds bestrefs, with a hint
    assert "type='MASK'" in result.stderr and "--explain" in result.stderr


# --------------------------------------------------------------------------------------------
# --old-context

def test_old_context_prints_only_changes(cache, tmp_path):
    new_data = write_raw(tmp_path / "new.fits", DATE_OBS="2021-01-01")
    old_data = write_raw(tmp_path / "old.fits", DATE_OBS="2016-01-01")
    result = run("bestrefs", "--old-context", "tmt_0001.pmap", "--new-context", "tmt_0002.pmap",
                 "--print-new-references", str(new_data), str(old_data))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{str(new_data).lower()} iris flat tmt_iris_flat_k_0002.fits tmt_iris_flat_k_0003.fits"]


def test_print_affected(cache, tmp_path):
    new_data = write_raw(tmp_path / "new.fits", DATE_OBS="2021-01-01")
    old_data = write_raw(tmp_path / "old.fits", DATE_OBS="2016-01-01")
    result = run("bestrefs", "-o", "tmt_0001.pmap", "-n", "tmt_0002.pmap", "--print-affected",
                 "-v", str(new_data), str(old_data))
    assert result.stdout.splitlines() == [str(new_data)]
    assert "CRDS - INFO -  Affected products = 1" in result.stderr


def test_old_context_text_and_json(cache, tmp_path):
    new_data = write_raw(tmp_path / "new.fits", DATE_OBS="2021-01-01")
    result = run("bestrefs", "-o", "tmt_0001.pmap", "--context", "tmt_0002.pmap", str(new_data))
    assert "flat  tmt_iris_flat_k_0002.fits -> tmt_iris_flat_k_0003.fits" in result.stdout
    assert "dark" not in result.stdout
    result = run("bestrefs", "-o", "tmt_0001.pmap", "--context", "tmt_0002.pmap",
                 "--format", "jsonl", str(new_data))
    record = json.loads(result.stdout)
    assert record["changed"] == ["flat"]
    assert record["old_context"] == "tmt_0001.pmap"
    assert record["old_types"]["flat"]["bestref"] == "tmt_iris_flat_k_0002.fits"


# --------------------------------------------------------------------------------------------
# --update-bestrefs

def test_update_bestrefs_writes_primary_header(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits")
    before = fits.getdata(raw, "SCI").copy()
    mode = os.stat(raw).st_mode
    result = run("bestrefs", "--update-bestrefs", str(raw))
    assert result.exit_code == 0, result.output
    with fits.open(raw) as hdul:
        header = hdul[0].header
        assert header["CRDS_CTX"] == "tmt_0001.pmap"
        assert header["CRDS_VER"].startswith("crdsmini ")
        assert header["R_FLAT"] == "crds://tmt_iris_flat_k_0002.fits"
        assert header["R_DARK"] == "crds://tmt_iris_dark_0001.fits"
        assert header["R_MASK"] == "crds://tmt_iris_mask_0001.fits"
        assert header["R_DFLAT"] == "N/A"
        assert header["NONLINCOEFF"] == "crds://tmt_iris_nonlincoeff_0001.fits"
        assert "XTALK" not in header
        assert (hdul["SCI"].data == before).all()
        assert "R_FLAT" not in hdul["SCI"].header
    assert os.stat(raw).st_mode == mode
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert "(header updated)" in result.stdout


def test_update_bestrefs_skips_failed_types_and_exits_1(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits", SUBARRAY="WEIRD")
    result = run("bestrefs", "-u", str(raw))
    assert result.exit_code == 1
    header = fits.getheader(raw)
    assert "R_DARK" not in header
    assert header["R_FLAT"] == "crds://tmt_iris_flat_k_0002.fits"


def test_update_bestrefs_twice_replaces_values(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits", DATE_OBS="2021-01-01")
    run("bestrefs", "-u", str(raw))
    run("bestrefs", "-u", "--context", "tmt_0002.pmap", str(raw))
    header = fits.getheader(raw)
    assert header["R_FLAT"] == "crds://tmt_iris_flat_k_0003.fits"
    assert header["CRDS_CTX"] == "tmt_0002.pmap"
    assert list(header.keys()).count("NONLINCOEFF") == 1


def test_update_is_atomic_on_failure(cache, tmp_path, monkeypatch):
    raw = write_raw(tmp_path / "raw.fits")
    original = raw.read_bytes()

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("crdsmini.bestrefs.os.replace", explode)
    result = run("bestrefs", "-u", "--format", "json", str(raw))
    assert result.exit_code == 1
    assert raw.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "raw.fits"]
    record = json.loads(result.stdout)["datasets"][0]
    assert record["updated"] is False and "disk full" in record["update_error"]


def test_update_dataset_header_library_call(tmp_path):
    raw = write_raw(tmp_path / "raw.fits")
    update_dataset_header(raw, "tmt_0009.pmap", {"R_FLAT": "crds://x.fits",
                                                 "META.X.LONGNAME": "v"}, "crdsmini test")
    header = fits.getheader(raw)
    assert header["R_FLAT"] == "crds://x.fits"
    assert header["META.X.LONGNAME"] == "v"


def test_update_ignores_json_datasets(cache, tmp_path):
    headers = tmp_path / "batch.jsonl"
    headers.write_text(json.dumps({"ds1": {"META.INSTRUMENT.NAME": "IRIS", "DETECTOR": "IRIS1",
                                           "FILTER": "K", "PUPIL": "CLEAR", "SUBARRAY": "FULL",
                                           "DATE-OBS": "2019-01-01", "TIME-OBS": "00:00:00"}}) + "\n")
    result = run("bestrefs", "-u", "--headers", str(headers), "--format", "jsonl")
    assert result.exit_code == 0
    record = json.loads(result.stdout)
    assert record["dataset"] == "ds1" and "updated" not in record


# --------------------------------------------------------------------------------------------
# Batches and formats

def test_headers_jsonl_batch(cache, tmp_path):
    lines = [
        {"meta.instrument.name": "IRIS", "meta.instrument.detector": "IRIS1",
         "meta.instrument.filter": "K", "meta.instrument.pupil": "CLEAR",
         "meta.subarray.name": "FULL", "meta.observation.date": "2019-01-01",
         "meta.observation.time": "00:00:00"},
        {"obs-2": {"INSTRUME": "IRIS", "DETECTOR": "IRIS1", "FILTER": "H", "PUPIL": "CLEAR",
                   "SUBARRAY": "FULL", "DATE-OBS": "2019-01-01", "TIME-OBS": "00:00:00"}},
    ]
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = run("bestrefs", "--headers", str(batch), "--format", "jsonl")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["dataset"] for r in records] == ["batch.jsonl:1", "obs-2"]
    assert records[0]["types"]["flat"]["bestref"] == "tmt_iris_flat_k_0002.fits"
    assert records[1]["types"]["flat"]["bestref"] == "tmt_iris_flat_h_0001.fits"


def test_json_document_format(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits")
    document = json.loads(run("bestrefs", "--format", "json", str(raw)).stdout)
    assert document["context"] == "tmt_0001.pmap"
    assert document["errors"] == 0
    record = document["datasets"][0]
    assert record["instrument"] == "iris" and record["error"] is None
    assert record["types"]["dflat"] == {"bestref": "n/a", "status": "n/a",
                                        "crds": "NOT FOUND n/a", "category": None, "message": None}


def test_logs_go_to_stderr_with_verbose(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits")
    result = run("bestrefs", "-vv", "--print-new-references", str(raw))
    assert "CRDS - INFO -  ===> Processing" in result.stderr
    assert "Bestref FOUND: 'tmt_iris_flat_k_0002.fits'" in result.stderr
    assert "CRDS - INFO -  0 errors" in result.stderr
    assert "CRDS" not in result.stdout


# --------------------------------------------------------------------------------------------
# Errors and exit codes

def test_lookup_error_exit_1(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits", SUBARRAY="WEIRD")
    result = run("bestrefs", str(raw))
    assert result.exit_code == 1
    assert "dark         ERROR [invalid-value]" in result.stdout
    assert "New: Bestref FAILED:   parameter='META.SUBARRAY.NAME' value='WEIRD'" in result.stderr


def test_missing_instrument_and_unknown_instrument_exit_1(cache, tmp_path):
    nothing = write_raw(tmp_path / "none.fits", drop=("INSTRUME",))
    other = write_raw(tmp_path / "nircam.fits", INSTRUME="NIRCAM")
    result = run("bestrefs", "--format", "json", str(nothing), str(other))
    assert result.exit_code == 1
    records = json.loads(result.stdout)["datasets"]
    assert records[0]["error"]["category"] == "missing-key"
    assert records[1]["error"]["category"] == "unknown-instrument"
    assert records[1]["types"] == {}


def test_missing_date_is_missing_key(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits", drop=("DATE-OBS", "TIME-OBS"))
    result = run("bestrefs", "--format", "json", str(raw))
    assert result.exit_code == 1
    types = json.loads(result.stdout)["datasets"][0]["types"]
    assert types["flat"]["category"] == "missing-key"


@pytest.mark.parametrize("args, message", [
    (["bestrefs"], "no datasets"),
    (["bestrefs", "missing.fits"], "dataset file not found"),
    (["bestrefs", "--context", "tmt_0404.pmap", "RAW"], "tmt_0404.pmap"),
    (["bestrefs", "--format", "xml", "RAW"], "xml"),
    (["bestrefs", "--old-context", "tmt_0999.pmap", "RAW"], "tmt_0999.pmap"),
])
def test_usage_and_configuration_errors_exit_2(cache, tmp_path, args, message):
    raw = write_raw(tmp_path / "raw.fits")
    args = [str(raw) if a == "RAW" else a for a in args]
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_crds_context_must_be_a_pmap_exit_2(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits")
    result = run("bestrefs", str(raw), env={"CRDS_CONTEXT": "tmt_iris_0001.imap"})
    assert result.exit_code == 2
    assert "Only set CRDS_CONTEXT" in result.stderr


def test_bad_checksum_is_a_configuration_error(cache, tmp_path):
    flat = cache / "mappings" / "tmt" / "tmt_iris_flat_0001.rmap"
    flat.write_text(flat.read_text().replace("tmt_iris_flat_h_0001.fits", "tmt_iris_flat_h_0009.fits"))
    raw = write_raw(tmp_path / "raw.fits")
    result = run("bestrefs", str(raw))
    assert result.exit_code == 2
    assert "checksum-error" in result.stderr
    result = run("bestrefs", str(raw), env={"CRDS_IGNORE_MAPPING_CHECKSUM": "1"})
    assert result.exit_code == 0


def test_context_by_path_and_explicit_precedence(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits", DATE_OBS="2021-01-01")
    path = cache / "mappings" / "tmt" / "tmt_0002.pmap"
    result = run("bestrefs", "--context", str(path), "--format", "json", str(raw))
    assert json.loads(result.stdout)["context"] == "tmt_0002.pmap"
    assert json.loads(result.stdout)["datasets"][0]["types"]["flat"]["bestref"] == \
        "tmt_iris_flat_k_0003.fits"


def test_server_config_default_when_no_crds_context(tmp_path, monkeypatch):
    root = build_cache(tmp_path / "cache", server_context="tmt_0002.pmap")
    monkeypatch.delenv("CRDS_CONTEXT", raising=False)
    monkeypatch.setenv("CRDS_PATH", str(root))
    raw = write_raw(tmp_path / "raw.fits")
    result = run("bestrefs", "--format", "json", str(raw))
    assert json.loads(result.stdout)["context"] == "tmt_0002.pmap"


def test_library_run_without_cli(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits")
    pmap = load_mapping(cache / "mappings" / "tmt" / "tmt_0001.pmap")
    datasets = read_datasets([raw])
    run_result = compute_bestrefs(datasets, pmap, types=["flat"], log=Log(verbosity=0))
    (result,) = run_result.results
    assert result.types["flat"].bestref == "tmt_iris_flat_k_0002.fits"
    assert lookup_header(pmap, datasets[0].header)["META.INSTRUMENT.FILTER"] == "K"


def test_explain_with_print_new_references_prints_both(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits")
    result = run("bestrefs", "--explain", "--print-new-references", "-t", "flat", str(raw))
    assert "rules: tmt_0001.pmap -> tmt_iris_0001.imap -> tmt_iris_flat_0001.rmap" in result.stdout
    assert result.stdout.splitlines()[-1] == f"{str(raw).lower()} iris flat none tmt_iris_flat_k_0002.fits"


def test_crds_ini_file_is_reported_as_ignored(cache, tmp_path):
    raw = write_raw(tmp_path / "raw.fits")
    result = run("bestrefs", str(raw), env={"CRDS_INI_FILE": str(tmp_path / "crds.ini")})
    assert result.exit_code == 0
    assert "CRDS_INI_FILE" in result.stderr and "not read" in result.stderr


def test_version_option():
    result = run("--version")
    assert result.exit_code == 0 and "crdsmini" in result.stdout
