"""Writing small TMT rules caches (synthetic test cache, bundled default context).

Renders ``.pmap``/``.imap``/``.rmap`` text in CRDS's canonical layout (header keys sorted,
4-space indent per level, ``'key' : value,`` lines, one blank line between sections, final
newline) for Match -> UseAfter rules, and stamps each file with its ``sha1sum`` computed by
crdsmini's own checksum rule.  This module only writes rules; choosing references from them
is crdsmini's job.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crdsmini.checksum import compute_checksum

__all__ = ["ReferenceRules", "rmap_text", "imap_text", "pmap_text", "write_cache_config",
           "write_mapping", "OBSERVATION_TIME"]

OBSERVATION_TIME = ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME")
_SHA_PLACEHOLDER = "0" * 40


def _dict_lines(mapping: Mapping[Any, Any], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for key in sorted(mapping, key=_sort_key):
        value = mapping[key]
        if isinstance(value, Mapping):
            lines.append(f"{pad}{key!r} : {{")
            lines.extend(_dict_lines(value, indent + 4))
            lines.append(f"{pad}}},")
        else:
            lines.append(f"{pad}{key!r} : {value!r},")
    return lines


def _sort_key(key: Any) -> tuple[str, ...]:
    """Rows sort by ``str()`` of each key field; a bare key is a 1-tuple."""
    return tuple(str(part) for part in key) if isinstance(key, tuple) else (str(key),)


def _finish(header: dict[str, Any], selector_lines: list[str]) -> str:
    header = dict(header, sha1sum=_SHA_PLACEHOLDER)
    text = "\n".join(["header = {", *_dict_lines(header, 4), "}", "", *selector_lines]) + "\n"
    return text.replace(_SHA_PLACEHOLDER, compute_checksum(text), 1)


@dataclass
class ReferenceRules:
    """One rmap's content: Match parkeys and rows ``key -> {useafter: file}``."""

    filekind: str
    parkeys: tuple[str, ...]
    rows: dict[Any, dict[str, str]] = field(default_factory=dict)
    substitutions: dict[str, dict[str, str]] | None = None

    def add(self, key: Any, useafter: str, filename: str) -> None:
        """Add one reference; ``key`` is a tuple, or a bare value for one parkey."""
        self.rows.setdefault(key, {})[useafter] = filename


def rmap_text(name: str, rules: ReferenceRules, *, instrument: str = "IRIS",
              observatory: str = "TMT", derived_from: str = "NONE") -> str:
    """Canonical text of a Match(UseAfter) rmap."""
    header: dict[str, Any] = {
        "classes": ("Match", "UseAfter"),
        "derived_from": derived_from,
        "filekind": rules.filekind,
        "instrument": instrument,
        "mapping": "REFERENCE",
        "name": name,
        "observatory": observatory,
        "parkey": (tuple(rules.parkeys), OBSERVATION_TIME),
    }
    if rules.substitutions:
        header["substitutions"] = rules.substitutions
    lines = ["selector = Match({"]
    for key in sorted(rules.rows, key=_sort_key):
        lines.append(f"    {key!r} : UseAfter({{")
        for date in sorted(rules.rows[key]):
            lines.append(f"        {date!r} : {rules.rows[key][date]!r},")
        lines.append("    }),")
    lines.append("})")
    return _finish(header, lines)


def imap_text(name: str, selector: Mapping[str, str], *, instrument: str = "IRIS",
              observatory: str = "TMT", derived_from: str = "") -> str:
    """Canonical text of an instrument mapping (reftype -> rmap name or ``N/A``)."""
    header = {"derived_from": derived_from, "instrument": instrument, "mapping": "INSTRUMENT",
              "name": name, "observatory": observatory, "parkey": ("REFTYPE",)}
    return _finish(header, ["selector = {", *_dict_lines(selector, 4), "}"])


def pmap_text(name: str, selector: Mapping[str, str], *, observatory: str = "TMT",
              description: str = "", derived_from: str = "") -> str:
    """Canonical text of a pipeline mapping (instrument -> imap name)."""
    header = {"derived_from": derived_from, "description": description, "mapping": "PIPELINE",
              "name": name, "observatory": observatory, "parkey": ("META.INSTRUMENT.NAME",)}
    return _finish(header, ["selector = {", *_dict_lines(selector, 4), "}"])


def write_mapping(directory: str | Path, name: str, text: str) -> Path:
    """Write mapping text (UTF-8, LF) to ``directory/name``."""
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    return path


def write_cache_config(root: str | Path) -> Path:
    """``config/tmt/ref_cache_subdir_mode`` = ``instrument`` (references in ``tmt/iris/``)."""
    path = Path(root) / "config" / "tmt" / "ref_cache_subdir_mode"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("instrument\n", encoding="utf-8")
    return path
