"""Bulk selection equals one-at-a-time selection (crdsmini.bulk, crdsmini.affected, the CLI).

The judge is the per-header API that the conformance replay checks: for every conformance
case, the bulk answer (in process, in a process pool, through the CLI) must be exactly what
``get_best_references`` / ``get_best_ref`` returns for that header, and ``affected`` must
list exactly the datasets whose answers differ.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conformance_corpus import CORPUS, mapping_path, names, read_jsonl, require_corpus
from crdsmini import bulk, load_mapping
from crdsmini.affected import affected_datasets, context_difference
from crdsmini.cli_bulk import affected_command, bulk_bestrefs_command, read_headers
from crdsmini.errors import CrdsminiError

BUNDLED = Path(__file__).resolve().parents[1] / "mappings" / "tmt" / "tmt_0010.pmap"


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)  # relevance warnings of the corpus, by the thousand
    yield
    logging.disable(logging.NOTSET)


def _one(context, header, condition=False):
    """The per-header answer in comparable form: a dict, or (category, message)."""
    try:
        if condition:
            header = context.minimize_header(header)
        return context.get_best_references(header)
    except CrdsminiError as exc:
        return (exc.category, exc.message)


def _comparable(result):
    if isinstance(result, CrdsminiError):
        return (result.category, result.message)
    return result


def _context_cases(name):
    cases = read_jsonl(require_corpus("contexts") / name)
    return load_mapping(mapping_path(cases[0]["context"]), ignore_checksum=True), cases


# -- every conformance case ----------------------------------------------------------------

@pytest.mark.parametrize("context_file", names("contexts/*.jsonl"))
@pytest.mark.parametrize("condition", [False, True], ids=["raw", "conditioned"])
def test_bulk_equals_per_header_on_context_cases(context_file, condition):
    context, cases = _context_cases(context_file)
    headers = [case["header"] for case in cases]
    got = bulk.best_references(context, headers, condition=condition, chunk_size=997)
    assert len(got) == len(headers)
    for case, answer in zip(cases, got):
        want = _one(context, case["header"], condition)
        assert _comparable(answer) == want, case["id"]
        if isinstance(want, dict):
            assert list(answer) == list(want), case["id"]  # filekind order too


@pytest.mark.parametrize("case_file", names("cases/*.jsonl"))
def test_bulk_best_refs_equals_get_best_ref_on_rmap_cases(case_file):
    cases = read_jsonl(require_corpus("cases") / case_file)
    try:
        rmap = load_mapping(mapping_path(cases[0]["mapping"]), ignore_checksum=True)
    except CrdsminiError:
        pytest.skip("mapping refused at load (a load-stage case)")
    headers = [case["header"] for case in cases]
    assert bulk.best_refs(rmap, headers + headers) == [rmap.get_best_ref(h) for h in headers + headers]


@pytest.mark.parametrize("context_file", names("contexts/*.jsonl"))
def test_bulk_in_a_process_pool_equals_per_header(context_file):
    # --jobs 2 on every context case: the pooled answers equal the per-header ones.
    context, cases = _context_cases(context_file)
    headers = [case["header"] for case in cases]
    pooled = [_comparable(r) for r in bulk.best_references(context, headers, jobs=2, chunk_size=300)]
    assert pooled == [_one(context, header, False) for header in headers]


def test_dates_sharing_a_bin_are_grouped_and_still_exact():
    """Headers that differ only in date/time (most within one UseAfter bin, some across)."""
    context, cases = _context_cases("hst_golden_0001.pmap.jsonl")
    headers = []
    for case in cases[:400]:
        header = case["header"]
        headers.append(header)
        for date, time in (("2005-06-07", "12:00:00"), ("2005-06-07", "12:00:01"),
                           ("1990-01-01", "00:00:00"), ("2030-01-01", "23:59:59")):
            if "DATE-OBS" in header:
                headers.append(dict(header, **{"DATE-OBS": date, "TIME-OBS": time}))
    selector = bulk.BulkSelector(context)
    got = selector.best_references(headers)
    assert [_comparable(r) for r in got] == [_one(context, h) for h in headers]
    plans = selector._plans.values()
    assert sum(len(plan.groups) for plan in plans) < len(headers)  # work was shared


def test_results_are_fresh_dicts_in_input_order():
    context = load_mapping(BUNDLED)
    header = {"META.INSTRUMENT.NAME": "IRIS", "META.INSTRUMENT.DETECTOR": "IRIS1",
              "META.SUBARRAY.NAME": "FULL", "META.INSTRUMENT.FILTER": "J",
              "META.INSTRUMENT.PUPIL": "CLEAR", "META.OBSERVATION.DATE": "2020-01-01",
              "META.OBSERVATION.TIME": "00:00:00"}
    other = dict(header, **{"META.INSTRUMENT.DETECTOR": "IRIS2"})
    first, second, third = bulk.best_references(context, [header, other, header])
    assert first == third == context.get_best_references(header)
    assert second == context.get_best_references(other)
    assert first is not third
    first["dark"] = "changed"
    assert third["dark"] != "changed"


def test_rmap_is_refused_by_bulk_selector():
    rmap = load_mapping(mapping_path("tmt_iris_flat_0001.rmap"), ignore_checksum=True)
    with pytest.raises(TypeError):
        bulk.BulkSelector(rmap)


# -- affected ------------------------------------------------------------------------------

def _new_flat_context(folder: Path) -> tuple[Path, Path]:
    """A copy of the bundled context and a successor whose FLAT rmap gains one UseAfter date."""
    source = BUNDLED.parent
    for path in source.iterdir():
        shutil.copy(path, folder / path.name)
    (folder / "tmt_0011.pmap").write_text(
        (folder / "tmt_0010.pmap").read_text().replace("tmt_iris_0010.imap", "tmt_iris_0011.imap")
        .replace("tmt_0010.pmap", "tmt_0011.pmap"))
    (folder / "tmt_iris_0011.imap").write_text(
        (folder / "tmt_iris_0010.imap").read_text().replace("tmt_iris_flat_0010.rmap", "tmt_iris_flat_0011.rmap")
        .replace("tmt_iris_0010.imap", "tmt_iris_0011.imap"))
    text = (folder / "tmt_iris_flat_0010.rmap").read_text().replace("tmt_iris_flat_0010.rmap",
                                                                     "tmt_iris_flat_0011.rmap")
    row = "    ('IRIS2', 'H', 'CLEAR') : UseAfter({\n        '2019-01-01 00:00:00' : 'tmt_iris_flat_iris2_h_2019.fits',\n"
    assert row in text
    text = text.replace(row, row + "        '2024-01-01 00:00:00' : 'tmt_iris_flat_iris2_h_2024.fits',\n")
    (folder / "tmt_iris_flat_0011.rmap").write_text(text)
    return folder / "tmt_0010.pmap", folder / "tmt_0011.pmap"


def _iris_datasets(count: int = 600) -> list[tuple[str, dict[str, str]]]:
    import random
    rnd = random.Random(7)
    datasets = []
    for number in range(count):
        datasets.append((f"ds{number:04d}", {
            "META.INSTRUMENT.NAME": rnd.choice(["IRIS", "IRIS", "IRIS", "NIRSPEC"]),
            "META.INSTRUMENT.DETECTOR": rnd.choice(["IRIS1", "IRIS2", "IRIS2", "IRIS5"]),
            "META.SUBARRAY.NAME": rnd.choice(["FULL", "CUSTOM"]),
            "META.INSTRUMENT.FILTER": rnd.choice(["J", "H", "H", "Ks"]),
            "META.INSTRUMENT.PUPIL": "CLEAR",
            "META.OBSERVATION.DATE": f"20{rnd.randrange(18, 27)}-0{rnd.randrange(1, 10)}-1{rnd.randrange(0, 10)}",
            "META.OBSERVATION.TIME": f"{rnd.randrange(10, 24)}:00:00"}))
    return datasets


@pytest.mark.parametrize("condition", [False, True], ids=["raw", "conditioned"])
def test_affected_lists_exactly_the_changed_datasets(tmp_path, condition):
    old_path, new_path = _new_flat_context(tmp_path)
    old, new = load_mapping(old_path, ignore_checksum=True), load_mapping(new_path, ignore_checksum=True)
    difference = context_difference(old, new)
    assert difference.changed == {"iris": ("flat",)}
    assert ("iris", "flat") in difference.filters
    datasets = _iris_datasets()
    stats: dict[str, int] = {}
    changes = list(affected_datasets(old, new, datasets, condition=condition, stats=stats))
    brute = []
    for dataset, header in datasets:
        before, after = _one(old, header, condition), _one(new, header, condition)
        if isinstance(before, tuple) and isinstance(after, tuple):
            continue  # both calls fail (unknown instrument): nothing to re-process
        if before != after:
            brute.append(dataset)
    assert [change.dataset for change in changes] == brute
    assert brute, "the test context change must affect some datasets"
    assert stats["candidates"] < stats["datasets"]
    for change in changes:
        assert set(change.types) == {"flat"}
        assert change.types["flat"][1] == "tmt_iris_flat_iris2_h_2024.fits"


def test_affected_on_the_conformance_hst_contexts_matches_brute_force():
    old, cases = _context_cases("hst_golden_0001.pmap.jsonl")
    new = load_mapping(mapping_path("hst_golden_0002.pmap"), ignore_checksum=True)
    datasets = [(case["id"], case["header"]) for case in cases]
    got = [change.dataset for change in affected_datasets(old, new, datasets, condition=False)]
    brute = []
    for dataset, header in datasets:
        before, after = _one(old, header), _one(new, header)
        if isinstance(before, tuple) and isinstance(after, tuple) and before[0] == after[0]:
            continue  # the same failure (messages name the context)
        if before != after:
            brute.append(dataset)
    assert got == brute


# -- the commands --------------------------------------------------------------------------

def _write_jsonl(path: Path, datasets) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for dataset, header in datasets:
            handle.write(json.dumps({dataset: header}) + "\n")
    return path


def _run(command, *args):
    result = CliRunner().invoke(command, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_bulk_bestrefs_command_jsonl_matches_library(tmp_path):
    datasets = _iris_datasets(300)
    headers = _write_jsonl(tmp_path / "h.jsonl", datasets)
    context = load_mapping(BUNDLED)
    result = _run(bulk_bestrefs_command, "--headers", headers, "-n", BUNDLED, "--raw")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["dataset"] for r in records] == [d for d, _ in datasets]
    for record, (_, header) in zip(records, datasets):
        want = _one(context, header)
        if isinstance(want, tuple):
            assert record["error"] == {"category": want[0], "message": want[1]}
        else:
            assert record["bestrefs"] == want
    assert result.exit_code == 1  # some datasets (unknown instruments/detectors) fail


@pytest.mark.parametrize("jobs", [1, 2])
def test_bulk_bestrefs_csv_is_the_bestrefs_view_and_jobs_do_not_change_it(tmp_path, jobs):
    from crdsmini.headers import dataset_header
    datasets = _iris_datasets(200)
    headers = _write_jsonl(tmp_path / "h.jsonl", datasets)
    out = tmp_path / f"out{jobs}.csv"
    _run(bulk_bestrefs_command, "--headers", headers, "-n", BUNDLED, "--output", out,
         "--jobs", jobs, "--chunk-size", 37)
    import csv
    rows = list(csv.DictReader(open(out, encoding="utf-8")))
    context = load_mapping(BUNDLED)
    assert [row["dataset"] for row in rows] == [d for d, _ in datasets]
    for row, (_, header) in zip(rows, datasets):
        want = _one(context, dataset_header(header), condition=True)
        if isinstance(want, tuple):
            assert (row["error_category"], row["error"]) == want
        else:
            assert {k: row[k] for k in want} == want


def test_bulk_bestrefs_reads_csv_and_writes_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    datasets = _iris_datasets(50)
    keys = sorted({k for _, h in datasets for k in h})
    csv_path = tmp_path / "h.csv"
    with open(csv_path, "w", encoding="utf-8") as handle:
        handle.write(",".join(["dataset"] + keys) + "\n")
        for dataset, header in datasets:
            handle.write(",".join([dataset] + [header[k] for k in keys]) + "\n")
    assert list(read_headers(csv_path)) == datasets
    out = tmp_path / "out.parquet"
    _run(bulk_bestrefs_command, "--headers", csv_path, "-n", BUNDLED, "--output", out, "--raw")
    table = pq.read_table(out).to_pylist()
    context = load_mapping(BUNDLED)
    assert [row["dataset"] for row in table] == [d for d, _ in datasets]
    for row, (_, header) in zip(table, datasets):
        want = _one(context, header)
        if not isinstance(want, tuple):
            assert {k: row[k] for k in want} == want
    again = tmp_path / "again.jsonl"
    _run(bulk_bestrefs_command, "--headers", out, "-n", BUNDLED, "--output", again, "--raw")
    assert len(again.read_text().splitlines()) == len(datasets)  # Parquet is read back too


def test_affected_command_and_bulk_bestrefs_old_context(tmp_path):
    old_path, new_path = _new_flat_context(tmp_path)
    datasets = _iris_datasets(300)
    headers = _write_jsonl(tmp_path / "h.jsonl", datasets)
    os.environ["CRDS_IGNORE_MAPPING_CHECKSUM"] = "1"
    try:
        first = _run(affected_command, "--headers", headers, "-o", old_path, "-n", new_path)
        second = _run(bulk_bestrefs_command, "--headers", headers, "-o", old_path, "-n", new_path)
    finally:
        del os.environ["CRDS_IGNORE_MAPPING_CHECKSUM"]
    assert first.exit_code == 0 and first.stdout == second.stdout
    assert "re-evaluated" in first.stderr
    records = [json.loads(line) for line in first.stdout.splitlines()]
    assert records and all(set(r["changes"]) == {"flat"} for r in records)
    old, new = load_mapping(old_path, ignore_checksum=True), load_mapping(new_path, ignore_checksum=True)
    from crdsmini.headers import dataset_header
    expected = [d for d, h in datasets
                if _one(old, dataset_header(h), True) != _one(new, dataset_header(h), True)
                and not (isinstance(_one(old, dataset_header(h), True), tuple))]
    assert [r["dataset"] for r in records] == expected
