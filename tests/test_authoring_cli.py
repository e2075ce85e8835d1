"""End-to-end tests of the authoring commands, and of every safety promise of issue 4.

* the whole TMT workflow in one command (insert-reference --update-context --install) on a
  temporary copy of a cache -- our own small one, and the repository's bundled IRIS cache
  when it is present -- after which bestrefs picks the new file after its USEAFTER and the
  old one before, and ``check`` reports no errors;
* crash mid-write, existing targets, concurrent runs (two processes), bad inputs: each
  leaves every file of the cache byte-identical and no partial file behind.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from crdsmini import load_mapping
from crdsmini.atomic import CacheLock
from crdsmini.checks import check_paths
from crdsmini.checksum import compute_checksum, read_mapping_text, stated_checksum
from crdsmini.cli_authoring import COMMANDS
from crdsmini.headers import TMT_KEYWORDS
from crdsmini.refactor import load_document
from test_refactor import flat_cards, make_tmt_cache, write_fits

REPO = Path(__file__).resolve().parents[1]


@click.group()
def cli() -> None:
    """The authoring commands on a group of their own (crdsmini.cli registers the same)."""


for _command in COMMANDS:
    cli.add_command(_command)


def run(*args: Any, cwd: Path | None = None, env: dict[str, str] | None = None) -> Any:
    environment = {name: None for name in os.environ if name.startswith("CRDS")}
    environment.update(env or {})
    previous = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, [str(a) for a in args], env=environment)
    finally:
        os.chdir(previous)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (the lock file aside) with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".crdsmini.lock"}


# --------------------------------------------------------------------------- caches


def own_cache(tmp_path: Path) -> dict[str, Any]:
    mappings = make_tmt_cache(tmp_path / "cache")
    return {"root": tmp_path / "cache", "mappings": mappings, "pmap": "tmt_0001.pmap"}


def bundled_cache(tmp_path: Path) -> dict[str, Any]:
    source = REPO / "mappings" / "tmt"
    pmaps = sorted(source.glob("*.pmap")) if source.is_dir() else []
    if not pmaps:
        pytest.skip("the bundled IRIS cache (mappings/tmt/) is not in this checkout yet")
    root = tmp_path / "bundled"
    for part in ("mappings", "references", "config"):
        if (REPO / part).is_dir():
            shutil.copytree(REPO / part, root / part)
    return {"root": root, "mappings": root / "mappings" / "tmt", "pmap": pmaps[-1].name}


def flat_rmap_of(mappings: Path, pmap: str) -> Path:
    context = load_document(mappings / pmap)
    imap = load_document(mappings / context.selector["IRIS"])
    return mappings / imap.selector["FLAT"]


@pytest.fixture(params=["own", "bundled"])
def workflow_cache(request, tmp_path):
    return own_cache(tmp_path) if request.param == "own" else bundled_cache(tmp_path)


# --------------------------------------------------------------------------- the TMT workflow


def test_tmt_workflow_in_one_command(workflow_cache, tmp_path):
    root, mappings = workflow_cache["root"], workflow_cache["mappings"]
    old_rmap = flat_rmap_of(mappings, workflow_cache["pmap"])
    rmap = load_document(old_rmap)
    match_params = rmap.header["parkey"][0]
    row_key, row = next((key, choice) for key, choice in rmap.selector.rows
                        if "|" not in repr(key) and "*" not in repr(key))
    values = row_key if isinstance(row_key, tuple) else (row_key,)
    last_date, last_file = sorted(row.rows)[-1]
    cards = [("TELESCOP", "TMT"), ("INSTRUME", "IRIS"), ("REFTYPE", "FLAT"), ("USEAFTER", "2030-01-01T00:00:00")]
    cards += [(TMT_KEYWORDS.fits_keyword(p) or p, v) for p, v in zip(match_params, values)]
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    new_ref = write_fits(incoming / "tmt_iris_flat_new_2030.fits", cards)

    result = run("insert-reference", "--old-rmap", old_rmap.name, "--references", new_ref,
                 "--update-context", "--install", cwd=mappings)
    assert result.exit_code == 0, result.output

    new_pmaps = sorted(p for p in mappings.glob("*.pmap") if p.name != workflow_cache["pmap"])
    assert len(new_pmaps) == 1
    new_pmap = new_pmaps[0]
    assert (root / "references" / "tmt" / "iris" / new_ref.name).read_bytes() == new_ref.read_bytes()
    for path in [new_pmap, *mappings.glob("*.?map")]:
        text = read_mapping_text(path)
        assert stated_checksum(text) == compute_checksum(text), path
    new_rmap = flat_rmap_of(mappings, new_pmap.name)
    assert load_document(new_rmap).header["name"] == new_rmap.name           # the name fix
    assert load_document(new_rmap).header["derived_from"] == old_rmap.name

    context = load_mapping(new_pmap)                                           # sums verified
    header = {"META.INSTRUMENT.NAME": "IRIS", "META.OBSERVATION.TIME": "00:00:00"}
    header.update(zip(match_params, values))
    after = context.get_best_references({**header, "META.OBSERVATION.DATE": "2030-02-01"}, include=["flat"])
    before = context.get_best_references({**header, "META.OBSERVATION.DATE": "2029-12-31"}, include=["flat"])
    assert after["flat"] == new_ref.name
    assert before["flat"] == last_file
    old_context = load_mapping(mappings / workflow_cache["pmap"])
    assert old_context.get_best_references({**header, "META.OBSERVATION.DATE": "2030-02-01"},
                                           include=["flat"])["flat"] == last_file

    # The same through the bestrefs command, on dataset FITS files.
    from crdsmini.cli import main

    dataset_cards = [("INSTRUME", "IRIS"), ("TIME-OBS", "00:00:00")]
    dataset_cards += [(TMT_KEYWORDS.fits_keyword(p) or p, v) for p, v in zip(match_params, values)]
    late = write_fits(tmp_path / "late.fits", dataset_cards + [("DATE-OBS", "2030-02-01")])
    early = write_fits(tmp_path / "early.fits", dataset_cards + [("DATE-OBS", "2029-12-31")])
    bestrefs = CliRunner().invoke(main, ["bestrefs", str(late), str(early), "--context", str(new_pmap),
                                         "--types", "flat", "--format", "json"],
                                  env={name: None for name in os.environ if name.startswith("CRDS")})
    assert bestrefs.exit_code == 0, bestrefs.output
    chosen = {Path(d["dataset"]).name: d["types"]["flat"]["bestref"] for d in json.loads(bestrefs.output)["datasets"]}
    assert chosen == {"late.fits": new_ref.name, "early.fits": last_file}

    findings = check_paths([new_pmap])
    assert [f.text() for f in findings if f.severity == "error"] == []
    check = run("check", new_pmap, "--check-references")
    assert check.exit_code == 0, check.output


def test_in_place_imap_variant_and_bestrefs_cli(tmp_path):
    cache = own_cache(tmp_path)
    mappings = cache["mappings"]
    ref = write_fits(tmp_path / "tmt_iris_flat_0003.fits", flat_cards())
    result = run("insert-reference", "--old-rmap", "tmt_iris_flat_0001.rmap", "--new-rmap", "tmt_iris_flat_0002.rmap",
                 "--references", ref, "--update-context", "--in-place-imap", "--install", cwd=mappings)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in mappings.glob("*.pmap")) == ["tmt_0001.pmap"]
    imap = load_document(mappings / "tmt_iris_0001.imap")
    assert imap.selector["FLAT"] == "tmt_iris_flat_0002.rmap"
    context = load_mapping(mappings / "tmt_0001.pmap")
    header = {"META.INSTRUMENT.NAME": "IRIS", "META.INSTRUMENT.DETECTOR": "IRIS1", "META.INSTRUMENT.FILTER": "K",
              "META.OBSERVATION.DATE": "2016-02-01", "META.OBSERVATION.TIME": "00:00:00"}
    assert context.get_best_references(header, include=["flat"])["flat"] == "tmt_iris_flat_0003.fits"


def test_dry_run_with_diff_writes_nothing(tmp_path):
    cache = own_cache(tmp_path)
    before = snapshot(cache["root"])
    ref = write_fits(tmp_path / "tmt_iris_flat_0003.fits", flat_cards())
    result = run("insert-reference", "--old-rmap", "tmt_iris_flat_0001.rmap", "--references", ref,
                 "--update-context", "--install", "--dry-run", "--diff", cwd=cache["mappings"])
    assert result.exit_code == 0, result.output
    assert "+        '2016-01-01 00:00:00' : 'tmt_iris_flat_0003.fits'," in result.output
    assert "+    'FLAT' : 'tmt_iris_flat_0002.rmap'," in result.output
    assert "Dry run: nothing written" in result.output
    assert snapshot(cache["root"]) == before
    assert not (cache["mappings"] / ".crdsmini.lock").exists()


# --------------------------------------------------------------------------- safety


def test_crash_mid_write_leaves_the_cache_unchanged(tmp_path, monkeypatch):
    cache = own_cache(tmp_path)
    before = snapshot(cache["root"])
    ref = write_fits(tmp_path / "tmt_iris_flat_0003.fits", flat_cards())
    real_replace = os.replace
    renames = []

    def crash_on_third_rename(src: Any, dst: Any) -> None:
        renames.append(dst)
        if len(renames) == 3:
            raise OSError(28, "No space left on device (simulated)")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_third_rename)
    result = run("insert-reference", "--old-rmap", "tmt_iris_flat_0001.rmap", "--references", ref,
                 "--update-context", "--install", cwd=cache["mappings"])
    monkeypatch.setattr(os, "replace", real_replace)
    assert result.exit_code != 0
    assert len(renames) >= 3
    assert snapshot(cache["root"]) == before                     # old files exactly as they were
    assert not [p for p in cache["root"].rglob(".*.tmp")]        # and no partial new file


def test_crash_while_replacing_an_imap_in_place_restores_it(tmp_path, monkeypatch):
    cache = own_cache(tmp_path)
    before = snapshot(cache["root"])
    ref = write_fits(tmp_path / "tmt_iris_flat_0003.fits", flat_cards())
    real_replace = os.replace

    def crash_after_imap(src: Any, dst: Any) -> None:
        real_replace(src, dst)
        if str(dst).endswith(".fits"):
            raise OSError("power cut (simulated)")

    monkeypatch.setattr(os, "replace", crash_after_imap)
    result = run("insert-reference", "--old-rmap", "tmt_iris_flat_0001.rmap", "--references", ref,
                 "--update-context", "--in-place-imap", "--install", cwd=cache["mappings"])
    monkeypatch.setattr(os, "replace", real_replace)
    assert result.exit_code != 0
    assert snapshot(cache["root"]) == before


def test_existing_targets_are_never_overwritten_without_force(tmp_path):
    cache = own_cache(tmp_path)
    mappings = cache["mappings"]
    ref = write_fits(tmp_path / "tmt_iris_flat_0003.fits", flat_cards())
    existing = mappings / "tmt_iris_flat_0002.rmap"
    existing.write_text("precious\n")
    before = snapshot(cache["root"])
    result = run("insert-reference", "--old-rmap", "tmt_iris_flat_0001.rmap", "--new-rmap", existing.name,
                 "--references", ref, cwd=mappings)
    assert result.exit_code == 1 and "[file-exists]" in result.output
    assert snapshot(cache["root"]) == before
    # A different reference file of the same name already in the cache: refused, nothing written.
    installed = cache["root"] / "references" / "tmt" / "iris" / "tmt_iris_flat_0003.fits"
    write_fits(installed, flat_cards(filter_="H"))
    before = snapshot(cache["root"])
    result = run("insert-reference", "--old-rmap", "tmt_iris_flat_0001.rmap", "--new-rmap", "tmt_iris_flat_0005.rmap",
                 "--references", ref, "--install", cwd=mappings)
    assert result.exit_code == 1 and "[file-exists]" in result.output and str(installed) in result.output
    assert snapshot(cache["root"]) == before
    # With --force both are replaced.
    result = run("insert-reference", "--old-rmap", "tmt_iris_flat_0001.rmap", "--new-rmap", existing.name,
                 "--references", ref, "--install", "--force", cwd=mappings)
    assert result.exit_code == 0, result.output
    assert installed.read_bytes() == ref.read_bytes()
    assert "tmt_iris_flat_0003.fits" in existing.read_text()


def test_in_place_edit_of_the_old_rmap_is_allowed(tmp_path):
    cache = own_cache(tmp_path)
    ref = write_fits(tmp_path / "tmt_iris_flat_0003.fits", flat_cards())
    result = run("insert-reference", "--old-rmap", "tmt_iris_flat_0001.rmap", "--new-rmap", "tmt_iris_flat_0001.rmap",
                 "--references", ref, cwd=cache["mappings"])
    assert result.exit_code == 0, result.output
    document = load_document(cache["mappings"] / "tmt_iris_flat_0001.rmap")
    assert document.header["derived_from"] == "tmt_iris_flat_0001.rmap"


BAD_INPUTS = [
    # (cards change, extra options, category, the names the message must contain)
    ({"drop": "FILTER"}, [], "missing-key", ["bad.fits", "META.INSTRUMENT.FILTER", "FILTER"]),
    ({"set": ("FILTER", "Z")}, ["--valid-values", "VALID"], "invalid-value", ["bad.fits", "META.INSTRUMENT.FILTER", "'Z'"]),
    ({"set": ("USEAFTER", "sometime soon")}, [], "invalid-date", ["bad.fits", "USEAFTER", "sometime soon"]),
    ({"drop": "USEAFTER"}, [], "missing-key", ["bad.fits", "USEAFTER"]),
    ({"set": ("INSTRUME", "NIRCAM")}, [], "invalid-value", ["bad.fits", "INSTRUME", "NIRCAM"]),
    ({"garbage": True}, [], "invalid-header", ["bad.fits"]),
    ({"absent": True}, [], "missing-file", ["bad.fits"]),
]


@pytest.mark.parametrize(("change", "options", "category", "names"), BAD_INPUTS,
                         ids=[f"{c[2]}-{i}" for i, c in enumerate(BAD_INPUTS)])
def test_bad_inputs_name_file_and_keyword_and_write_nothing(tmp_path, change, options, category, names):
    cache = own_cache(tmp_path)
    valid = tmp_path / "valid.json"
    valid.write_text('{"META.INSTRUMENT.FILTER": ["K", "H", "J"]}')
    bad = tmp_path / "bad.fits"
    cards = [(k, v) for k, v in flat_cards() if k != change.get("drop")]
    if "set" in change:
        key, value = change["set"]
        cards = [(k, value if k == key else v) for k, v in cards]
    if change.get("garbage"):
        bad.write_bytes(b"SIMPLE  =  not really FITS")
    elif not change.get("absent"):
        write_fits(bad, cards)
    before = snapshot(cache["root"])
    options = [str(valid) if o == "VALID" else o for o in options]
    result = run("insert-reference", "--old-rmap", "tmt_iris_flat_0001.rmap", "--references", bad,
                 "--update-context", "--install", *options, cwd=cache["mappings"])
    assert result.exit_code == 1
    first_line = result.output.splitlines()[0]
    assert first_line.startswith(f"crdsmini: error [{category}]"), result.output
    for name in names:
        assert name in result.output
    assert snapshot(cache["root"]) == before


def _insert_process(mappings: Path, ref: Path, *extra: str) -> subprocess.Popen:
    code = "import sys; from crdsmini.cli_authoring import insert_reference_command as c; c()"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRDS")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, "-c", code, "--old-rmap", "tmt_iris_flat_0001.rmap",
                             "--references", str(ref), "--update-context", "--install", *extra],
                            cwd=mappings, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_concurrent_runs_are_serialised(tmp_path):
    cache = own_cache(tmp_path)
    mappings = cache["mappings"]
    first = write_fits(tmp_path / "tmt_iris_flat_0003.fits", flat_cards())
    second = write_fits(tmp_path / "tmt_iris_flat_0004.fits", flat_cards(filter_="Y"))
    processes = [_insert_process(mappings, first), _insert_process(mappings, second)]
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    # Each run chose its names under the lock, after the other had finished: no name was
    # taken twice, and each new context is complete and consistent on its own.
    assert sorted(p.name for p in mappings.glob("tmt_iris_flat_*.rmap")) == [
        "tmt_iris_flat_0001.rmap", "tmt_iris_flat_0002.rmap", "tmt_iris_flat_0003.rmap"]
    assert sorted(p.name for p in mappings.glob("*.pmap")) == ["tmt_0001.pmap", "tmt_0002.pmap", "tmt_0003.pmap"]
    chosen = set()
    for pmap in ("tmt_0002.pmap", "tmt_0003.pmap"):
        assert [f.text() for f in check_paths([mappings / pmap]) if f.severity == "error"] == []
        chosen.update(load_mapping(mappings / pmap).reference_names())
    assert {first.name, second.name} <= chosen
    assert not [p for p in cache["root"].rglob(".*.tmp")]


def test_second_run_waits_for_the_lock_or_fails_clearly(tmp_path):
    cache = own_cache(tmp_path)
    mappings = cache["mappings"]
    ref = write_fits(tmp_path / "tmt_iris_flat_0003.fits", flat_cards())
    before = snapshot(cache["root"])
    with CacheLock(mappings):
        impatient = _insert_process(mappings, ref, "--lock-timeout", "0.3")
        output = impatient.communicate(timeout=60)[0]
        assert impatient.returncode == 1
        assert "holds the cache lock" in output
        assert snapshot(cache["root"]) == before
        patient = _insert_process(mappings, ref, "--lock-timeout", "60")
        time.sleep(1.0)
        assert patient.poll() is None                      # still waiting for the lock
    output = patient.communicate(timeout=120)[0]
    assert patient.returncode == 0, output
    assert (mappings / "tmt_0002.pmap").is_file()


# --------------------------------------------------------------------------- the other commands


def test_checksum_verify_dry_run_and_rewrite(tmp_path):
    mappings = make_tmt_cache(tmp_path)
    imap = mappings / "tmt_iris_0001.imap"
    assert run("checksum", "--verify", imap).exit_code == 0
    stale = imap.read_text().replace("'tmt_iris_flat_0001.rmap'", "'tmt_iris_flat_0002.rmap'")
    imap.write_text(stale)  # the TMT hand edit that left a stale sum
    verify = run("checksum", "--verify", imap)
    assert verify.exit_code == 1 and compute_checksum(stale) in verify.output
    dry = run("checksum", "--dry-run", imap)
    assert dry.exit_code == 0 and "would rewrite" in dry.output and imap.read_text() == stale
    assert run("checksum", imap).exit_code == 0
    assert stated_checksum(imap.read_text()) == compute_checksum(imap.read_text())
    assert "is canonical" in run("checksum", imap).output
    duplicated = imap.read_text().replace("    'DARK'", "    'FLAT' : 'x.rmap',\n    'DARK'")
    imap.write_text(duplicated)
    refused = run("checksum", imap)
    assert refused.exit_code == 1 and "[duplicate-entry]" in refused.output and imap.read_text() == duplicated


def test_delete_reference_command(tmp_path):
    mappings = make_tmt_cache(tmp_path)
    result = run("delete-reference", "--old-rmap", "tmt_iris_flat_0001.rmap", "--references",
                 "tmt_iris_flat_0002.fits", "--update-context", cwd=mappings)
    assert result.exit_code == 0, result.output
    new = load_document(mappings / "tmt_iris_flat_0002.rmap")
    assert "tmt_iris_flat_0002.fits" not in read_mapping_text(mappings / "tmt_iris_flat_0002.rmap")
    assert new.header["name"] == "tmt_iris_flat_0002.rmap"
    assert load_document(mappings / "tmt_0002.pmap").selector == {"IRIS": "tmt_iris_0002.imap"}
    missing = run("delete-reference", "--old-rmap", "tmt_iris_flat_0001.rmap", "--references", "nothere.fits",
                  cwd=mappings)
    assert missing.exit_code == 1 and "[missing-file]" in missing.output


def test_new_context_command(tmp_path):
    mappings = make_tmt_cache(tmp_path)
    flat = mappings / "tmt_iris_flat_0001.rmap"
    (mappings / "tmt_iris_flat_0002.rmap").write_text(read_mapping_text(flat))
    result = run("new-context", mappings / "tmt_0001.pmap", mappings / "tmt_iris_flat_0002.rmap")
    assert result.exit_code == 0, result.output
    assert "'tmt_0001.pmap' -> 'tmt_0002.pmap'" in result.output
    assert load_document(mappings / "tmt_iris_0002.imap").selector["FLAT"] == "tmt_iris_flat_0002.rmap"
    out = tmp_path / "elsewhere"
    out.mkdir()
    result = run("new-context", mappings / "tmt_0001.pmap", mappings / "tmt_iris_flat_0002.rmap", "-o", out,
                 "--dry-run")
    assert result.exit_code == 0 and list(out.iterdir()) == []


def test_set_and_del_header_commands(tmp_path):
    mappings = make_tmt_cache(tmp_path)
    rmap = mappings / "tmt_iris_flat_0001.rmap"
    assert run("set-header", rmap, "description", "new flat for K band").exit_code == 0
    text = read_mapping_text(rmap)
    assert "    'description' : 'new flat for K band',\n" in text
    assert stated_checksum(text) == compute_checksum(text)
    assert run("set-header", rmap, "merge_overlaps", "False", "--literal").exit_code == 0
    assert load_document(rmap).header["merge_overlaps"] is False
    copy = mappings / "tmt_iris_flat_0007.rmap"
    assert run("del-header", rmap, "description", "-o", copy).exit_code == 0
    assert "description" not in load_document(copy).header
    assert load_document(copy).header["name"] == copy.name
    refused = run("del-header", rmap, "description", "-o", copy)
    assert refused.exit_code == 1 and "[file-exists]" in refused.output
    required = run("del-header", rmap, "parkey")
    assert required.exit_code == 1 and "required" in required.output


def test_commands_are_registered_on_the_main_cli(tmp_path):
    from crdsmini.cli import main

    mappings = make_tmt_cache(tmp_path)
    runner = CliRunner()
    for name in ("checksum", "insert-reference", "delete-reference", "new-context", "set-header", "del-header",
                 "check", "diff"):
        assert runner.invoke(main, [name, "--help"]).exit_code == 0, name
    assert runner.invoke(main, ["checksum", "--verify", str(mappings / "tmt_0001.pmap")]).exit_code == 0
