"""``crdsmini check`` findings (writing spec §7.3): one test per stable code, plus formats.

Each case writes a small mapping whose text differs from a clean TMT-style rmap in one way,
and expects exactly that finding, on the right line.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from crdsmini.cache import Cache
from crdsmini.checks import CheckOptions, Finding, check_mapping, check_paths, format_findings
from crdsmini.checksum import compute_checksum
from crdsmini.cli_authoring import check_command
from crdsmini.config import load_config
from test_refactor import make_tmt_cache

CLEAN = """header = {
    'classes' : ('Match', 'UseAfter'),
    'derived_from' : 'NONE',
    'filekind' : 'FLAT',
    'instrument' : 'IRIS',
    'mapping' : 'REFERENCE',
    'name' : 'tmt_iris_flat_0009.rmap',
    'observatory' : 'TMT',
    'parkey' : (('META.INSTRUMENT.DETECTOR', 'META.INSTRUMENT.FILTER'), ('META.OBSERVATION.DATE', 'META.OBSERVATION.TIME')),
    'sha1sum' : 'SUM',
}

selector = Match({
    ('IRIS1', 'H') : UseAfter({
        '2015-06-01 00:00:00' : 'h1.fits',
        '2016-01-01 00:00:00' : 'h2.fits',
    }),
    ('IRIS1', 'K') : UseAfter({
        '2015-06-01 00:00:00' : 'k1.fits',
    }),
})
"""


def write(folder: Path, text: str, name: str = "tmt_iris_flat_0009.rmap", *, summed: bool = True) -> Path:
    if summed:
        text = text.replace("'SUM'", repr(compute_checksum(text)))
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def only(findings: list[Finding], code: str) -> Finding:
    matching = [f for f in findings if f.code == code]
    assert len(matching) == 1, findings
    return matching[0]


def test_clean_rmap_has_no_findings(tmp_path):
    assert check_mapping(write(tmp_path, CLEAN)) == []


def test_clean_context_recurses_without_errors(tmp_path):
    mappings = make_tmt_cache(tmp_path)
    findings = check_mapping(mappings / "tmt_0001.pmap")
    assert [f for f in findings if f.severity == "error"] == []


# (what to change in CLEAN, code expected, its severity, the line it is reported on)
CASES = [
    (("selector = Match({", "selector = Match({{"), "syntax", "error", 21),
    (("    ('IRIS1', 'K') : UseAfter({", "    ('IRIS1', 'H') : UseAfter({"), "duplicate-key", "error", 18),
    (("        '2016-01-01 00:00:00' : 'h2.fits',",
      "        '2016-01-01 00:00:00' : 'h2.fits',\n        '2016-01-01 00:00:00' : 'h3.fits',"),
     "duplicate-key", "error", 17),
    (("    'mapping' : 'REFERENCE',\n", ""), "missing-header-key", "error", 1),
    (("'mapping' : 'REFERENCE'", "'mapping' : 'INSTRUMENT'"), "mapping-kind", "error", 6),
    (("'name' : 'tmt_iris_flat_0009.rmap'", "'name' : 'tmt_iris_flat_0001.rmap'"), "name-mismatch", "warning", 7),
    (("'derived_from' : 'NONE'", "'derived_from' : 'tmt_iris_flat_0008.rmap'"), "derived-from-missing",
     "warning", 3),
    (("('IRIS1', 'K') :", "('IRIS1', 'K', 'X') :"), "key-arity", "error", 18),
    (("'2016-01-01 00:00:00' : 'h2.fits'", "'2016-02-30 00:00:00' : 'h2.fits'"), "useafter-date", "error", 16),
    (("'2016-01-01 00:00:00' : 'h2.fits'", "'2016-01-01' : 'h2.fits'"), "useafter-date", "error", 16),
    (("'2016-01-01 00:00:00' : 'h2.fits'", "'2014-01-01 00:00:00' : 'h2.fits'"), "useafter-order", "warning", 16),
    (("('IRIS1', 'K') :", "('IRIS1', 'H|K') :"), "ambiguous-overlap", "warning", 14),
    (("('IRIS1', 'K') :", "('iris1', 'h') :"), "identical-keys", "error", None),
    (("    'classes'", "    'comment' : 'x',\n    'classes'"), "not-canonical", "info", None),
]


@pytest.mark.parametrize(("change", "code", "severity", "line"), CASES, ids=[c[1] for c in CASES])
def test_each_finding(tmp_path, change, code, severity, line):
    old, new = change
    assert old in CLEAN
    findings = check_mapping(write(tmp_path, CLEAN.replace(old, new)))
    finding = [f for f in findings if f.code == code]
    assert finding, findings
    assert finding[0].severity == severity
    if line is not None:
        assert finding[0].line == line


def test_checksum_findings_print_the_expected_sum(tmp_path):
    path = write(tmp_path, CLEAN.replace("'SUM'", "'0123'"), summed=False)
    finding = only(check_mapping(path), "checksum-mismatch")
    assert finding.severity == "error" and finding.line == 10
    assert compute_checksum(path.read_text()) in finding.message
    assert only(check_mapping(path, CheckOptions(ignore_checksum=True)), "checksum-mismatch").severity == "warning"
    missing = write(tmp_path, CLEAN.replace("    'sha1sum' : 'SUM',\n", ""), summed=False)
    assert "expected" in only(check_mapping(missing), "checksum-missing").message


def test_strict_makes_name_mismatch_an_error(tmp_path):
    path = write(tmp_path, CLEAN.replace("'name' : 'tmt_iris_flat_0009.rmap'", "'name' : 'x.rmap'"))
    assert only(check_mapping(path, CheckOptions(strict=True)), "name-mismatch").severity == "error"


def test_rows_identical_after_substitution_are_shadowed(tmp_path):
    text = CLEAN.replace("'META.INSTRUMENT.FILTER'", "'META.SUBARRAY.NAME'")
    text = text.replace("('IRIS1', 'H')", "('IRIS1', 'GENERIC')").replace("('IRIS1', 'K')", "('IRIS1', 'N/A')")
    finding = only(check_mapping(write(tmp_path, text)), "shadowed-row")
    assert "after substitutions" in finding.message


def test_hst_rmaps_that_merge_overlaps_are_not_flagged(tmp_path):
    text = CLEAN.replace("'TMT'", "'HST'").replace("('IRIS1', 'K') :", "('IRIS1', 'H|K') :")
    assert "ambiguous-overlap" not in codes(check_mapping(write(tmp_path, text)))
    off = text.replace("    'name'", "    'merge_overlaps' : 'false',\n    'name'")
    assert "ambiguous-overlap" in codes(check_mapping(write(tmp_path, off)))


def test_valid_values(tmp_path):
    options = CheckOptions(valid_values={"META.INSTRUMENT.FILTER": ["K", "J"]})
    finding = only(check_mapping(write(tmp_path, CLEAN), options), "invalid-value")
    assert "value='H'" in finding.message and finding.line == 14


def test_context_consistency(tmp_path):
    mappings = make_tmt_cache(tmp_path)
    imap = mappings / "tmt_iris_0001.imap"
    text = imap.read_text().replace("'DARK' : 'tmt_iris_dark_0001.rmap'", "'BIAS' : 'tmt_iris_dark_0001.rmap'")
    text = text.replace("'FLAT' : 'tmt_iris_flat_0001.rmap'", "'FLAT' : 'tmt_iris_flat_0404.rmap'")
    imap.write_text(text.replace(f"'{compute_checksum(imap.read_text())}'", repr(compute_checksum(text))))
    findings = check_mapping(mappings / "tmt_0001.pmap")
    assert only(findings, "filekind-key").file.endswith("tmt_iris_0001.imap")
    assert "tmt_iris_flat_0404.rmap" in only(findings, "nested-missing").message
    pmap = mappings / "tmt_0001.pmap"
    text = pmap.read_text().replace("'IRIS' :", "'NFIRAOS' :").replace("'TMT'", "'JWST'")
    pmap.write_text(text)
    codes_found = codes(check_mapping(pmap))
    assert "instrument-key" in codes_found and "observatory-mismatch" in codes_found


def test_references_missing_from_the_cache(tmp_path):
    mappings = make_tmt_cache(tmp_path)
    cache = Cache(load_config(crds_path=str(tmp_path)), tmp_path)
    options = CheckOptions(check_references=True, cache=cache)
    assert "reference-missing" not in codes(check_mapping(mappings / "tmt_0001.pmap", options))
    (tmp_path / "references" / "tmt" / "iris" / "tmt_iris_flat_0002.fits").unlink()
    finding = only(check_mapping(mappings / "tmt_0001.pmap", options), "reference-missing")
    assert "tmt_iris_flat_0002.fits" in finding.message and finding.severity == "warning"


def test_each_file_checked_once_and_formats(tmp_path):
    mappings = make_tmt_cache(tmp_path)
    rmap = mappings / "tmt_iris_flat_0001.rmap"
    rmap.write_text(rmap.read_text().replace("'sha1sum' : '", "'sha1sum' : 'x"))
    findings = check_paths([mappings / "tmt_0001.pmap", rmap])
    assert codes(findings) == ["checksum-mismatch"]
    text = format_findings(findings)
    assert text.splitlines()[0].startswith(f"{rmap}:") and " error [checksum-mismatch] " in text
    assert text.splitlines()[-1] == "1 errors, 0 warnings, 0 infos"
    data = json.loads(format_findings(findings, "json"))
    assert data["summary"]["error"] == 1 and data["findings"][0]["code"] == "checksum-mismatch"


def test_cli_exit_status_and_json(tmp_path):
    mappings = make_tmt_cache(tmp_path)
    runner = CliRunner()
    clean = runner.invoke(check_command, [str(mappings / "tmt_0001.pmap"), "--check-references"])
    assert clean.exit_code == 0, clean.output
    broken = write(tmp_path, CLEAN.replace("'SUM'", "'bad'"), summed=False)
    result = runner.invoke(check_command, [str(broken), "--format", "json"])
    assert result.exit_code == 1
    assert json.loads(result.output)["findings"][0]["code"] == "checksum-mismatch"
    context = runner.invoke(check_command, ["--context", str(mappings / "tmt_0001.pmap")])
    assert context.exit_code == 0, context.output
