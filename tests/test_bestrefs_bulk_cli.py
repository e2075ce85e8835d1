"""``crdsmini bestrefs --headers`` in bulk mode is ``crdsmini bulk-bestrefs`` (end to end).

Real JSON-lines, CSV and Parquet header files for the bundled IRIS context go through the
real command line (``crdsmini.cli.main``); bulk mode must give the bytes ``bulk-bestrefs``
gives, whatever --jobs, a glob must read its files in sorted order, --old-context must list
only the datasets whose references change, and the per-dataset mode must stay as it was.
"""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from crdsmini import load_mapping
from crdsmini.cli import bulk_reasons, main
from crdsmini.dask_engine import available as dask_available
from crdsmini.errors import CrdsminiError
from crdsmini.headers import dataset_header
from test_bulk import BUNDLED, _iris_datasets, _new_flat_context, _write_jsonl

EXIT_OK, EXIT_LOOKUP, EXIT_CONFIG = 0, 1, 2


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)  # the per-dataset mode logs each failed lookup
    yield
    logging.disable(logging.NOTSET)


def crdsmini(*args) -> object:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _write_csv(path: Path, datasets) -> Path:
    keys = sorted({key for _, header in datasets for key in header})
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dataset"] + keys)
        for dataset, header in datasets:
            writer.writerow([dataset] + [header.get(key, "") for key in keys])
    return path


def _write_parquet(path: Path, datasets) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    keys = sorted({key for _, header in datasets for key in header})
    columns = {"dataset": [dataset for dataset, _ in datasets]}
    columns.update({key: [header.get(key) for _, header in datasets] for key in keys})
    pq.write_table(pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()}), path)
    return path


def _answer(context, header):
    """The per-header answer of the bestrefs view (normalised, conditioned), comparable."""
    try:
        return context.get_best_references(context.minimize_header(dataset_header(header)))
    except CrdsminiError as exc:
        return (exc.category, exc.message)


# -- which mode ----------------------------------------------------------------------------

_NO_OPTIONS = dict(jobs=None, output=None, input_format=None, raw=False, chunk_size=None, parse_cache=None,
                   engine="local", scheduler=None, output_format=None)


@pytest.mark.parametrize("files, headers, options, reasons", [
    ((), ("h.jsonl",), {}, []),
    ((), ("h.jsonl",), {"output_format": "jsonl"}, []),
    ((), ("h.jsonl",), {"output_format": "text"}, []),
    ((), ("h.jsonl",), {"engine": "local"}, []),
    ((), ("h.jsonl",), {"jobs": 1}, ["--jobs"]),
    ((), ("h.jsonl",), {"output": "o.jsonl"}, ["--output"]),
    ((), ("h.jsonl",), {"input_format": "jsonl"}, ["--input-format"]),
    ((), ("h.jsonl",), {"raw": True}, ["--raw"]),
    ((), ("h.jsonl",), {"chunk_size": 10}, ["--chunk-size"]),
    ((), ("h.jsonl",), {"parse_cache": "pc"}, ["--parse-cache"]),
    ((), ("h.jsonl",), {"engine": "dask"}, ["--engine dask"]),
    ((), ("h.jsonl",), {"scheduler": "tcp://x:8786"}, ["--scheduler"]),
    ((), ("h.jsonl",), {"output_format": "csv"}, ["--format csv"]),
    ((), ("h.jsonl",), {"output_format": "parquet"}, ["--format parquet"]),
    ((), ("h.csv",), {}, ["--headers h.csv"]),
    ((), ("a/h.PARQUET",), {}, ["--headers h.PARQUET"]),
    ((), ("h.pq",), {}, ["--headers h.pq"]),
    ((), ("a/*.jsonl",), {}, ["the glob --headers 'a/*.jsonl'"]),
    ((), ("h?.jsonl",), {}, ["the glob --headers 'h?.jsonl'"]),
    ((), ("h[12].jsonl",), {}, ["the glob --headers 'h[12].jsonl'"]),
    (("raw.fits",), ("h.csv",), {}, []),             # FILES: the per-dataset mode, as before
    (("raw.fits",), (), {"jobs": 2}, ["--jobs"]),    # ... where bulk options are an error
])
def test_bulk_mode_selection(files, headers, options, reasons):
    assert bulk_reasons(files, headers, **{**_NO_OPTIONS, **options}) == reasons


