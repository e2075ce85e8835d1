"""crdsmini: CRDS-compatible calibration reference selection without the STScI stack."""
from __future__ import annotations

__version__ = "0.1.0"
