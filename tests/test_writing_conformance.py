"""Replay of the writing goldens in ../shared/conformance/writing/ (see its README).

Each case runs the crdsmini command the README names, in a fresh folder holding copies of
the inputs under their own names, with the case's CRDS_* environment and no other:

* checksum: ``crdsmini checksum ./NAME`` leaves ``./NAME`` byte-identical to the oracle's
  rewrite, or refuses (non-zero exit, file untouched, the oracle's category reported);
* write: load for editing + canonical write gives the oracle's ``Mapping.write`` bytes, or
  fails with its category;
* insert: ``crdsmini insert-reference --crds-compat --old-rmap OLD --new-rmap NEW
  --references REF...`` writes NEW byte-identical to the oracle, or exits non-zero with the
  oracle's category as the first category named in the output.

The golden folder is read in place, never copied into the project.  Without it the tests
are skipped, except under CI (env CI=true) where its absence is a failure.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from crdsmini.checksum import read_mapping_text
from crdsmini.cli_authoring import checksum_command, insert_reference_command
from crdsmini.errors import CrdsminiError
from crdsmini.refactor import load_document
from crdsmini.writer import render

pytestmark = pytest.mark.conformance

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "conformance"
WRITING = CORPUS / "writing"
CATEGORIES = ("invalid-value", "invalid-date", "missing-key", "ambiguous", "identical-match", "missing-file",
              "invalid-mapping", "unsupported", "duplicate-entry", "other")


def _records(name: str) -> list[dict]:
    path = WRITING / name
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _require_corpus() -> None:
    if not WRITING.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"writing goldens missing under CI: {WRITING}")
        pytest.skip(f"writing goldens not present: {WRITING}")


def _ids(records: list[dict], key: str) -> list[str]:
    return [record[key] for record in records]


REWRITES = _records("rewrite.jsonl")
INSERTS = _records("insert.jsonl")


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str | None]:
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("CRDS")}
    env.update(extra or {})
    return env


def _first_category(output: str) -> str | None:
    found = [(output.find(category), category) for category in CATEGORIES if category in output]
    return min(found)[1] if found else None


def test_corpus_present_or_skipped():
    _require_corpus()
    assert REWRITES and INSERTS


@pytest.mark.parametrize("record", REWRITES, ids=_ids(REWRITES, "mapping"))
def test_checksum_rewrite(record, tmp_path, monkeypatch):
    _require_corpus()
    target = tmp_path / record["mapping"]
    shutil.copy(CORPUS / record["path"], target)
    before = target.read_bytes()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(checksum_command, [f"./{record['mapping']}"], env=_clean_env())
    expected = record["checksum"]
    if expected.get("refused"):
        assert result.exit_code != 0
        assert target.read_bytes() == before
        assert _first_category(result.output) == expected["category"], result.output
    else:
        assert result.exit_code == 0, result.output
        assert target.read_bytes() == (CORPUS / expected["output"]).read_bytes()


@pytest.mark.parametrize("record", REWRITES, ids=_ids(REWRITES, "mapping"))
def test_load_and_write(record):
    _require_corpus()
    expected = record["write"]
    path = CORPUS / record["path"]
    if "output" not in expected:
        with pytest.raises(CrdsminiError) as caught:
            load_document(path)
        assert caught.value.category == expected["category"]
        return
    _, text = render(load_document(path))
    assert text.encode("utf-8") == (CORPUS / expected["output"]).read_bytes()


def test_canonical_file_round_trips_unchanged():
    """A file CRDS leaves unchanged comes back byte-identical from load + write."""
    _require_corpus()
    unchanged = [r for r in REWRITES if r["checksum"].get("changed") is False
                 and not r["checksum"].get("refused") and "output" in r["write"]]
    assert unchanged
    for record in unchanged:
        path = CORPUS / record["path"]
        _, text = render(load_document(path))
        assert text == read_mapping_text(path), record["mapping"]


@pytest.mark.parametrize("record", INSERTS, ids=_ids(INSERTS, "id"))
def test_insert_reference(record, tmp_path, monkeypatch):
    _require_corpus()
    shutil.copy(CORPUS / record["old_rmap"], tmp_path / record["rmap"])
    references = []
    for reference in record["references"]:
        if reference.get("file"):
            shutil.copy(CORPUS / reference["file"], tmp_path / reference["name"])
        references.append(f"./{reference['name']}")
    arguments = ["--crds-compat", "--old-rmap", f"./{record['rmap']}", "--new-rmap", f"./{record['new_rmap']}",
                 "--references", *references]
    if record.get("valid_values"):
        # The valid values CRDS validated against (its .tpn tables), given as crdsmini's
        # valid-values configuration.
        arguments += ["--valid-values", str(CORPUS / record["valid_values"])]
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(insert_reference_command, arguments, env=_clean_env(record["env"]))
    expected = record["expect"]
    new = tmp_path / record["new_rmap"]
    if "output" in expected:
        assert result.exit_code == 0, result.output
        assert new.read_bytes() == (CORPUS / expected["output"]).read_bytes()
    else:
        assert result.exit_code != 0
        assert _first_category(result.output) == expected["category"], result.output
        if record["new_rmap"] != record["rmap"]:
            assert not new.exists(), "nothing may be written when an insertion fails"


def test_default_mode_fixes_the_name():
    """Spec §3.13 T1: without --crds-compat the new rmap is named after its file, and the
    sum is the one `crds checksum` gives that text."""
    _require_corpus()
    record = next(r for r in INSERTS if r["id"] == "tmt-flat-new-date")
    from crdsmini.refactor import insert_references, read_references

    old = load_document(CORPUS / record["old_rmap"])
    references = read_references([CORPUS / r["file"] for r in record["references"]])
    result = insert_references(old, references, old_name=record["rmap"], new_name=record["new_rmap"])
    document, text = render(result.document)
    assert document.header["name"] == "tmt_iris_flat_0004.rmap"
    assert document.header["sha1sum"] == "ceb8ec2b24e43b45f0a04b1fe13bfd5b4d37bbac"
