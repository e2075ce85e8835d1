"""FITS input and output: lazy image planes, raw science frames, atomic product writing.

Files are opened memory-mapped with scaling switched off, and BSCALE/BZERO/BLANK are
applied per block by :class:`Plane`, so a reference or a stacked frame is read a row block
at a time instead of being converted whole (astropy would scale the whole array on first
access).  Every failure names the file and, where it applies, the EXTNAME.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from iris_reduce.errors import IrisReduceError
from iris_reduce.kernels import flag_unusable

__all__ = [
    "open_fits",
    "find_hdu",
    "Plane",
    "RawFrame",
    "ImageSpec",
    "write_fits_atomic",
    "clean_header",
    "utc_now",
    "file_stem",
]

log = logging.getLogger("iris_reduce")

#: keywords that describe the data layout; never copied from an input header to an output
STRUCTURAL = {
    "SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "BSCALE", "BZERO",
    "BLANK", "CHECKSUM", "DATASUM", "GROUPS", "THEAP", "TFIELDS", "ZIMAGE",
}


def open_fits(path: str | Path) -> fits.HDUList:
    """Open ``path`` memory-mapped and unscaled, reading every HDU header now.

    Raises IrisReduceError naming the path when it is missing, unreadable or not FITS.
    """
    path = Path(path)
    try:
        hdul = fits.open(path, memmap=True, do_not_scale_image_data=True, mode="readonly")
    except FileNotFoundError:
        raise IrisReduceError(path, "file not found") from None
    except (OSError, ValueError, TypeError) as exc:
        raise IrisReduceError(path, f"cannot read as FITS: {exc}") from None
    try:
        hdul.readall()
        if len(hdul) == 0:
            raise OSError("no HDU")
    except (OSError, ValueError, TypeError) as exc:
        hdul.close()
        raise IrisReduceError(path, f"cannot read as FITS: {exc}") from None
    return hdul


def find_hdu(hdul: fits.HDUList, *names: str) -> tuple[int, Any] | None:
    """First HDU whose EXTNAME equals one of ``names`` (case-insensitive), in name order.

    Names are tried in the order given ("SCI" before "DATA"); for each, the first matching
    HDU in the file wins.  Returns ``(index, hdu)`` or None.
    """
    for name in names:
        for index, hdu in enumerate(hdul):
            extname = hdu.header.get("EXTNAME")
            if isinstance(extname, str) and extname.strip().upper() == name.upper():
                return index, hdu
    return None


def _uncompressed(path: str | Path) -> bool:
    """True when ``path`` is a plain FITS file (not gzip/bzip2/zip): its bytes are the data."""
    try:
        with open(path, "rb") as handle:
            return handle.read(6) == b"SIMPLE"
    except OSError:
        return False


def _data_offset(path: str | Path, hdu: Any) -> int | None:
    """Byte offset of an HDU's data in an uncompressed file, else None."""
    try:
        info = hdu.fileinfo()
    except (AttributeError, KeyError, ValueError):
        return None
    if not info or info.get("datLoc") is None or not _uncompressed(path):
        return None
    return int(info["datLoc"])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