# -- bulk mode is bulk-bestrefs ------------------------------------------------------------

def test_jsonl_output_equals_bulk_bestrefs_byte_for_byte(tmp_path):
    headers = _write_jsonl(tmp_path / "h.jsonl", _iris_datasets(300))
    bulk = crdsmini("bestrefs", "--headers", headers, "-n", BUNDLED, "--jobs", 1)
    alias = crdsmini("bulk-bestrefs", "--headers", headers, "-n", BUNDLED)
    assert bulk.exit_code == alias.exit_code == EXIT_LOOKUP  # NIRSPEC and IRIS5 lookups fail
    assert bulk.stdout == alias.stdout
    records = [json.loads(line) for line in bulk.stdout.splitlines()]
    assert [record["dataset"] for record in records] == [d for d, _ in _iris_datasets(300)]


def test_csv_input_alone_selects_bulk_mode(tmp_path):
    datasets = _iris_datasets(120)
    headers = _write_csv(tmp_path / "h.csv", datasets)
    bulk = crdsmini("bestrefs", "--headers", headers, "-n", BUNDLED)
    alias = crdsmini("bulk-bestrefs", "--headers", headers, "-n", BUNDLED)
    assert bulk.exit_code == alias.exit_code == EXIT_LOOKUP
    assert bulk.stdout == alias.stdout
    context = load_mapping(BUNDLED)
    for line, (dataset, header) in zip(bulk.stdout.splitlines(), datasets, strict=True):
        record = json.loads(line)
        want = _answer(context, header)
        assert record["dataset"] == dataset
        if isinstance(want, tuple):
            assert (record["error"]["category"], record["error"]["message"]) == want
        else:
            assert record["bestrefs"] == want


@pytest.mark.parametrize("how", [["--format", "csv"], ["--output", "OUT.csv"], ["--format", "csv", "--output", "OUT.txt"]],
                         ids=["format", "output-suffix", "format-and-output"])
def test_csv_output_equals_bulk_bestrefs_byte_for_byte(tmp_path, how):
    headers = _write_jsonl(tmp_path / "h.jsonl", _iris_datasets(200))
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    mine.mkdir(), theirs.mkdir()
    bulk = crdsmini("bestrefs", "--headers", headers, "-n", BUNDLED,
                    *[a.replace("OUT", str(mine / "refs")) for a in how])
    alias_options = [a.replace("OUT", str(theirs / "refs")) for a in how]
    alias_options = [("--output-format" if a == "--format" else a) for a in alias_options]
    alias = crdsmini("bulk-bestrefs", "--headers", headers, "-n", BUNDLED, *alias_options)
    assert bulk.exit_code == alias.exit_code == EXIT_LOOKUP, bulk.output
    if "--output" in how:
        (got,), (want,) = list(mine.iterdir()), list(theirs.iterdir())
        assert got.read_bytes() == want.read_bytes()
        got = got.read_text(encoding="utf-8")
    else:
        assert bulk.stdout == alias.stdout
        got = bulk.stdout
    assert got.splitlines()[0] == "dataset,error,error_category,dark,flat,mask,nonlincoeff"
    assert len(got.splitlines()) == 201


