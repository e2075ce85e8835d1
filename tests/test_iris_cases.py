"""Spec iris-reduce section 14, rows T01..T34 (T33 is in test_iris_kernels.py, T35 in
benchmarks/bench_iris.py), each with its exact expected numbers.

Every case runs the ``iris-reduce`` command on the spec-13 synthetic files written to a
temporary directory, twice: with a stand-in resolver that answers as the synthetic rules say
(``dict``) and through the real crdsmini engine and the synthetic cache (``crdsmini``).
"=" in the spec means exact equality; other floats are compared with rtol 1e-6.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from astropy.io import fits

from iris_reduce.testing import (  # noqa: F401  (fixtures)
    Case,
    case,
    copy_data,
    edit_header,
    engine,
    read_output,
    synth_data,
)

SKIES = [f"sky_{k:02d}.fits" for k in range(1, 6)]


def close(actual: float, expected: float) -> bool:
    if math.isnan(expected):
        return math.isnan(actual)
    return math.isclose(actual, expected, rel_tol=1e-6, abs_tol=0.0 if expected else 1e-12)


def check_pixels(product, table):
    """table rows: ((y, x), sci, err, dq) with None = not checked, ("=", v) = exact."""
    for (y, x), sci, err, dq in table:
        for name, want in (("SCI", sci), ("ERR", err)):
            if want is None:
                continue
            got = float(product[name][y, x])
            if isinstance(want, tuple):
                assert got == want[1], f"{name}{(y, x)} = {got!r}, expected exactly {want[1]!r}"
            else:
                assert close(got, want), f"{name}{(y, x)} = {got!r}, expected {want!r}"
        if dq is not None:
            assert product["DQ"].dtype == np.uint32
            assert int(product["DQ"][y, x]) == dq, f"DQ{(y, x)} = {product['DQ'][y, x]}"


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result


def failed(result, *needles):
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    for needle in needles:
        assert str(needle) in result.stderr, (needle, result.stderr)
    assert result.stderr.startswith("iris-reduce: error: ")
    return result


T01_TABLE = [
    ((0, 0), ("=", 500.0), ("=", 2.5), 0),
    ((1, 1), 500.0, 2.5, 1025),
    ((2, 2), 500.0, 2.5, 2048),
    ((3, 3), 550.0, 1.5, 8388608),
    ((4, 4), 1000.0, 5.0, 262144),
    ((5, 5), 1000.0, 5.0, 262144),
    ((6, 6), 1000.0, 5.0, 262144),
    ((7, 7), 1000.0, 5.0, 262144),
    ((8, 8), math.nan, 2.5, 1),
    ((9, 9), 500.0, 2.5, 2048),
    ((13, 13), 500.0, 2.5, 2147483648),
]


def test_t01_default_steps(case: Case) -> None:
    ok(case.run("reduce", case.path("sci_full.fits")))
    check_pixels(read_output(case.output("sci_full_cal.fits")), T01_TABLE)


def test_t02_header_records(case: Case) -> None:
    ok(case.run("reduce", case.path("sci_full.fits")))
    header = read_output(case.output("sci_full_cal.fits")).header
    for key in ("S_DQINIT", "S_DARK", "S_FLAT"):
        assert header[key] == "COMPLETE"
    for key in ("S_NLCORR", "S_SKYSUB", "S_NORMAL"):
        assert header[key] == "SKIPPED"
    assert header["R_MASK"] == "crds://tmt_iris_synth_mask.fits"
    assert header["R_DARK"] == "crds://tmt_iris_synth_dark.fits"
    assert header["R_FLAT"] == "crds://tmt_iris_synth_flat_a.fits"
    assert header["CRDS_CTX"] == "tmt_9001.pmap"
    assert header["CAL_VER"].startswith("iris_reduce ")
    assert header["CRDS_VER"].startswith("crdsmini ")
    assert "DATE" in header
    assert "R_NONLIN" not in header


def test_t03_late_date_selects_flat_b(case: Case) -> None:
    ok(case.run("reduce", case.path("sci_late.fits")))
    out = read_output(case.output("sci_late_cal.fits"))
    check_pixels(out, [((0, 0), ("=", 250.0), ("=", 1.25), None), ((3, 3), 275.0, None, None),
                       ((4, 4), 250.0, 1.25, 0)])
    assert out.header["R_FLAT"].endswith("flat_b.fits")


def test_t04_override_flat(case: Case) -> None:
    ok(case.run("reduce", case.path("sci_full.fits"), "--override-flat", case.path("flat_err.fits")))
    out = read_output(case.output("sci_full_cal.fits"))
    check_pixels(out, [((0, 0), 500.0, 62.54998, None)])
    assert out.header["R_FLAT"] == "flat_err.fits"


def test_t05_missing_filter(case: Case) -> None:
    failed(case.run("reduce", case.path("sci_nofilter.fits")), "sci_nofilter.fits", "FILTER")
    assert case.written() == []


def test_t06_missing_filter_with_override(case: Case) -> None:
    ok(case.run("reduce", case.path("sci_nofilter.fits"), "--override-flat",
                case.path("flat_err.fits")))
    check_pixels(read_output(case.output("sci_nofilter_cal.fits")), [((0, 0), 500.0, None, None)])


def test_t07_dark_not_applicable(case: Case) -> None:
    ok(case.run("reduce", case.path("sci_full.fits"), context="tmt_9002.pmap"))
    out = read_output(case.output("sci_full_cal.fits"))
    check_pixels(out, [((0, 0), ("=", 550.0), ("=", 1.5), None), ((9, 9), None, None, 0)])
    assert out.header["S_DARK"] == "SKIPPED"
    assert out.header["R_DARK"] == "N/A"
    assert out.header["CRDS_CTX"] == "tmt_9002.pmap"


T08_VALUES = {(0, 0): 1495.0, (0, 7): 1491.5, (3, 0): 1345.0, (3, 7): 1341.5}


@pytest.mark.parametrize("dark", ["dark_ramp.fits", "dark_ramp_sub.fits"], ids=["T08", "T09"])
def test_t08_t09_subarray_cut(case: Case, dark: str) -> None:
    ok(case.run("reduce", case.path("sci_sub.fits"), "--override-dark", case.path(dark)))
    out = read_output(case.output("sci_sub_cal.fits"))
    assert out["SCI"].shape == (4, 8)
    for (y, x), value in T08_VALUES.items():
        assert float(out["SCI"][y, x]) == value


def test_t10_subarray_crds_dark(case: Case) -> None:
    ok(case.run("reduce", case.path("sci_sub.fits")))
    out = read_output(case.output("sci_sub_cal.fits"))
    assert out["SCI"].shape == (4, 8)
    assert np.all(out["SCI"] == 2450.0)


def test_t11_subarray_out_of_bounds(case: Case) -> None:
    result = failed(case.run("reduce", case.path("sci_sub_oob.fits")), "sci_sub_oob.fits",
                    "SUBSTRT1", "SUBSIZE1", "tmt_iris_synth_dark.fits")
    assert str(case.data / "crds") in result.stderr      # the dark's full path
    assert case.written() == []


def test_t12_subsize_differs_from_shape(case: Case) -> None:
    failed(case.run("reduce", case.path("sci_sub_badsize.fits")), "sci_sub_badsize.fits",
           "SUBSIZE1")
    assert case.written() == []


def test_t13_shape_mismatch(case: Case) -> None:
    dark = case.path("dark_32.fits")
    failed(case.run("reduce", case.path("sci_full.fits"), "--override-dark", dark),
           case.path("sci_full.fits"), dark, "(64, 64)", "(32, 32)")
    assert case.written() == []          # no output, no temporary file


def test_t14_mask_without_dq(case: Case) -> None:
    mask = case.path("mask_nodq.fits")
    failed(case.run("reduce", case.path("sci_full.fits"), "--override-mask", mask), mask, "DQ")
    assert case.written() == []


def test_t15_primary_only(case: Case, tmp_path) -> None:
    empty = tmp_path / "primary_only.fits"
    fits.PrimaryHDU(header=fits.Header([("INSTRUME", "IRIS")])).writeto(empty)
    failed(case.run("reduce", empty), empty, "SCI")
    assert case.written() == []


def test_t16_dq_def_translation(case: Case) -> None:
    ok(case.run("reduce", case.path("sci_full.fits"), "--override-mask",
                case.path("mask_dqdef.fits")))
    out = read_output(case.output("sci_full_cal.fits"))
    check_pixels(out, [((1, 1), None, None, 1024), ((2, 2), None, None, 2048)])
    assert out.header["R_MASK"] == "mask_dqdef.fits"


def test_t16_dq_def_unknown_name(case: Case) -> None:
    bad = case.path("mask_dqdef_bad.fits")
    failed(case.run("reduce", case.path("sci_full.fits"), "--override-mask", bad), bad, "FOO")
    assert case.written() == []


T17_TABLE = [
    ((0, 0), 460.0, 2.738613, 0),
    ((1, 1), 500.0, 2.5, 1025),
    ((3, 3), 460.0, 1.6431676, 8388608),
    ((4, 4), 920.0, 5.477226, 262144),
    ((8, 8), math.nan, 2.738613, 1),
    ((10, 10), 460.0, 2.795085, 0),
]


def sky_args(case: Case) -> list[str]:
    return [a for name in SKIES for a in ("--sky", str(case.path(name)))]


def test_t17_sky_frames(case: Case) -> None:
    ok(case.run("reduce", case.path("sci_full.fits"), *sky_args(case)))
    out = read_output(case.output("sci_full_cal.fits"))
    check_pixels(out, T17_TABLE)
    assert out.header["SKYCSTAT"] == "auto"
    assert out.header["SKYNMAD"] == 0
    assert out.header["SKYNFRM"] == 5
    assert out.header["S_SKYSUB"] == "COMPLETE"
    assert out.header["R_SKY"] == "COMBINED"
    assert [out.header[f"SKYF{k:04d}"] for k in range(1, 6)] == SKIES


def test_t18_save_sky(case: Case) -> None:
    sky = case.out.parent / "sky_product.fits"
    ok(case.run("reduce", case.path("sci_full.fits"), *sky_args(case), "--save-sky", sky))
    product = read_output(sky)
    check_pixels(product, [((0, 0), 40.0, 1.118034, 0), ((10, 10), 40.0, 1.25, 0),
                           ((1, 1), 0.0, 0.0, 1), ((3, 3), 90.0, 0.6708204, 8388608)])
    assert [int(product["NUSED"][p]) for p in ((0, 0), (10, 10), (1, 1))] == [5, 4, 0]
    assert product["NUSED"].dtype == np.uint16
    assert product.header["REFTYPE"] == "SKY"
    assert product.header["DETECTOR"] == "IRIS1"
    assert read_output(case.output("sci_full_cal.fits")).header["R_SKY"] == "sky_product.fits"


@pytest.mark.parametrize("stat,value", [("mad", 460.0), ("std", -532.0)], ids=["mad", "std"])
def test_t19_clip_statistics(case: Case, stat: str, value: float) -> None:
    ok(case.run("reduce", case.path("sci_full.fits"), *sky_args(case), "--sky-clip-stat", stat))
    out = read_output(case.output("sci_full_cal.fits"))
    assert close(float(out["SCI"][10, 10]), value)
    assert out.header["SKYCSTAT"] == stat


def test_t20_sky_scale_median(case: Case) -> None:
    ok(case.run("reduce", case.path("sci_full.fits"), *sky_args(case), "--sky-scale", "median"))
    out = read_output(case.output("sci_full_cal.fits"))
    assert float(out["SCI"][0, 0]) == 0.0
    assert close(float(out["ERR"][0, 0]), 14.19727)
    assert out.header["SKYSCALE"] == 500.0
    assert out.header["SKYSCMOD"] == "median"


def test_t21_sky_product_round_trip(case: Case) -> None:
    product = case.out.parent / "made_sky.fits"
    ok(case.run("make-sky", *[case.path(n) for n in SKIES], "-o", product))
    ok(case.run("reduce", case.path("sci_full.fits"), "--sky-product", product))
    out = read_output(case.output("sci_full_cal.fits"))
    check_pixels(out, T17_TABLE)
    assert out.header["R_SKY"] == "made_sky.fits"


def test_t22_nonlin_poly(case: Case) -> None:
    ok(case.run("reduce", case.path("sci_dn.fits"), "--steps", "nonlin"))
    out = read_output(case.output("sci_dn_cal.fits"))
    check_pixels(out, [((0, 0), 1010.0, 3.06, 0), ((12, 12), 1000.0, 3.0, 1048576)])
    assert out.header["S_NLCORR"] == "COMPLETE"
    assert out.header["NLFORM"] == "POLY"
    assert out.header["R_NONLIN"] == "crds://tmt_iris_synth_nonlin.fits"
    assert out.header["S_DQINIT"] == "SKIPPED"


def test_t23_nonlin_factor_override(case: Case) -> None:
    ok(case.run("reduce", case.path("sci_dn.fits"), "--steps", "nonlin", "--override-nonlin",
                case.path("nonlin_factor.fits")))
    out = read_output(case.output("sci_dn_cal.fits"))
    check_pixels(out, [((0, 0), 1010.0, 3.06, None)])
    assert out.header["NLFORM"] == "FACTOR"


def test_t24_nonlin_needs_counts(case: Case) -> None:
    failed(case.run("reduce", case.path("sci_rate.fits"), "--steps", "nonlin"), "sci_rate.fits",
           "BUNIT", "DN/s")
    assert case.written() == []


def test_t25_normalize(case: Case) -> None:
    ok(case.run("reduce", case.path("flatlamp_01.fits"), "--steps", "dq_init,dark,normalize"))
    out = read_output(case.output("flatlamp_01_cal.fits"))
    assert out.header["NORMFACT"] == 3000.0
    assert out.header["NORMMETH"] == "median"
    assert out.header["S_NORMAL"] == "COMPLETE"
    check_pixels(out, [((0, 0), ("=", 2.0), None, None), ((5, 5), ("=", 1.0), 0.0016666667, None)])


def test_t26_make_flat(case: Case) -> None:
    flat = case.out.parent / "flat.fits"
    ok(case.run("make-flat", *[case.path(f"flatlamp_{k:02d}.fits") for k in (1, 2, 3)], "-o", flat))
    out = read_output(flat)
    check_pixels(out, [((5, 5), ("=", 1.0), 9.6225046e-4, 0), ((0, 0), ("=", 2.0), None, None),
                       ((3, 3), 1.0333333, None, 8388608), ((1, 1), math.nan, None, 262145)])
    assert out.header["REFTYPE"] == "FLAT"
    assert out.header["NCOMBINE"] == 3
    assert out.header["USEAFTER"] == "2019-05-01T12:00:00"
    assert out.header["PEDIGREE"] == "GROUND"
    assert out.header["AUTHOR"] == "iris_reduce"
    assert out.header["FILTER"] == "K" and out.header["PUPIL"] == "CLEAR"
    assert out.header["CMBCSTAT"] == "auto"
    assert out.header["S_DQINIT"] == out.header["S_DARK"] == "COMPLETE"
    assert len(out.header["HISTORY"]) >= 3


def test_t27_make_dark(case: Case) -> None:
    dark = case.out.parent / "dark.fits"
    ok(case.run("make-dark", *[case.path(f"dark_{k:02d}.fits") for k in range(1, 6)], "-o", dark))
    out = read_output(dark)
    check_pixels(out, [((0, 0), ("=", 100.0), 1.5, None), ((5, 5), ("=", 100.0), 1.3416408, None),
                       ((1, 1), math.nan, None, 1), ((2, 2), 100.0, None, 2048)])
    assert out.header["REFTYPE"] == "DARK"
    assert out.header["NCOMBINE"] == 5
    assert out.header["R_MASK"] == "crds://tmt_iris_synth_mask.fits"


def test_t28_rerun_protection(case: Case) -> None:
    ok(case.run("reduce", case.path("sci_full.fits")))
    first = case.output("sci_full_cal.fits")
    failed(case.run("reduce", first), first, "S_DQINIT", "--force")
    assert not case.output("sci_full_cal_cal.fits").exists()
    ok(case.run("reduce", first, "--force"))
    assert case.output("sci_full_cal_cal.fits").exists()


def test_t29_existing_output(case: Case) -> None:
    target = case.output("fixed.fits")
    ok(case.run("reduce", case.path("sci_full.fits"), "-o", target))
    before = target.read_bytes()
    failed(case.run("reduce", case.path("sci_full.fits"), "-o", target), target, "--overwrite")
    assert target.read_bytes() == before
    ok(case.run("reduce", case.path("sci_late.fits"), "-o", target, "--overwrite"))
    assert target.read_bytes() != before
    assert float(read_output(target)["SCI"][0, 0]) == 250.0
    assert case.written() == ["fixed.fits"]


def test_t30_dry_run(case: Case) -> None:
    result = ok(case.run("reduce", case.path("sci_full.fits"), "--dry-run"))
    plan = json.loads(result.stdout)["files"]
    assert len(plan) == 1
    entry = plan[0]
    assert entry["input"] == str(case.path("sci_full.fits"))
    assert entry["output"] == str(case.output("sci_full_cal.fits"))
    assert entry["steps"] == ["dq_init", "dark", "flat"]
    assert entry["context"] == "tmt_9001.pmap"
    refs = entry["references"]
    assert set(refs) == {"MASK", "DARK", "FLAT"}
    for kind, name in (("MASK", "tmt_iris_synth_mask.fits"), ("DARK", "tmt_iris_synth_dark.fits"),
                       ("FLAT", "tmt_iris_synth_flat_a.fits")):
        assert refs[kind]["source"] == "crds"
        assert refs[kind]["file"] == name
        assert refs[kind]["path"].endswith(name)
    assert case.written() == []


def test_t31_batch_keeps_successes(case: Case) -> None:
    result = failed(case.run("reduce", case.path("sci_full.fits"), case.path("sci_nofilter.fits")),
                    "sci_nofilter.fits")
    assert "sci_full.fits:" not in result.stderr
    assert case.written() == ["sci_full_cal.fits"]


def test_t31_fail_fast(case: Case) -> None:
    failed(case.run("reduce", case.path("sci_nofilter.fits"), case.path("sci_full.fits"),
                    "--fail-fast"), "sci_nofilter.fits")
    assert case.written() == []


def test_t32_sky_filter_mismatch(case: Case, tmp_path) -> None:
    sky = edit_header(copy_data(case.path("sky_01.fits"), tmp_path / "skies", "sky_h.fits"),
                      FILTER="H")
    failed(case.run("reduce", case.path("sci_full.fits"), "--sky", sky), sky, "FILTER")
    assert case.written() == []


def test_t32_sky_frames_disagree(case: Case, tmp_path) -> None:
    odd = edit_header(copy_data(case.path("sky_02.fits"), tmp_path / "skies", "sky_h.fits"),
                      FILTER="H")
    failed(case.run("reduce", case.path("sci_full.fits"), "--sky", case.path("sky_01.fits"),
                    "--sky", odd), odd, "FILTER")
    assert case.written() == []


def test_t34_iso_date_obs(case: Case, tmp_path) -> None:
    sci = edit_header(copy_data(case.path("sci_full.fits"), tmp_path / "in"),
                      DATE_OBS="2019-05-01T12:00:00", TIME_OBS=None)
    ok(case.run("reduce", sci))
    check_pixels(read_output(case.output("sci_full_cal.fits")), T01_TABLE)


def test_t34_malformed_date(case: Case, tmp_path) -> None:
    sci = edit_header(copy_data(case.path("sci_full.fits"), tmp_path / "in"), DATE_OBS="2019/05/01")
    failed(case.run("reduce", sci), sci, "DATE-OBS", "2019/05/01")
    assert case.written() == []


def test_t34_date_before_rules(case: Case, tmp_path) -> None:
    sci = edit_header(copy_data(case.path("sci_full.fits"), tmp_path / "in"), DATE_OBS="2014-01-01")
    result = failed(case.run("reduce", sci), sci, "MASK")
    assert "DARK" not in result.stderr.split("MASK", 1)[0]
    assert case.written() == []
