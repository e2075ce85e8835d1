"""Reference files (MASK, DARK, FLAT, NONLINCOEFF): open, validate, cut to a science frame.

A :class:`ReferenceFile` keeps its FITS file open (memory-mapped) and hands out *block
sources* for the kernels: objects whose ``rows(r0, r1)`` read only those rows of the part
that covers the science frame, converting and translating (DQ_DEF) per block.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from iris_reduce.dq import FLAGS
from iris_reduce.errors import IrisReduceError
from iris_reduce.fitsio import Plane, find_hdu, open_fits
from iris_reduce.kernels import NL_FORMS, NonlinRef, RefArrays
from iris_reduce.subarray import Geometry, cut_offsets, reference_origin

__all__ = ["ReferenceFile", "CutPlane", "CutCube", "DqTranslation", "REFTYPES"]

REFTYPES = ("MASK", "NONLINCOEFF", "DARK", "FLAT")


class DqTranslation:
    """DQ_DEF table: reference DQ bit VALUE -> FLAGS[NAME]."""

    def __init__(self, path: str | Path, table: Any) -> None:
        self.path = str(path)
        names = {name.upper(): name for name in table.columns.names}
        if "NAME" not in names or ("VALUE" not in names and "BIT" not in names):
            raise IrisReduceError(path, "DQ_DEF table needs NAME and VALUE (or BIT) columns",
                                  extension="DQ_DEF")
        rows: list[tuple[int, int]] = []
        data = table.data
        for i in range(len(data)):
            name = str(data[names["NAME"]][i]).strip().upper()
            if "VALUE" in names:
                value = int(data[names["VALUE"]][i])
            else:
                value = 1 << int(data[names["BIT"]][i])
            if name not in FLAGS:
                raise IrisReduceError(path, f"DQ_DEF names unknown flag {name!r} (value {value})",
                                      keyword=name, extension="DQ_DEF")
            if value < 0 or value > 0xFFFFFFFF:
                raise IrisReduceError(path, f"DQ_DEF value {value} for {name} is not a uint32 bit",
                                      extension="DQ_DEF")
            rows.append((value, FLAGS[name]))
        self.rows = rows
        known = 0
        for value, _ in rows:
            known |= value
        self.known = np.uint32(known)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        present = int(np.bitwise_or.reduce(raw, axis=None)) if raw.size else 0
        stray = present & ~int(self.known) & 0xFFFFFFFF
        if stray:
            bits = [b for b in range(32) if stray >> b & 1]
            raise IrisReduceError(self.path, f"DQ bit(s) {bits} (value {stray}) set but not "
                                  "defined in DQ_DEF", extension="DQ_DEF")
        out = np.zeros(raw.shape, dtype=np.uint32)
        for value, flag in self.rows:
            if flag:
                np.bitwise_or(out, np.uint32(flag), out=out, where=(raw & np.uint32(value)) != 0)
        return out


@dataclass(frozen=True)
class CutPlane:
    """Block source: rows of ``plane[oy:oy+ny, ox:ox+nx]`` as float32 or uint32."""

    plane: Plane
    oy: int
    ox: int
    ny: int
    nx: int
    integer: bool = False
    translate: DqTranslation | None = None

    def rows(self, r0: int, r1: int) -> np.ndarray:
        index = (slice(self.oy + r0, self.oy + r1), slice(self.ox, self.ox + self.nx))
        if not self.integer:
            return self.plane.float32(index)
        block = self.plane.uint32(index)
        return self.translate(block) if self.translate is not None else block

    def read(self) -> np.ndarray:
        return self.rows(0, self.ny)


@dataclass(frozen=True)
class CutCube:
    """Block source for a coefficient cube, always returned as ``(ncoeff, rows, nx)``."""

    plane: Plane
    coeff_axis_last: bool
    oy: int
    ox: int
    ny: int
    nx: int

    def rows(self, r0: int, r1: int) -> np.ndarray:
        rows = slice(self.oy + r0, self.oy + r1)
        cols = slice(self.ox, self.ox + self.nx)
        if self.coeff_axis_last:
            return np.moveaxis(self.plane.float32((rows, cols, slice(None))), -1, 0)
        return self.plane.float32((slice(None), rows, cols))


class ReferenceFile:
    """An opened, validated reference file of one reftype."""

    def __init__(self, path: str | Path, reftype: str) -> None:
        self.path = Path(path)
        self.reftype = reftype.upper()
        if self.reftype not in REFTYPES:
            raise ValueError(f"unknown reftype {reftype!r}")
        self.hdul = open_fits(self.path)
        try:
            self.primary = self.hdul[0].header
            self.sci: Plane | None = None
            self.err: Plane | None = None
            self.dq: Plane | None = None
            self.coeffs: Plane | None = None
            self.coeff_axis_last = False
            self.form: str | None = None
            self.translation: DqTranslation | None = None
            getattr(self, f"_open_{self.reftype.lower()}")()
            self.origin = reference_origin(self.primary, self.extent, self.path)
        except BaseException:
            self.hdul.close()
            raise

    # ---------------------------------------------------------------- per reftype
    def _plane(self, name: str, *, integer: bool = False, ndim: int | None = 2,
               required: bool = True, aliases: tuple[str, ...] = ()) -> Plane | None:
        found = find_hdu(self.hdul, name, *aliases)
        if found is None:
            if required:
                raise IrisReduceError(self.path, f"{self.reftype} reference has no {name} "
                                      "extension", extension=name)
            return None
        plane = Plane(self.path, found[1], name, integer=integer)
        if ndim is not None and plane.ndim != ndim:
            raise IrisReduceError(self.path, f"{self.reftype} reference extension {name} must "
                                  f"be {ndim}-D, has ndim={plane.ndim}", extension=name)
        return plane

    def _optional_same_shape(self, name: str, integer: bool, shape: tuple[int, ...]) -> Plane | None:
        plane = self._plane(name, integer=integer, ndim=None, required=False)
        if plane is not None and plane.shape != shape:
            raise IrisReduceError(self.path, f"{self.reftype} reference {name} shape "
                                  f"{plane.shape} differs from {shape}", extension=name)
        return plane

    def _open_mask(self) -> None:
        self.dq = self._plane("DQ", integer=True)
        found = find_hdu(self.hdul, "DQ_DEF")
        if found is not None:
            if not isinstance(found[1], fits.BinTableHDU):
                raise IrisReduceError(self.path, "DQ_DEF is not a binary table",
                                      extension="DQ_DEF")
            self.translation = DqTranslation(self.path, found[1])
        self.extent = self.dq.shape  # type: ignore[union-attr]

    def _open_2d(self) -> None:
        self.sci = self._plane("SCI", aliases=("DATA",))
        assert self.sci is not None
        self.err = self._optional_same_shape("ERR", False, self.sci.shape)
        self.dq = self._optional_same_shape("DQ", True, self.sci.shape)
        self.extent = self.sci.shape

    _open_dark = _open_2d
    _open_flat = _open_2d

    def _open_nonlincoeff(self) -> None:
        found = find_hdu(self.hdul, "COEFFS")
        if found is not None:
            self.coeffs = Plane(self.path, found[1], "COEFFS")
            if self.coeffs.ndim != 3:
                raise IrisReduceError(self.path, f"NONLINCOEFF extension COEFFS must be 3-D, has "
                                      f"ndim={self.coeffs.ndim}", extension="COEFFS")
            form = found[1].header.get("NLFORM", self.primary.get("NLFORM"))
            if form is None:
                self.form, self.coeff_axis_last = "POLY", True
            else:
                self.form = str(form).strip().upper()
                if self.form not in NL_FORMS:
                    raise IrisReduceError(self.path, f"NLFORM={form!r} is not one of "
                                          f"{', '.join(NL_FORMS)}", keyword="NLFORM")
        else:
            primary = self.hdul[0]
            if primary.data is None or primary.data.ndim != 3:
                ndim = 0 if primary.data is None else primary.data.ndim
                raise IrisReduceError(self.path, "NONLINCOEFF reference has no COEFFS extension "
                                      f"and no 3-D primary image (primary ndim={ndim})",
                                      extension="COEFFS")
            self.coeffs = Plane(self.path, primary, "PRIMARY")
            self.form = "FACTOR"
        shape = self.coeffs.shape
        self.extent = shape[:2] if self.coeff_axis_last else shape[1:]
        self.dq = self._optional_same_shape("DQ", True, tuple(self.extent))

    # ---------------------------------------------------------------- cutting
    def cut(self, science: Geometry, science_path: str | Path) -> Any:
        """Block sources covering ``science``; IrisReduceError when it is not covered."""
        oy, ox = cut_offsets(science, science_path, tuple(self.extent), self.origin, self.path)
        ny, nx = science.ny, science.nx

        def plane(p: Plane | None, integer: bool = False,
                  translate: DqTranslation | None = None) -> CutPlane | None:
            return None if p is None else CutPlane(p, oy, ox, ny, nx, integer, translate)

        if self.reftype == "MASK":
            return plane(self.dq, True, self.translation)
        if self.reftype == "NONLINCOEFF":
            assert self.coeffs is not None and self.form is not None
            return NonlinRef(CutCube(self.coeffs, self.coeff_axis_last, oy, ox, ny, nx),
                             self.form, plane(self.dq, True))
        return RefArrays(plane(self.sci), plane(self.err), plane(self.dq, True))

    def close(self) -> None:
        self.hdul.close()
