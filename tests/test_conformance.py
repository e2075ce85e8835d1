"""Replay of the golden corpus recorded from real CRDS 14 (../shared/conformance).

Every rmap case, every whole-context case and every mapping fact must agree (README
"How a harness should compare").  One test per case file keeps collection fast; a failing
test lists the disagreeing case ids with what crdsmini answered.
"""
from __future__ import annotations

import pytest

from conformance_corpus import CORPUS, mapping_path, names, read_jsonl, require_corpus
from crdsmini import load_mapping
from crdsmini.checksum import compute_checksum, read_mapping_text
from crdsmini.errors import CrdsminiError
from crdsmini.loading import load_single

pytestmark = pytest.mark.conformance

NA = "NOT FOUND n/a"


def _outcome(rmap, header):
    """('result', value) or ('error', category, message)."""
    try:
        value = rmap.select(header)
    except CrdsminiError as exc:
        return ("error", exc.category, exc.message)
    if isinstance(value, tuple):
        value = list(value)
    return ("result", value)


def _check_rmap_case(rmap, load_error, case):
    expect = case["expect"]
    if "result" in expect:
        if load_error is not None:
            return f"load failed: {load_error}"
        got = _outcome(rmap, case["header"])
        if got != ("result", expect["result"]):
            return f"expected {expect['result']!r}, got {got!r}"
        return None
    if expect["stage"] == "load":
        if load_error is None:
            return "expected the mapping to be refused at load"
        if load_error.category != "invalid-mapping":
            return f"load category {load_error.category} != invalid-mapping"
        return None
    if load_error is not None:
        return f"load failed: {load_error}"
    got = _outcome(rmap, case["header"])
    if got[0] != "error":
        return f"expected {expect['category']} error, got result {got[1]!r}"
    if got[1] != expect["category"]:
        return f"expected category {expect['category']}, got {got[1]} ({got[2]!r})"
    return None


@pytest.mark.parametrize("case_file", names("cases/*.jsonl"))
def test_rmap_cases(case_file):
    folder = require_corpus("cases")
    cases = read_jsonl(folder / case_file)
    rmap, load_error = None, None
    try:
        rmap = load_mapping(mapping_path(cases[0]["mapping"]), ignore_checksum=True)
    except CrdsminiError as exc:
        load_error = exc
    failures = []
    for case in cases:
        problem = _check_rmap_case(rmap, load_error, case)
        if problem:
            failures.append(f"{case['id']}: {problem} header={case['header']}")
    assert not failures, f"{len(failures)}/{len(cases)} disagree:\n" + "\n".join(failures[:15])


@pytest.mark.parametrize("case_file", names("cases/*.jsonl"))
def test_rmap_cases_strict_messages(case_file):
    """Strict mode: the NOT FOUND strings of get_best_ref equal CRDS's exactly."""
    folder = require_corpus("cases")
    cases = read_jsonl(folder / case_file)
    try:
        rmap = load_mapping(mapping_path(cases[0]["mapping"]), ignore_checksum=True)
    except CrdsminiError:
        return
    failures = []
    for case in cases:
        expect = case["expect"]
        wanted = expect.get("oracle_return") if "error" in expect else expect["result"]
        if isinstance(wanted, list):
            wanted = tuple(wanted)
        got = rmap.get_best_ref(case["header"])
        if got != wanted:
            failures.append(f"{case['id']}: expected {wanted!r}, got {got!r}")
    assert not failures, f"{len(failures)}/{len(cases)} disagree:\n" + "\n".join(failures[:15])


def _check_context_case(pmap, case):
    expect = case["expect"]
    if "error" in expect and "stage" in expect:
        try:
            got = pmap.select_references(case["header"])
        except CrdsminiError as exc:
            return None if exc.category == expect["category"] else f"category {exc.category} != {expect['category']}"
        return f"expected the call to fail ({expect['category']}), got {got!r}"
    got = pmap.select_references(case["header"])
    problems = []
    if set(got) != set(expect):
        problems.append(f"filekinds differ: extra {sorted(set(got) - set(expect))}, "
                        f"missing {sorted(set(expect) - set(got))}")
    for kind, wanted in expect.items():
        if kind not in got:
            continue
        value = got[kind]
        if isinstance(value, CrdsminiError):
            category = case.get("expect_errors", {}).get(kind, {}).get("category")
            if category is None or value.category != category or not wanted.startswith("NOT FOUND"):
                problems.append(f"{kind}: expected {wanted!r}, got error {value.category} {value.message!r}")
            continue
        if isinstance(value, tuple):
            value = list(value)
        if value != wanted:
            problems.append(f"{kind}: expected {wanted!r}, got {value!r}")
    return "; ".join(problems) or None


