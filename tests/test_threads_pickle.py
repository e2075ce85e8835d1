"""Loaded contexts are picklable, immutable from the outside and safe to share between threads."""
from __future__ import annotations

import copy
import logging
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from conformance_corpus import mapping_path, read_jsonl, require_corpus
from crdsmini import load_mapping
from crdsmini.errors import CrdsminiError

CONTEXTS = ["hst_golden_0001.pmap", "tmt_0001.pmap"]


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def _answer(context, header):
    try:
        return context.get_best_references(header)
    except CrdsminiError as exc:
        return (exc.category, exc.message)


def _cases(name):
    return [case["header"] for case in read_jsonl(require_corpus("contexts") / f"{name}.jsonl")]


@pytest.mark.parametrize("name", CONTEXTS)
def test_a_loaded_context_pickles_and_answers_the_same(name):
    context = load_mapping(mapping_path(name), ignore_checksum=True)
    headers = _cases(name)
    serial = [_answer(context, h) for h in headers]  # memos filled: they must not travel
    restored = pickle.loads(pickle.dumps(context, protocol=pickle.HIGHEST_PROTOCOL))
    assert restored.name == context.name and restored.mapping_names() == context.mapping_names()
    assert [_answer(restored, h) for h in headers] == serial
    if name.startswith("tmt"):  # deepcopy goes through the same reductions; the small tree suffices
        duplicate = copy.deepcopy(context)
        assert [_answer(duplicate, h) for h in headers] == serial


@pytest.mark.parametrize("name", CONTEXTS)
def test_lookups_from_eight_threads_equal_serial_results(name):
    context = load_mapping(mapping_path(name), ignore_checksum=True)
    headers = _cases(name)
    fresh = load_mapping(mapping_path(name), ignore_checksum=True)
    serial = [_answer(fresh, h) for h in headers]
    start = threading.Barrier(8)

    def work(offset):
        start.wait()  # all threads hit the cold memos at once
        order = headers[offset:] + headers[:offset]
        answers = [_answer(context, h) for h in order]
        return answers[len(headers) - offset:] + answers[:len(headers) - offset]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, [i * len(headers) // 8 for i in range(8)]))
    for result in results:
        assert result == serial


def test_lookups_leave_the_header_and_the_context_unchanged():
    context = load_mapping(mapping_path("hst_golden_0001.pmap"), ignore_checksum=True)
    headers = _cases("hst_golden_0001.pmap")[:300]
    before = pickle.dumps(context)
    for header in headers:
        snapshot = dict(header)
        _answer(context, header)
        assert header == snapshot
    restored = pickle.loads(before)
    assert [_answer(restored, h) for h in headers] == [_answer(context, h) for h in headers]
