"""Stacks of frames: combined sky, ``make-sky``, ``make-dark`` and ``make-flat`` (spec 7).

Frames are read, calibrated and combined a strip of rows at a time (``stack_block_rows``),
so memory grows with N x strip, not N x frame.  Every frame is calibrated with references
chosen from its own header.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from iris_reduce import kernels
from iris_reduce.calibration import FramePlan, Session
from iris_reduce.config import CombineConfig, ReduceConfig
from iris_reduce.dq import DO_NOT_USE, NO_FLAT_FIELD
from iris_reduce.errors import IrisReduceError, KernelError
from iris_reduce.fitsio import ImageSpec, Plane, RawFrame, find_hdu, write_fits_atomic
from iris_reduce.records import write_records
from iris_reduce.refs import ReferenceResolver, observation_time
from iris_reduce.subarray import science_geometry

__all__ = [
    "Signature",
    "Combined",
    "SkyModel",
    "combine_plans",
    "open_frames",
    "build_sky",
    "load_sky_product",
    "write_sky_product",
    "make_sky",
    "make_dark",
    "make_flat",
    "SKY_STEPS",
]

log = logging.getLogger("iris_reduce")

SKY_STEPS = ("dq_init", "nonlin", "dark", "flat")
_MATCH_KEYS = ("DETECTOR", "FILTER", "PUPIL")


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ")"


def _norm(value: Any) -> str | None:
    return None if value is None else str(value).strip().upper()


@dataclass(frozen=True)
class Signature:
    """What frames combined with (or subtracted from) each other must share."""

    path: Path
    shape: tuple[int, int]
    origin: tuple[int, int]
    values: dict[str, str | None]

    @classmethod
    def of(cls, path: Path, header: Any, shape: tuple[int, int]) -> Signature:
        geometry = science_geometry(header, shape, path)
        return cls(Path(path), tuple(shape), (geometry.x0, geometry.y0),  # type: ignore[arg-type]
                   {key: _norm(header.get(key)) for key in _MATCH_KEYS})

    def check(self, other: Signature, *, keys: Sequence[str] = _MATCH_KEYS,
              blame: Path | None = None, role: str = "frame") -> None:
        """Raise IrisReduceError naming ``blame`` (default ``other.path``) on a mismatch."""
        blame = other.path if blame is None else blame
        against = self.path if blame == other.path else other.path
        if other.shape != self.shape:
            raise IrisReduceError(blame, f"{role} SCI shape mismatch: {_fmt_shape(other.shape)} "
                                  f"in {other.path} vs {_fmt_shape(self.shape)} in {self.path}")
        for index, key in enumerate(("SUBSTRT1", "SUBSTRT2")):
            if other.origin[index] != self.origin[index]:
                raise IrisReduceError(blame, f"{role} {key} mismatch: {other.origin[index]} in "
                                      f"{other.path} vs {self.origin[index]} in {self.path}",
                                      keyword=key)
        for key in keys:
            if other.values.get(key) != self.values.get(key):
                mine = other.values.get(key) if blame == other.path else self.values.get(key)
                theirs = self.values.get(key) if blame == other.path else other.values.get(key)
                raise IrisReduceError(blame, f"{role} {key}={mine!r} differs from {key}="
                                      f"{theirs!r} in {against}", keyword=key)


@dataclass
class Combined:
    """A combined full frame."""

    value: np.ndarray
    error: np.ndarray
    flags: np.ndarray
    nused: np.ndarray
    nmad: int


def open_frames(paths: Sequence[str | Path], keys: Sequence[str] = _MATCH_KEYS,
                role: str = "frame") -> tuple[list[RawFrame], Signature]:
    """Open raw frames and check they share geometry and ``keys`` (errors name the frame)."""
    if not paths:
        raise ValueError("no input frames")
    raws: list[RawFrame] = []
    try:
        first: Signature | None = None
        for path in paths:
            raw = RawFrame.open(path)
            raws.append(raw)
            signature = Signature.of(raw.path, raw.primary, raw.shape)
            if first is None:
                first = signature
            else:
                first.check(signature, keys=keys, role=role)
    except BaseException:
        for raw in raws:
            raw.close()
        raise
    assert first is not None
    return raws, first


def frame_median(session: Session, plan: FramePlan) -> float:
    """Median of a calibrated frame's SCI over pixels with DQ == 0 and finite SCI."""
    ny, nx = plan.raw.shape
    values = np.empty(ny * nx, dtype=np.float32)
    count = 0
    strip = session.config.stack_block_rows
    for r0 in range(0, ny, strip):
        r1 = min(r0 + strip, ny)
        s, e, d = plan.raw.read(r0, r1)
        session.calibrate(plan, s, e, d, row0=r0)
        good = np.isfinite(s)
        good &= d == 0
        picked = s[good]
        values[count:count + picked.size] = picked
        count += picked.size
    if count == 0:
        raise IrisReduceError(plan.path, "sky scaling: no good pixels (finite SCI, DQ == 0)")
    median = float(np.median(values[:count]))
    if not np.isfinite(median) or median <= 0:
        raise IrisReduceError(plan.path, f"sky scaling: median {median!r} is not finite and > 0")
    return median


