"""Subarray geometry (spec section 6): where a science frame sits on the detector and which
part of a reference covers it.

FITS/JWST convention, 1-based: SUBSTRT1 = first column (x), SUBSTRT2 = first row (y),
SUBSIZE1 = width, SUBSIZE2 = height.  Arrays are numpy ``(ny, nx)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iris_reduce.errors import IrisReduceError

__all__ = ["Geometry", "science_geometry", "reference_origin", "cut_offsets", "is_full"]


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(int(n)) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def is_full(header: Any) -> bool:
    """True when SUBARRAY is absent or ``FULL`` (case-insensitive)."""
    value = header.get("SUBARRAY")
    return value is None or str(value).strip().upper() in ("", "FULL")


def _positive_int(header: Any, key: str, path: str | Path, default: int | None = None) -> int:
    if key not in header:
        if default is not None:
            return default
        raise IrisReduceError(path, f"subarray keyword {key} is missing (SUBARRAY="
                              f"{header.get('SUBARRAY')!r})", keyword=key)
    value = header[key]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise IrisReduceError(path, f"{key}={value!r} is not a positive integer", keyword=key)
    return int(value)


@dataclass(frozen=True)
class Geometry:
    """Science frame placement: 1-based origin (x0, y0) and size (nx, ny)."""

    x0: int
    y0: int
    nx: int
    ny: int
    full: bool

    def describe(self) -> str:
        if self.full:
            return f"FULL frame, shape {_fmt_shape((self.ny, self.nx))}"
        return (f"SUBSTRT1={self.x0} SUBSTRT2={self.y0} SUBSIZE1={self.nx} "
                f"SUBSIZE2={self.ny}")


def science_geometry(header: Any, shape: tuple[int, int], path: str | Path) -> Geometry:
    """Geometry of a science frame from its primary header and SCI shape."""
    ny, nx = shape
    if is_full(header):
        return Geometry(1, 1, nx, ny, True)
    x0 = _positive_int(header, "SUBSTRT1", path)
    y0 = _positive_int(header, "SUBSTRT2", path)
    w = _positive_int(header, "SUBSIZE1", path)
    h = _positive_int(header, "SUBSIZE2", path)
    if w != nx:
        raise IrisReduceError(path, f"SUBSIZE1={w} differs from the SCI width {nx} "
                              f"(SCI shape {_fmt_shape(shape)})", keyword="SUBSIZE1")
    if h != ny:
        raise IrisReduceError(path, f"SUBSIZE2={h} differs from the SCI height {ny} "
                              f"(SCI shape {_fmt_shape(shape)})", keyword="SUBSIZE2")
    return Geometry(x0, y0, nx, ny, False)


def reference_origin(header: Any, shape: tuple[int, int], path: str | Path) -> tuple[int, int]:
    """1-based (rx0, ry0) of a reference; SUBSIZE1/2, when present, must equal its shape."""
    ny, nx = shape
    rx0 = _positive_int(header, "SUBSTRT1", path, default=1)
    ry0 = _positive_int(header, "SUBSTRT2", path, default=1)
    for key, size in (("SUBSIZE1", nx), ("SUBSIZE2", ny)):
        if key in header:
            value = _positive_int(header, key, path)
            if value != size:
                raise IrisReduceError(path, f"reference {key}={value} differs from its array "
                                      f"shape {_fmt_shape(shape)}", keyword=key)
    return rx0, ry0


def cut_offsets(science: Geometry, science_path: str | Path, ref_shape: tuple[int, int],
                ref_origin: tuple[int, int], ref_path: str | Path) -> tuple[int, int]:
    """``(oy, ox)`` such that ``ref[oy:oy+ny, ox:ox+nx]`` covers the science frame.

    Raises IrisReduceError (naming the science file, the reference file, the science
    SUBSTRT/SUBSIZE or both shapes) when the reference does not cover the science frame.
    """
    rny, rnx = ref_shape
    rx0, ry0 = ref_origin
    if science.full:
        if (rny, rnx) != (science.ny, science.nx) or (rx0, ry0) != (1, 1):
            raise IrisReduceError(
                science_path, f"shape mismatch: science SCI shape "
                f"{_fmt_shape((science.ny, science.nx))} vs reference {ref_path} shape "
                f"{_fmt_shape(ref_shape)}" + ("" if (rx0, ry0) == (1, 1) else
                                               f" at SUBSTRT1={rx0} SUBSTRT2={ry0}"))
        return 0, 0
    ox = science.x0 - rx0
    oy = science.y0 - ry0
    if ox < 0 or oy < 0 or ox + science.nx > rnx or oy + science.ny > rny:
        raise IrisReduceError(
            science_path, f"reference {ref_path} (SUBSTRT1={rx0} SUBSTRT2={ry0}, shape "
            f"{_fmt_shape(ref_shape)}) does not cover the science subarray {science.describe()}")
    return oy, ox
