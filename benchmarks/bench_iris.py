#!/usr/bin/env python3
"""iris_reduce speed and memory (spec iris-reduce section 12; test case T35).

Writes ``synth --size 4096`` data (science frame, ten sky frames, the synthetic CRDS cache)
into a scratch directory and measures, in one run, each case of section 12 done two ways:

* **iris_reduce**: the package as shipped (fused row-block kernel, memory-mapped references
  read per block, strip-wise sky combination in float32);
* **anchors' way**: the same job structured like the anchor pipelines (the jwst/stpipe IRIS
  pipeline and its successor): every step works on a whole-frame copy of the model,
  references are read whole with astropy's default scaling, masks are full-frame
  ``np.where`` temporaries, and the sky is a float64 stack clipped with nanmedian/nanstd.
  It is an emulation written here for comparison (same arithmetic, anchors' data flow), not
  the anchors' code, which needs the STScI stack.

Time = best of ``--repeat`` runs (wall clock; ``reduce`` includes interpreter start, as a
subprocess, after one warm-up run).  Memory = peak of ``tracemalloc`` during the call
(numpy registers its buffers there; memory-mapped pages are not counted); for ``reduce``
also the child's max RSS.  Ratios are anchors / iris_reduce (higher = iris_reduce better).

Not part of ``make test``: ``python benchmarks/bench_iris.py [--size 4096] [--workdir DIR]``.
Exit status 1 when an iris_reduce figure is over its section-12 limit.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

MiB = 2**20
GiB = 2**30
CONTEXT = "tmt_9001.pmap"
REFS = Path("crds") / "references" / "tmt" / "iris"
DO_NOT_USE, NO_FLAT_FIELD, UNRELIABLE_DARK = 1, 1 << 18, 1 << 23

# spec section 12 limits: (seconds, traced bytes, rss bytes or None)
LIMITS = {
    "kernel": (0.250, 32 * MiB, None),
    "reduce": (3.0, 512 * MiB, int(1.5 * GiB)),
    "make-sky N=5": (20.0, 768 * MiB, None),
    "make-sky N=10": (30.0, 768 * MiB, None),
}


# --------------------------------------------------------------------------- measuring

def measure(func: Callable[[], Any], repeat: int, prepare: Callable[[], Any] | None = None
            ) -> tuple[float, int]:
    """(best wall time, peak traced bytes above the start) of ``func`` over ``repeat`` runs."""
    best, peak = float("inf"), 0
    for _ in range(repeat):
        args = prepare() if prepare is not None else None
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        func() if args is None else func(*args)
        elapsed = time.perf_counter() - start
        peak = max(peak, tracemalloc.get_traced_memory()[1] - base)
        tracemalloc.stop()
        del args
        best = min(best, elapsed)
    return best, peak


def timed(func: Callable[[], Any], repeat: int, prepare: Callable[[], Any] | None = None) -> float:
    """Best wall time without tracemalloc (its bookkeeping slows allocation-heavy code)."""
    best = float("inf")
    for _ in range(repeat):
        args = prepare() if prepare is not None else None
        gc.collect()
        start = time.perf_counter()
        func() if args is None else func(*args)
        best = min(best, time.perf_counter() - start)
        del args
    return best


def run_child(argv: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stderr}")
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "{}"
    try:
        report = json.loads(last)
    except ValueError:
        report = {}
    return elapsed, report


# --------------------------------------------------------------------------- data

def make_data(workdir: Path, size: int) -> None:
    from iris_reduce.synth import write_synthetic
    names = ["sci_full.fits", *[f"sky_{k:02d}.fits" for k in range(1, 6)],
             *[str(REFS / f"tmt_iris_synth_{n}.fits") for n in ("mask", "dark", "flat_a")]]
    if all((workdir / n).is_file() for n in names + ["sky_10.fits"]):
        with fits.open(workdir / "sci_full.fits") as hdul:
            if hdul["SCI"].data.shape == (size, size):
                return
    print(f"writing synthetic {size}x{size} data into {workdir} ...", flush=True)
    write_synthetic(workdir, size, names=names)
    for k in range(6, 11):                     # sky_06..10: the same frames under new names
        shutil.copyfile(workdir / f"sky_{k - 5:02d}.fits", workdir / f"sky_{k:02d}.fits")


def load_arrays(workdir: Path) -> dict[str, np.ndarray]:
    def read(name: str, ext: str, dtype: Any) -> np.ndarray:
        with fits.open(workdir / name) as hdul:
            return np.array(hdul[ext].data, dtype=dtype)
    out = {"sci": read("sci_full.fits", "SCI", np.float32),
           "err": read("sci_full.fits", "ERR", np.float32),
           "dq": read("sci_full.fits", "DQ", np.uint32),
           "mask": read(str(REFS / "tmt_iris_synth_mask.fits"), "DQ", np.uint32)}
    for kind, name in (("dark", "tmt_iris_synth_dark.fits"), ("flat", "tmt_iris_synth_flat_a.fits")):
        for ext, dtype in (("SCI", np.float32), ("ERR", np.float32), ("DQ", np.uint32)):
            out[f"{kind}_{ext.lower()}"] = read(str(REFS / name), ext, dtype)
    return out


# --------------------------------------------------------------------------- anchors' way

def anchor_calibrate(sci, err, dq, mask, dark_sci, dark_err, dark_dq, flat_sci, flat_err,
                     flat_dq):
    """dq_init -> dark -> flat as the anchors structure it: a model copy per step and
    full-frame np.where temporaries (same arithmetic as iris_reduce)."""
    # dq_init: output_model = input_model.copy()
    s1, e1, d1 = sci.copy(), err.copy(), dq.copy()
    d1 = np.bitwise_or(d1, mask)
    # dark
    s2, e2, d2 = s1.copy(), e1.copy(), d1.copy()
    finite = np.isfinite(dark_sci)
    s2 = s2 - np.where(finite, dark_sci, 0).astype(np.float32)
    ke = np.where(finite & np.isfinite(dark_err), dark_err, 0).astype(np.float32)
    e2 = np.sqrt(e2 ** 2 + ke ** 2)
    d2 = np.bitwise_or(np.bitwise_or(d2, dark_dq),
                       np.where(finite, 0, UNRELIABLE_DARK).astype(np.uint32))
    # flat
    s3, e3, d3 = s2.copy(), e2.copy(), d2.copy()
    bad = ~np.isfinite(flat_sci) | (flat_sci <= 0) | ((flat_dq & NO_FLAT_FIELD) != 0)
    f = np.where(bad, 1, flat_sci).astype(np.float32)
    fe = np.where(bad | ~np.isfinite(flat_err), 0, flat_err).astype(np.float32)
    s3 = s3 / f
    term = s3 * fe / f
    term = np.where(np.isfinite(s3), term, 0).astype(np.float32)
    e3 = np.sqrt((e3 / f) ** 2 + term ** 2)
    d3 = np.bitwise_or(np.bitwise_or(d3, flat_dq),
                       np.where(bad, NO_FLAT_FIELD, 0).astype(np.uint32))
    return s3, e3, d3


def _anchor_read(path: Path, exts: tuple[str, ...]) -> list[np.ndarray]:
    with fits.open(path, memmap=False) as hdul:          # whole arrays, astropy scaling
        out = []
        shape = hdul[exts[0]].data.shape
        for ext in exts:
            data = hdul[ext].data if ext in hdul else np.zeros(shape)   # absent ERR/DQ: 0
            out.append(data.astype(np.uint32) if ext == "DQ" else data.astype(np.float32))
        return out


def anchor_reduce(workdir: Path, science: Path, output: Path) -> None:
    sci, err, dq = _anchor_read(science, ("SCI", "ERR", "DQ"))
    (mask,) = _anchor_read(workdir / REFS / "tmt_iris_synth_mask.fits", ("DQ",))
    dark = _anchor_read(workdir / REFS / "tmt_iris_synth_dark.fits", ("SCI", "ERR", "DQ"))
    flat = _anchor_read(workdir / REFS / "tmt_iris_synth_flat_a.fits", ("SCI", "ERR", "DQ"))
    s, e, d = anchor_calibrate(sci, err, dq, mask, *dark, *flat)
    with fits.open(science) as hdul:
        primary = hdul[0].header.copy()
    fits.HDUList([fits.PrimaryHDU(header=primary), fits.ImageHDU(s, name="SCI"),
                  fits.ImageHDU(e, name="ERR"), fits.ImageHDU(d, name="DQ")]
                 ).writeto(output, overwrite=True)


def anchor_make_sky(workdir: Path, frames: list[Path]) -> tuple[np.ndarray, ...]:
    (mask,) = _anchor_read(workdir / REFS / "tmt_iris_synth_mask.fits", ("DQ",))
    dark = _anchor_read(workdir / REFS / "tmt_iris_synth_dark.fits", ("SCI", "ERR", "DQ"))
    flat = _anchor_read(workdir / REFS / "tmt_iris_synth_flat_a.fits", ("SCI", "ERR", "DQ"))
    values, errors, flags = [], [], []
    for frame in frames:
        s, e, d = anchor_calibrate(*_anchor_read(frame, ("SCI", "ERR", "DQ")), mask, *dark,
                                   *flat)
        values.append(s)
        errors.append(e)
        flags.append(d)
    x = np.stack(values).astype(np.float64)              # float64 stack, as the predecessor
    del values
    e = np.stack(errors).astype(np.float64)
    del errors
    d = np.stack(flags)
    del flags
    x[(d & DO_NOT_USE) != 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # all-NaN pixels (DO_NOT_USE)
        return _anchor_clip(x, e, d)


def _anchor_clip(x: np.ndarray, e: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, ...]:
    for _ in range(3):
        centre = np.nanmedian(x, axis=0)
        spread = np.nanstd(x, axis=0)
        reject = np.abs(x - centre) > 3.0 * spread
        if not reject.any():
            break
        x[reject] = np.nan
    kept = np.isfinite(x)
    n = kept.sum(axis=0)
    value = np.nanmean(x, axis=0)
    error = np.sqrt(np.where(kept, e * e, 0).sum(axis=0)) / np.maximum(n, 1)
    out_flags = np.bitwise_or.reduce(np.where(kept, d, 0), axis=0)
    return value.astype(np.float32), error.astype(np.float32), out_flags


# --------------------------------------------------------------------------- cases

def case_kernel(arrays: dict[str, np.ndarray], repeat: int) -> dict[str, Any]:
    from iris_reduce import kernels
    dark = kernels.RefArrays(arrays["dark_sci"], arrays["dark_err"], arrays["dark_dq"])
    flat = kernels.RefArrays(arrays["flat_sci"], arrays["flat_err"], arrays["flat_dq"])

    def fresh():
        return arrays["sci"].copy(), arrays["err"].copy(), arrays["dq"].copy()

    def ours(s, e, d):
        kernels.calibrate(s, e, d, mask=arrays["mask"], dark=dark, flat=flat, block_rows=64)

    def theirs(s, e, d):
        anchor_calibrate(s, e, d, arrays["mask"], *(arrays[f"dark_{x}"] for x in ("sci", "err", "dq")),
                         *(arrays[f"flat_{x}"] for x in ("sci", "err", "dq")))

    # the two must agree (same job)
    a, b = fresh(), fresh()
    ours(*a)
    got = anchor_calibrate(*b, arrays["mask"], *(arrays[f"dark_{x}"] for x in ("sci", "err", "dq")),
                           *(arrays[f"flat_{x}"] for x in ("sci", "err", "dq")))
    np.testing.assert_allclose(a[0], got[0], rtol=1e-6, equal_nan=True)
    assert np.array_equal(a[2], got[2])
    del a, b, got
    t_ours = timed(ours, repeat, fresh)
    _, m_ours = measure(ours, 1, fresh)
    t_theirs = timed(theirs, repeat, fresh)
    _, m_theirs = measure(theirs, 1, fresh)
    return {"ours": (t_ours, m_ours, None), "theirs": (t_theirs, m_theirs, None)}


_PEAK_RSS = """
import json, resource, sys, tracemalloc

