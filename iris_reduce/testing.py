"""Test helpers for iris_reduce (fixtures and a stand-in for the synthetic CRDS rules).

Imported by ``tests/test_iris_*.py``; not used by the library.  :func:`synthetic_resolver`
answers like crdsmini would for the synthetic contexts ``tmt_9001.pmap``/``tmt_9002.pmap``
(spec 13) so that every spec case also runs without the engine; the same cases run through
the real engine whenever ``crdsmini.load_mapping`` is importable.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner, Result

from iris_reduce.cli import main
from iris_reduce.refs import DictResolver
from iris_reduce.synth import write_synthetic

__all__ = [
    "engine_available",
    "synthetic_resolver",
    "Case",
    "synth_data",
    "case",
    "engine",
    "read_output",
    "copy_data",
    "edit_header",
    "Product",
]



def engine_available() -> bool:
    """True when the crdsmini engine (``crdsmini.load_mapping``) can be imported."""
    try:
        from crdsmini import load_mapping  # noqa: F401
    except ImportError:
        return False
    return True


def synthetic_resolver(cache: str | Path, context: str = "tmt_9001.pmap") -> DictResolver:
    """A DictResolver answering as the synthetic rules of spec 13 say (test stand-in).

    ``cache`` is the synthetic cache root (``<synth>/crds``); files are located in its
    ``references/tmt/iris/``.
    """
    refdir = Path(cache) / "references" / "tmt" / "iris"

    def answers(lookup: dict[str, str]) -> dict[str, str]:
        when = f"{lookup.get('META.OBSERVATION.DATE', '')} {lookup.get('META.OBSERVATION.TIME', '')}"
        detector = lookup.get("META.INSTRUMENT.DETECTOR", "").upper()
        subarray = lookup.get("META.SUBARRAY.NAME", "").upper()
        optics = (lookup.get("META.INSTRUMENT.FILTER", "").upper(),
                  lookup.get("META.INSTRUMENT.PUPIL", "").upper())
        miss = "NOT FOUND No match found."
        out = {
            "mask": "tmt_iris_synth_mask.fits" if detector == "IRIS1" and when >= "2015-01-01"
            else miss,
            "dark": "tmt_iris_synth_dark.fits" if detector == "IRIS1" and subarray in
            ("FULL", "CUSTOM") and when >= "2015-01-01" else miss,
            "nonlincoeff": "tmt_iris_synth_nonlin.fits" if detector == "IRIS1"
            and when >= "2015-01-01" else miss,
        }
        if detector != "IRIS1" or optics != ("K", "CLEAR"):
            out["flat"] = miss
        elif when >= "2020-01-01":
            out["flat"] = "tmt_iris_synth_flat_b.fits"
        elif when >= "2015-06-01":
            out["flat"] = "tmt_iris_synth_flat_a.fits"
        else:
            out["flat"] = miss
        if context == "tmt_9002.pmap":
            out["dark"] = "N/A"
        return out

    return DictResolver(answers, refdir, context=context)


@dataclass
class Case:
    """One spec case runner: synthetic inputs, a fresh output dir, and the engine to use."""

    data: Path
    out: Path
    engine: str

    def path(self, name: str) -> Path:
        return self.data / name

    def run(self, *args: Any, context: str = "tmt_9001.pmap", default: bool = True,
            crds: Path | None = None) -> Result:
        """``iris-reduce <args>`` with the default options of spec 14 (``--crds-path`` ...).

        ``crds`` replaces the synthetic cache root (e.g. a damaged copy).
        """
        argv = [str(a) for a in args]
        command = argv[0] if argv else ""
        root = self.data / "crds" if crds is None else Path(crds)
        if default and command in ("reduce", "make-sky", "make-dark", "make-flat"):
            argv += ["--crds-path", str(root), "--context", context]
            if command == "reduce" and "-o" not in argv and "--output" not in argv \
                    and "-d" not in argv:
                argv += ["-d", str(self.out)]
        obj = None
        if self.engine == "dict":
            obj = {"resolver": synthetic_resolver(root, context)}
        return CliRunner().invoke(main, argv, obj=obj, catch_exceptions=False)

    def output(self, name: str) -> Path:
        return self.out / name

    def written(self) -> list[str]:
        return sorted(p.name for p in self.out.iterdir()) if self.out.exists() else []


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The spec-13 synthetic data set, written once per test session (treat as read-only)."""
    root = tmp_path_factory.mktemp("iris_synth")
    write_synthetic(root, 64)
    return root


@pytest.fixture(params=["dict", "crdsmini"])
def engine(request: pytest.FixtureRequest) -> str:
    """Run a case with the rules stand-in and with the real crdsmini engine."""
    if request.param == "crdsmini" and not engine_available():
        pytest.skip("crdsmini engine not yet available")
    return request.param


@pytest.fixture
def case(synth_data: Path, tmp_path: Path, engine: str) -> Case:
    out = tmp_path / "out"
    return Case(synth_data, out, engine)


def copy_data(src: Path, dst_dir: Path, name: str | None = None) -> Path:
    """Copy one synthetic file somewhere it may be modified."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    target = dst_dir / (name or src.name)
    shutil.copyfile(src, target)
    return target


def edit_header(path: Path, **cards: Any) -> Path:
    """Set (value) or delete (None) primary keywords of a FITS file in place."""
    with fits.open(path, mode="update") as hdul:
        for key, value in cards.items():
            key = {"DATE_OBS": "DATE-OBS", "TIME_OBS": "TIME-OBS"}.get(key, key)
            if value is None:
                hdul[0].header.remove(key, ignore_missing=True)
            else:
                hdul[0].header[key] = value
    return path


@dataclass
class Product:
    """A written FITS product read back: primary header and named arrays."""

    header: fits.Header
    arrays: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def pixel(self, y: int, x: int, names: Sequence[str] = ("SCI", "ERR", "DQ")) -> tuple[Any, ...]:
        return tuple(self.arrays[n][y, x] for n in names)


def read_output(path: Path) -> Product:
    """Read a product (scaled the normal astropy way, so DQ comes back as uint32)."""
    with fits.open(path) as hdul:
        arrays = {h.name: np.array(h.data) for h in hdul[1:] if h.data is not None
                  and not isinstance(h, fits.BinTableHDU)}
        return Product(hdul[0].header.copy(), arrays)


def iter_files(root: Path) -> Iterator[Path]:
    yield from (p for p in root.rglob("*") if p.is_file())
