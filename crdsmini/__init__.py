"""crdsmini: CRDS-compatible calibration reference selection without the STScI stack.

``load_mapping`` loads a .pmap/.imap/.rmap; ``getrecommendations``/``getreferences`` are the
CRDS-style drop-in calls for reduction code.
"""
from __future__ import annotations

import logging

__version__ = "0.1.0"

# A library logs; the application decides where that goes (the CLI configures it).
logging.getLogger("crdsmini").addHandler(logging.NullHandler())

from crdsmini.api import getrecommendations, getreferences  # noqa: E402
from crdsmini.loading import load_mapping  # noqa: E402
from crdsmini.model import InstrumentContext, PipelineContext, ReferenceMapping  # noqa: E402

__all__ = [
    "load_mapping",
    "getrecommendations",
    "getreferences",
    "PipelineContext",
    "InstrumentContext",
    "ReferenceMapping",
    "__version__",
]
