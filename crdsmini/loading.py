"""Loading mapping files from disk: one file, or a whole context tree.

``load_mapping`` is the public entry point.  Nested names in a .pmap/.imap are resolved in
the folder of the file that names them (``mappings/<observatory>/`` of a cache).  Checksums
are verified unless switched off by argument or by ``CRDS_IGNORE_MAPPING_CHECKSUM``.
"""
from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

from crdsmini.checksum import read_mapping_text, verify_checksum
from crdsmini.errors import CrdsminiError, MappingError
from crdsmini.literals import DictLiteral
from crdsmini.model import NA_VALUES, OMIT_VALUES, InstrumentContext, Mapping_, PipelineContext, ReferenceMapping
from crdsmini.parse_cache import ParseCache, file_digest, read_mapping_bytes
from crdsmini.syntax import MappingSource, parse_mapping_text

__all__ = ["load_mapping", "load_single", "mapping_kind", "checksums_ignored_by_environment"]

_KINDS = {".pmap": "pmap", ".imap": "imap", ".rmap": "rmap"}
_HEADER_KINDS = {"pipeline": "pmap", "instrument": "imap", "reference": "rmap"}


def checksums_ignored_by_environment() -> bool:
    """``CRDS_IGNORE_MAPPING_CHECKSUM`` set to a true value switches verification off."""
    from crdsmini.config import loading_settings  # the one place environment variables are read

    return loading_settings().ignore_mapping_checksum


def mapping_kind(path: Path, source: MappingSource | None = None) -> str:
    """pmap/imap/rmap by extension; other extensions fall back to the header's ``mapping``."""
    kind = _KINDS.get(path.suffix.lower())
    if kind is None and source is not None:
        declared = source.header.resolved().get("mapping", "")
        kind = _HEADER_KINDS.get(str(declared).lower())
    if kind is None:
        raise MappingError(f"Can't load file {path.name} : unknown mapping type", file=path.name)
    return kind


_REQUIRED_HEADER = ("mapping", "name", "parkey", "derived_from", "observatory")


def _read_source(path: Path, ignore_checksum: bool) -> MappingSource:
    try:
        text = read_mapping_text(path)
    except FileNotFoundError:
        raise MappingError(f"[Errno 2] No such file or directory: {path.name!r}", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"Can't load file {path.name} : {exc}", file=str(path)) from None
    return _checked_source(parse_mapping_text(text, path.name), text, path, ignore_checksum)


def _checked_source(source: MappingSource, text: str, path: Path, ignore_checksum: bool) -> MappingSource:
    header = source.header.resolved()
    for key in _REQUIRED_HEADER:  # a malformed header is reported before a checksum problem
        if key not in header:
            message = f"'{key}'" if key == "parkey" else f"Required header key '{key}' is missing."
            raise MappingError(f"Can't load file {path.name} : {message}", file=path.name, keyword=key)
    if not ignore_checksum:
        stated = source.header.resolved().get("sha1sum")
        verify_checksum(text, path.name, None if stated is None else str(stated))
    return source


def _special(value: Any) -> bool:
    return isinstance(value, str) and (value in NA_VALUES or value in OMIT_VALUES)