def combine_plans(session: Session, plans: Sequence[FramePlan], combine: CombineConfig,
                  scales: Sequence[float] | None = None) -> Combined:
    """Calibrate and combine frames strip by strip (sigma-clipped mean, spec 7)."""
    ny, nx = plans[0].raw.shape
    nframes = len(plans)
    strip = min(session.config.stack_block_rows, ny)
    value = np.empty((ny, nx), dtype=np.float32)
    error = np.empty((ny, nx), dtype=np.float32)
    flags = np.empty((ny, nx), dtype=np.uint32)
    nused = np.empty((ny, nx), dtype=np.uint16)
    bx = np.empty((nframes, strip * nx), dtype=np.float32)
    be = np.empty_like(bx)
    bd = np.empty((nframes, strip * nx), dtype=np.uint32)
    nmad = 0
    for r0 in range(0, ny, strip):
        r1 = min(r0 + strip, ny)
        size = (r1 - r0) * nx
        for i, plan in enumerate(plans):
            s = bx[i, :size].reshape(r1 - r0, nx)
            e = be[i, :size].reshape(r1 - r0, nx)
            d = bd[i, :size].reshape(r1 - r0, nx)
            plan.raw.read(r0, r1, out=(s, e, d))
            session.calibrate(plan, s, e, d, row0=r0)
            if scales is not None:
                scale = np.float32(scales[i])
                s /= scale
                e /= scale
        try:
            result = kernels.combine_stack(bx[:, :size], be[:, :size], bd[:, :size],
                                           combine.stat, combine.sigma, combine.maxiters)
        except KernelError as exc:
            raise IrisReduceError(plans[0].path, f"combine: {exc}") from None
        value[r0:r1] = result.value.reshape(r1 - r0, nx)
        error[r0:r1] = result.error.reshape(r1 - r0, nx)
        flags[r0:r1] = result.flags.reshape(r1 - r0, nx)
        nused[r0:r1] = result.nused.reshape(r1 - r0, nx)
        nmad += result.nmad
    return Combined(value, error, flags, nused, nmad)


def _combine_records(combine: CombineConfig, prefix: str) -> dict[str, Any]:
    if prefix == "SKY":
        return {"SKYCSTAT": (combine.stat, "sky clip statistic"),
                "SKYSIG": (float(combine.sigma), "sky clip sigma"),
                "SKYITER": (int(combine.maxiters), "sky clip max iterations")}
    return {"CMBCSTAT": (combine.stat, "combine clip statistic"),
            "CMBSIG": (float(combine.sigma), "combine clip sigma"),
            "CMBITER": (int(combine.maxiters), "combine clip max iterations")}


