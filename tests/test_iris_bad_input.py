"""Spec iris-reduce section 9: one test per bad-input row.  Each checks the exit code, that
the message names the file and the keyword/EXTNAME, and that nothing was written."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from iris_reduce.synth import science_header, write_frame, write_reference
from iris_reduce.testing import (  # noqa: F401  (fixtures)
    Case,
    case,
    copy_data,
    edit_header,
    engine,
    engine_available,
    synth_data,
)

needs_engine = pytest.mark.skipif(not engine_available(),
                                  reason="crdsmini engine not yet available")


def failed(case: Case, result, *needles) -> str:
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("iris-reduce: error: ")
    for needle in needles:
        assert str(needle) in result.stderr, (needle, result.stderr)
    assert case.written() == [], case.written()
    return result.stderr


def frame(tmp_path: Path, name: str = "sci.fits", *, sci=None, err="default", dq="default",
          bunit: str | None = "DN", **changes) -> Path:
    n = 64
    sci = np.full((n, n), 1100.0, np.float32) if sci is None else sci
    err = np.full(sci.shape, 3.0, np.float32) if isinstance(err, str) else err
    dq = np.zeros(sci.shape, np.uint32) if isinstance(dq, str) else dq
    return write_frame(tmp_path / name, science_header(**changes), sci, err, dq, bunit)


def raw_fits(path: Path, *hdus) -> Path:
    fits.HDUList([fits.PrimaryHDU(header=science_header()), *hdus]).writeto(path)
    return path


# --------------------------------------------------------------------------- unreadable

def test_not_fits(case: Case, tmp_path: Path) -> None:
    bad = tmp_path / "notes.fits"
    bad.write_text("this is not a FITS file\n")
    failed(case, case.run("reduce", bad), bad, "FITS")


def test_missing_file(case: Case, tmp_path: Path) -> None:
    failed(case, case.run("reduce", tmp_path / "nope.fits"), tmp_path / "nope.fits", "not found")


# --------------------------------------------------------------------------- SCI

def test_sci_not_2d(case: Case, tmp_path: Path) -> None:
    path = raw_fits(tmp_path / "cube.fits", fits.ImageHDU(np.zeros((2, 8, 8), np.float32),
                                                          name="SCI"))
    failed(case, case.run("reduce", path), path, "SCI", "ndim=3")


def test_data_extension_not_2d(case: Case, tmp_path: Path) -> None:
    path = raw_fits(tmp_path / "line.fits", fits.ImageHDU(np.zeros(8, np.float32), name="DATA"))
    failed(case, case.run("reduce", path), path, "SCI", "ndim=1")


# --------------------------------------------------------------------------- ERR / DQ

@pytest.mark.parametrize("extname", ["ERR", "DQ"])
def test_err_dq_shape(case: Case, tmp_path: Path, extname: str) -> None:
    small = np.zeros((32, 32), np.float32 if extname == "ERR" else np.uint32)
    path = frame(tmp_path, **({"err": small} if extname == "ERR" else {"dq": small}))
    failed(case, case.run("reduce", path), path, extname, "(32, 32)", "(64, 64)")


def test_dq_not_integer(case: Case, tmp_path: Path) -> None:
    path = raw_fits(tmp_path / "floatdq.fits",
                    fits.ImageHDU(np.ones((64, 64), np.float32), name="SCI"),
                    fits.ImageHDU(np.zeros((64, 64), np.float32), name="DQ"))
    failed(case, case.run("reduce", path), path, "DQ", "integers")


def test_dq_negative(case: Case, tmp_path: Path) -> None:
    dq = np.zeros((64, 64), np.int16)
    dq[3, 4] = -1
    path = raw_fits(tmp_path / "negdq.fits", fits.ImageHDU(np.ones((64, 64), np.float32),
                                                           name="SCI"),
                    fits.ImageHDU(dq, name="DQ"))
    failed(case, case.run("reduce", path), path, "DQ", "negative")


# --------------------------------------------------------------------------- lookup keywords

@pytest.mark.parametrize("changes,needles", [
    ({"DETECTOR": ""}, ["DETECTOR", "empty", "MASK"]),
    ({"DETECTOR": None}, ["DETECTOR", "missing", "MASK"]),
    ({"SUBARRAY": None}, ["SUBARRAY", "missing", "MASK"]),
    ({"PUPIL": None}, ["PUPIL", "missing", "FLAT"]),
    ({"TIME-OBS": "25:61:00"}, ["TIME-OBS", "'25:61:00'", "MASK"]),
    ({"TIME-OBS": None}, ["TIME-OBS", "missing", "MASK"]),
    ({"DATE-OBS": "2019-02-30"}, ["DATE-OBS", "'2019-02-30'", "MASK"]),
    ({"INSTRUME": "NIRCAM"}, ["INSTRUME", "'NIRCAM'", "MASK"]),
])
def test_lookup_keyword(case: Case, tmp_path: Path, changes, needles) -> None:
    path = frame(tmp_path, **changes)
    failed(case, case.run("reduce", path), path, *needles)


# --------------------------------------------------------------------------- crdsmini errors

def test_no_matching_rule(case: Case, tmp_path: Path) -> None:
    path = frame(tmp_path, DETECTOR="IRIS2")
    text = failed(case, case.run("reduce", path), path, "MASK", "crdsmini")
    assert "IRIS2" in text or "No match" in text


def test_reference_file_absent(case: Case, tmp_path: Path) -> None:
    cache = tmp_path / "crds"
    shutil.copytree(case.data / "crds", cache)
    (cache / "references" / "tmt" / "iris" / "tmt_iris_synth_flat_a.fits").unlink()
    failed(case, case.run("reduce", case.path("sci_full.fits"), crds=cache),
           case.path("sci_full.fits"), "FLAT", "tmt_iris_synth_flat_a.fits",
           cache / "references" / "tmt" / "iris")


@needs_engine
def test_unknown_context(tmp_path: Path, synth_data: Path) -> None:
    case = Case(synth_data, tmp_path / "out", "crdsmini")
    failed(case, case.run("reduce", case.path("sci_full.fits"), context="tmt_9999.pmap"),
           case.path("sci_full.fits"), "MASK", "tmt_9999.pmap")


@needs_engine
def test_mapping_checksum_error(tmp_path: Path, synth_data: Path) -> None:
    cache = tmp_path / "crds"
    shutil.copytree(synth_data / "crds", cache)
    rmap = cache / "mappings" / "tmt" / "tmt_iris_flat_9001.rmap"
    rmap.write_text(rmap.read_text().replace("flat_b", "flat_x"))
    case = Case(synth_data, tmp_path / "out", "crdsmini")
    failed(case, case.run("reduce", case.path("sci_full.fits"), crds=cache),
           case.path("sci_full.fits"), "MASK", "sha1sum")


@needs_engine
def test_unknown_instrument_in_context(tmp_path: Path, synth_data: Path) -> None:
    """An instrument the context does not know: crdsmini raises, reported for MASK."""
    cache = tmp_path / "crds"
    shutil.copytree(synth_data / "crds", cache)
    from iris_reduce.mappings import pmap_text, write_mapping
    write_mapping(cache / "mappings" / "tmt", "tmt_9003.pmap",
                  pmap_text("tmt_9003.pmap", {"LIGER": "tmt_iris_9001.imap"}))
    case = Case(synth_data, tmp_path / "out", "crdsmini")
    failed(case, case.run("reduce", case.path("sci_full.fits"), crds=cache,
                          context="tmt_9003.pmap"), case.path("sci_full.fits"), "MASK", "iris")


# --------------------------------------------------------------------------- reference HDUs

def test_dark_without_sci(case: Case, tmp_path: Path) -> None:
    dark = write_reference(tmp_path / "dark_noext.fits", "DARK", err=np.zeros((64, 64)))
    failed(case, case.run("reduce", case.path("sci_full.fits"), "--override-dark", dark),
           dark, "SCI")


def test_flat_wrong_ndim(case: Case, tmp_path: Path) -> None:
    flat = write_reference(tmp_path / "flat_cube.fits", "FLAT", sci=np.ones((2, 64, 64)))
    failed(case, case.run("reduce", case.path("sci_full.fits"), "--override-flat", flat),
           flat, "SCI", "ndim=3")


def test_nonlin_without_coeffs(case: Case, tmp_path: Path) -> None:
    bad = write_reference(tmp_path / "nonlin_2d.fits", "NONLINCOEFF", sci=np.ones((64, 64)))
    failed(case, case.run("reduce", case.path("sci_dn.fits"), "--steps", "nonlin",
                          "--override-nonlin", bad), bad, "COEFFS")


def test_reference_err_shape(case: Case, tmp_path: Path) -> None:
    dark = write_reference(tmp_path / "dark_err.fits", "DARK", sci=np.ones((64, 64)),
                           err=np.ones((32, 32)))
    failed(case, case.run("reduce", case.path("sci_full.fits"), "--override-dark", dark),
           dark, "ERR")


# --------------------------------------------------------------------------- subarray keywords

def test_subarray_keyword_missing(case: Case, tmp_path: Path) -> None:
    sub = edit_header(copy_data(case.path("sci_sub.fits"), tmp_path / "in"), SUBSTRT2=None)
    failed(case, case.run("reduce", sub), sub, "SUBSTRT2")


def test_subarray_keyword_not_integer(case: Case, tmp_path: Path) -> None:
    sub = edit_header(copy_data(case.path("sci_sub.fits"), tmp_path / "in"), SUBSTRT1="eleven")
    failed(case, case.run("reduce", sub), sub, "SUBSTRT1")


def test_reference_subsize_differs_from_shape(case: Case, tmp_path: Path) -> None:
    dark = write_reference(tmp_path / "dark_size.fits", "DARK", sci=np.ones((64, 64)),
                           header={"SUBSIZE1": 60})
    failed(case, case.run("reduce", case.path("sci_full.fits"), "--override-dark", dark),
           dark, "SUBSIZE1")


def test_subarray_reference_too_small(case: Case, tmp_path: Path) -> None:
    dark = case.path("dark_ramp_sub.fits")          # rows 15..46: does not reach row 60
    sub = edit_header(copy_data(case.path("sci_sub.fits"), tmp_path / "in"), SUBSTRT2=60)
    failed(case, case.run("reduce", sub, "--override-dark", dark), sub, dark, "SUBSTRT2=60",
           "SUBSIZE2=4")


# --------------------------------------------------------------------------- nonlin

def test_bad_nlform(case: Case, tmp_path: Path) -> None:
    coeffs = fits.ImageHDU(np.zeros((2, 64, 64), np.float32), name="COEFFS")
    coeffs.header["NLFORM"] = "SPLINE"
    bad = write_reference(tmp_path / "nonlin_spline.fits", "NONLINCOEFF", extra=[coeffs])
    failed(case, case.run("reduce", case.path("sci_dn.fits"), "--steps", "nonlin",
                          "--override-nonlin", bad), bad, "NLFORM", "SPLINE")


def test_nonlin_without_bunit(case: Case, tmp_path: Path) -> None:
    path = frame(tmp_path, bunit=None)
    failed(case, case.run("reduce", path, "--steps", "nonlin"), path, "BUNIT", "missing")


# --------------------------------------------------------------------------- DQ_DEF

def test_dq_def_undefined_bit(case: Case, tmp_path: Path) -> None:
    from iris_reduce.synth import _dq_def
    dq = np.zeros((64, 64), np.uint32)
    dq[5, 5] = 16
    mask = write_reference(tmp_path / "mask_bit4.fits", "MASK", dq=dq,
                           extra=[_dq_def([(0, 1, "DEAD"), (1, 2, "HOT")])])
    failed(case, case.run("reduce", case.path("sci_full.fits"), "--override-mask", mask), mask,
           "DQ_DEF", "[4]")


# --------------------------------------------------------------------------- stack frames

def test_make_dark_shape_mismatch(case: Case, tmp_path: Path) -> None:
    small = write_frame(tmp_path / "dark_small.fits", science_header(),
                        np.full((32, 32), 100.0), np.full((32, 32), 3.0))
    out = case.out / "dark.fits"
    failed(case, case.run("make-dark", case.path("dark_01.fits"), small, "-o", out), small,
           "(32, 32)", "(64, 64)")


def test_make_flat_filter_mismatch(case: Case, tmp_path: Path) -> None:
    odd = edit_header(copy_data(case.path("flatlamp_02.fits"), tmp_path / "in"), FILTER="J")
    out = case.out / "flat.fits"
    failed(case, case.run("make-flat", case.path("flatlamp_01.fits"), odd, "-o", out), odd,
           "FILTER")


def test_sky_shape_mismatch(case: Case, tmp_path: Path) -> None:
    small = write_frame(tmp_path / "sky_small.fits", science_header(),
                        np.full((32, 32), 180.0), np.full((32, 32), 3.0))
    failed(case, case.run("reduce", case.path("sci_full.fits"), "--sky", small), small,
           "(32, 32)", "(64, 64)")


# --------------------------------------------------------------------------- normalize

def test_normalize_without_good_pixels(case: Case, tmp_path: Path) -> None:
    path = frame(tmp_path, dq=np.ones((64, 64), np.uint32) * 4)
    failed(case, case.run("reduce", path, "--steps", "normalize"), path, "normalize",
           "no good pixels")


def test_normalize_bad_factor(case: Case, tmp_path: Path) -> None:
    path = frame(tmp_path, sci=np.full((64, 64), -5.0, np.float32))
    failed(case, case.run("reduce", path, "--steps", "normalize"), path, "normalize",
           "not finite and > 0")


# --------------------------------------------------------------------------- records / output

def test_step_already_complete(case: Case, tmp_path: Path) -> None:
    path = edit_header(copy_data(case.path("sci_full.fits"), tmp_path / "in"), S_DARK="COMPLETE")
    failed(case, case.run("reduce", path, "--steps", "dark"), path, "S_DARK", "--force")


def test_make_dark_output_exists(case: Case, tmp_path: Path) -> None:
    out = tmp_path / "dark.fits"
    out.write_bytes(b"keep me")
    result = case.run("make-dark", case.path("dark_01.fits"), case.path("dark_02.fits"),
                      case.path("dark_03.fits"), "-o", out)
    failed(case, result, out, "--overwrite")
    assert out.read_bytes() == b"keep me"


# --------------------------------------------------------------------------- usage errors

@pytest.mark.parametrize("extra,needle", [
    (["--steps", "dq_init,bias"], "bias"),
    (["--skip", "nothing"], "nothing"),
    (["--sky", "a.fits", "--sky-product", "b.fits"], "--sky-product"),
    (["--steps", "sky"], "sky"),
    (["--save-sky", "s.fits"], "sky"),
])
def test_usage_errors(case: Case, extra, needle) -> None:
    result = case.run("reduce", case.path("sci_full.fits"), *extra)
    assert result.exit_code == 2, result.stderr
    assert needle in result.stderr
    assert case.written() == []


def test_output_with_several_inputs(case: Case) -> None:
    result = case.run("reduce", case.path("sci_full.fits"), case.path("sci_late.fits"), "-o",
                      case.out / "x.fits")
    assert result.exit_code == 2
    assert "--output" in result.stderr
    assert case.written() == []


def test_make_dark_step_not_allowed(case: Case) -> None:
    result = case.run("make-dark", case.path("dark_01.fits"), "-o", case.out / "d.fits",
                      "--steps", "dq_init,flat")
    assert result.exit_code == 2
    assert "flat" in result.stderr