def test_parquet_in_and_out_equal_bulk_bestrefs(tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    datasets = _iris_datasets(150)
    headers = _write_parquet(tmp_path / "h.parquet", datasets)
    bulk = crdsmini("bestrefs", "--headers", headers, "-n", BUNDLED, "--output", tmp_path / "mine.parquet")
    alias = crdsmini("bulk-bestrefs", "--headers", headers, "-n", BUNDLED, "--output", tmp_path / "theirs.parquet")
    assert bulk.exit_code == alias.exit_code == EXIT_LOOKUP, bulk.output
    mine, theirs = pq.read_table(tmp_path / "mine.parquet"), pq.read_table(tmp_path / "theirs.parquet")
    assert mine.equals(theirs)
    assert mine.column("dataset").to_pylist() == [d for d, _ in datasets]
    # --format parquet writes the same table whatever --output is called
    again = crdsmini("bestrefs", "--headers", headers, "-n", BUNDLED, "--format", "parquet",
                     "--output", tmp_path / "refs.bin")
    assert again.exit_code == EXIT_LOOKUP and pq.read_table(tmp_path / "refs.bin").equals(mine)


def test_jobs_2_equals_jobs_1(tmp_path):
    headers = _write_jsonl(tmp_path / "h.jsonl", _iris_datasets(400))
    outputs = []
    for jobs in (1, 2):
        result = crdsmini("bestrefs", "--headers", headers, "-n", BUNDLED, "-j", jobs, "--chunk-size", 37,
                          "--format", "csv")
        assert result.exit_code == EXIT_LOOKUP, result.output
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == 401


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_glob_reads_the_files_in_sorted_order(tmp_path, suffix):
    datasets = _iris_datasets(90)
    write = _write_jsonl if suffix == "jsonl" else _write_csv
    archive = tmp_path / "archive"
    archive.mkdir()
    # h10 sorts before h2 (plain, not natural, order); written in neither order
    write(archive / f"h2.{suffix}", datasets[:40])
    write(archive / f"h10.{suffix}", datasets[40:])
    whole = write(tmp_path / f"whole.{suffix}", datasets[40:] + datasets[:40])
    (archive / "notes.txt").write_text("not matched\n")
    pattern = str(archive / f"h*.{suffix}")
    globbed = crdsmini("bestrefs", "--headers", pattern, "-n", BUNDLED, "--format", "csv")
    single = crdsmini("bestrefs", "--headers", whole, "-n", BUNDLED, "--format", "csv")
    alias = crdsmini("bulk-bestrefs", "--headers", pattern, "-n", BUNDLED, "--output-format", "csv")
    assert globbed.exit_code == single.exit_code == alias.exit_code == EXIT_LOOKUP, globbed.output
    assert globbed.stdout == single.stdout == alias.stdout
    rows = list(csv.DictReader(globbed.stdout.splitlines()))
    assert [row["dataset"] for row in rows] == [d for d, _ in datasets[40:] + datasets[:40]]


def test_a_glob_that_matches_nothing_is_a_usage_error(tmp_path):
    result = crdsmini("bestrefs", "--headers", tmp_path / "none" / "*.parquet", "-n", BUNDLED)
    assert result.exit_code == EXIT_CONFIG
    assert "no headers file matches" in result.stderr and "*.parquet" in result.stderr


def test_old_context_lists_only_the_changed_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("CRDS_IGNORE_MAPPING_CHECKSUM", "1")
    old_path, new_path = _new_flat_context(tmp_path)
    datasets = _iris_datasets(300)
    headers = _write_jsonl(tmp_path / "h.jsonl", datasets)
    bulk = crdsmini("bestrefs", "--headers", headers, "-o", old_path, "-n", new_path, "--jobs", 1)
    affected = crdsmini("affected", "--headers", headers, "-o", old_path, "-n", new_path)
    alias = crdsmini("bulk-bestrefs", "--headers", headers, "-o", old_path, "-n", new_path)
    assert bulk.exit_code == affected.exit_code == alias.exit_code == EXIT_OK, bulk.output
    assert bulk.stdout == affected.stdout == alias.stdout
    assert "re-evaluated" in bulk.stderr
    old, new = load_mapping(old_path, ignore_checksum=True), load_mapping(new_path, ignore_checksum=True)
    expected = [dataset for dataset, header in datasets
                if not isinstance(_answer(old, header), tuple) and _answer(old, header) != _answer(new, header)]
    records = [json.loads(line) for line in bulk.stdout.splitlines()]
    assert expected and [record["dataset"] for record in records] == expected
    assert len(records) < len(datasets)
    for record in records:
        assert list(record["changes"]) == ["flat"]
        assert record["changes"]["flat"]["new"] == "tmt_iris_flat_iris2_h_2024.fits"


# -- conflicts and the per-dataset mode ----------------------------------------------------

@pytest.mark.parametrize("extra, named", [
    (["--explain"], "--explain"),
    (["--update-bestrefs"], "--update-bestrefs"),
    (["-u"], "--update-bestrefs"),
    (["--print-new-references"], "--print-new-references"),
    (["--print-affected"], "--print-affected"),
    (["--skip-types", "dark"], "--skip-types"),
    (["--format", "text"], "--format text"),
    (["--format", "json"], "--format json"),
])
def test_per_dataset_options_in_bulk_mode_are_usage_errors(tmp_path, extra, named):
    headers = _write_jsonl(tmp_path / "h.jsonl", _iris_datasets(5))
    result = crdsmini("bestrefs", "--headers", headers, "-n", BUNDLED, "--jobs", 2, *extra)
    assert result.exit_code == EXIT_CONFIG
    assert named in result.stderr and "bulk mode" in result.stderr and "--jobs" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("args, named", [
    (["RAW", "--jobs", "2"], "--jobs"),
    (["RAW", "--headers", "HEADERS", "--output", "x.csv"], "--output"),
    (["--format", "csv"], "--format csv"),
    (["--engine", "dask", "--output", "x.parquet"], "--engine dask"),
])
def test_bulk_options_without_bulk_mode_are_usage_errors(tmp_path, args, named):
    headers = _write_jsonl(tmp_path / "h.jsonl", _iris_datasets(5))
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(_iris_datasets(1)[0][1]))
    args = [str(raw) if a == "RAW" else str(headers) if a == "HEADERS" else a for a in args]
    result = crdsmini("bestrefs", "-n", BUNDLED, *args)
    assert result.exit_code == EXIT_CONFIG
    assert named in result.stderr and "bulk mode" in result.stderr


