"""``crdsmini diff``: logical differences between mappings and whole contexts."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from crdsmini.cli_authoring import diff_command
from crdsmini.errors import AuthoringError
from crdsmini.mapdiff import diff_mappings, format_differences
from crdsmini.newcontext import plan_new_context
from crdsmini.refactor import delete_references, insert_references, load_document
from crdsmini.writer import render
from test_refactor import flat_cards, make_tmt_cache, ref


def _write(path: Path, document) -> Path:
    path.write_text(render(document)[1], encoding="utf-8")
    return path


@pytest.fixture
def mappings(tmp_path: Path) -> Path:
    return make_tmt_cache(tmp_path)


def test_identical_and_reformatted_files_have_no_differences(mappings, tmp_path):
    rmap = mappings / "tmt_iris_flat_0001.rmap"
    assert diff_mappings(rmap, rmap) == []
    messy = tmp_path / "messy.rmap"
    text = rmap.read_text().replace("('IRIS1', 'K')", "('iris1', 'k')").replace("\n    ", "\n  ")
    messy.write_text("# a comment\n" + text)
    assert [d.kind for d in diff_mappings(rmap, messy)] == []  # conditioning-equal rows, spacing


def test_added_deleted_replaced_and_header_changes(mappings):
    old_path = mappings / "tmt_iris_flat_0001.rmap"
    old = load_document(old_path)
    inserted = insert_references(old, [ref("new.fits", flat_cards()),
                                       ref("rep.fits", flat_cards(useafter_value="2015-06-01"))],
                                 old_name=old.name, new_name="tmt_iris_flat_0002.rmap")
    edited = delete_references(inserted.document, ["tmt_iris_flat_0002.fits"], old_name=old.name,
                               new_name="tmt_iris_flat_0002.rmap")
    new_path = _write(mappings / "tmt_iris_flat_0002.rmap", edited.document)
    found = {(d.kind, d.where, d.old, d.new) for d in diff_mappings(old_path, new_path)}
    assert ("added", ("('IRIS1', 'K')", "'2016-01-01 00:00:00'"), None, "new.fits") in found
    assert ("replaced", ("('IRIS1', 'K')", "'2015-06-01 00:00:00'"), "tmt_iris_flat_0001.fits", "rep.fits") in found
    assert ("deleted", ("('IRIS1', 'H|J')", "'2015-06-01 00:00:00'"), "tmt_iris_flat_0002.fits", None) in found
    assert ("header-changed", ("'name'",), "tmt_iris_flat_0001.rmap", "tmt_iris_flat_0002.rmap") in found
    assert ("header-changed", ("'derived_from'",), "NONE", "tmt_iris_flat_0001.rmap") in found
    assert not any(d[1] == ("'sha1sum'",) for d in found)


def test_contexts_recurse_into_changed_mappings(mappings):
    old = load_document(mappings / "tmt_iris_flat_0001.rmap")
    result = insert_references(old, [ref("new.fits", flat_cards())], old_name=old.name,
                               new_name="tmt_iris_flat_0002.rmap")
    _write(mappings / "tmt_iris_flat_0002.rmap", result.document)
    plan = plan_new_context(mappings / "tmt_0001.pmap", [("tmt_iris_flat_0002.rmap", result.document.header)])
    for item in plan.files:
        item.path.write_text(item.text)
    differences = diff_mappings(mappings / "tmt_0001.pmap", mappings / "tmt_0002.pmap")
    summary = [(d.old_mapping, d.kind, d.old, d.new) for d in differences if not d.kind.startswith("header")]
    assert summary == [
        ("tmt_0001.pmap", "replaced", "tmt_iris_0001.imap", "tmt_iris_0002.imap"),
        ("tmt_iris_0001.imap", "replaced", "tmt_iris_flat_0001.rmap", "tmt_iris_flat_0002.rmap"),
        ("tmt_iris_flat_0001.rmap", "added", None, "new.fits"),
    ]
    shallow = diff_mappings(mappings / "tmt_0001.pmap", mappings / "tmt_0002.pmap", recurse=False)
    assert {d.old_mapping for d in shallow} == {"tmt_0001.pmap"}


def test_kinds_must_match(mappings):
    with pytest.raises(AuthoringError):
        diff_mappings(mappings / "tmt_0001.pmap", mappings / "tmt_iris_0001.imap")


def test_text_json_and_exit_status(mappings):
    old = load_document(mappings / "tmt_iris_flat_0001.rmap")
    result = insert_references(old, [ref("new.fits", flat_cards())], old_name=old.name, new_name="n.rmap")
    new_path = _write(mappings / "tmt_iris_flat_0002.rmap", result.document)
    differences = diff_mappings(mappings / "tmt_iris_flat_0001.rmap", new_path)
    text = format_differences(differences)
    assert ("tmt_iris_flat_0001.rmap -> tmt_iris_flat_0002.rmap: added ('IRIS1', 'K') "
            "'2016-01-01 00:00:00' : 'new.fits'") in text.splitlines()
    data = json.loads(format_differences(differences, "json"))
    assert {"kind": "added", "new": "new.fits"}.items() <= [d for d in data if d["kind"] == "added"][0].items()
    runner = CliRunner()
    assert runner.invoke(diff_command, [str(new_path), str(new_path)]).exit_code == 0
    changed = runner.invoke(diff_command, [str(mappings / "tmt_iris_flat_0001.rmap"), str(new_path), "--format", "json"])
    assert changed.exit_code == 1 and json.loads(changed.output)
    broken = runner.invoke(diff_command, [str(mappings / "absent.rmap"), str(new_path)])
    assert broken.exit_code == 2 and "[missing-file]" in broken.output
