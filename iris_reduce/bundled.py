"""The bundled default context: TMT/IRIS rules (``tmt_0010.pmap``) and their references.

One table (:data:`REFERENCES`) says which reference files exist and which rule selects each;
from it come the mapping files committed under ``mappings/tmt/`` (:func:`write_mappings`)
and the reference FITS files under ``references/tmt/iris/``, generated deterministically
and not committed (:func:`make_references`, run by ``scripts/make_bundled_references.py``
and by the demo when they are missing).  The rules give real choices: four detectors, four
filters, FULL and CUSTOM subarrays, several USEAFTER dates.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

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

__all__ = ["REFERENCES", "BundledReference", "DETECTORS", "FILTERS", "CONTEXT", "mapping_texts",
           "write_mappings", "make_references", "missing_references", "reference_dir",
           "DEFAULT_SIZE", "demo_science", "demo_header"]

CONTEXT = "tmt_0010.pmap"
IMAP = "tmt_iris_0010.imap"
DETECTORS = ("IRIS1", "IRIS2", "IRIS3", "IRIS4")
FILTERS = ("J", "H", "K", "Ks")
DEFAULT_SIZE = 256

_RMAPS = {"MASK": "tmt_iris_mask_0010.rmap", "DARK": "tmt_iris_dark_0010.rmap",
          "FLAT": "tmt_iris_flat_0010.rmap", "NONLINCOEFF": "tmt_iris_nonlincoeff_0010.rmap"}
_PARKEYS = {
    "MASK": ("META.INSTRUMENT.DETECTOR", "META.SUBARRAY.NAME"),
    "DARK": ("META.INSTRUMENT.DETECTOR", "META.SUBARRAY.NAME"),
    "FLAT": ("META.INSTRUMENT.DETECTOR", "META.INSTRUMENT.FILTER", "META.INSTRUMENT.PUPIL"),
    "NONLINCOEFF": ("META.INSTRUMENT.DETECTOR",),
}


@dataclass(frozen=True)
class BundledReference:
    """One bundled reference file and the rule rows that select it."""

    reftype: str
    name: str
    detector: str
    useafter: str                       # 'YYYY-MM-DD HH:MM:SS'
    keys: tuple[object, ...]            # Match keys (tuples, or bare values for one parkey)
    filter: str | None = None
    generation: int = 0                 # 0 = first calibration, 1 = later recalibration


def _table() -> tuple[BundledReference, ...]:
    refs: list[BundledReference] = []
    for det in DETECTORS:
        low = det.lower()
        refs.append(BundledReference("MASK", f"tmt_iris_mask_{low}_2019.fits", det,
                                     "2019-01-01 00:00:00", ((det, "GENERIC"),)))
        refs.append(BundledReference("DARK", f"tmt_iris_dark_{low}_2019.fits", det,
                                     "2019-01-01 00:00:00", ((det, "FULL"), (det, "CUSTOM"))))
        refs.append(BundledReference("DARK", f"tmt_iris_dark_{low}_2022.fits", det,
                                     "2022-01-01 00:00:00", ((det, "FULL"), (det, "CUSTOM")),
                                     generation=1))
        refs.append(BundledReference("NONLINCOEFF", f"tmt_iris_nonlin_{low}_2019.fits", det,
                                     "2019-01-01 00:00:00", (det,)))
        for band in FILTERS:
            refs.append(BundledReference("FLAT", f"tmt_iris_flat_{low}_{band.lower()}_2019.fits",
                                         det, "2019-01-01 00:00:00", ((det, band, "CLEAR"),),
                                         band))
    # IRIS1 was recalibrated in 2023: a new bad column, dust on the window
    refs.append(BundledReference("MASK", "tmt_iris_mask_iris1_2023.fits", "IRIS1",
                                 "2023-06-01 00:00:00", (("IRIS1", "GENERIC"),), generation=1))
    for band in FILTERS:
        refs.append(BundledReference("FLAT", f"tmt_iris_flat_iris1_{band.lower()}_2023.fits",
                                     "IRIS1", "2023-06-01 00:00:00", (("IRIS1", band, "CLEAR"),),
                                     band, generation=1))
    return tuple(refs)


REFERENCES: tuple[BundledReference, ...] = _table()


def mapping_texts() -> dict[str, str]:
    """File name -> canonical text of every bundled mapping."""
    subst = {"META.SUBARRAY.NAME": {"GENERIC": "N/A"}}
    rules = {kind: ReferenceRules(kind, _PARKEYS[kind],
                                  substitutions=subst if kind in ("MASK", "DARK") else None)
             for kind in _RMAPS}
    for ref in REFERENCES:
        for key in ref.keys:
            rules[ref.reftype].add(key, ref.useafter, ref.name)
    texts = {name: rmap_text(name, rules[kind]) for kind, name in _RMAPS.items()}
    texts[IMAP] = imap_text(IMAP, dict(_RMAPS))
    texts[CONTEXT] = pmap_text(CONTEXT, {"IRIS": IMAP},
                               description="iris_reduce bundled default context: IRIS1-4, "
                                           "J/H/K/Ks, synthetic references")
    return texts


def write_mappings(root: str | Path) -> list[Path]:
    """Write the bundled mappings and cache config under ``root`` (mappings/, config/)."""
    root = Path(root)
    written = [write_mapping(root / "mappings" / "tmt", name, text)
               for name, text in mapping_texts().items()]
    written.append(write_cache_config(root))
    return written


def reference_dir(root: str | Path) -> Path:
    return Path(root) / "references" / "tmt" / "iris"


def missing_references(root: str | Path) -> list[BundledReference]:
    directory = reference_dir(root)
    return [ref for ref in REFERENCES if not (directory / ref.name).is_file()]


# ---------------------------------------------------------------------- pixel content

def _hash(n: int, salt: int) -> np.ndarray:
    """Deterministic pseudo-random uint32 per pixel index (no RNG, stable everywhere)."""
    i = np.arange(n, dtype=np.uint64)
    x = (i * np.uint64(2654435761) + np.uint64(salt * 40503 + 12345)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(2246822519)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(13)
    return x.astype(np.uint32)


def _det_index(detector: str) -> int:
    return DETECTORS.index(detector) + 1


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return y / (size - 1) * 2 - 1, x / (size - 1) * 2 - 1


def _bad_columns(detector: str, generation: int, size: int) -> list[int]:
    k = _det_index(detector)
    cols = [(37 * k + 11) * size // 256]
    if generation:
        cols.append((173 + 5 * k) * size // 256)
    return cols


def _hot_pixels(detector: str, generation: int, size: int) -> np.ndarray:
    """Boolean map of hot pixels (more after ageing: generation 1)."""
    h = _hash(size * size, 7 * _det_index(detector)).reshape(size, size)
    rate = 400 if generation == 0 else 700          # per 2**20
    return (h & np.uint32(0xFFFFF)) < rate


def _mask(ref: BundledReference, size: int) -> np.ndarray:
    dq = np.zeros((size, size), np.uint32)
    for col in _bad_columns(ref.detector, ref.generation, size):
        dq[:, col] |= FLAGS["DO_NOT_USE"] | FLAGS["DEAD"]
    h = _hash(size * size, 31 * _det_index(ref.detector)).reshape(size, size)
    dq[(h & np.uint32(0xFFFFF)) < 150] |= FLAGS["DO_NOT_USE"] | FLAGS["LOW_QE"]
    dq[:4, :] |= FLAGS["REFERENCE_PIXEL"]
    dq[-4:, :] |= FLAGS["REFERENCE_PIXEL"]
    return dq


def _dark(ref: BundledReference, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yy, xx = _grid(size)
    level = 4.0 + 0.5 * _det_index(ref.detector) + 1.5 * ref.generation
    dark = (level + 1.0 * (yy + 1) + 0.5 * xx).astype(np.float32)
    hot = _hot_pixels(ref.detector, ref.generation, size)
    dark[hot] = 800.0
    err = np.full((size, size), 0.5, np.float32)
    dq = np.zeros((size, size), np.uint32)
    dq[hot] = FLAGS["HOT"]
    return dark, err, dq


def _flat(ref: BundledReference, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    yy, xx = _grid(size)
    k = _det_index(ref.detector)
    band = FILTERS.index(ref.filter or "K")
    r2 = (xx - 0.1 * k) ** 2 + (yy + 0.05 * band) ** 2
    flat = (1.0 - (0.10 + 0.03 * band) * r2) * (1.0 + 0.04 * (k - 2.5) * xx)
    flat *= 1.0 + 0.015 * np.sin(9.0 * xx + k) * np.cos(7.0 * yy - band)
    if ref.generation:                              # dust donuts on the window
        for cy, cx, rad in ((0.35, -0.4, 0.12), (-0.5, 0.45, 0.08)):
            d = np.hypot(yy - cy, xx - cx)
            flat *= 1.0 - 0.25 * np.exp(-((d - rad) / 0.03) ** 2)
    flat = (flat / np.median(flat)).astype(np.float32)
    err = np.full((size, size), 0.002, np.float32)
    dq = np.zeros((size, size), np.uint32)
    dead = _bad_columns(ref.detector, ref.generation, size)
    for col in dead:
        flat[:, col] = 0.0
        dq[:, col] = FLAGS["NO_FLAT_FIELD"]
    return flat, err, dq


def _nonlin(ref: BundledReference, size: int) -> tuple[np.ndarray, np.ndarray]:
    cube = np.zeros((3, size, size), np.float32)
    cube[1] = 1.0
    yy, _ = _grid(size)
    cube[2] = (1.5e-6 + 0.2e-6 * _det_index(ref.detector) + 0.3e-6 * yy).astype(np.float32)
    dq = np.zeros((size, size), np.uint32)
    for col in _bad_columns(ref.detector, 0, size):
        cube[:, :, col] = np.nan
        dq[:, col] = FLAGS["NO_LIN_CORR"]
    return cube, dq


def _header(ref: BundledReference, size: int) -> fits.Header:
    header = fits.Header()
    cards: dict[str, object] = {
        "TELESCOP": "TMT", "INSTRUME": "IRIS", "REFTYPE": ref.reftype, "DETECTOR": ref.detector,
    }
    if ref.reftype == "FLAT":
        cards.update(FILTER=ref.filter, PUPIL="CLEAR")
    if ref.reftype in ("MASK", "DARK"):
        cards["SUBARRAY"] = "GENERIC"
    cards.update({
        "USEAFTER": ref.useafter.replace(" ", "T"),
        "PEDIGREE": "DUMMY",
        "AUTHOR": "iris_reduce bundled",
        "DESCRIP": f"synthetic {ref.reftype.lower()} for {ref.detector}"
                   + (f" {ref.filter}" if ref.filter else "")
                   + (" (recalibration)" if ref.generation else ""),
    })
    for key, value in cards.items():
        header[key] = value
    return header


def _write_reference(path: Path, ref: BundledReference, size: int) -> Path:
    primary = fits.PrimaryHDU(header=_header(ref, size))
    hdus: list[object] = [primary]
    if ref.reftype == "MASK":
        hdus.append(fits.ImageHDU(_mask(ref, size), name="DQ"))
    elif ref.reftype in ("DARK", "FLAT"):
        sci, err, dq = _dark(ref, size) if ref.reftype == "DARK" else _flat(ref, size)
        hdus += [fits.ImageHDU(sci, name="SCI"), fits.ImageHDU(err, name="ERR"),
                 fits.ImageHDU(dq, name="DQ")]
    else:
        cube, dq = _nonlin(ref, size)
        coeffs = fits.ImageHDU(cube, name="COEFFS")
        coeffs.header["NLFORM"] = "POLY"
        hdus += [coeffs, fits.ImageHDU(dq, name="DQ")]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fits.HDUList(hdus).writeto(tmp, overwrite=True)
    tmp.replace(path)
    return path


def make_references(root: str | Path, size: int = DEFAULT_SIZE, *, only_missing: bool = False,
                    names: Iterable[str] | None = None) -> list[Path]:
    """Generate the bundled reference files under ``root/references/tmt/iris/``."""
    directory = reference_dir(root)
    chosen = list(REFERENCES)
    if names is not None:
        wanted = set(names)
        chosen = [ref for ref in chosen if ref.name in wanted]
    if only_missing:
        chosen = [ref for ref in chosen if not (directory / ref.name).is_file()]
    return [_write_reference(directory / ref.name, ref, size) for ref in chosen]


# ---------------------------------------------------------------------- demo science

def demo_header(*, detector: str = "IRIS1", band: str = "H", date: str = "2024-03-15",
                time: str = "06:12:30") -> fits.Header:
    """Primary header of a demo raw frame."""
    header = fits.Header()
    for key, value in {"TELESCOP": "TMT", "INSTRUME": "IRIS", "DETECTOR": detector,
                       "FILTER": band, "PUPIL": "CLEAR", "SUBARRAY": "FULL",
                       "DATE-OBS": date, "TIME-OBS": time, "EXPTIME": 60.0,
                       "OBJECT": "iris_reduce demo field"}.items():
        header[key] = value
    return header


def _read(path: Path | None, extname: str) -> np.ndarray | None:
    if path is None:
        return None
    with fits.open(path) as hdul:
        return np.array(hdul[extname].data)


def demo_science(path: str | Path, header: fits.Header, references: dict[str, Path | None],
                 size: int = DEFAULT_SIZE) -> Path:
    """A raw frame as the detector would record it, given the references in force.

    raw = flat x (sky + stars) + dark, dead pixels (mask DEAD) at 0, a few cosmic-ray hits
    and saturated star cores (NaN).  ``references`` maps MASK/DARK/FLAT to the files the
    rules chose for ``header`` (ask crdsmini); None means "no such effect".
    """
    band = str(header.get("FILTER", "K"))
    yy, _ = _grid(size)
    py, px = np.mgrid[0:size, 0:size]
    scene = 180.0 + 20.0 * (yy.astype(np.float64) + 1)
    h = _hash(64, 5 + (FILTERS.index(band) if band in FILTERS else 0))
    for i in range(0, 64, 2):
        cy = (int(h[i]) % (size - 20)) + 10
        cx = (int(h[i + 1]) % (size - 20)) + 10
        flux = 2000.0 + int(h[i] >> 20) * 8.0
        width = 1.2 + (int(h[i + 1]) % 7) * 0.15
        scene += flux * np.exp(-((py - cy) ** 2 + (px - cx) ** 2) / (2 * width ** 2))
    flat = _read(references.get("FLAT"), "SCI")
    dark = _read(references.get("DARK"), "SCI")
    mask = _read(references.get("MASK"), "DQ")
    raw = scene * (np.where(flat > 0, flat, 0.0) if flat is not None else 1.0)
    if dark is not None:
        raw += dark
    raw = raw.astype(np.float32)
    if mask is not None:
        raw[(mask & FLAGS["DEAD"]) != 0] = 0.0
    hits = _hash(16, 99)
    for i in range(0, 16, 2):
        raw[int(hits[i]) % size, int(hits[i + 1]) % size] += 5000.0
    raw[raw > 60000.0] = np.nan                  # saturated cores
    err = np.sqrt(np.clip(np.nan_to_num(raw), 0, None) + 25.0).astype(np.float32)
    sci = fits.ImageHDU(raw, name="SCI")
    sci.header["BUNIT"] = "DN"
    err_hdu = fits.ImageHDU(err, name="ERR")
    err_hdu.header["BUNIT"] = "DN"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([fits.PrimaryHDU(header=header), sci, err_hdu]).writeto(path, overwrite=True)
    return path
