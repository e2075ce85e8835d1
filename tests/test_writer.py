"""Canonical text (writing spec §2), the checksum rewrite (§1.4) and the atomic writes.

The spec's examples are reproduced as tables: each rule of §2 has its (input, expected
output) pair here, so a reader sees the format in this file.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from crdsmini.atomic import CacheLock, WriteSet, atomic_write_text
from crdsmini.checksum import compute_checksum
from crdsmini.errors import AuthoringError, DuplicateEntryError, FileExistsConflictError, MappingError
from crdsmini.refactor import checksum_document
from crdsmini.syntax import parse_mapping_text
from crdsmini.writer import (
    MappingDocument,
    SelectorNode,
    canonical_text,
    document_from_source,
    find_duplicates,
    render,
    selector_sort_key,
)

# Spec §1.4: a deliberately messy file and the exact bytes `crds checksum` wrote for it.
MESSY = '''# a leading comment line
header = {"name" : "hst_cos_deadtab_0900.rmap", 'observatory' : 'HST',
    'mapping' : 'REFERENCE', 'instrument':'COS', 'filekind':'DEADTAB',
    'derived_from' : 'hand made sha1sum test',   # trailing comment
    'parkey' : (('DETECTOR',), ('DATE-OBS', 'TIME-OBS')),
    'description' : "It's a test with unicode \u00e9",
    'a_number' : 1.50,
    'a_bool' : False,
    'nested' : {'z' : 1, 'A' : {'x' : ()}},
    'sha1sum' : 'nothing',
    'reffile_required' : 'NONE', 'reffile_switch' : 'DEADCORR', 'reffile_format' : 'TABLE',
    'rmap_relevance' : '(DEADCORR != "OMIT")',
}

comment = """
This is a comment block
  with indentation
"""

selector = Match({
    'NUV' : UseAfter({ '1996-10-01 00:00:00' : "s7g1700ql_dead.fits" }),
    ('FUV',) : UseAfter({
        '2000-10-01 00:00:00' : 'b.fits',
        '1996-10-01 00:00:00' : 's7g1700gl_dead.fits'
    })
})
'''

MESSY_REWRITTEN = '''header = {
    'a_bool' : False,
    'a_number' : 1.5,
    'derived_from' : 'hand made sha1sum test',
    'description' : "It's a test with unicode \u00e9",
    'filekind' : 'DEADTAB',
    'instrument' : 'COS',
    'mapping' : 'REFERENCE',
    'name' : 'hst_cos_deadtab_0900.rmap',
    'nested' : {
        'A' : {
            'x' : (),
        },
        'z' : 1,
    },
    'observatory' : 'HST',
    'parkey' : (('DETECTOR',), ('DATE-OBS', 'TIME-OBS')),
    'reffile_format' : 'TABLE',
    'reffile_required' : 'NONE',
    'reffile_switch' : 'DEADCORR',
    'rmap_relevance' : '(DEADCORR != "OMIT")',
    'sha1sum' : 'fd360fa4515d53efe5dd3d4188764454db56a97a',
}

comment = """
This is a comment block
  with indentation
