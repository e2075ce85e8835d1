"""The persistent parse cache and the fast parse path give exactly what a plain load gives.

Cache rules under test: keyed by the file's bytes (a changed file is never served stale),
the name is part of the key, corrupt entries are misses, a read-only or unwritable folder is
only read, and files that fail keep failing with the same error.  The fast lexer is checked
against lark's reference contextual lexer on every mapping of the corpus.
"""
from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest

from conformance_corpus import CORPUS, mapping_path, read_jsonl, require_corpus
from crdsmini import load_mapping
from crdsmini.checksum import read_mapping_text
from crdsmini.errors import CrdsminiError
from crdsmini.parse_cache import ParseCache, code_fingerprint, file_digest, read_mapping_bytes
from crdsmini.syntax import _fast_parser, _parser, parse_mapping_text

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def _all_mapping_files() -> list[Path]:
    require_corpus()
    files = sorted(CORPUS.rglob("*.?map")) + sorted((ROOT / "mappings").rglob("*.?map"))
    return [f for f in files if f.suffix in (".rmap", ".imap", ".pmap")]


def _answers(rmap, cases):
    out = []
    for case in cases:
        value = rmap.get_best_ref(case["header"])
        out.append(list(value) if isinstance(value, tuple) else value)
    return out


# -- the fast parse path -------------------------------------------------------------------

def test_fast_parse_equals_the_reference_parser_on_every_mapping():
    """Same statements from both lexers on every corpus file; the fast one refuses none that
    the reference accepts (so the fallback is only ever taken for broken text)."""
    reference, fast = _parser(False), _fast_parser()
    differences = []
    for path in _all_mapping_files():
        text = read_mapping_text(path)
        try:
            expected = reference.parse(text)
        except Exception:  # noqa: BLE001 - broken on purpose; the fast path must refuse it too
            with pytest.raises(Exception):
                fast.parse(text)
            continue
        try:
            got = fast.parse(text)
        except Exception as exc:  # noqa: BLE001
            differences.append(f"{path.name}: fast path refused valid text: {exc!r}")
            continue
        if got != expected:
            differences.append(f"{path.name}: statements differ")
    assert not differences, differences[:5]


@pytest.mark.parametrize("text", [
    "header = {'a': 1}\nselector = Match({\n  ('X',) : 'f.fits',\n}) # trailing comment",
    "header = {'a': 1}\nselector = {}   \n\n  ",
    "header = {'a': r'x\\y', 'b': b'z', 'c': 'p' 'q', 'd': '''t\nu'''}\nselector = {}\n",
    "header = {'a': (1, None), 'b': [None], 'c': -2.5e3, 'd': 0x1F}\nselector = {}\n",
    "header = {'a': 1}; selector = {}",
    "header = {'a': 1}\nselector = {}  # ; header = {'b': 2}",   # code-like text in a last comment
    "header = {'a': 1}\nselector = {}  \\\n",
    "header = \\\n  {'a': 1}\nselector = {}\n",
])
def test_fast_path_agrees_on_unusual_but_valid_text(text):
    assert _fast_parser().parse(text) == _parser(False).parse(text)


@pytest.mark.parametrize("text", [
    "header = {'a': 1\nselector = {}\n",          # unclosed bracket
    "header = {'a': f'x'}\nselector = {}\n",      # f-string
    "header = {'a': 1j}\nselector = {}\n",        # complex number
    "header = {'a': $}\nselector = {}\n",         # stray character
    "header = {'a': 'x}\nselector = {}\n",        # unterminated string
    "header = {'a': os.system}\nselector = {}\n",  # attribute access
])
def test_errors_are_those_of_the_reference_path(text):
    with pytest.raises(CrdsminiError) as fast:
        parse_mapping_text(text, "t.rmap")
    with pytest.raises(CrdsminiError) as lines:
        parse_mapping_text(text, "t.rmap", with_lines=True)  # always the reference lexer
    assert (fast.value.category, fast.value.message) == (lines.value.category, lines.value.message)


# -- the cache -----------------------------------------------------------------------------

def test_warm_load_equals_cold_load_and_skips_parsing(tmp_path):
    cache = ParseCache(tmp_path / "cache")
    cases = read_jsonl(require_corpus("cases") / "hst_acs_biasfile.rmap.jsonl")
    path = mapping_path("hst_acs_biasfile.rmap")
    cold = load_mapping(path, ignore_checksum=True)
    first = load_mapping(path, ignore_checksum=True, cache=cache)
    assert (cache.hits, cache.writes) == (0, 1)
    warm = load_mapping(path, ignore_checksum=True, cache=ParseCache(tmp_path / "cache"))
    assert warm.path == cold.path and warm.name == cold.name
    assert warm.required_parkeys == cold.required_parkeys
    assert warm.reference_names() == cold.reference_names()
    assert _answers(warm, cases) == _answers(cold, cases) == _answers(first, cases)


