"""iris_reduce: calibrate TMT IRIS imager frames with references chosen by crdsmini.

numpy + astropy.io.fits only.  Public API: :class:`ReduceConfig` (+ :class:`SkyConfig`,
:class:`CombineConfig`), :func:`reduce_file`, :func:`reduce_files`, :func:`make_dark`,
:func:`make_flat`, :func:`make_sky`, the pure kernels in :mod:`iris_reduce.kernels`,
:func:`iris_reduce.synth.write_synthetic`, :class:`IrisReduceError` and
:data:`iris_reduce.dq.FLAGS`.
"""
from __future__ import annotations

__version__ = "0.1.0"

from iris_reduce.config import CombineConfig, ReduceConfig, SkyConfig  # noqa: E402
from iris_reduce.errors import IrisReduceError  # noqa: E402
from iris_reduce.pipeline import Result, reduce_file, reduce_files  # noqa: E402
from iris_reduce.stack import make_dark, make_flat, make_sky  # noqa: E402

__all__ = [
    "__version__",
    "CombineConfig",
    "IrisReduceError",
    "ReduceConfig",
    "Result",
    "SkyConfig",
    "make_dark",
    "make_flat",
    "make_sky",
    "reduce_file",
    "reduce_files",
]