def test_headers_jsonl_alone_still_prints_the_text_blocks(tmp_path):
    datasets = _iris_datasets(6)
    headers = _write_jsonl(tmp_path / "h.jsonl", datasets)
    result = crdsmini("bestrefs", "--headers", headers, "-n", BUNDLED)
    assert result.exit_code == EXIT_LOOKUP  # ds0002 has detector IRIS5
    lines = result.stdout.splitlines()
    assert lines[0] == "ds0000  (context tmt_0010.pmap, instrument iris)"
    assert lines[1].split() == ["dark", "tmt_iris_dark_iris2_2019.fits"]
    titles = [line.split()[0] for line in lines if line and not line.startswith(" ")]
    assert titles == [dataset for dataset, _ in datasets]
    records = crdsmini("bestrefs", "--headers", headers, "-n", BUNDLED, "--format", "jsonl").stdout
    assert [json.loads(line)["dataset"] for line in records.splitlines()] == titles
    assert "types" in json.loads(records.splitlines()[0])  # the per-dataset record, not bulk's


def test_help_teaches_both_modes():
    text = crdsmini("bestrefs", "--help").stdout
    assert "crdsmini bestrefs raw.fits" in text
    assert "crdsmini bestrefs --headers archive.csv --jobs 2 --output refs.parquet" in text
    assert "bulk-bestrefs" in text


# -- Dask ----------------------------------------------------------------------------------

@pytest.mark.skipif(not dask_available(), reason="dask is not installed (pip install 'crdsmini[dask]')")
def test_dask_engine_reads_a_parquet_glob_like_the_local_engine(tmp_path):
    import pyarrow.parquet as pq
    datasets = _iris_datasets(160)
    archive = tmp_path / "archive"
    archive.mkdir()
    _write_parquet(archive / "h2.parquet", datasets[:70])
    _write_parquet(archive / "h10.parquet", datasets[70:])
    pattern = str(archive / "*.parquet")
    local = crdsmini("bestrefs", "--headers", pattern, "-n", BUNDLED, "--output", tmp_path / "local.parquet")
    remote = crdsmini("bestrefs", "--headers", pattern, "-n", BUNDLED, "--engine", "dask", "--jobs", 1,
                      "--output", tmp_path / "dask.parquet")
    assert local.exit_code == remote.exit_code == EXIT_LOOKUP, (local.output, remote.output)
    assert "160 datasets" in remote.stderr
    want = pq.read_table(tmp_path / "local.parquet").to_pylist()
    assert [row["dataset"] for row in want] == [d for d, _ in datasets[70:] + datasets[:70]]
    assert pq.read_table(tmp_path / "dask.parquet").to_pylist() == want
