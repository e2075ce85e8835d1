"""Reference resolution (spec 4): FITS keywords -> lookup header, answer interpretation,
configuration precedence, and the bundled default context."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from iris_reduce import bundled
from iris_reduce.errors import IrisReduceError
from iris_reduce.refs import (
    BUNDLED_CONTEXT,
    CrdsResolver,
    DictResolver,
    bundled_root,
    lookup_header,
    observation_time,
    resolver_from_settings,
)
from iris_reduce.synth import science_header
from iris_reduce.testing import engine_available, read_output, synth_data  # noqa: F401

needs_engine = pytest.mark.skipif(not engine_available(),
                                  reason="crdsmini engine not yet available")

# --------------------------------------------------------------------------- lookup header


@pytest.mark.parametrize("date,time,expected", [
    ("2019-05-01", "12:00:00", ("2019-05-01", "12:00:00")),
    ("2019-05-01", "12:00:00.25", ("2019-05-01", "12:00:00.25")),
    ("2019-05-01", "12:00:00.123456789", ("2019-05-01", "12:00:00.123456")),
    ("2019-05-01T12:00:00", None, ("2019-05-01", "12:00:00")),
    ("2019-05-01T12:00:00.5", "01:02:03", ("2019-05-01", "12:00:00.5")),   # ISO wins
    (" 2019-05-01 ", " 12:00:00 ", ("2019-05-01", "12:00:00")),
])
def test_observation_time(date, time, expected) -> None:
    header = {"DATE-OBS": date} | ({} if time is None else {"TIME-OBS": time})
    assert observation_time(header) == expected


@pytest.mark.parametrize("date,time,keyword", [
    ("2019/05/01", "12:00:00", "DATE-OBS"),
    ("2019-13-01", "12:00:00", "DATE-OBS"),
    ("2019-05-01T25:00:00", None, "DATE-OBS"),
    ("2019-05-01Z", "12:00:00", "DATE-OBS"),
    ("", "12:00:00", "DATE-OBS"),
    (None, "12:00:00", "DATE-OBS"),
    ("2019-05-01", "12:00", "TIME-OBS"),
    ("2019-05-01", "12:60:00", "TIME-OBS"),
    ("2019-05-01", None, "TIME-OBS"),
])
def test_observation_time_errors(date, time, keyword) -> None:
    header = {} if date is None else {"DATE-OBS": date}
    if time is not None:
        header["TIME-OBS"] = time
    with pytest.raises(IrisReduceError) as info:
        observation_time(header, "f.fits", "MASK")
    assert info.value.keyword == keyword
    assert "MASK" in str(info.value) and "f.fits" in str(info.value)


def test_lookup_header_maps_to_model_names() -> None:
    header = science_header()
    assert lookup_header(header, ["FLAT", "MASK"], "x.fits") == {
        "INSTRUME": "IRIS",
        "META.INSTRUMENT.NAME": "IRIS",
        "META.INSTRUMENT.DETECTOR": "IRIS1",
        "META.INSTRUMENT.FILTER": "K",
        "META.INSTRUMENT.PUPIL": "CLEAR",
        "META.SUBARRAY.NAME": "FULL",
        "META.OBSERVATION.DATE": "2019-05-01",
        "META.OBSERVATION.TIME": "12:00:00",
    }


def test_lookup_header_leaves_absent_keywords_out() -> None:
    header = science_header(FILTER=None, PUPIL=None)
    lookup = lookup_header(header, ["DARK"], "x.fits")       # DARK needs neither
    assert "META.INSTRUMENT.FILTER" not in lookup and "META.INSTRUMENT.PUPIL" not in lookup


@pytest.mark.parametrize("reftypes,missing,reported", [
    (["FLAT", "MASK"], "SUBARRAY", "MASK"),           # step order: MASK is checked first
    (["FLAT", "DARK"], "FILTER", "FLAT"),
    (["NONLINCOEFF"], "SUBARRAY", None),              # NONLINCOEFF does not need SUBARRAY
    (["NONLINCOEFF", "FLAT"], "DETECTOR", "NONLINCOEFF"),
])
def test_lookup_header_checks_in_step_order(reftypes, missing, reported) -> None:
    header = science_header(**{missing: None})
    if reported is None:
        lookup_header(header, reftypes, "x.fits")
        return
    with pytest.raises(IrisReduceError) as info:
        lookup_header(header, reftypes, "x.fits")
    assert info.value.keyword == missing
    assert reported in info.value.reason


# --------------------------------------------------------------------------- interpretation

def test_resolve_interprets_answers(tmp_path: Path) -> None:
    (tmp_path / "m.fits").write_bytes(b"")
    resolver = DictResolver({"MASK": "m.fits", "DARK": "N/A"}, tmp_path, context="ctx.pmap")
    result = resolver.resolve(science_header(), ["DARK", "MASK", "FLAT"], "x.fits")
    assert list(result) == ["MASK", "DARK", "FLAT"]
    assert result["MASK"].file == "m.fits" and result["MASK"].path == tmp_path / "m.fits"
    assert result["DARK"].not_applicable and result["DARK"].file == "N/A"
    assert result["FLAT"].not_applicable                  # absent from the answers = OMIT
    assert resolver.lookups[0]["META.INSTRUMENT.FILTER"] == "K"


@pytest.mark.parametrize("answers,reported,needle", [
    ({"MASK": "NOT FOUND No match found.", "FLAT": "NOT FOUND other"}, "MASK", "No match found."),
    ({"MASK": "m.fits", "FLAT": "NOT FOUND  parameter='X'"}, "FLAT", "parameter='X'"),
    ({"MASK": ("a.fits", "b.fits")}, "MASK", "several files"),
    ({"MASK": "gone.fits"}, "MASK", "gone.fits"),
])
def test_resolve_failures(tmp_path: Path, answers, reported, needle) -> None:
    (tmp_path / "m.fits").write_bytes(b"")
    resolver = DictResolver(answers, tmp_path, context="ctx.pmap")
    with pytest.raises(IrisReduceError) as info:
        resolver.resolve(science_header(), ["FLAT", "MASK"], "x.fits")
    assert info.value.path == "x.fits"
    assert info.value.reason.startswith(f"{reported}: ")
    assert needle in info.value.reason


def test_resolve_nothing_requested() -> None:
    resolver = DictResolver({})
    assert resolver.resolve({}, [], "x.fits") == {}
    assert resolver.lookups == []


# --------------------------------------------------------------------------- configuration

def test_settings_precedence(tmp_path: Path) -> None:
    env = {"CRDS_PATH": str(tmp_path / "env"), "CRDS_CONTEXT": "tmt_0002.pmap"}
    r = resolver_from_settings("tmt_0003.pmap", tmp_path / "opt", env)
    assert (r.root, r.context) == (tmp_path / "opt", "tmt_0003.pmap")
    r = resolver_from_settings(None, None, env)
    assert (r.root, r.context) == (tmp_path / "env", "tmt_0002.pmap")
    assert r.context_path == tmp_path / "env" / "mappings" / "tmt" / "tmt_0002.pmap"
    r = resolver_from_settings(None, None, {})
    assert (r.root, r.context) == (bundled_root(), BUNDLED_CONTEXT)
    r = resolver_from_settings(str(tmp_path / "elsewhere" / "my.pmap"), None, {})
    assert r.context_path == tmp_path / "elsewhere" / "my.pmap" and r.context == "my.pmap"


def test_cache_root_without_context(tmp_path: Path) -> None:
    resolver = resolver_from_settings(None, tmp_path, {})
    with pytest.raises(IrisReduceError, match="CRDS_CONTEXT") as info:
        resolver.resolve(science_header(), ["MASK"], "x.fits")
    assert info.value.reason.startswith("MASK: ")


def test_reference_directory_follows_subdir_mode(tmp_path: Path) -> None:
    assert CrdsResolver("c.pmap", tmp_path).locate("r.fits") == \
        tmp_path / "references" / "tmt" / "r.fits"
    (tmp_path / "config" / "tmt").mkdir(parents=True)
    (tmp_path / "config" / "tmt" / "ref_cache_subdir_mode").write_text("instrument\n")
    assert CrdsResolver("c.pmap", tmp_path).locate("r.fits") == \
        tmp_path / "references" / "tmt" / "iris" / "r.fits"


@needs_engine
def test_lower_case_header_values_are_conditioned(synth_data: Path) -> None:
    resolver = CrdsResolver("tmt_9001.pmap", synth_data / "crds")
    header = science_header(DETECTOR="iris1", FILTER="k", PUPIL="clear", SUBARRAY="full")
    result = resolver.resolve(header, ["MASK", "DARK", "FLAT"], "x.fits")
    assert result["FLAT"].file == "tmt_iris_synth_flat_a.fits"
    assert result["DARK"].file == "tmt_iris_synth_dark.fits"


# --------------------------------------------------------------------------- bundled context

def test_bundled_mappings_are_committed_as_rendered() -> None:
    root = bundled_root()
    for name, text in bundled.mapping_texts().items():
        path = root / "mappings" / "tmt" / name
        assert path.read_text(encoding="utf-8") == text, f"{name} differs from bundled.py"
    assert (root / "config" / "tmt" / "ref_cache_subdir_mode").read_text().strip() == \
        "instrument"


def test_bundled_mappings_checksums() -> None:
    from crdsmini.checksum import read_mapping_text, verify_checksum
    for path in sorted((bundled_root() / "mappings" / "tmt").glob("*_0010.?map")):
        verify_checksum(read_mapping_text(path), path.name)


def test_bundled_table_covers_the_promised_choices() -> None:
    refs = bundled.REFERENCES
    assert {r.detector for r in refs} == set(bundled.DETECTORS) and len(bundled.DETECTORS) >= 4
    assert {r.filter for r in refs if r.reftype == "FLAT"} == set(bundled.FILTERS)
    assert {k[1] for r in refs if r.reftype == "DARK" for k in r.keys} == {"FULL", "CUSTOM"}
    assert len({r.useafter for r in refs}) >= 3
    assert len({r.name for r in refs}) == len(refs)


@pytest.fixture(scope="module")
def bundled_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled mappings with small (64 x 64) references, in a temporary cache."""
    root = tmp_path_factory.mktemp("bundled")
    for part in ("mappings", "config"):
        shutil.copytree(bundled_root() / part / "tmt", root / part / "tmt")
    bundled.make_references(root, size=64)
    return root