def _history_for(plan: FramePlan) -> str:
    refs = ", ".join(f"{choice.reftype}={choice.record}" for choice in plan.choices.values())
    return f"input {plan.path.name}: steps {','.join(plan.runs) or 'none'}" + \
        (f"; {refs}" if refs else "")


# ---------------------------------------------------------------------- sky

@dataclass
class SkyModel:
    """The combined sky subtracted from every science frame of an invocation."""

    value: np.ndarray
    error: np.ndarray
    flags: np.ndarray
    nused: np.ndarray | None
    signature: Signature
    name: str                          # R_SKY
    scale_mode: str                    # "none" | "median" (frames normalised before combining)
    records: dict[str, Any] = field(default_factory=dict)
    first_header: fits.Header | None = None
    plans: list[FramePlan] = field(default_factory=list)


def build_sky(session: Session, raws: Sequence[RawFrame], signature: Signature,
              steps: tuple[str, ...], combine: CombineConfig, scale: str,
              name: str = "COMBINED") -> SkyModel:
    """Calibrate raw sky frames (their own references) and combine them."""
    plans = [session.prepare(raw, steps) for raw in raws]
    scales = [frame_median(session, plan) for plan in plans] if scale == "median" else None
    combined = combine_plans(session, plans, combine, scales)
    records: dict[str, Any] = {"SKYNFRM": (len(plans), "number of sky frames combined")}
    for i, plan in enumerate(plans, start=1):
        records[f"SKYF{i:04d}"] = (plan.path.name, "sky frame")
    records.update(_combine_records(combine, "SKY"))
    records["SKYNMAD"] = (combined.nmad, "sky pixels clipped with mad under auto")
    records["SKYSCMOD"] = (scale, "sky frame scaling mode")
    log.info("combined sky from %d frames (%s clipping, %d pixels fell back to mad)",
             len(plans), combine.stat, combined.nmad)
    return SkyModel(combined.value, combined.error, combined.flags, combined.nused, signature,
                    name, scale, records, raws[0].primary, plans)


def load_sky_product(path: str | Path) -> SkyModel:
    """Read a sky product (spec 3.4) written by ``make-sky`` or ``--save-sky``."""
    path = Path(path)
    with RawFrame.open(path) as raw:
        value, error, flags = raw.read()
        found = find_hdu(raw.hdul, "NUSED")
        nused = None
        if found is not None:
            nused = Plane(path, found[1], "NUSED", integer=True).uint32().astype(np.uint16)
        primary = raw.primary.copy()
        signature = Signature.of(path, primary, raw.shape)
    # the product's own SCI may hold 0 where no sample was kept; DO_NOT_USE there is correct
    mode = str(primary.get("SKYSCMOD", "none")).strip().lower()
    if mode not in ("none", "median"):
        raise IrisReduceError(path, f"SKYSCMOD={mode!r} is not 'none' or 'median'",
                              keyword="SKYSCMOD")
    records = {key: primary[key] for key in primary
               if key.startswith("SKY") and key not in ("SKYSCALE",)}
    return SkyModel(value, error, flags, nused, signature, path.name, mode, records, primary)


def _copy_keys(source: fits.Header | None, target: fits.Header, keys: Sequence[str]) -> None:
    if source is None:
        return
    for key in keys:
        if key in source:
            target[key] = (source[key], source.comments[key])


_GEOMETRY_KEYS = ("SUBARRAY", "SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2")