class Plane:
    """One image HDU read lazily; blocks come back as native float32 or uint32.

    The raw (unscaled) array is memory-mapped where astropy can map it; BSCALE, BZERO and
    BLANK are applied per block.  ``integer=True`` planes (DQ) must hold integers >= 0
    representable as uint32: a non-integer or negative value is an error naming the file
    and EXTNAME.
    """

    def __init__(self, path: str | Path, hdu: Any, extname: str, *, integer: bool = False) -> None:
        self.path = str(path)
        self.extname = extname
        self.header = hdu.header
        raw = hdu.data
        if raw is None:
            raise IrisReduceError(path, f"extension {extname} has no data", extension=extname)
        if raw.dtype.fields is not None or raw.dtype.kind not in "iuf":
            raise IrisReduceError(path, f"extension {extname} is not an image", extension=extname)
        self.raw = raw
        self.shape: tuple[int, ...] = tuple(raw.shape)
        self.ndim = raw.ndim
        bscale = self.header.get("BSCALE", 1)
        bzero = self.header.get("BZERO", 0)
        if not (_is_number(bscale) and _is_number(bzero)):
            raise IrisReduceError(path, f"extension {extname} has non-numeric BSCALE/BZERO",
                                  extension=extname)
        self.bscale = float(bscale)
        self.bzero = float(bzero)
        self.scaled = self.bscale != 1.0 or self.bzero != 0.0
        blank = self.header.get("BLANK")
        self.blank = int(blank) if raw.dtype.kind in "iu" and _is_number(blank) else None
        self.integer = integer
        self._offset = _data_offset(path, hdu)
        self._flip32 = False
        if integer:
            ok = (raw.dtype.kind in "iu" and self.bscale == 1.0
                  and float(self.bzero).is_integer())
            if not ok:
                raise IrisReduceError(
                    path, f"extension {extname} must hold integers (BITPIX={self.header.get('BITPIX')}"
                    f", BSCALE={bscale}, BZERO={bzero})", extension=extname)
            # the standard unsigned-32 encoding: int32 with BZERO = 2**31 -> flip the top bit
            self._flip32 = raw.dtype.kind == "i" and raw.dtype.itemsize == 4 and self.bzero == 2**31

    # ------------------------------------------------------------------ reading
    def _read_native(self, index: Any, itemsize: int) -> np.ndarray | None:
        """The whole plane read straight into one native array (one read, in-place swap).

        Memory-mapping + converting would touch every page twice and allocate a converted
        copy; this path allocates exactly the result.  Only for whole-plane reads of
        uncompressed files whose raw items already have the wanted size.
        """
        if index is not Ellipsis or self._offset is None or self.raw.dtype.itemsize != itemsize:
            return None
        out = np.empty(self.shape, dtype=self.raw.dtype.newbyteorder("="))
        view = memoryview(out).cast("B")
        with open(self.path, "rb", buffering=0) as handle:
            handle.seek(self._offset)
            done = 0
            while done < len(view):
                count = handle.readinto(view[done:])
                if not count:
                    return None              # truncated file: let astropy's path report it
                done += count
        if not self.raw.dtype.isnative:
            out.byteswap(inplace=True)
        return out

    def float32(self, index: Any = Ellipsis, out: np.ndarray | None = None) -> np.ndarray:
        """``raw[index]`` scaled, as native float32 (a new array or ``out``)."""
        if out is None and not self.scaled and self.blank is None \
                and self.raw.dtype.kind == "f":
            whole = self._read_native(index, 4)
            if whole is not None:
                return whole
        raw = self.raw[index]
        if not self.scaled and self.blank is None:
            if out is None:
                return np.array(raw, dtype=np.float32)
            out[...] = raw
            return out
        data = raw.astype(np.float64)
        if self.scaled:
            data *= self.bscale
            data += self.bzero
        if self.blank is not None:
            np.copyto(data, np.nan, where=raw == self.blank)
        if out is None:
            return data.astype(np.float32)
        out[...] = data
        return out

    def uint32(self, index: Any = Ellipsis, out: np.ndarray | None = None) -> np.ndarray:
        """``raw[index]`` scaled, as native uint32; negative or too large values are errors."""
        if out is None and (self._flip32 or (self.bzero == 0.0 and self.raw.dtype.kind == "u")):
            whole = self._read_native(index, 4)
            if whole is not None:
                whole = whole.view(np.uint32)
                if self._flip32:
                    whole ^= np.uint32(0x80000000)
                return whole
        raw = self.raw[index]
        if out is None:
            out = np.empty(raw.shape, dtype=np.uint32)
        if self._flip32:
            view = out.view(np.int32)
            view[...] = raw
            out ^= np.uint32(0x80000000)
            return out
        if self.bzero == 0.0:
            if raw.dtype.kind == "i" and raw.size and raw.min() < 0:
                raise self._negative()
            if raw.dtype.itemsize > 4 and raw.size and raw.max() > 0xFFFFFFFF:
                raise self._negative()
            out[...] = raw
            return out
        data = raw.astype(np.int64) + int(self.bzero)
        if data.size and (data.min() < 0 or data.max() > 0xFFFFFFFF):
            raise self._negative()
        out[...] = data
        return out

    def _negative(self) -> IrisReduceError:
        return IrisReduceError(self.path, f"extension {self.extname} has negative (or out of "
                               "uint32 range) values", extension=self.extname)