def test_a_whole_context_from_the_cache_answers_the_same(tmp_path):
    cases = read_jsonl(require_corpus("contexts") / "hst_golden_0001.pmap.jsonl")[:300]
    path = mapping_path("hst_golden_0001.pmap")
    load_mapping(path, ignore_checksum=True, cache=ParseCache(tmp_path))
    cache = ParseCache(tmp_path)
    warm = load_mapping(path, ignore_checksum=True, cache=cache)
    cold = load_mapping(path, ignore_checksum=True)
    assert cache.misses == 0 and cache.hits > 30

    def answer(context, header):
        try:
            return context.get_best_references(header)
        except CrdsminiError as exc:
            return exc.category
    assert [answer(warm, c["header"]) for c in cases] == [answer(cold, c["header"]) for c in cases]


def test_a_changed_file_is_never_served_stale(tmp_path):
    rmap = tmp_path / "tmt_iris_flat_0010.rmap"
    rmap.write_text((ROOT / "mappings" / "tmt" / "tmt_iris_flat_0010.rmap").read_text())
    cache = ParseCache(tmp_path / "cache")
    before = load_mapping(rmap, ignore_checksum=True, cache=cache)
    assert "tmt_iris_flat_iris1_h_2019.fits" in before.reference_names()
    rmap.write_text(rmap.read_text().replace("tmt_iris_flat_iris1_h_2019.fits", "renamed_2019.fits"))
    after = load_mapping(rmap, ignore_checksum=True, cache=cache)
    assert "renamed_2019.fits" in after.reference_names()
    assert "tmt_iris_flat_iris1_h_2019.fits" not in after.reference_names()
    assert cache.writes == 2 and cache.hits == 0


def test_the_file_name_is_part_of_the_key(tmp_path):
    text = (ROOT / "mappings" / "tmt" / "tmt_iris_mask_0010.rmap").read_text()
    (tmp_path / "a_mask.rmap").write_text(text)
    (tmp_path / "b_mask.rmap").write_text(text)
    cache = ParseCache(tmp_path / "cache")
    assert load_mapping(tmp_path / "a_mask.rmap", ignore_checksum=True, cache=cache).name == "a_mask.rmap"
    assert load_mapping(tmp_path / "b_mask.rmap", ignore_checksum=True, cache=cache).name == "b_mask.rmap"
    assert cache.writes == 2


def test_read_only_and_unwritable_caches_are_only_read(tmp_path):
    path = mapping_path("hst_cos_bpixtab.rmap")
    filled = ParseCache(tmp_path / "cache")
    load_mapping(path, ignore_checksum=True, cache=filled)
    reader = ParseCache(tmp_path / "cache", read_only=True)
    load_mapping(path, ignore_checksum=True, cache=reader)
    load_mapping(mapping_path("hst_cos_deadtab.rmap"), ignore_checksum=True, cache=reader)
    assert (reader.hits, reader.misses, reader.writes) == (1, 1, 0)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    unwritable = ParseCache(blocker / "cache")  # mkdir fails whoever runs the tests
    rmap = load_mapping(path, ignore_checksum=True, cache=unwritable)
    assert rmap.name == "hst_cos_bpixtab.rmap" and unwritable.writes == 0


def test_corrupt_entries_are_misses(tmp_path):
    path = mapping_path("hst_cos_bpixtab.rmap")
    cache = ParseCache(tmp_path)
    load_mapping(path, ignore_checksum=True, cache=cache)
    data, _ = read_mapping_bytes(path)
    entry = Path(cache._entry_path(file_digest(data), path.name))
    entry.write_bytes(b"garbage")
    again = ParseCache(tmp_path)
    assert load_mapping(path, ignore_checksum=True, cache=again).name == path.name
    assert again.misses == 1 and again.writes == 1
    entry.write_bytes(pickle.dumps(("crdsmini-parse-cache-1", "other", path.name, None)))
    third = ParseCache(tmp_path, read_only=True)
    load_mapping(path, ignore_checksum=True, cache=third)
    assert third.misses == 1


def test_entries_refuse_foreign_classes(tmp_path):
    path = mapping_path("hst_cos_bpixtab.rmap")
    cache = ParseCache(tmp_path)
    data, text = read_mapping_bytes(path)
    entry = Path(cache._entry_path(file_digest(data), path.name))
    entry.parent.mkdir(parents=True)
    entry.write_bytes(pickle.dumps(("crdsmini-parse-cache-1", file_digest(data), path.name, print)))
    assert cache.get(file_digest(data), path.name, text) is None


@pytest.mark.parametrize("name", ["hst_acs_darkfile_badexpr.rmap", "hst_acs_darkfile_missing_key.rmap",
                                  "hst-bad-xsum.rmap"])
def test_failures_are_the_same_with_the_cache(tmp_path, name):
    path = mapping_path(name)

    def outcome(**options):
        try:
            load_mapping(path, **options)
        except CrdsminiError as exc:
            return (exc.category, exc.message)
        return "loaded"
    plain = outcome()
    assert outcome(cache=ParseCache(tmp_path)) == plain
    assert outcome(cache=ParseCache(tmp_path)) == plain   # from a cached parse, if any
    assert outcome(ignore_checksum=True, cache=ParseCache(tmp_path)) == outcome(ignore_checksum=True)


def test_fingerprint_is_stable_within_a_process():
    assert code_fingerprint() == code_fingerprint() and len(code_fingerprint()) == 40
