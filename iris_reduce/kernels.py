"""Pure array kernels: every calibration step as an in-place numpy function.

Nothing here knows about FITS files or headers.  SCI and ERR are float32, DQ is uint32; the
functions modify them in place and allocate only temporaries of the size of what they are
given, so the pipeline can call them on row blocks of a frame (see :func:`calibrate`) and
keep memory flat.  Full-frame boolean fancy indexing is avoided on purpose: masked updates
use ``out=``/``where=``.

Reference inputs may be numpy arrays cut to the science extent, or *block sources*: objects
with ``rows(r0, r1)`` returning the rows ``r0:r1`` of the cut reference (the FITS layer's
memory-mapped readers).  Coefficient cubes are ``(ncoeff, ny, nx)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from iris_reduce.dq import DO_NOT_USE, NO_FLAT_FIELD, NO_LIN_CORR, UNRELIABLE_DARK
from iris_reduce.errors import KernelError

__all__ = [
    "RefArrays",
    "NonlinRef",
    "CombineResult",
    "flag_unusable",
    "dq_init",
    "nonlin",
    "subtract_dark",
    "apply_flat",
    "subtract_sky",
    "normalize",
    "median_of_good",
    "combine_stack",
    "calibrate",
    "CLIP_STATS",
    "NL_FORMS",
]

CLIP_STATS = ("auto", "err", "mad", "std")
NL_FORMS = ("POLY", "FACTOR")

_MAD_SCALE = np.float32(1.4826)


def _f32(array: Any) -> np.ndarray:
    """``array`` as native float32 (no copy when it already is)."""
    return np.asarray(array, dtype=np.float32)


def _u32(array: Any) -> np.ndarray:
    """``array`` as native uint32 (no copy when it already is)."""
    return np.asarray(array, dtype=np.uint32)


@dataclass(frozen=True)
class RefArrays:
    """A 2-D reference (dark, flat, sky): SCI with optional ERR and DQ, each cut to the science."""

    sci: Any
    err: Any = None
    dq: Any = None


@dataclass(frozen=True)
class NonlinRef:
    """Non-linearity coefficients ``(ncoeff, ny, nx)``, their form and an optional DQ."""

    coeffs: Any
    form: str = "POLY"
    dq: Any = None


# --------------------------------------------------------------------------- single steps

def flag_unusable(sci: np.ndarray, dq: np.ndarray) -> None:
    """Set DO_NOT_USE wherever SCI is not finite (done at load, independent of steps)."""
    np.bitwise_or(dq, DO_NOT_USE, out=dq, where=~np.isfinite(sci))


def dq_init(dq: np.ndarray, mask: Any) -> None:
    """dq_init: ``D |= M`` (M already translated through DQ_DEF)."""
    np.bitwise_or(dq, _u32(mask), out=dq)


def nonlin(sci: np.ndarray, err: np.ndarray, dq: np.ndarray, coeffs: Any,
           form: str = "POLY", ref_dq: Any = None) -> None:
    """Non-linearity correction, evaluated in float64.

    ``POLY``: y = sum c_k x^k.  ``FACTOR``: y = x (1 + sum c_k x^k).  A pixel whose
    coefficients are not all finite, or whose reference DQ has NO_LIN_CORR, keeps S and E
    and gets NO_LIN_CORR.  Pixels with non-finite SCI keep S and E too (their DO_NOT_USE
    already says they carry no value; a NaN error would only hide the input error).
    The reference DQ is OR-ed into every pixel, as for the other references.
    """
    form = form.upper()
    if form not in NL_FORMS:
        raise KernelError(f"unknown non-linearity form {form!r} (expected POLY or FACTOR)")
    c = np.asarray(coeffs, dtype=np.float64)
    if c.ndim != sci.ndim + 1 or c.shape[1:] != sci.shape or c.shape[0] < 1:
        raise KernelError(f"coefficient cube shape {c.shape} does not fit SCI shape {sci.shape}")
    bad = ~np.isfinite(c).all(axis=0)
    if ref_dq is not None:
        q = _u32(ref_dq)
        bad |= (q & NO_LIN_CORR) != 0
    x = sci.astype(np.float64)
    ncoeff = c.shape[0]
    if form == "POLY":
        y = c[-1].copy()
        for k in range(ncoeff - 2, -1, -1):
            y *= x
            y += c[k]
        dy = np.full_like(x, 0.0) if ncoeff == 1 else (ncoeff - 1) * c[-1]
        for k in range(ncoeff - 2, 0, -1):
            dy *= x
            dy += k * c[k]
    else:
        p = c[-1].copy()
        dp = ncoeff * c[-1]
        for k in range(ncoeff - 2, -1, -1):
            p *= x
            p += c[k]
            dp *= x
            dp += (k + 1) * c[k]
        y = x * (1.0 + p)
        dy = 1.0 + dp
    ok = ~bad
    ok &= np.isfinite(x)
    np.copyto(sci, y, where=ok, casting="same_kind")
    np.abs(dy, out=dy)
    dy *= err
    np.copyto(err, dy, where=ok, casting="same_kind")
    np.bitwise_or(dq, NO_LIN_CORR, out=dq, where=bad)
    if ref_dq is not None:
        np.bitwise_or(dq, q, out=dq)


def subtract_dark(sci: np.ndarray, err: np.ndarray, dq: np.ndarray, dark: Any,
                  dark_err: Any = None, dark_dq: Any = None) -> None:
    """Dark subtraction; a non-finite dark pixel subtracts 0 and sets UNRELIABLE_DARK."""
    k = _f32(dark)
    finite = np.isfinite(k)
    np.subtract(sci, k, out=sci, where=finite)
    if dark_err is not None:
        ke = _f32(dark_err)
        use = finite & np.isfinite(ke)
        ke2 = np.multiply(ke, ke)
        np.multiply(err, err, out=err)
        np.add(err, ke2, out=err, where=use)
        np.sqrt(err, out=err)
    if dark_dq is not None:
        np.bitwise_or(dq, _u32(dark_dq), out=dq)
    np.logical_not(finite, out=finite)
    np.bitwise_or(dq, UNRELIABLE_DARK, out=dq, where=finite)


def apply_flat(sci: np.ndarray, err: np.ndarray, dq: np.ndarray, flat: Any,
               flat_err: Any = None, flat_dq: Any = None) -> None:
    """Flat division; bad flat pixels (non-finite, <= 0, NO_FLAT_FIELD) divide by 1."""
    f = _f32(flat)
    good = f > 0                      # False for NaN
    good &= f < np.inf
    fd = None
    if flat_dq is not None:
        fd = _u32(flat_dq)
        good &= (fd & NO_FLAT_FIELD) == 0
    np.divide(sci, f, out=sci, where=good)
    np.divide(err, f, out=err, where=good)
    fe = None if flat_err is None else _f32(flat_err)
    if fe is not None and fe.any():          # an all-zero flat error adds nothing: skip
        use = good & np.isfinite(fe)
        # the relative term is 0 where the new SCI is not finite (NaN input, overflow)
        use &= np.isfinite(sci)
        term = np.zeros_like(sci)
        np.multiply(sci, fe, out=term, where=use)
        np.divide(term, f, out=term, where=use)
        np.multiply(term, term, out=term)
        np.multiply(err, err, out=err)
        err += term
        np.sqrt(err, out=err)
    if fd is not None:
        np.bitwise_or(dq, fd, out=dq)
    np.logical_not(good, out=good)
    np.bitwise_or(dq, NO_FLAT_FIELD, out=dq, where=good)


def subtract_sky(sci: np.ndarray, err: np.ndarray, dq: np.ndarray, sky: Any,
                 sky_err: Any = None, sky_dq: Any = None) -> None:
    """Sky subtraction: ``S -= Ssky``, errors in quadrature, ``D |= Dsky``."""
    np.subtract(sci, _f32(sky), out=sci)
    if sky_err is not None:
        se = _f32(sky_err)
        np.multiply(err, err, out=err)
        err += se * se
        np.sqrt(err, out=err)
    if sky_dq is not None:
        np.bitwise_or(dq, _u32(sky_dq), out=dq)


def median_of_good(sci: np.ndarray, dq: np.ndarray, method: str = "median") -> float:
    """Median (or mean) of SCI over pixels with finite SCI and DQ == 0.

    Raises KernelError when there is no such pixel.  The median of an even count is the
    mean of the two middle values (numpy's rule); the mean is summed in float64.
    """
    good = np.isfinite(sci)
    good &= dq == 0
    values = sci[good]
    if values.size == 0:
        raise KernelError("no good pixels (finite SCI and DQ == 0)")
    if method == "median":
        return float(np.median(values))
    if method == "mean":
        return float(np.sum(values, dtype=np.float64) / values.size)
    raise KernelError(f"unknown statistic {method!r} (expected median or mean)")


def normalize(sci: np.ndarray, err: np.ndarray, dq: np.ndarray, method: str = "median") -> float:
    """Divide SCI and ERR by the median/mean of the good pixels; return the factor."""
    factor = median_of_good(sci, dq, method)
    if not np.isfinite(factor) or factor <= 0:
        raise KernelError(f"normalization factor {factor!r} is not finite and > 0")
    scale = np.float32(factor)
    np.divide(sci, scale, out=sci)
    np.divide(err, scale, out=err)
    return factor


# --------------------------------------------------------------------------- fused driver

def _rows(source: Any, r0: int, r1: int, cube: bool = False) -> Any:
    """Rows ``r0:r1`` of a reference source (array or object with ``rows``)."""
    if source is None:
        return None
    if hasattr(source, "rows"):
        return source.rows(r0, r1)
    return source[:, r0:r1] if cube else source[r0:r1]


def calibrate(sci: np.ndarray, err: np.ndarray, dq: np.ndarray, *, mask: Any = None,
              nonlin_ref: NonlinRef | None = None, dark: RefArrays | None = None,
              flat: RefArrays | None = None, block_rows: int = 64, row0: int = 0) -> None:
    """Run dq_init, nonlin, dark and flat (those given) as one pass over row blocks.

    ``sci``/``err``/``dq`` hold frame rows ``row0 .. row0 + len(sci)``; references are
    addressed in frame rows, so a caller may calibrate a strip of a frame.  The result does
    not depend on ``block_rows``: every step is per pixel.
    """
    if block_rows < 1:
        raise KernelError("block_rows must be >= 1")
    nrows = sci.shape[0]
    for b0 in range(0, nrows, block_rows):
        b1 = min(b0 + block_rows, nrows)
        r0, r1 = row0 + b0, row0 + b1
        s, e, d = sci[b0:b1], err[b0:b1], dq[b0:b1]
        if mask is not None:
            dq_init(d, _rows(mask, r0, r1))
        if nonlin_ref is not None:
            nonlin(s, e, d, _rows(nonlin_ref.coeffs, r0, r1, cube=True), nonlin_ref.form,
                   _rows(nonlin_ref.dq, r0, r1))
        if dark is not None:
            subtract_dark(s, e, d, _rows(dark.sci, r0, r1), _rows(dark.err, r0, r1),
                          _rows(dark.dq, r0, r1))
        if flat is not None:
            apply_flat(s, e, d, _rows(flat.sci, r0, r1), _rows(flat.err, r0, r1),
                       _rows(flat.dq, r0, r1))


# --------------------------------------------------------------------------- combination

@dataclass(frozen=True)
class CombineResult:
    """Per-pixel result of :func:`combine_stack`."""

    value: np.ndarray      # float32
    error: np.ndarray      # float32
    flags: np.ndarray      # uint32
    nused: np.ndarray      # uint16
    nmad: int              # pixels that fell back to `mad` under `auto`


@lru_cache(maxsize=None)
def _sorting_network(n: int) -> tuple[tuple[int, int], ...]:
    """Batcher odd-even merge sort comparators for ``n`` inputs (pairs i < j)."""
    size = 1
    while size < n:
        size *= 2
    pairs: list[tuple[int, int]] = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    a, b = i + j, i + j + k
                    if a // (2 * p) == b // (2 * p):
                        pairs.append((a, b))
            k //= 2
        p *= 2
    # comparators touching padding (+inf) inputs never move anything
    return tuple((a, b) for a, b in pairs if b < n)


_NETWORK_MAX = 32


def _sort_rows_inplace(out: np.ndarray) -> None:
    n = out.shape[0]
    if n > _NETWORK_MAX:
        out.sort(axis=0)
        return
    tmp = np.empty_like(out[0])
    for a, b in _sorting_network(n):
        np.minimum(out[a], out[b], out=tmp)
        np.maximum(out[a], out[b], out=out[b])
        out[a] = tmp


def _masked_median(values: np.ndarray, kept: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Per-column median of ``values`` over ``kept`` (mean of the two middle ones)."""
    work = np.where(kept, values, np.float32(np.inf))
    _sort_rows_inplace(work)
    lo = np.maximum(count - 1, 0) // 2
    hi = np.maximum(count, 1) // 2
    hi = np.minimum(hi, values.shape[0] - 1)
    a = np.take_along_axis(work, lo[None, :], axis=0)[0]
    b = np.take_along_axis(work, hi[None, :], axis=0)[0]
    med = a + b
    med *= np.float32(0.5)
    return med


def _kept_std(values: np.ndarray, kept: np.ndarray, count: np.ndarray) -> np.ndarray:
    n = np.maximum(count, 1)
    total = np.sum(values, axis=0, where=kept, dtype=np.float64)
    mean = (total / n).astype(np.float32)
    dev = values - mean
    dev *= dev
    var = np.sum(dev, axis=0, where=kept, dtype=np.float64) / n
    return np.sqrt(var).astype(np.float32)


def combine_stack(values: np.ndarray, errors: np.ndarray, flags: np.ndarray,
                  stat: Literal["auto", "err", "mad", "std"] = "auto", sigma: float = 3.0,
                  maxiters: int = 3) -> CombineResult:
    """Sigma-clipped mean of N frames per pixel (spec section 7).

    ``values``/``errors`` float32 and ``flags`` uint32, shape ``(N, ...)``.  A sample is
    usable when finite and without DO_NOT_USE.  Pixels with at least 3 usable samples are
    clipped around the median of the kept samples, up to ``maxiters`` times, with the
    threshold ``sigma * e_i`` (err), ``sigma * 1.4826 * MAD`` (mad) or ``sigma * std``
    (std; cannot reject one outlier among fewer than 8).  ``auto`` uses err where every
    usable error is finite and > 0, else mad.  An iteration that would reject every kept
    sample of a pixel is not applied there.  The result is the mean of the kept samples
    (float64 sum), the error ``sqrt(sum e_i^2) / n`` and the OR of the kept flags; a pixel
    without any kept sample gets 0, 0 and DO_NOT_USE.
    """
    if stat not in CLIP_STATS:
        raise KernelError(f"unknown clip statistic {stat!r} (expected one of {CLIP_STATS})")
    if maxiters < 0:
        raise KernelError("maxiters must be >= 0")
    nframes = values.shape[0]
    shape = values.shape[1:]
    x = _f32(values).reshape(nframes, -1)
    e = _f32(errors).reshape(nframes, -1)
    d = _u32(flags).reshape(nframes, -1)

    kept = np.isfinite(x)
    kept &= (d & DO_NOT_USE) == 0
    count = kept.sum(axis=0, dtype=np.int64)
    clip = count >= 3
    nmad = 0
    use_err = None
    if stat == "auto":
        err_ok = np.isfinite(e)
        err_ok &= e > 0
        err_ok |= ~kept
        use_err = err_ok.all(axis=0)
        nmad = int(np.count_nonzero(clip & ~use_err))
        del err_ok

    with np.errstate(invalid="ignore", over="ignore"):
        if clip.any() and maxiters > 0:
            kept, count = _clip(x, e, kept, count, clip, stat, np.float32(sigma), maxiters,
                                use_err)
        return _mean_of_kept(x, e, d, kept, count, shape, nmad)


def _clip(x: np.ndarray, e: np.ndarray, kept: np.ndarray, count: np.ndarray,
          clip: np.ndarray, stat: str, sig: np.float32, maxiters: int,
          use_err: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The rejection iterations of :func:`combine_stack`; returns the final kept sets."""
    for _ in range(maxiters):
        centre = _masked_median(x, kept, count)
        dev = np.abs(x - centre)
        if stat == "std":
            reject = dev > sig * _kept_std(x, kept, count)
        elif stat == "mad":
            limit = _masked_median(dev, kept, count)
            limit *= _MAD_SCALE * sig
            reject = dev > limit
        else:
            limit = e * sig
            if stat == "auto" and use_err is not None and not use_err.all():
                mad = _masked_median(dev, kept, count)
                mad *= _MAD_SCALE * sig
                np.copyto(limit, np.broadcast_to(mad, limit.shape), where=~use_err)
            reject = dev > limit
        del dev
        reject &= kept
        reject &= clip
        if not reject.any():
            break
        new_kept = kept & ~reject
        new_count = new_kept.sum(axis=0, dtype=np.int64)
        emptied = new_count == 0
        if emptied.any():
            # rejecting every kept sample would leave nothing: keep the previous set there
            np.copyto(new_kept, kept, where=emptied)
            np.copyto(new_count, count, where=emptied)
            if np.array_equal(new_count, count):
                break
        kept, count = new_kept, new_count
    return kept, count


def _mean_of_kept(x: np.ndarray, e: np.ndarray, d: np.ndarray, kept: np.ndarray,
                  count: np.ndarray, shape: tuple[int, ...], nmad: int) -> CombineResult:
    total = np.sum(x, axis=0, where=kept, dtype=np.float64)
    n = np.maximum(count, 1)
    value = (total / n).astype(np.float32)
    e2 = e * e
    error = (np.sqrt(np.sum(e2, axis=0, where=kept, dtype=np.float64)) / n).astype(np.float32)
    del e2
    out_flags = np.bitwise_or.reduce(np.where(kept, d, np.uint32(0)), axis=0).astype(np.uint32)
    empty = count == 0
    np.copyto(value, 0.0, where=empty)
    np.copyto(error, 0.0, where=empty)
    np.copyto(out_flags, DO_NOT_USE, where=empty)
    return CombineResult(value.reshape(shape), error.reshape(shape), out_flags.reshape(shape),
                         count.astype(np.uint16).reshape(shape), nmad)
