"""New contexts: next version names, and the imaps/pmap that point to new rmaps (spec §3.14, §4.3).

:func:`next_name` is crdsmini's naming rule: same prefix and extension, serial = 1 + the
highest serial of the old name and of the existing ``<prefix>_<digits>.<ext>`` files in the
folder, at least four digits (``tmt_iris_flat_0003.rmap`` -> ``tmt_iris_flat_0004.rmap``;
an unversioned ``x.rmap`` -> ``x_0001.rmap``).  Unlike CRDS it never returns a name that
exists and never returns the old name unchanged.

:func:`plan_new_context` computes, without writing, the new imap(s) and pmap that select a
set of new rmaps: each affected imap gets its filekind entry replaced, the pmap gets the new
imap names, every new file gets ``derived_from`` = the old basename and ``name`` = its own
basename.  With ``in_place_imap`` the current imap is edited instead (the TMT practice) and
the pmap is left alone.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from crdsmini.errors import AuthoringError, UnknownInstrumentError
from crdsmini.refactor import load_document
from crdsmini.writer import MappingDocument, render

__all__ = ["next_name", "PlannedMapping", "ContextPlan", "plan_new_context", "find_context_for"]

_SERIAL = re.compile(r"^(?P<prefix>.*)_(?P<serial>\d+)$")


def next_name(old: str, directory: str | Path, *, taken: Iterable[str] = ()) -> str:
    """The next free version name after ``old`` among the files of ``directory``.

    ``taken`` lists names already planned in the same operation (treated as existing).
    """
    folder = Path(directory)
    path = Path(old)
    stem, extension = path.stem, path.suffix
    match = _SERIAL.match(stem)
    prefix, serial = (match.group("prefix"), int(match.group("serial"))) if match else (stem, 0)
    pattern = re.compile(re.escape(prefix) + r"_(\d+)" + re.escape(extension) + "$")
    existing = set(taken)
    if folder.is_dir():
        existing.update(entry.name for entry in folder.iterdir())
    for name in existing:
        found = pattern.match(name)
        if found:
            serial = max(serial, int(found.group(1)))
    while True:
        serial += 1
        candidate = f"{prefix}_{serial:04d}{extension}"
        if candidate not in existing:
            return candidate


@dataclass(frozen=True)
class PlannedMapping:
    """One mapping file a context change writes: where, what, and what it replaces."""

    path: Path
    document: MappingDocument
    text: str
    old_path: Path
    in_place: bool = False


@dataclass(frozen=True)
class ContextPlan:
    """The files of a new context and a summary line per change."""

    files: tuple[PlannedMapping, ...]
    summary: tuple[str, ...]
    pmap: Path | None


def _selector_key(selector: Mapping[str, object], wanted: str) -> str | None:
    for key in selector:
        if str(key).upper() == wanted.upper():
            return key
    return None


def _instrument_from_name(name: str) -> str:
    """``<obs>_<instrument>_<filekind>...`` -> ``<instrument>`` (used when a header has none)."""
    parts = Path(name).stem.split("_")
    return parts[1] if len(parts) > 1 else ""


def plan_new_context(old_pmap: str | Path, new_rmaps: Sequence[tuple[str, Mapping[str, object]]], *,
                     output_dir: str | Path | None = None, in_place_imap: bool = False,
                     taken: Iterable[str] = ()) -> ContextPlan:
    """Plan the imap(s) and pmap that select ``new_rmaps`` ((basename, header) pairs).

    Nothing is written.  Names come from :func:`next_name` in ``output_dir`` (default: the
    folder of the old pmap, i.e. the cache's mapping folder).  Raises AuthoringError when
    an rmap's instrument is not in the context.
    """
    pmap_path = Path(old_pmap)
    folder = Path(output_dir) if output_dir is not None else pmap_path.parent
    pmap = load_document(pmap_path, kind="pmap")
    planned_names = set(taken)
    by_imap: dict[str, list[tuple[str, Mapping[str, object]]]] = {}
    imap_of_instrument: dict[str, str] = {}
    for rmap_name, header in new_rmaps:
        instrument = str(header.get("instrument") or _instrument_from_name(rmap_name))
        key = _selector_key(pmap.selector, instrument)
        if key is None:
            raise UnknownInstrumentError(
                f"Context '{pmap_path.name}' has no instrument {instrument!r} for '{rmap_name}'",
                file=str(pmap_path), keyword=instrument)
        imap_name = str(pmap.selector[key])
        imap_of_instrument[key] = imap_name
        by_imap.setdefault(imap_name, []).append((rmap_name, header))
    files: list[PlannedMapping] = []
    summary: list[str] = []
    new_imap_names: dict[str, str] = {}
    hst = str(pmap.header.get("observatory", "")).upper() == "HST"
    for imap_name, rmaps in by_imap.items():
        imap_path = pmap_path.parent / imap_name
        imap = load_document(imap_path, kind="imap")
        selector = dict(imap.selector)
        for rmap_name, header in rmaps:
            filekind = str(header.get("filekind", ""))
            key = _selector_key(selector, filekind) or (filekind.lower() if hst else filekind.upper())
            old_value = selector.get(key)
            selector[key] = rmap_name
            summary.append(f"Replaced {old_value!r} with '{rmap_name}' for {key!r} in '{imap_name}'")
        if in_place_imap:
            edited, text = render(imap.with_selector(selector))
            files.append(PlannedMapping(imap_path, edited, text, imap_path, in_place=True))
            summary.append(f"Edited '{imap_name}' in place")
            continue
        new_name = next_name(imap_name, folder, taken=planned_names)
        planned_names.add(new_name)
        new_imap_names[imap_name] = new_name
        edited, text = render(imap.with_selector(selector).with_header(derived_from=imap_name, name=new_name))
        files.append(PlannedMapping(folder / new_name, edited, text, imap_path))
        summary.append(f"'{imap_name}' -> '{new_name}'")
    if in_place_imap:
        return ContextPlan(tuple(files), tuple(summary), None)
    selector = dict(pmap.selector)
    for key, imap_name in imap_of_instrument.items():
        selector[key] = new_imap_names[imap_name]
        summary.append(f"Replaced '{imap_name}' with '{new_imap_names[imap_name]}' for {key!r} in "
                       f"'{pmap_path.name}'")
    new_pmap = next_name(pmap_path.name, folder, taken=planned_names)
    edited, text = render(pmap.with_selector(selector).with_header(derived_from=pmap_path.name, name=new_pmap))
    files.append(PlannedMapping(folder / new_pmap, edited, text, pmap_path))
    summary.append(f"'{pmap_path.name}' -> '{new_pmap}'")
    return ContextPlan(tuple(files), tuple(summary), folder / new_pmap)


def find_context_for(rmap_name: str, folder: str | Path) -> Path:
    """The newest pmap in ``folder`` whose imaps select ``rmap_name`` (for --update-context)."""
    directory = Path(folder)
    for pmap_path in sorted(directory.glob("*.pmap"), reverse=True):
        try:
            pmap = load_document(pmap_path, kind="pmap")
        except Exception:  # an unrelated broken pmap does not stop the search
            continue
        for imap_name in pmap.selector.values():
            imap_path = directory / str(imap_name)
            if not imap_path.is_file():
                continue
            try:
                imap = load_document(imap_path, kind="imap")
            except Exception:
                continue
            if rmap_name in {str(v) for v in imap.selector.values()}:
                return pmap_path
    raise AuthoringError(f"No context in '{directory}' selects '{rmap_name}'; name one with --context",
                         file=rmap_name)