def _require_2d(path: str | Path, plane: Plane) -> None:
    if plane.ndim != 2:
        raise IrisReduceError(path, f"extension {plane.extname} must be 2-D, has ndim={plane.ndim}"
                              f" (shape {plane.shape})", extension=plane.extname)


@dataclass
class RawFrame:
    """A raw IRIS frame (science, sky, dark or flat-lamp input) opened lazily.

    Validated at open: SCI (or DATA) exists and is 2-D; ERR and DQ, when present, have its
    shape; DQ is integer.  ``read`` returns calibration-ready float32/float32/uint32 rows
    with DO_NOT_USE set where SCI is not finite.
    """

    path: Path
    hdul: fits.HDUList
    primary: fits.Header
    sci: Plane
    err: Plane | None
    dq: Plane | None
    sci_index: int
    extra: list[int] = field(default_factory=list)

    @classmethod
    def open(cls, path: str | Path) -> RawFrame:
        path = Path(path)
        hdul = open_fits(path)
        try:
            return cls._from_hdul(path, hdul)
        except BaseException:
            hdul.close()
            raise

    @classmethod
    def _from_hdul(cls, path: Path, hdul: fits.HDUList) -> RawFrame:
        found = find_hdu(hdul, "SCI", "DATA")
        if found is None:
            raise IrisReduceError(path, "no SCI (or DATA) image extension",
                                  extension="SCI")
        sci_index, sci_hdu = found
        sci = Plane(path, sci_hdu, "SCI")
        _require_2d(path, sci)
        used = {sci_index}
        planes: dict[str, Plane | None] = {}
        for name in ("ERR", "DQ"):
            hit = find_hdu(hdul, name)
            if hit is None:
                planes[name] = None
                continue
            index, hdu = hit
            used.add(index)
            plane = Plane(path, hdu, name, integer=(name == "DQ"))
            if plane.shape != sci.shape:
                raise IrisReduceError(path, f"{name} shape {plane.shape} differs from SCI shape "
                                      f"{sci.shape}", extension=name)
            planes[name] = plane
        extra = [i for i in range(1, len(hdul)) if i not in used]
        return cls(path, hdul, hdul[0].header, sci, planes["ERR"], planes["DQ"], sci_index, extra)

    @property
    def shape(self) -> tuple[int, int]:
        return self.sci.shape  # type: ignore[return-value]

    def read(self, r0: int = 0, r1: int | None = None,
             out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows ``r0:r1`` as (SCI float32, ERR float32, DQ uint32), DO_NOT_USE applied."""
        rows = slice(r0, self.shape[0] if r1 is None else r1)
        if out is None:
            s = self.sci.float32(rows)
            e = self.err.float32(rows) if self.err is not None else np.zeros_like(s)
            d = self.dq.uint32(rows) if self.dq is not None else np.zeros(s.shape, np.uint32)
        else:
            s, e, d = out
            self.sci.float32(rows, out=s)
            if self.err is not None:
                self.err.float32(rows, out=e)
            else:
                e[...] = 0
            if self.dq is not None:
                self.dq.uint32(rows, out=d)
            else:
                d[...] = 0
        flag_unusable(s, d)
        return s, e, d

    def close(self) -> None:
        self.hdul.close()

    def __enter__(self) -> RawFrame:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------- writing

@dataclass
class ImageSpec:
    """An image extension to write: name, array (float32/uint32/uint16) and header cards."""

    name: str
    data: np.ndarray
    header: fits.Header | None = None


def clean_header(header: fits.Header | None) -> fits.Header:
    """A copy of ``header`` without structural and checksum cards (layout is re-derived)."""
    out = fits.Header()
    if header is None:
        return out
    for card in header.cards:
        key = card.keyword
        if key in STRUCTURAL or (key.startswith("NAXIS") and key[5:].isdigit()) or key == "EXTNAME":
            continue
        out.append(card, end=True)
    return out


@contextlib.contextmanager
def _fits_unsigned(data: np.ndarray) -> Iterator[tuple[np.ndarray, int]]:
    """View an unsigned array as the signed FITS encoding (top bit flipped in place).

    Avoids astropy's whole-array copy for uint32 DQ; the caller's array is restored after.
    """
    bits = data.dtype.itemsize * 8
    top = data.dtype.type(1 << (bits - 1))
    data ^= top
    try:
        yield data.view(f"i{data.dtype.itemsize}"), 1 << (bits - 1)
    finally:
        data ^= top


def _image_hdu(spec: ImageSpec, stack: contextlib.ExitStack) -> fits.ImageHDU:
    header = clean_header(spec.header)
    data = spec.data
    if data.dtype.kind == "u" and data.dtype.itemsize in (2, 4, 8):
        if not data.flags.writeable or not data.dtype.isnative:
            data = np.array(data, dtype=data.dtype.newbyteorder("="))
        signed, zero = stack.enter_context(_fits_unsigned(data))
        hdu = fits.ImageHDU(data=signed, name=spec.name, do_not_scale_image_data=True)
        hdu.header["BSCALE"] = 1
        hdu.header["BZERO"] = zero
    else:
        hdu = fits.ImageHDU(data=data, name=spec.name)
    hdu.header.extend(header, end=True)
    return hdu


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_fits_atomic(path: str | Path, primary: fits.Header, images: Sequence[ImageSpec],
                      passthrough: Sequence[Any] = (), *, overwrite: bool = False) -> Path:
    """Write primary + images + passthrough HDUs to ``path`` atomically.

    The file is written to a hidden temporary in the destination directory and renamed into
    place; on any error the temporary is removed and nothing appears.  (No fsync: the rename
    protects readers against partial files; durability against power loss is the system's.)  Without
    ``overwrite`` an existing ``path`` is an error (checked again at the rename, which then
    uses a no-clobber hard link).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise IrisReduceError(path, "output exists; use --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle, contextlib.ExitStack() as stack:
            hdus: list[Any] = [fits.PrimaryHDU()]
            hdus[0].header.extend(clean_header(primary), end=True)
            hdus.extend(_image_hdu(spec, stack) for spec in images)
            hdus.extend(passthrough)
            fits.HDUList(hdus).writeto(handle, output_verify="silentfix")
        os.chmod(tmp, 0o666 & ~_umask())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise IrisReduceError(path, "output exists; use --overwrite to replace it") from None
            except OSError:
                if path.exists():
                    raise IrisReduceError(path, "output exists; use --overwrite to replace it") from None
                os.replace(tmp, path)
            tmp.unlink(missing_ok=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def utc_now() -> str:
    """The current UTC time as FITS DATE (``YYYY-MM-DDThh:mm:ss``)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def file_stem(path: str | Path) -> str:
    """Input name without ``.fits``/``.fits.gz`` (and without ``.fit``/``.fts``)."""
    name = Path(path).name
    for suffix in (".fits.gz", ".fit.gz", ".fts.gz", ".fits", ".fit", ".fts"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
