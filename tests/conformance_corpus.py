"""Locating and reading ../shared/conformance for the replay tests.

The corpus is read where it lies (never copied into the project).  Outside CI a missing
corpus skips the replay; in CI (``CI=true``) it is a failure.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

CORPUS = Path(os.environ.get("CRDSMINI_CONFORMANCE", Path(__file__).resolve().parents[1].parent / "shared" / "conformance"))


def require_corpus(subdir: str = "") -> Path:
    """The corpus folder; skip (or fail in CI) when it is absent."""
    folder = CORPUS / subdir if subdir else CORPUS
    if not folder.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"conformance corpus missing in CI: {folder}")
        pytest.skip(f"conformance corpus not present at {folder}")
    return folder


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def names(pattern: str) -> list[str]:
    """File names in the corpus matching ``pattern`` (empty when the corpus is absent)."""
    if not CORPUS.is_dir():
        return ["<corpus absent>"]
    return sorted(p.name for p in CORPUS.glob(pattern))


def mapping_path(name: str) -> Path:
    observatory = name.split("_")[0].split("-")[0]
    return CORPUS / "mappings" / observatory / name