def test_bundled_references_generated(bundled_copy: Path) -> None:
    assert bundled.missing_references(bundled_copy) == []
    ref = next(r for r in bundled.REFERENCES if r.reftype == "FLAT")
    with fits.open(bundled.reference_dir(bundled_copy) / ref.name) as hdul:
        assert hdul[0].header["USEAFTER"] == ref.useafter.replace(" ", "T")
        assert hdul["SCI"].data.shape == (64, 64)
        assert np.isclose(np.median(hdul["SCI"].data), 1.0, atol=0.02)


@needs_engine
@pytest.mark.parametrize("frame,expected", [
    (("IRIS1", "H", "2021-06-01"), ("tmt_iris_mask_iris1_2019.fits",
                                    "tmt_iris_dark_iris1_2019.fits",
                                    "tmt_iris_flat_iris1_h_2019.fits")),
    (("IRIS1", "H", "2024-03-15"), ("tmt_iris_mask_iris1_2023.fits",
                                    "tmt_iris_dark_iris1_2022.fits",
                                    "tmt_iris_flat_iris1_h_2023.fits")),
    (("IRIS1", "K", "2024-03-15"), ("tmt_iris_mask_iris1_2023.fits",
                                    "tmt_iris_dark_iris1_2022.fits",
                                    "tmt_iris_flat_iris1_k_2023.fits")),
    (("IRIS3", "Ks", "2022-08-20"), ("tmt_iris_mask_iris3_2019.fits",
                                     "tmt_iris_dark_iris3_2022.fits",
                                     "tmt_iris_flat_iris3_ks_2019.fits")),
])
def test_bundled_context_selects_by_date_and_filter(bundled_copy: Path, tmp_path: Path,
                                                    frame, expected) -> None:
    """Reductions of synthetic frames through the bundled context use different references."""
    from iris_reduce import ReduceConfig, reduce_file
    detector, band, date = frame
    header = bundled.demo_header(detector=detector, band=band, date=date)
    resolver = CrdsResolver(BUNDLED_CONTEXT, bundled_copy)
    chosen = resolver.resolve(header, ["MASK", "DARK", "FLAT"], "demo")
    raw = bundled.demo_science(tmp_path / f"raw_{detector}_{band}_{date}.fits", header,
                               {k: v.path for k, v in chosen.items()}, size=64)
    config = ReduceConfig(context=BUNDLED_CONTEXT, crds_path=bundled_copy)
    out = read_output(reduce_file(raw, tmp_path / "cal.fits", config))
    records = (out.header["R_MASK"], out.header["R_DARK"], out.header["R_FLAT"])
    assert records == tuple(f"crds://{name}" for name in expected)
    assert out.header["CRDS_CTX"] == BUNDLED_CONTEXT
    # the calibration undid the synthetic flat and dark: the sky is flat again
    sky = out["SCI"][30:34, 2:6][out["DQ"][30:34, 2:6] == 0]
    assert sky.size and np.allclose(sky, sky.mean(), rtol=0.05)