"""

selector = Match({
    ('FUV',) : UseAfter({
        '1996-10-01 00:00:00' : 's7g1700gl_dead.fits',
        '2000-10-01 00:00:00' : 'b.fits',
    }),
    'NUV' : UseAfter({
        '1996-10-01 00:00:00' : 's7g1700ql_dead.fits',
    }),
})
'''

DRIZPARS = '''header = {
    'classes' : ('Match', 'UseAfter'),
    'derived_from' : 'NONE',
    'filekind' : 'DRIZPARS',
    'instrument' : 'IRIS',
    'mapping' : 'REFERENCE',
    'name' : 'tmt_iris_drizpars_0001.rmap',
    'observatory' : 'TMT',
    'parkey' : ((), ('META.OBSERVATION.DATE', 'META.OBSERVATION.TIME')),
    'sha1sum' : '65d614154b145d3df9558510fb8cb0ea5c3e8630',
}

selector = Match({
    () : UseAfter({
        '2014-01-01 00:00:00' : 'tmt_iris_drizpars_0001.fits',
    }),
})
'''


def _rewrite(text: str, name: str = "x.rmap") -> str:
    return render(checksum_document(text, name))[1]


def test_spec_messy_file_is_rewritten_exactly():
    assert _rewrite(MESSY, "hst_cos_deadtab_0900.rmap") == MESSY_REWRITTEN


def test_spec_small_tmt_file_round_trips_and_sums():
    assert compute_checksum(DRIZPARS) == "65d614154b145d3df9558510fb8cb0ea5c3e8630"
    assert _rewrite(DRIZPARS) == DRIZPARS


def test_rewrite_is_idempotent():
    once = _rewrite(MESSY)
    assert _rewrite(once) == once


# (python value, how the writer spells it) -- spec §2.4
REPR_TABLE = [
    ("It's", '"It\'s"'),
    ("plain", "'plain'"),
    ("é", "'é'"),
    ("a\tb", "'a\\tb'"),
    ((), "()"),
    (("A",), "('A',)"),
    ((("A", "B"), ("C", "D")), "(('A', 'B'), ('C', 'D'))"),
    (1.50, "1.5"),
    (-1535.0, "-1535.0"),
    (-2147483648, "-2147483648"),
    (1e-05, "1e-05"),
    (True, "True"),
    (None, "None"),
]


@pytest.mark.parametrize(("value", "text"), REPR_TABLE)
def test_header_values_are_written_with_repr(value, text):
    document = MappingDocument(header={"k": value}, selector={})
    assert f"    'k' : {text},\n" in canonical_text(document)


# (keys as loaded, order written) -- spec §2.3: str() of each field, bare key = 1-tuple
SORT_TABLE = [
    ([("AREA", 7), ("AREA", 15)], [("AREA", 15), ("AREA", 7)]),
    ([("FUV", "S", 2), ("FUV", "S", -2147483648), ("FUV", "S", "-1|1")],
     [("FUV", "S", "-1|1"), ("FUV", "S", -2147483648), ("FUV", "S", 2)]),
    (["XYZ", "NUV", ("FUV",)], [("FUV",), "NUV", "XYZ"]),
]


@pytest.mark.parametrize(("keys", "order"), SORT_TABLE)
def test_rows_sort_by_str_of_fields(keys, order):
    assert sorted(keys, key=selector_sort_key) == order
    node = SelectorNode("Match", tuple((key, "f.fits") for key in keys))
    text = canonical_text(MappingDocument(header={}, selector=node))
    positions = [text.index(f"    {key!r} : ") for key in order]
    assert positions == sorted(positions)


def test_empty_selector_and_nesting():
    empty = canonical_text(MappingDocument(header={}, selector=SelectorNode("Match")))
    assert empty.endswith("selector = Match({\n})\n")
    nested = SelectorNode("Match", ((("A",), SelectorNode("UseAfter", (("2000-01-01 00:00:00", "a.fits"),))),))
    assert canonical_text(MappingDocument(header={}, selector=nested)).endswith(
        "selector = Match({\n    ('A',) : UseAfter({\n        '2000-01-01 00:00:00' : 'a.fits',\n    }),\n})\n")


def test_comment_block_rules():
    source = "header = {'a' : 1}\ncomment = '''single'''\nselector = {}\n"
    assert 'comment = """single"""' in canonical_text(document_from_source(parse_mapping_text(source)))
    empty = "header = {'a' : 1}\ncomment = \"\"\"\"\"\"\nselector = {}\n"
    assert "comment" not in canonical_text(document_from_source(parse_mapping_text(empty)))


def test_crlf_and_missing_final_newline_are_normalised():
    crlf = DRIZPARS.replace("\n", "\r\n")
    text = crlf.replace("\r\n", "\n")  # what read_mapping_text gives (universal newlines)
    assert _rewrite(text) == DRIZPARS
    assert _rewrite(DRIZPARS.rstrip("\n")) == DRIZPARS


def test_missing_sum_is_added_in_sorted_position():
    without = DRIZPARS.replace("    'sha1sum' : '65d614154b145d3df9558510fb8cb0ea5c3e8630',\n", "")
    assert _rewrite(without) == DRIZPARS


def test_sum_excludes_every_line_mentioning_sha1sum():
    text = MESSY_REWRITTEN
    assert compute_checksum(text) == "fd360fa4515d53efe5dd3d4188764454db56a97a"


def test_duplicates_refuse_checksum_rewrite_with_count():
    text = DRIZPARS.replace("    'name' :", "    'name' : 'other.rmap',\n    'name' :")
    with pytest.raises(DuplicateEntryError) as caught:
        checksum_document(text, "x.rmap")
    assert caught.value.category == "duplicate-entry"
    assert caught.value.count == 1
    assert "Duplicate entry at header 'name'" in caught.value.message


def test_duplicates_found_at_every_level_with_lines():
    text = ("header = {'a' : {'x' : 1, 'x' : 2}}\n"
            "selector = Match({\n"
            "    'A' : UseAfter({'2000-01-01 00:00:00' : 'a.fits', '2000-01-01 00:00:00' : 'b.fits'}),\n"
            "    'A' : UseAfter({}),\n"
            "})\n")
    duplicates = find_duplicates(parse_mapping_text(text, "x.rmap", with_lines=True))
    assert sorted(d.line for d in duplicates) == [1, 3, 4]


@pytest.mark.parametrize(("text", "fragment"), [
    (DRIZPARS.replace("    'parkey' : ((), ('META.OBSERVATION.DATE', 'META.OBSERVATION.TIME')),\n", ""), "'parkey'"),
    (DRIZPARS.replace("    'name' : 'tmt_iris_drizpars_0001.rmap',\n", ""), "Required header key 'name'"),
    (DRIZPARS.replace("'derived_from' : 'NONE'", "'derived_from' : ['a', 'b']"), "list"),
    (DRIZPARS.replace("selector =", "comment = 'plain quotes'\n\nselector ="), "triple-quoted"),
])
def test_checksum_refuses_what_crds_refuses(text, fragment):
    with pytest.raises(MappingError) as caught:
        checksum_document(text, "x.rmap")
    assert fragment in caught.value.message
    assert caught.value.category == "invalid-mapping"


# --------------------------------------------------------------------------- atomic writes


def test_atomic_write_refuses_existing_unless_overwrite(tmp_path):
    target = tmp_path / "a.rmap"
    atomic_write_text(target, "one\n")
    with pytest.raises(FileExistsConflictError):
        atomic_write_text(target, "two\n")
    assert target.read_text() == "one\n"
    atomic_write_text(target, "two\n", overwrite=True)
    assert target.read_text() == "two\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.rmap"]  # no temp file left


def test_failing_write_leaves_old_files_and_no_partial_file(tmp_path, monkeypatch):
    old = tmp_path / "old.imap"
    old.write_text("old bytes\n")
    writes = WriteSet()
    writes.add_text(tmp_path / "new.rmap", "new rmap\n")
    writes.add_text(old, "replaced\n", overwrite=True)
    writes.add_text(tmp_path / "new.pmap", "new pmap\n")
    real_replace = os.replace
    calls = []

    def crash_on_third(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError("disk full (simulated)")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_third)
    with pytest.raises(OSError):
        writes.commit()
    monkeypatch.setattr(os, "replace", real_replace)
    assert old.read_text() == "old bytes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.imap"]


def test_crash_while_writing_the_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "x.rmap"
    target.write_text("keep me\n")
    real_write = os.write

    def failing_write(handle, data):
        real_write(handle, bytes(data)[:3])
        raise OSError("I/O error (simulated)")

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(OSError):
        atomic_write_text(target, "new content\n", overwrite=True)
    monkeypatch.setattr(os, "write", real_write)
    assert target.read_text() == "keep me\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.rmap"]


def test_a_file_cannot_be_planned_twice(tmp_path):
    writes = WriteSet()
    writes.add_text(tmp_path / "a", "1")
    with pytest.raises(AuthoringError):
        writes.add_text(tmp_path / "a", "2")


def _hold_lock(folder: str, started: multiprocessing.Event, seconds: float) -> None:
    with CacheLock(folder):
        started.set()
        time.sleep(seconds)


def test_cache_lock_blocks_a_second_process(tmp_path):
    started = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(str(tmp_path), started, 1.5))
    holder.start()
    try:
        assert started.wait(10)
        with pytest.raises(AuthoringError, match="holds the cache lock"):
            CacheLock(tmp_path, timeout=0.2).acquire()
        begin = time.monotonic()
        with CacheLock(tmp_path, timeout=20):  # waits for the holder, then gets it
            assert time.monotonic() - begin > 0.3
    finally:
        holder.join(20)
    assert holder.exitcode == 0


def test_lock_is_released_when_the_holder_dies(tmp_path):
    started = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(str(tmp_path), started, 60))
    holder.start()
    assert started.wait(10)
    holder.kill()
    holder.join(10)
    with CacheLock(tmp_path, timeout=5):
        pass
    assert Path(tmp_path / ".crdsmini.lock").exists()