@pytest.mark.parametrize("context_file", names("contexts/*.jsonl"))
def test_context_cases(context_file):
    folder = require_corpus("contexts")
    cases = read_jsonl(folder / context_file)
    pmap = load_mapping(mapping_path(cases[0]["context"]), ignore_checksum=True)
    failures = []
    for case in cases:
        problem = _check_context_case(pmap, case)
        if problem:
            failures.append(f"{case['id']}: {problem}")
    assert not failures, f"{len(failures)}/{len(cases)} disagree:\n" + "\n".join(failures[:15])


@pytest.mark.parametrize("context_file", names("contexts/*.jsonl"))
def test_context_cases_strict_strings(context_file):
    """Strict mode: get_best_references returns exactly CRDS's dict."""
    folder = require_corpus("contexts")
    cases = read_jsonl(folder / context_file)
    pmap = load_mapping(mapping_path(cases[0]["context"]), ignore_checksum=True)
    failures = []
    for case in cases:
        if "stage" in case["expect"]:
            continue
        got = {k: list(v) if isinstance(v, tuple) else v for k, v in pmap.get_best_references(case["header"]).items()}
        if got != case["expect"]:
            diff = {k: (case["expect"].get(k), got.get(k)) for k in set(got) | set(case["expect"])
                    if got.get(k) != case["expect"].get(k)}
            failures.append(f"{case['id']}: {diff}")
    assert not failures, f"{len(failures)}/{len(cases)} disagree:\n" + "\n".join(failures[:15])


def _load_fact(path, ignore_checksum):
    """Whether one file loads on its own, as CRDS's load_mapping of that file does."""
    try:
        if path.suffix == ".rmap":
            load_mapping(path, ignore_checksum=ignore_checksum)
        else:
            source = load_single(path, ignore_checksum=ignore_checksum)
            missing = [k for k in ("mapping", "name", "parkey", "derived_from", "observatory") if k not in source.header.resolved()]
            if missing:
                return {"category": "invalid-mapping"}
    except CrdsminiError as exc:
        return {"category": exc.category, "message": exc.message}
    return None


def test_mapping_facts():
    require_corpus()
    records = read_jsonl(CORPUS / "mappings.jsonl")
    failures = []
    for record in records:
        path = CORPUS / record["path"]
        name = record["mapping"]
        text = read_mapping_text(path)
        if compute_checksum(text) != record["sha1sum_computed"]:
            failures.append(f"{name}: sha1 {compute_checksum(text)} != {record['sha1sum_computed']}")
        for key, ignore in (("load_error", False), ("load_error_ignoring_checksum", True)):
            got = _load_fact(path, ignore)
            wanted = record[key]
            if (got is None) != (wanted is None):
                failures.append(f"{name}: {key} expected {wanted}, got {got}")
            elif got is not None and got["category"] != wanted["category"]:
                failures.append(f"{name}: {key} category {got['category']} != {wanted['category']}")
        if "closure_loads" in record:
            try:
                load_mapping(path, ignore_checksum=True)
                closure = True
            except CrdsminiError:
                closure = False
            if closure != record["closure_loads"]:
                failures.append(f"{name}: closure_loads expected {record['closure_loads']}, got {closure}")
        if record["kind"] == "rmap" and record["loads_ignoring_checksum"]:
            rmap = load_mapping(path, ignore_checksum=True)
            if list(rmap.required_parkeys) != record["required_parkeys"]:
                failures.append(f"{name}: required_parkeys {list(rmap.required_parkeys)} != {record['required_parkeys']}")
            if rmap.reference_names() != sorted(record["reference_names"]):
                failures.append(f"{name}: reference_names differ")
    assert len(records) == 137
    assert not failures, f"{len(failures)} mapping facts disagree:\n" + "\n".join(failures[:20])