class _TreeLoader:
    """Loads a context tree once, sharing files named more than once."""

    def __init__(self, ignore_checksum: bool, cache: ParseCache | None = None) -> None:
        self.ignore_checksum = ignore_checksum
        self.cache = cache
        self.loaded: dict[Path, Mapping_] = {}
        self.loading: list[Path] = []  # the chain of files being loaded, to catch cycles

    def load(self, path: str | Path) -> Mapping_:
        text = os.fspath(path)
        if not self.loading and text.endswith(".rmap"):
            # A lone rmap names no other file: no cycle or shared file to recognise, so
            # its path is resolved only if ever read (Mapping_.path).
            text = os.path.abspath(text)
            mapping = self._load(Path(text))
            mapping.path = text
            return mapping
        # os.path, and one Path at the end: Path.resolve() costs more than the realpath
        # it wraps, and this runs once per file of every (warm) load.
        path = Path(os.path.realpath(text) if os.path.exists(text) else text)
        if path in self.loaded:
            return self.loaded[path]
        if path in self.loading:
            chain = " -> ".join(p.name for p in self.loading[self.loading.index(path):] + [path])
            raise MappingError(f"Can't load file {path.name} : mappings name each other in a cycle: {chain}",
                               file=path.name)
        self.loading.append(path)
        try:
            return self._load(path)
        finally:
            self.loading.pop()

    def _load(self, path: Path) -> Mapping_:
        built, digest = None, None
        if self.cache is None:
            source = _read_source(path, self.ignore_checksum)
        else:
            source, built, digest = self._read_cached(path)
        kind = mapping_kind(path, source)
        if kind == "rmap":
            if isinstance(built, ReferenceMapping):
                built.path = path  # a fresh object from the cache, not yet shared
                mapping: Mapping_ = built
            else:
                try:
                    mapping = ReferenceMapping(source, path)
                except CrdsminiError:
                    if digest is not None:  # keep the parse; the build error is raised anew each time
                        self.cache.put(digest, path.name, source.text, source)
                    raise
                if digest is not None:
                    self.cache.put(digest, path.name, source.text, mapping)
        else:
            selections = self._nested(path, source, kind)
            mapping = (PipelineContext(source, path, selections) if kind == "pmap"
                       else InstrumentContext(source, path, selections))
            if digest is not None:
                self.cache.put(digest, path.name, source.text, source)
        self.loaded[path] = mapping
        return mapping

    def _read_cached(self, path: Path) -> tuple[MappingSource, Any, str | None]:
        """(source, cached rmap or None, digest to store under when it was a miss)."""
        try:
            data, text = read_mapping_bytes(path)
        except FileNotFoundError:
            raise MappingError(f"[Errno 2] No such file or directory: {path.name!r}", file=str(path)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise MappingError(f"Can't load file {path.name} : {exc}", file=str(path)) from None
        digest = file_digest(data)
        stored = self.cache.get(digest, path.name, text)
        if isinstance(stored, ReferenceMapping):
            _checked_source(stored.source, text, path, self.ignore_checksum)
            return stored.source, stored, None
        if isinstance(stored, MappingSource):
            return _checked_source(stored, text, path, self.ignore_checksum), None, None
        source = parse_mapping_text(text, path.name)
        try:
            _checked_source(source, text, path, self.ignore_checksum)
        except CrdsminiError:
            self.cache.put(digest, path.name, text, source)
            raise
        return source, None, digest

    def _nested(self, path: Path, source: MappingSource, kind: str) -> dict[str, Any]:
        selector = source.selector
        if not isinstance(selector, DictLiteral):
            raise MappingError(f"Can't load file {path.name} : selector must be a dict or a Selector.",
                               file=path.name, keyword="selector")
        selections: dict[str, Any] = {}
        for key, value in selector.resolved().items():
            label = str(key).lower()
            if kind == "imap" and _special(value):
                selections[label] = value
                continue
            if kind == "pmap" and _special(value):
                raise MappingError(f"Can't load file {path.name} : instrument {key!r} selects {value!r}; a .pmap "
                                   "must name an .imap for every instrument", file=path.name, keyword=str(key))
            if not isinstance(value, str) or "/" in value or "\\" in value:
                raise MappingError(f"Can't load file {path.name} : selection {key!r} must name a mapping file, "
                                   f"not {value!r}", file=path.name, keyword=str(key))
            nested = self.load(path.parent / value)
            expected = "imap" if kind == "pmap" else "rmap"
            if nested.kind != expected:
                raise MappingError(f"Can't load file {path.name} : {key!r} names {value!r}, which is not an "
                                   f".{expected}", file=path.name, keyword=str(key))
            selections[label] = nested
        return selections


def load_single(path: str | Path, *, ignore_checksum: bool = False) -> MappingSource:
    """Parse (and checksum) one mapping file without loading the files it names."""
    return _read_source(Path(path), ignore_checksum or checksums_ignored_by_environment())


def load_mapping(path: str | Path, *, ignore_checksum: bool = False,
                 cache: ParseCache | None = None) -> Mapping_:
    """Load a .pmap, .imap or .rmap (and everything it names) into immutable objects.

    ``cache``: a ParseCache to read parsed and compiled files from (and add new ones to);
    by default the folder named by ``CRDSMINI_PARSE_CACHE``, if any
    (``CRDSMINI_PARSE_CACHE_READONLY=1`` never writes there).
    """
    from crdsmini.config import loading_settings  # the one place environment variables are read

    config = loading_settings()
    if cache is None and config.parse_cache is not None:
        cache = ParseCache(config.parse_cache, read_only=config.parse_cache_read_only)
    path = os.path.expanduser(os.fspath(path))
    loader = _TreeLoader(ignore_checksum or config.ignore_mapping_checksum, cache)
    # Loading creates hundreds of thousands of small objects that all stay alive; the cyclic
    # collector would re-scan them again and again for nothing (a third of a cold load).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return loader.load(path)
    except RecursionError:
        name = os.path.basename(path)
        raise MappingError(f"Can't load file {name} : mapping nested too deeply", file=name) from None
    finally:
        if collecting:
            gc.enable()
