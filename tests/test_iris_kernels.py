"""Pure kernels (spec 5 and 7): one table per rule, T33 (block size independence), and the
DQ flag table of spec 2."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iris_reduce import kernels
from iris_reduce.dq import FLAGS, flag_names
from iris_reduce.errors import KernelError

NAN = float("nan")
INF = float("inf")
DNU = FLAGS["DO_NOT_USE"]
NFF = FLAGS["NO_FLAT_FIELD"]
NLC = FLAGS["NO_LIN_CORR"]
UDK = FLAGS["UNRELIABLE_DARK"]


def arrays(*values, dtype=np.float32):
    return [np.array([v], dtype=dtype) for v in values]


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)


# --------------------------------------------------------------------------- spec 2

@pytest.mark.parametrize("name,bit", [
    ("DO_NOT_USE", 0), ("SATURATED", 1), ("JUMP_DET", 2), ("DROPOUT", 3), ("OUTLIER", 4),
    ("PERSISTENCE", 5), ("AD_FLOOR", 6), ("CHARGELOSS", 7), ("UNRELIABLE_ERROR", 8),
    ("NON_SCIENCE", 9), ("DEAD", 10), ("HOT", 11), ("WARM", 12), ("LOW_QE", 13), ("RC", 14),
    ("TELEGRAPH", 15), ("NONLINEAR", 16), ("BAD_REF_PIXEL", 17), ("NO_FLAT_FIELD", 18),
    ("NO_GAIN_VALUE", 19), ("NO_LIN_CORR", 20), ("NO_SAT_CHECK", 21), ("UNRELIABLE_BIAS", 22),
    ("UNRELIABLE_DARK", 23), ("UNRELIABLE_SLOPE", 24), ("UNRELIABLE_FLAT", 25), ("OPEN", 26),
    ("ADJ_OPEN", 27), ("FLUX_ESTIMATED", 28), ("MSA_FAILED_OPEN", 29), ("OTHER_BAD_PIXEL", 30),
    ("REFERENCE_PIXEL", 31),
])
def test_flag_table(name: str, bit: int) -> None:
    assert FLAGS[name] == 1 << bit
    assert flag_names(1 << bit) == [name]


def test_flag_table_size() -> None:
    assert FLAGS["GOOD"] == 0
    assert len(FLAGS) == 33


# --------------------------------------------------------------------------- steps

def test_flag_unusable() -> None:
    sci = np.array([1.0, NAN, INF, -INF, 0.0], np.float32)
    dq = np.array([0, 0, 2, 0, 4], np.uint32)
    kernels.flag_unusable(sci, dq)
    assert dq.tolist() == [0, 1, 3, 1, 4]


def test_dq_init_ors_mask() -> None:
    dq = np.array([0, 1, 2048], np.uint32)
    kernels.dq_init(dq, np.array([1025, 2, 2**31], np.uint32))
    assert dq.tolist() == [1025, 3, 2048 | 2**31]


# dark: (S, E, D, K, KE, KD) -> (S, E, D)
DARK_TABLE = [
    ((1100, 3, 0, 100, 4, 0), (1000, 5, 0)),
    ((1100, 3, 0, NAN, 4, 0), (1100, 3, UDK)),          # non-finite dark: subtract 0, flag
    ((1100, 3, 0, INF, 4, 0), (1100, 3, UDK)),
    ((1100, 3, 0, 100, NAN, 0), (1000, 3, 0)),          # non-finite dark error: ke = 0
    ((1100, 3, 1, 100, 4, 2048), (1000, 5, 2049)),
    ((NAN, 3, 1, 100, 4, 0), (NAN, 5, 1)),
]


@pytest.mark.parametrize("given_,expected", DARK_TABLE)
def test_subtract_dark(given_, expected) -> None:
    s, e, k, ke = arrays(given_[0], given_[1], given_[3], given_[4])
    d, kd = arrays(given_[2], given_[5], dtype=np.uint32)
    kernels.subtract_dark(s, e, d, k, ke, kd)
    assert same(float(s[0]), expected[0]) and same(float(e[0]), expected[1])
    assert int(d[0]) == expected[2]


# flat: (S, E, D, F, FE, FD) -> (S, E, D)
FLAT_TABLE = [
    ((1000, 5, 0, 2.0, 0.0, 0), (500, 2.5, 0)),
    ((1000, 5, 0, 2.0, 0.25, 0), (500, math.sqrt(6.25 + 62.5 ** 2), 0)),
    ((1000, 5, 0, NAN, 0.25, 0), (1000, 5, NFF)),       # non-finite: divide by 1
    ((1000, 5, 0, INF, 0.25, 0), (1000, 5, NFF)),
    ((1000, 5, 0, 0.0, 0.25, 0), (1000, 5, NFF)),       # zero
    ((1000, 5, 0, -1.0, 0.25, 0), (1000, 5, NFF)),      # negative
    ((1000, 5, 0, 4.0, 0.25, NFF), (1000, 5, NFF)),     # flagged NO_FLAT_FIELD
    ((1000, 5, 0, 2.0, NAN, 2048), (500, 2.5, 2048)),   # non-finite flat error: fe = 0
    ((NAN, 5, 1, 2.0, 0.25, 0), (NAN, 2.5, 1)),         # relative term 0 where S is NaN
]


@pytest.mark.parametrize("given_,expected", FLAT_TABLE)
def test_apply_flat(given_, expected) -> None:
    s, e, f, fe = arrays(given_[0], given_[1], given_[3], given_[4])
    d, fd = arrays(given_[2], given_[5], dtype=np.uint32)
    kernels.apply_flat(s, e, d, f, fe, fd)
    assert same(float(s[0]), expected[0]) and same(float(e[0]), expected[1])
    assert int(d[0]) == expected[2]


def test_apply_flat_without_err_and_dq() -> None:
    s, e = arrays(1000, 5)
    d = np.zeros(1, np.uint32)
    kernels.apply_flat(s, e, d, np.array([4.0], np.float32))
    assert (float(s[0]), float(e[0]), int(d[0])) == (250.0, 1.25, 0)


# nonlin: POLY (0, 1, 1e-5) and FACTOR (0, 1e-5) give the same y = x + 1e-5 x^2
@pytest.mark.parametrize("form,coeffs", [("POLY", (0.0, 1.0, 1e-5)), ("FACTOR", (0.0, 1e-5))])
def test_nonlin_forms(form: str, coeffs) -> None:
    s, e = arrays(1000, 3)
    d = np.zeros(1, np.uint32)
    cube = np.array(coeffs, np.float64).reshape(-1, 1)
    kernels.nonlin(s, e, d, cube, form)
    assert same(float(s[0]), 1010.0) and same(float(e[0]), 3.06) and int(d[0]) == 0


def test_nonlin_higher_order_poly() -> None:
    s, e = arrays(2.0, 1.0)
    d = np.zeros(1, np.uint32)
    kernels.nonlin(s, e, d, np.array([[1.0], [2.0], [3.0], [4.0]]), "poly")
    assert float(s[0]) == 1 + 4 + 12 + 32                  # 1 + 2x + 3x^2 + 4x^3
    assert float(e[0]) == 2 + 12 + 48                      # 2 + 6x + 12x^2


@pytest.mark.parametrize("coeff,ref_dq,expected_dq", [
    ((0.0, NAN, 1e-5), 0, NLC),
    ((0.0, 1.0, INF), 0, NLC),
    ((0.0, 1.0, 1e-5), NLC, NLC),
    ((0.0, 1.0, 1e-5), NLC | 2048, NLC | 2048),
])
def test_nonlin_uncorrectable(coeff, ref_dq, expected_dq) -> None:
    s, e = arrays(1000, 3)
    d = np.zeros(1, np.uint32)
    kernels.nonlin(s, e, d, np.array(coeff).reshape(-1, 1), "POLY", np.array([ref_dq], np.uint32))
    assert (float(s[0]), float(e[0]), int(d[0])) == (1000.0, 3.0, expected_dq)


def test_nonlin_ref_dq_propagates_on_good_pixels() -> None:
    s, e = arrays(1000, 3)
    d = np.zeros(1, np.uint32)
    kernels.nonlin(s, e, d, np.array([0.0, 1.0]).reshape(-1, 1), "POLY",
                   np.array([2048], np.uint32))
    assert int(d[0]) == 2048


def test_nonlin_bad_form() -> None:
    s, e = arrays(1, 1)
    with pytest.raises(KernelError, match="SPLINE"):
        kernels.nonlin(s, e, np.zeros(1, np.uint32), np.ones((2, 1)), "SPLINE")


def test_subtract_sky() -> None:
    s, e, sky, se = arrays(500, 2.5, 40, math.sqrt(1.25))
    d, sd = arrays(1024, 8, dtype=np.uint32)
    kernels.subtract_sky(s, e, d, sky, se, sd)
    assert float(s[0]) == 460 and same(float(e[0]), math.sqrt(7.5)) and int(d[0]) == 1032


@pytest.mark.parametrize("values,dq,method,factor", [
    ([1, 2, 3, 100], [0, 0, 0, 0], "median", 2.5),     # even count: mean of the middle two
    ([1, 2, 3, 100], [0, 0, 0, 1], "median", 2.0),     # flagged pixels excluded
    ([1, 2, NAN, 5], [0, 0, 0, 0], "mean", 8 / 3),     # non-finite excluded
])
def test_normalize(values, dq, method, factor) -> None:
    s = np.array(values, np.float32)
    e = np.ones_like(s)
    d = np.array(dq, np.uint32)
    assert same(kernels.normalize(s, e, d, method), factor)
    assert same(float(s[0]), values[0] / factor) and same(float(e[0]), 1 / factor)


@pytest.mark.parametrize("values,dq,match", [
    ([1, 2], [1, 1], "no good pixels"),
    ([NAN, NAN], [0, 0], "no good pixels"),
    ([-1, -2], [0, 0], "not finite and > 0"),
    ([0, 0], [0, 0], "not finite and > 0"),
])
def test_normalize_errors(values, dq, match) -> None:
    s = np.array(values, np.float32)
    with pytest.raises(KernelError, match=match):
        kernels.normalize(s, np.ones_like(s), np.array(dq, np.uint32))


# --------------------------------------------------------------------------- combination

def stack(columns, errors=None, flags=None):
    x = np.array(columns, np.float32).T.copy()             # (N, P)
    e = np.full_like(x, 2.5) if errors is None else np.array(errors, np.float32).T.copy()
    d = np.zeros(x.shape, np.uint32) if flags is None else np.array(flags, np.uint32).T.copy()
    return x, e, d


# (samples of one pixel, stat, expected value, expected nused)
COMBINE_TABLE = [
    ([40, 40, 5000, 40, 40], "err", 40.0, 4),
    ([40, 40, 5000, 40, 40], "mad", 40.0, 4),
    ([40, 40, 5000, 40, 40], "std", 1032.0, 5),             # std cannot reject with N < 8
    ([40, 40, 5000, 40, 40, 40, 40, 40], "std", 40.0, 7),    # ... but can with N = 8
    ([40, 5000], "err", 2520.0, 2),                          # < 3 usable: no clipping
    ([40, 41, 42], "err", 41.0, 3),                          # within 3 sigma: nothing rejected
    ([10, 20, 30], "mad", 20.0, 3),
]


@pytest.mark.parametrize("samples,stat,value,nused", COMBINE_TABLE)
def test_combine_table(samples, stat, value, nused) -> None:
    x, e, d = stack([samples])
    result = kernels.combine_stack(x, e, d, stat)
    assert same(float(result.value[0]), value)
    assert int(result.nused[0]) == nused


def test_combine_error_and_flags_of_kept_only() -> None:
    x, e, d = stack([[40, 40, 5000, 40, 40]], flags=[[1 << 11, 0, 1 << 12, 0, 0]])
    result = kernels.combine_stack(x, e, d, "err")
    assert same(float(result.error[0]), math.sqrt(4 * 6.25) / 4)
    assert int(result.flags[0]) == 1 << 11                  # the rejected sample's WARM is dropped


def test_combine_unusable_samples() -> None:
    x, e, d = stack([[40, NAN, 60, 50, 7]], flags=[[0, 0, 0, 0, DNU]])
    result = kernels.combine_stack(x, e, d, "err", sigma=100)
    assert (float(result.value[0]), int(result.nused[0])) == (50.0, 3)


def test_combine_nothing_usable() -> None:
    x, e, d = stack([[NAN, 40, 40]], flags=[[0, DNU, DNU]])
    result = kernels.combine_stack(x, e, d)
    assert (float(result.value[0]), float(result.error[0]), int(result.flags[0]),
            int(result.nused[0])) == (0.0, 0.0, DNU, 0)


def test_combine_never_rejects_everything() -> None:
    # err threshold 0: every sample deviates from the median 4 -> keep the previous set
    x, e, d = stack([[1, 3, 5, 7]], errors=[[0.0] * 4])
    result = kernels.combine_stack(x, e, d, "err")
    assert (float(result.value[0]), int(result.nused[0])) == (4.0, 4)


def test_combine_auto_falls_back_to_mad() -> None:
    x, e, d = stack([[40, 40, 5000, 40, 40], [40, 40, 5000, 40, 40]],
                    errors=[[2.5, 2.5, 2.5, 2.5, 2.5], [2.5, 0.0, 2.5, 2.5, 2.5]])
    result = kernels.combine_stack(x, e, d, "auto")
    assert result.nmad == 1
    assert result.value.tolist() == [40.0, 40.0]


def test_combine_maxiters_zero_and_iterations() -> None:
    x, e, d = stack([[10, 10, 10, 10, 14, 30]], errors=[[1] * 6])
    assert float(kernels.combine_stack(x, e, d, "err", 3.0, 0).value[0]) == pytest.approx(84 / 6)
    one = kernels.combine_stack(x, e, d, "err", 3.0, 1)
    assert int(one.nused[0]) == 4                           # 14 and 30 out around median 10
    x, e, d = stack([[10, 10, 11, 12, 20, 40, 41, 42, 43]], errors=[[4] * 9])
    first = kernels.combine_stack(x, e, d, "err", 3.0, 1)
    more = kernels.combine_stack(x, e, d, "err", 3.0, 5)
    assert int(first.nused[0]) >= int(more.nused[0])


def test_combine_bad_stat() -> None:
    x, e, d = stack([[1, 2, 3]])
    with pytest.raises(KernelError, match="clip statistic"):
        kernels.combine_stack(x, e, d, "median")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=40),
                min_size=1, max_size=5))
def test_sorting_network_sorts(columns) -> None:
    n = min(len(c) for c in columns)
    values = np.array([c[:n] for c in columns], np.float32).T.copy()
    expected = np.sort(values, axis=0)
    kernels._sort_rows_inplace(values)
    assert np.array_equal(values, expected)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e4, 1e4, width=32), min_size=1, max_size=12),
       st.sampled_from(["err", "mad", "std", "auto"]))
def test_combine_mean_is_mean_of_kept(samples, stat) -> None:
    x, e, d = stack([samples], errors=[[1.0] * len(samples)])
    result = kernels.combine_stack(x, e, d, stat)
    n = int(result.nused[0])
    assert 1 <= n <= len(samples)
    assert len(samples) >= 3 or n == len(samples)


# --------------------------------------------------------------------------- T33

def _t33_data(seed: int = 33):
    rng = np.random.default_rng(seed)
    shape = (67, 61)
    sci = rng.normal(1000, 50, shape).astype(np.float32)
    sci[rng.random(shape) < 0.02] = np.nan
    err = rng.uniform(1, 5, shape).astype(np.float32)
    dq = (rng.random(shape) < 0.05).astype(np.uint32) * 4
    mask = (rng.random(shape) < 0.05).astype(np.uint32) * 1024
    dark = rng.normal(100, 5, shape).astype(np.float32)
    dark[rng.random(shape) < 0.02] = np.nan
    dark_err = rng.uniform(0, 2, shape).astype(np.float32)
    dark_dq = (rng.random(shape) < 0.03).astype(np.uint32) * 2048
    flat = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    pick = rng.random(shape)
    flat[pick < 0.03] = np.nan
    flat[(pick >= 0.03) & (pick < 0.06)] = 0.0
    flat[(pick >= 0.06) & (pick < 0.09)] = -1.0
    flat_err = rng.uniform(0, 0.05, shape).astype(np.float32)
    flat_dq = (rng.random(shape) < 0.03).astype(np.uint32) * NFF
    coeffs = np.stack([np.zeros(shape), np.ones(shape), np.full(shape, 1e-5)])
    coeffs[:, 5, 7] = np.nan
    refs = {"mask": mask, "nonlin_ref": kernels.NonlinRef(coeffs, "POLY"),
            "dark": kernels.RefArrays(dark, dark_err, dark_dq),
            "flat": kernels.RefArrays(flat, flat_err, flat_dq)}
    return (sci, err, dq), refs


def test_t33_block_rows_do_not_change_results() -> None:
    (sci, err, dq), refs = _t33_data()
    blocked = [a.copy() for a in (sci, err, dq)]
    whole = [a.copy() for a in (sci, err, dq)]
    kernels.calibrate(*blocked, block_rows=16, **refs)
    kernels.calibrate(*whole, block_rows=67, **refs)
    for got, want in zip(blocked[:2], whole[:2]):
        assert np.array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)
    assert np.array_equal(blocked[2], whole[2])
    # and the fused pass equals the single steps run on whole frames, in order
    steps = [a.copy() for a in (sci, err, dq)]
    kernels.dq_init(steps[2], refs["mask"])
    kernels.nonlin(*steps, refs["nonlin_ref"].coeffs, "POLY")
    kernels.subtract_dark(*steps, *(refs["dark"].sci, refs["dark"].err, refs["dark"].dq))
    kernels.apply_flat(*steps, *(refs["flat"].sci, refs["flat"].err, refs["flat"].dq))
    np.testing.assert_allclose(steps[0], whole[0], rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(steps[1], whole[1], rtol=1e-6, equal_nan=True)
    assert np.array_equal(steps[2], whole[2])
    # the NaN/0/negative flats were all flagged and left undivided
    bad = ~(np.isfinite(refs["flat"].sci) & (refs["flat"].sci > 0)) | (refs["flat"].dq != 0)
    assert np.all((whole[2][bad] & NFF) != 0)


def test_calibrate_with_row_offset() -> None:
    (sci, err, dq), refs = _t33_data(5)
    whole = [a.copy() for a in (sci, err, dq)]
    kernels.calibrate(*whole, block_rows=64, **refs)
    strip = [a[20:45].copy() for a in (sci, err, dq)]
    kernels.calibrate(*strip, block_rows=7, row0=20, **refs)
    np.testing.assert_allclose(strip[0], whole[0][20:45], rtol=1e-6, equal_nan=True)
    assert np.array_equal(strip[2], whole[2][20:45])
