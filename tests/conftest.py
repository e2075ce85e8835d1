"""Shared test set-up: make the tests folder importable for the corpus helpers."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