def write_sky_product(sky: SkyModel, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``sky`` as a sky product (primary records, SCI, ERR, DQ, NUSED)."""
    header = fits.Header()
    header["REFTYPE"] = ("SKY", "combined sky frame")
    _copy_keys(sky.first_header, header, ("TELESCOP", "INSTRUME", "DETECTOR", "FILTER", "PUPIL",
                                          *_GEOMETRY_KEYS, "DATE-OBS", "TIME-OBS"))
    first = sky.plans[0] if sky.plans else None
    write_records(header, ran=first.runs if first else (), attempted=first.steps if first else (),
                  choices=first.choices if first else {}, context=first.context if first else None,
                  extra=sky.records, history=[_history_for(p) for p in sky.plans])
    images = [ImageSpec("SCI", sky.value), ImageSpec("ERR", sky.error), ImageSpec("DQ", sky.flags)]
    if sky.nused is not None:
        images.append(ImageSpec("NUSED", sky.nused))
    return write_fits_atomic(path, header, images, overwrite=overwrite)


# ---------------------------------------------------------------------- make-*

def _check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not overwrite:
        raise IrisReduceError(output, "output exists; use --overwrite to replace it")


def _useafter(config: ReduceConfig, raws: Sequence[RawFrame], output: Path) -> str:
    if config.useafter is not None:
        text = config.useafter.strip()
        try:
            import datetime as _dt
            _dt.datetime.fromisoformat(text)
        except ValueError:
            raise IrisReduceError(output, f"USEAFTER={text!r} is not an ISO date/time "
                                  "(YYYY-MM-DDThh:mm:ss)", keyword="USEAFTER") from None
        return text
    stamps = []
    for raw in raws:
        date, time = observation_time(raw.primary, raw.path)
        stamps.append(f"{date}T{time[:8]}")
    return min(stamps)


def _reference_header(kind: str, config: ReduceConfig, raws: Sequence[RawFrame],
                      output: Path, combine: CombineConfig) -> fits.Header:
    first = raws[0].primary
    header = fits.Header()
    header["REFTYPE"] = (kind, "reference type")
    _copy_keys(first, header, ("TELESCOP", "INSTRUME", "DETECTOR", "FILTER", "PUPIL"))
    header["SUBARRAY"] = (str(first.get("SUBARRAY", "FULL")), "subarray name")
    if str(first.get("SUBARRAY", "FULL")).strip().upper() != "FULL":
        _copy_keys(first, header, _GEOMETRY_KEYS[1:])
    header["USEAFTER"] = (_useafter(config, raws, output), "use after this date/time")
    header["PEDIGREE"] = (config.pedigree, "pedigree")
    header["DESCRIP"] = (config.description or
                         f"{kind.lower()} combined from {len(raws)} frames by iris_reduce",
                         "description")
    header["AUTHOR"] = (config.author, "author")
    header["NCOMBINE"] = (len(raws), "number of frames combined")
    for key, value in _combine_records(combine, "CMB").items():
        header[key] = value
    return header


def _prepare_stack(session: Session, paths: Sequence[str | Path], keys: Sequence[str],
                   default: tuple[str, ...], allowed: tuple[str, ...],
                   output: Path) -> tuple[list[RawFrame], list[FramePlan], tuple[str, ...]]:
    try:
        steps = session.config.selected_steps(default, allowed)
    except ValueError as exc:
        raise IrisReduceError(output, str(exc)) from None
    _check_output(output, session.config.overwrite)
    raws, _ = open_frames(paths, keys)
    try:
        plans = [session.prepare(raw, steps) for raw in raws]
    except BaseException:
        for raw in raws:
            raw.close()
        raise
    return raws, plans, steps


def make_sky(paths: Sequence[str | Path], output: str | Path,
             config: ReduceConfig = ReduceConfig(), resolver: ReferenceResolver | None = None) -> Path:
    """Combine raw sky frames into a sky product (``iris-reduce make-sky``).

    Steps default to dq_init, dark, flat (``config.steps``/``skip`` choose among dq_init,
    nonlin, dark, flat); clipping uses ``config.combine``; ``config.sky.scale`` = median
    normalises each frame by its median before combining (recorded as SKYSCMOD).
    """
    output = Path(output)
    with Session(config, resolver) as session:
        try:
            steps = config.selected_steps(("dq_init", "dark", "flat"), SKY_STEPS)
        except ValueError as exc:
            raise IrisReduceError(output, str(exc)) from None
        _check_output(output, config.overwrite)
        raws, signature = open_frames(paths, role="sky frame")
        try:
            sky = build_sky(session, raws, signature, steps, config.combine, config.sky.scale,
                            output.name)
            return write_sky_product(sky, output, overwrite=config.overwrite)
        finally:
            for raw in raws:
                raw.close()


def make_dark(paths: Sequence[str | Path], output: str | Path,
              config: ReduceConfig = ReduceConfig(), resolver: ReferenceResolver | None = None) -> Path:
    """Combine dark frames into a DARK reference (``iris-reduce make-dark``).

    Per frame dq_init (+ nonlin when selected), then the clipped combination; pixels without
    any kept sample get SCI = NaN (and DO_NOT_USE).
    """
    output = Path(output)
    with Session(config, resolver) as session:
        raws, plans, steps = _prepare_stack(session, paths, ("DETECTOR",), ("dq_init",),
                                            ("dq_init", "nonlin"), output)
        try:
            combined = combine_plans(session, plans, config.combine)
            np.copyto(combined.value, np.float32(np.nan), where=combined.nused == 0)
            header = _reference_header("DARK", config, raws, output, config.combine)
            _write_reference(header, combined, plans, steps, output, config, {})
        finally:
            for raw in raws:
                raw.close()
    return output


def make_flat(paths: Sequence[str | Path], output: str | Path,
              config: ReduceConfig = ReduceConfig(), resolver: ReferenceResolver | None = None) -> Path:
    """Combine flat-lamp frames into a normalised FLAT reference (``iris-reduce make-flat``).

    Per frame dq_init and dark (+ nonlin when selected), clipped combination, division by the
    median (``config.normalize_method``) of the good combined pixels; pixels without any kept
    sample get SCI = NaN and DQ = DO_NOT_USE | NO_FLAT_FIELD.
    """
    output = Path(output)
    with Session(config, resolver) as session:
        raws, plans, steps = _prepare_stack(session, paths, _MATCH_KEYS, ("dq_init", "dark"),
                                            ("dq_init", "nonlin", "dark"), output)
        try:
            combined = combine_plans(session, plans, config.combine)
            try:
                factor = kernels.normalize(combined.value, combined.error, combined.flags,
                                           config.normalize_method)
            except KernelError as exc:
                raise IrisReduceError(output, f"normalize: {exc}") from None
            empty = combined.nused == 0
            np.copyto(combined.value, np.float32(np.nan), where=empty)
            np.copyto(combined.flags, np.uint32(DO_NOT_USE | NO_FLAT_FIELD), where=empty)
            header = _reference_header("FLAT", config, raws, output, config.combine)
            extra = {"NORMMETH": (config.normalize_method, "normalization statistic"),
                     "NORMFACT": (factor, "normalization factor")}
            _write_reference(header, combined, plans, steps + ("normalize",), output, config,
                             extra)
        finally:
            for raw in raws:
                raw.close()
    return output


def _write_reference(header: fits.Header, combined: Combined, plans: Sequence[FramePlan],
                     steps: tuple[str, ...], output: Path, config: ReduceConfig,
                     extra: dict[str, Any]) -> None:
    first = plans[0]
    ran = tuple(first.runs) + (("normalize",) if "normalize" in steps else ())
    write_records(header, ran=ran, attempted=steps, choices=first.choices,
                  context=first.context, extra=extra,
                  history=[_history_for(plan) for plan in plans])
    images = [ImageSpec("SCI", combined.value), ImageSpec("ERR", combined.error),
              ImageSpec("DQ", combined.flags)]
    write_fits_atomic(output, header, images, overwrite=config.overwrite)
