"""The errors iris_reduce raises on purpose.

Every failure that concerns a file is an :class:`IrisReduceError` naming that file; the CLI
prints ``iris-reduce: error: <path>: <reason>`` and exits 1.  Pure kernels know no files, so
they raise :class:`KernelError` and the pipeline re-raises it naming the file.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["IrisReduceError", "KernelError"]


class IrisReduceError(Exception):
    """Raised when an input, a reference or an output makes the reduction of a file impossible."""

    def __init__(self, path: str | Path, reason: str, keyword: str | None = None,
                 extension: str | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        self.keyword = keyword
        self.extension = extension
        super().__init__(f"{self.path}: {reason}")


class KernelError(ValueError):
    """Raised by a pure array kernel when the data make a step impossible (no file known)."""
