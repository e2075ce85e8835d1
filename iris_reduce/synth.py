"""Deterministic synthetic IRIS data (spec 13): science, sky, dark, flat-lamp frames, override
references and a small CRDS cache (``crds/``) in the TMT layout with two contexts.

No random numbers; every value is exact in binary (except the 1e-5 non-linearity
coefficient).  Special pixels sit at the same coordinates for every ``size``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from iris_reduce.dq import FLAGS
from iris_reduce.mappings import (
    ReferenceRules,
    imap_text,
    pmap_text,
    rmap_text,
    write_cache_config,
    write_mapping,
)

__all__ = ["write_synthetic", "science_header", "write_frame", "write_reference",
           "write_synthetic_cache", "SYNTH_NAMES"]

H0: dict[str, Any] = {
    "TELESCOP": "TMT",
    "INSTRUME": "IRIS",
    "DETECTOR": "IRIS1",
    "FILTER": "K",
    "PUPIL": "CLEAR",
    "SUBARRAY": "FULL",
    "DATE-OBS": "2019-05-01",
    "TIME-OBS": "12:00:00",
}

_REF_DIR = Path("crds") / "references" / "tmt" / "iris"


def science_header(**changes: Any) -> fits.Header:
    """The synthetic primary header H0 with ``changes`` (value None deletes a keyword)."""
    header = fits.Header()
    values = dict(H0)
    for key, value in changes.items():
        key = key.replace("_", "-") if key in ("DATE_OBS", "TIME_OBS") else key
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    for key, value in values.items():
        header[key] = value
    return header


def _write(path: Path, primary: fits.PrimaryHDU, *extensions: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([primary, *extensions]).writeto(path, overwrite=True)
    return path


def write_frame(path: str | Path, header: fits.Header, sci: np.ndarray, err: np.ndarray | None,
                dq: np.ndarray | None = None, bunit: str | None = "DN") -> Path:
    """Write a raw frame: primary header, SCI (BUNIT), optional ERR and DQ."""
    sci_hdu = fits.ImageHDU(np.asarray(sci, dtype=np.float32), name="SCI")
    if bunit is not None:
        sci_hdu.header["BUNIT"] = bunit
    extensions: list[Any] = [sci_hdu]
    if err is not None:
        err_hdu = fits.ImageHDU(np.asarray(err, dtype=np.float32), name="ERR")
        if bunit is not None:
            err_hdu.header["BUNIT"] = bunit
        extensions.append(err_hdu)
    if dq is not None:
        extensions.append(fits.ImageHDU(np.asarray(dq, dtype=np.uint32), name="DQ"))
    return _write(Path(path), fits.PrimaryHDU(header=header), *extensions)


def write_reference(path: str | Path, reftype: str, *, sci: np.ndarray | None = None,
                    err: np.ndarray | None = None, dq: np.ndarray | None = None,
                    header: dict[str, Any] | None = None, extra: Iterable[Any] = ()) -> Path:
    """Write a 2-D reference file (any of SCI/ERR/DQ) with a descriptive primary header."""
    primary = fits.PrimaryHDU()
    cards = {"REFTYPE": reftype, "TELESCOP": "TMT", "INSTRUME": "IRIS", "DETECTOR": "IRIS1",
             "PEDIGREE": "DUMMY", "AUTHOR": "iris_reduce synth",
             "DESCRIP": f"synthetic {reftype.lower()} reference"}
    cards.update(header or {})
    for key, value in cards.items():
        if value is not None:
            primary.header[key] = value
    extensions: list[Any] = []
    if sci is not None:
        extensions.append(fits.ImageHDU(np.asarray(sci, dtype=np.float32), name="SCI"))
    if err is not None:
        extensions.append(fits.ImageHDU(np.asarray(err, dtype=np.float32), name="ERR"))
    if dq is not None:
        extensions.append(fits.ImageHDU(np.asarray(dq, dtype=np.uint32), name="DQ"))
    extensions.extend(extra)
    return _write(Path(path), primary, *extensions)


def _dq_def(rows: list[tuple[int, int, str]]) -> fits.BinTableHDU:
    return fits.BinTableHDU.from_columns([
        fits.Column(name="BIT", format="J", array=np.array([r[0] for r in rows], np.int32)),
        fits.Column(name="VALUE", format="J", array=np.array([r[1] for r in rows], np.int32)),
        fits.Column(name="NAME", format="20A", array=np.array([r[2] for r in rows])),
        fits.Column(name="DESCRIPTION", format="40A",
                    array=np.array([f"flag {r[2]}" for r in rows])),
    ], name="DQ_DEF")


def write_synthetic_cache(root: str | Path) -> dict[str, Path]:
    """Mappings and config of the synthetic cache ``root`` (contexts tmt_9001/tmt_9002)."""
    root = Path(root)
    mapdir = root / "mappings" / "tmt"
    time_subst = {"META.SUBARRAY.NAME": {"GENERIC": "N/A"}}
    mask = ReferenceRules("MASK", ("META.INSTRUMENT.DETECTOR", "META.SUBARRAY.NAME"),
                          substitutions=time_subst)
    mask.add(("IRIS1", "GENERIC"), "2015-01-01 00:00:00", "tmt_iris_synth_mask.fits")
    dark = ReferenceRules("DARK", ("META.INSTRUMENT.DETECTOR", "META.SUBARRAY.NAME"),
                          substitutions=time_subst)
    dark.add(("IRIS1", "FULL"), "2015-01-01 00:00:00", "tmt_iris_synth_dark.fits")
    dark.add(("IRIS1", "CUSTOM"), "2015-01-01 00:00:00", "tmt_iris_synth_dark.fits")
    flat = ReferenceRules("FLAT", ("META.INSTRUMENT.DETECTOR", "META.INSTRUMENT.FILTER",
                                   "META.INSTRUMENT.PUPIL"))
    flat.add(("IRIS1", "K", "CLEAR"), "2015-06-01 00:00:00", "tmt_iris_synth_flat_a.fits")
    flat.add(("IRIS1", "K", "CLEAR"), "2020-01-01 00:00:00", "tmt_iris_synth_flat_b.fits")
    nonlin = ReferenceRules("NONLINCOEFF", ("META.INSTRUMENT.DETECTOR",))
    nonlin.add("IRIS1", "2015-01-01 00:00:00", "tmt_iris_synth_nonlin.fits")
    out: dict[str, Path] = {}
    rmaps = {"MASK": ("tmt_iris_mask_9001.rmap", mask), "DARK": ("tmt_iris_dark_9001.rmap", dark),
             "FLAT": ("tmt_iris_flat_9001.rmap", flat),
             "NONLINCOEFF": ("tmt_iris_nonlin_9001.rmap", nonlin)}
    for name, rules in rmaps.values():
        out[name] = write_mapping(mapdir, name, rmap_text(name, rules))
    selector = {kind: name for kind, (name, _) in rmaps.items()}
    out["tmt_iris_9001.imap"] = write_mapping(mapdir, "tmt_iris_9001.imap",
                                              imap_text("tmt_iris_9001.imap", selector))
    out["tmt_iris_9002.imap"] = write_mapping(mapdir, "tmt_iris_9002.imap",
                                              imap_text("tmt_iris_9002.imap",
                                                        dict(selector, DARK="N/A")))
    for number in ("9001", "9002"):
        name = f"tmt_{number}.pmap"
        out[name] = write_mapping(mapdir, name, pmap_text(
            name, {"IRIS": f"tmt_iris_{number}.imap"},
            description=f"iris_reduce synthetic test context {number}"))
    out["ref_cache_subdir_mode"] = write_cache_config(root)
    return out


def _files(n: int) -> dict[str, Callable[[Path], Path]]:
    """name -> writer, for every synthetic file at size ``n``."""

    def full(value: float) -> np.ndarray:
        return np.full((n, n), value, dtype=np.float32)

    def sci(path: Path, value: float = 1100.0, nan: bool = True, bunit: str = "DN",
            **changes: Any) -> Path:
        data = full(value)
        if nan:
            data[8, 8] = np.nan
        return write_frame(path, science_header(**changes), data, full(3.0),
                           np.zeros((n, n), np.uint32), bunit)

    def sub(path: Path, **changes: Any) -> Path:
        header = science_header(SUBARRAY="CUSTOM", SUBSTRT1=11, SUBSTRT2=21, SUBSIZE1=8,
                                SUBSIZE2=4)
        for key, value in changes.items():
            header[key] = value
        return write_frame(path, header, np.full((4, 8), 5000.0, np.float32),
                           np.zeros((4, 8), np.float32), np.zeros((4, 8), np.uint32))

    def frame(path: Path, value: float, special: tuple[int, int] | None = None,
              special_value: float = 0.0) -> Path:
        data = full(value)
        if special is not None:
            data[special] = special_value
        return write_frame(path, science_header(), data, full(3.0))

    def dark_ramp(path: Path) -> Path:
        y, x = np.mgrid[0:n, 0:n]
        return write_reference(path, "DARK", sci=(100 * y + x).astype(np.float32),
                               err=np.zeros((n, n), np.float32))

    def dark_ramp_sub(path: Path) -> Path:
        half = n // 2
        j, i = np.mgrid[0:half, 0:half]
        return write_reference(path, "DARK", sci=(100 * (j + 14) + (i + 4)).astype(np.float32),
                               err=np.zeros((half, half), np.float32),
                               header={"SUBARRAY": "CUSTOM", "SUBSTRT1": 5, "SUBSTRT2": 15,
                                       "SUBSIZE1": half, "SUBSIZE2": half})

    def mask_dqdef(path: Path, second: str) -> Path:
        dq = np.zeros((n, n), np.uint32)
        dq[1, 1] = 1
        dq[2, 2] = 2
        return write_reference(path, "MASK", dq=dq,
                               extra=[_dq_def([(0, 1, "DEAD"), (1, 2, second)])])

    def nonlin_factor(path: Path) -> Path:
        cube = np.zeros((2, n, n), np.float32)
        cube[1] = 1e-5
        primary = fits.PrimaryHDU(cube)
        for key, value in {"REFTYPE": "NONLINCOEFF", "TELESCOP": "TMT", "INSTRUME": "IRIS",
                           "DETECTOR": "IRIS1"}.items():
            primary.header[key] = value
        return _write(path, primary)

    def crds_mask(path: Path) -> Path:
        dq = np.zeros((n, n), np.uint32)
        dq[1, 1] = FLAGS["DO_NOT_USE"] | FLAGS["DEAD"]
        dq[2, 2] = FLAGS["HOT"]
        dq[13, 13] = FLAGS["REFERENCE_PIXEL"]
        return write_reference(path, "MASK", dq=dq, header={"USEAFTER": "2015-01-01T00:00:00"})

    def crds_dark(path: Path) -> Path:
        data = full(100.0)
        data[3, 3] = np.nan
        dq = np.zeros((n, n), np.uint32)
        dq[9, 9] = FLAGS["HOT"]
        return write_reference(path, "DARK", sci=data, err=full(4.0), dq=dq,
                               header={"SUBARRAY": "GENERIC", "USEAFTER": "2015-01-01T00:00:00"})

    def crds_flat_a(path: Path) -> Path:
        data = full(2.0)
        data[4, 4] = np.nan
        data[5, 5] = 0.0
        data[6, 6] = 4.0
        data[7, 7] = -1.0
        dq = np.zeros((n, n), np.uint32)
        dq[6, 6] = FLAGS["NO_FLAT_FIELD"]
        return write_reference(path, "FLAT", sci=data, err=full(0.0), dq=dq,
                               header={"FILTER": "K", "PUPIL": "CLEAR",
                                       "USEAFTER": "2015-06-01T00:00:00"})

    def crds_flat_b(path: Path) -> Path:
        return write_reference(path, "FLAT", sci=full(4.0), err=full(0.0),
                               header={"FILTER": "K", "PUPIL": "CLEAR",
                                       "USEAFTER": "2020-01-01T00:00:00"})

    def crds_nonlin(path: Path) -> Path:
        cube = np.zeros((3, n, n), np.float32)
        cube[1] = 1.0
        cube[2] = 1e-5
        cube[:, 12, 12] = np.nan
        coeffs = fits.ImageHDU(cube, name="COEFFS")
        coeffs.header["NLFORM"] = "POLY"
        return write_reference(path, "NONLINCOEFF", header={"USEAFTER": "2015-01-01T00:00:00"},
                               extra=[coeffs])

    files: dict[str, Callable[[Path], Path]] = {
        "sci_full.fits": lambda p: sci(p),
        "sci_late.fits": lambda p: sci(p, **{"DATE-OBS": "2021-01-01"}),
        "sci_nofilter.fits": lambda p: sci(p, FILTER=None),
        "sci_dn.fits": lambda p: sci(p, 1000.0, nan=False),
        "sci_rate.fits": lambda p: sci(p, 1000.0, nan=False, bunit="DN/s"),
        "sci_sub.fits": lambda p: sub(p),
        "sci_sub_oob.fits": lambda p: sub(p, SUBSTRT1=60),
        "sci_sub_badsize.fits": lambda p: sub(p, SUBSIZE1=9),
    }
    for k in range(1, 6):
        files[f"sky_{k:02d}.fits"] = (lambda p, k=k: frame(p, 180.0, (10, 10) if k == 3 else None,
                                                           10100.0))
        files[f"dark_{k:02d}.fits"] = (lambda p, k=k: frame(p, 100.0, (0, 0) if k == 2 else None,
                                                            5000.0))
    for k in range(1, 4):
        files[f"flatlamp_{k:02d}.fits"] = lambda p: frame(p, 3100.0, (0, 0), 6100.0)
    files.update({
        "dark_ramp.fits": dark_ramp,
        "dark_ramp_sub.fits": dark_ramp_sub,
        "dark_32.fits": lambda p: write_reference(p, "DARK", sci=np.full((32, 32), 100.0)),
        "flat_err.fits": lambda p: write_reference(p, "FLAT", sci=full(2.0), err=full(0.25)),
        "mask_nodq.fits": lambda p: write_reference(p, "MASK", sci=full(0.0)),
        "mask_dqdef.fits": lambda p: mask_dqdef(p, "HOT"),
        "mask_dqdef_bad.fits": lambda p: mask_dqdef(p, "FOO"),
        "nonlin_factor.fits": nonlin_factor,
        str(_REF_DIR / "tmt_iris_synth_mask.fits"): crds_mask,
        str(_REF_DIR / "tmt_iris_synth_dark.fits"): crds_dark,
        str(_REF_DIR / "tmt_iris_synth_flat_a.fits"): crds_flat_a,
        str(_REF_DIR / "tmt_iris_synth_flat_b.fits"): crds_flat_b,
        str(_REF_DIR / "tmt_iris_synth_nonlin.fits"): crds_nonlin,
    })
    return files


#: names write_synthetic knows (relative to OUTDIR); the cache mappings come with any crds/ file
SYNTH_NAMES: tuple[str, ...] = tuple(_files(64))


def write_synthetic(outdir: str | Path, size: int = 64, *,
                    names: Iterable[str] | None = None) -> dict[str, Path]:
    """Write the synthetic data set of spec 13 into ``outdir``; returns name -> path.

    ``names`` restricts the output to some files (relative names as in :data:`SYNTH_NAMES`,
    e.g. for large benchmark sizes); the cache mappings and config are always written.
    """
    if size < 32:
        raise ValueError("size must be >= 32 (special pixels and subarrays need the room)")
    outdir = Path(outdir)
    files = _files(size)
    wanted = list(files) if names is None else list(names)
    unknown = [name for name in wanted if name not in files]
    if unknown:
        raise ValueError(f"unknown synthetic file(s): {', '.join(unknown)}")
    out = {name: files[name](outdir / name) for name in wanted}
    for name, path in write_synthetic_cache(outdir / "crds").items():
        out[f"crds/{name}"] = path
    return out