def _peak_rss():
    # VmHWM is this process's own high-water mark; ru_maxrss survives exec and would
    # report the (larger) benchmark process that started us
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
"""

_CHILD_OURS = _PEAK_RSS + """
from iris_reduce.cli import main
import crdsmini.loading
tracemalloc.start()
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print(json.dumps({"traced": tracemalloc.get_traced_memory()[1], "rss": _peak_rss()}))
"""

_CHILD_THEIRS = _PEAK_RSS + """
sys.path.insert(0, sys.argv[1])
import bench_iris
from pathlib import Path
trace = sys.argv[5] == "trace"
if trace:
    tracemalloc.start()
bench_iris.anchor_reduce(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
print(json.dumps({"traced": tracemalloc.get_traced_memory()[1] if trace else 0,
                  "rss": _peak_rss()}))
"""


def case_reduce(workdir: Path, repeat: int) -> dict[str, Any]:
    env = dict(os.environ, CRDS_PATH=str(workdir / "crds"), CRDS_CONTEXT=CONTEXT)
    script = Path(sys.executable).with_name("iris-reduce")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "iris_reduce"]
    args = ["reduce", str(workdir / "sci_full.fits"), "-d", str(workdir / "out"), "--overwrite"]
    run_child(command + args, env)                       # warm the page cache
    t_ours = min(run_child(command + args, env)[0] for _ in range(repeat))
    _, report = run_child([sys.executable, "-c", _CHILD_OURS] + args, env)
    here = str(Path(__file__).resolve().parent)
    theirs = [sys.executable, "-c", _CHILD_THEIRS, here, str(workdir),
              str(workdir / "sci_full.fits"), str(workdir / "out" / "anchor_cal.fits")]
    run_child(theirs + ["time"], env)
    t_theirs = min(run_child(theirs + ["time"], env)[0] for _ in range(repeat))
    rss_theirs = run_child(theirs + ["time"], env)[1]["rss"]
    traced_theirs = run_child(theirs + ["trace"], env)[1]["traced"]
    return {"ours": (t_ours, report["traced"], report["rss"]),
            "theirs": (t_theirs, traced_theirs, rss_theirs)}


def case_make_sky(workdir: Path, nframes: int, repeat: int, anchor: bool) -> dict[str, Any]:
    from iris_reduce import ReduceConfig, make_sky
    from iris_reduce.refs import CrdsResolver
    frames = [workdir / f"sky_{k:02d}.fits" for k in range(1, nframes + 1)]
    config = ReduceConfig(overwrite=True)
    output = workdir / "out" / f"sky_{nframes}.fits"

    def ours():
        make_sky(frames, output, config, CrdsResolver(CONTEXT, workdir / "crds"))

    ours()                                               # warm up (page cache, imports)
    t_ours = timed(ours, repeat)
    _, m_ours = measure(ours, 1)
    result = {"ours": (t_ours, m_ours, None)}
    if anchor:
        t_theirs, m_theirs = measure(lambda: anchor_make_sky(workdir, frames), 1)
        result["theirs"] = (t_theirs, m_theirs, None)
    return result


# --------------------------------------------------------------------------- report

def _fmt_time(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _fmt_mem(traced: int, rss: int | None) -> str:
    text = f"{traced / MiB:.1f} MiB" if traced < 10 * MiB else f"{traced / MiB:.0f} MiB"
    return text + (f", RSS {rss / GiB:.2f} GiB" if rss else "")


def report(results: dict[str, dict[str, Any]]) -> bool:
    rows = [("case", "iris_reduce", "anchors' way", "time ratio", "memory ratio", "spec limit",
             "within")]
    ok_all = True
    for name, result in results.items():
        t, m, r = result["ours"]
        lt, lm, lr = LIMITS[name]
        ok = t <= lt and m <= lm and (lr is None or r is None or r <= lr)
        ok_all &= ok
        if "theirs" in result:
            tt, mt, rt = result["theirs"]
            theirs = f"{_fmt_time(tt)}, {_fmt_mem(mt, rt)}"
            ratios = (f"{tt / t:.1f}x", f"{mt / max(m, 1):.1f}x"
                      + (f" (RSS {rt / r:.1f}x)" if r and rt else ""))
        else:
            theirs, ratios = "-", ("-", "-")
        limit = f"<= {_fmt_time(lt)}, <= {lm / MiB:.0f} MiB" + (
            f", <= {lr / GiB:.1f} GiB RSS" if lr else "")
        rows.append((name, f"{_fmt_time(t)}, {_fmt_mem(m, r)}", theirs, *ratios, limit,
                     "yes" if ok else "NO"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * width for width in widths))
    return ok_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="iris_reduce section-12 benchmark (T35)")
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="scratch directory (kept); default: a temporary one (removed)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-anchor-sky", action="store_true",
                        help="skip the (slow, memory-hungry) anchors' make-sky")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_iris_"))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "out").mkdir(exist_ok=True)
    try:
        make_data(workdir, args.size)
        results: dict[str, dict[str, Any]] = {}
        print("kernel ...", flush=True)
        results["kernel"] = case_kernel(load_arrays(workdir), args.repeat)
        gc.collect()
        print("reduce ...", flush=True)
        results["reduce"] = case_reduce(workdir, args.repeat)
        for n in (5, 10):
            print(f"make-sky N={n} ...", flush=True)
            results[f"make-sky N={n}"] = case_make_sky(workdir, n, max(1, args.repeat - 1),
                                                       not args.no_anchor_sky)
            gc.collect()
        print(f"\niris_reduce vs the anchors' way, {args.size}x{args.size}, "
              f"{os.cpu_count()} cpu(s), python {sys.version.split()[0]}, numpy {np.__version__}"
              f" (ratios: anchors / iris_reduce)\n")
        ok = report(results)
        print(f"\nmax RSS of this process (anchors' make-sky included): "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        return 0 if ok else 1
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
