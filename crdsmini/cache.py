"""The CRDS cache layout: where mappings, references and cache configuration live.

Owns writing-and-tools §5.1 and §5.3: turning a :class:`~crdsmini.config.Config` into
directories (``mappings/<obs>/``, ``references/<obs>/[<instrument>/]``, ``config/<obs>/``),
resolving a context or mapping *name* to a file, a reference name to its expected path, the
default context (explicit > ``CRDS_CONTEXT`` > the cache's ``server_config`` > the bundled
default), and locating the bundled TMT/IRIS context that ships with crdsmini.

A checkout of a CRDS cache such as ``oirlab/tmt-crds-cache`` is used as ``CRDS_PATH``
unchanged.  Nothing here writes to the cache (CRDS writes ``ref_cache_subdir_mode`` as a
side effect; crdsmini only reads it).
"""
from __future__ import annotations

__all__ = [
    "Cache",
    "open_cache",
    "bundled_root",
    "bundled_candidates",
    "observatory_of",
    "infer_cache_root",
    "BUNDLED_OBSERVATORY",
    "SUBDIR_MODES",
]

import ast
import dataclasses
import json
import os
import re
import sys
import sysconfig
from collections.abc import Iterable, Mapping
from pathlib import Path

from crdsmini.config import Config, load_config
from crdsmini.errors import ConfigurationError, ReferenceNotFoundError

#: The observatory whose rules are bundled with crdsmini.
BUNDLED_OBSERVATORY = "tmt"

#: Values of ``config/<obs>/ref_cache_subdir_mode`` (spec §5.1).
SUBDIR_MODES = ("instrument", "flat", "legacy")

# CRDS's threshold for guessing the layout when ref_cache_subdir_mode is missing (§5.1).
_FLAT_GUESS_THRESHOLD = 20

_MAPPING_SUFFIXES = (".pmap", ".imap", ".rmap")
_VERSIONED = re.compile(r"_(\d+)\.pmap$")


def observatory_of(name: str) -> str:
    """The observatory of a CRDS file name: the text before the first ``_`` or ``.``."""
    base = Path(name).name
    return re.split(r"[_.]", base, maxsplit=1)[0].lower()


def _has_bundled_rules(root: Path) -> bool:
    folder = root / "mappings" / BUNDLED_OBSERVATORY
    return folder.is_dir() and any(folder.glob("*.pmap"))


def bundled_candidates() -> list[Path]:
    """Where the bundled default context may live, in the order they are tried.

    1. the top level of a source checkout (or an editable install): the directory that holds
       ``crdsmini/``;
    2. the data directory of an installed distribution (``<prefix>/share/crdsmini``), which is
       where ``pip install .`` puts the ``[tool.setuptools.data-files]`` of pyproject.toml,
       for the active interpreter's scheme and the user scheme;
    3. ``crdsmini/data/bundled`` inside the package, for packagers who prefer package data.
    """
    package = Path(__file__).resolve().parent
    found: list[Path] = [package.parent]
    prefixes: list[Path] = []
    for getter in (lambda: sysconfig.get_path("data"),
                   lambda: sysconfig.get_path("data", f"{os.name}_user"),
                   lambda: sys.prefix,
                   lambda: sys.base_prefix):
        try:
            value = getter()
        except KeyError:  # a scheme this platform does not define
            continue
        if value:
            prefixes.append(Path(value))
    for prefix in prefixes:
        candidate = prefix / "share" / "crdsmini"
        if candidate not in found:
            found.append(candidate)
    found.append(package / "data" / "bundled")
    return found


def bundled_root(candidates: Iterable[Path] | None = None) -> Path:
    """The directory holding the bundled ``mappings/tmt/``, ``references/tmt/iris/``, ``config/tmt/``.

    Raises ConfigurationError when crdsmini was installed without its bundled rules.
    """
    tried = list(bundled_candidates() if candidates is None else candidates)
    for root in tried:
        if _has_bundled_rules(root):
            return root
    raise ConfigurationError(
        "the bundled default context is not installed (looked for mappings/"
        f"{BUNDLED_OBSERVATORY}/*.pmap under {', '.join(str(p) for p in tried)}); "
        "set CRDS_PATH to a CRDS cache and CRDS_CONTEXT (or --context) to a .pmap")


def infer_cache_root(mapping_path: Path) -> Path | None:
    """The cache root of a mapping file that sits in ``<root>/mappings/<obs>/``, else None."""
    parent = mapping_path.resolve().parent
    if parent.parent.name == "mappings" and parent.name == observatory_of(mapping_path.name):
        return parent.parent.parent
    return None


def _read_server_config(path: Path) -> dict[str, object]:
    text = path.read_text(encoding="utf-8")
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        try:
            value = json.loads(text)
        except ValueError:
            raise ConfigurationError(
                f"cannot read {path}: not a Python or JSON dict literal", file=str(path)) from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"cannot read {path}: not a dict", file=str(path))
    return value


@dataclasses.dataclass(frozen=True)
class Cache:
    """A CRDS cache as configured: every path question goes through here.

    ``default_root`` is used for each component (mappings, references, config) that the
    configuration does not set, exactly where CRDS would use its default ``CRDS_PATH``.
    It is the bundled root unless the caller pointed it elsewhere; it may be None when
    nothing is configured and no bundled rules are installed (then using an unset
    component raises ConfigurationError).
    """

    config: Config
    default_root: Path | None

    # -- directories (spec §5.2) -----------------------------------------------------------
    def _default(self, what: str) -> Path:
        if self.default_root is None:
            raise ConfigurationError(
                f"no {what} directory: set CRDS_PATH (the bundled default context is not "
                "installed)")
        return self.default_root

    def _located(self, kind: str, single: Path | None, per_kind: Path | None, observatory: str) -> Path:
        """Where ``kind`` (mappings, references, config) of one observatory lives.

        CRDS's precedence (spec §5.2): the kind's ``*_SINGLE`` variable, the kind's own
        variable plus ``<obs>``, then ``CRDS_PATH_SINGLE``/``CRDS_PATH``, then the bundled cache.
        """
        cfg = self.config
        obs = observatory.lower()
        if single is not None:
            return single
        if per_kind is not None:
            return per_kind / obs
        if cfg.crds_path_single is not None:
            return cfg.crds_path_single / kind
        if cfg.crds_path is not None:
            return cfg.crds_path / kind / obs
        return self._default(kind) / kind / obs

    def mappings_dir(self, observatory: str) -> Path:
        """``mappings/<obs>`` of the configured cache (CRDS_MAPPATH[_SINGLE], CRDS_PATH[_SINGLE])."""
        return self._located("mappings", self.config.mappath_single, self.config.mappath, observatory)

    def references_root(self, observatory: str) -> Path:
        """The references directory of one observatory, before any instrument subdirectory."""
        return self._located("references", self.config.refpath_single, self.config.refpath, observatory)

    def config_dir(self, observatory: str) -> Path:
        """``config/<obs>`` of the configured cache (CRDS_CFGPATH[_SINGLE], CRDS_PATH[_SINGLE])."""
        return self._located("config", self.config.cfgpath_single, self.config.cfgpath, observatory)

    def subdir_mode(self, observatory: str) -> str:
        """``instrument``, ``flat`` or ``legacy``: how references are laid out (spec §5.1).

        Read from ``config/<obs>/ref_cache_subdir_mode``; when that file is missing, CRDS's
        guess (``flat`` if ``references/<obs>/`` has more than 20 entries) without writing it.
        """
        marker = self.config_dir(observatory) / "ref_cache_subdir_mode"
        if marker.is_file():
            mode = marker.read_text(encoding="utf-8").strip().lower()
            if mode not in SUBDIR_MODES:
                raise ConfigurationError(
                    f"{marker}: unknown reference layout {mode!r} "
                    f"(expected one of {', '.join(SUBDIR_MODES)})", file=str(marker))
            return mode
        root = self.references_root(observatory)
        try:
            count = sum(1 for _ in root.iterdir())
        except OSError:
            count = 0
        return "flat" if count > _FLAT_GUESS_THRESHOLD else "instrument"

    # -- mappings and contexts (spec §5.3) ---------------------------------------------------
    def mapping_path(self, name: str | Path) -> Path:
        """File of a mapping: a bare name goes to ``mappings/<obs>/``; a path is used as given."""
        text = str(name)
        if "/" in text or "\\" in text or isinstance(name, Path) and name.is_absolute():
            return Path(text)
        return self.mappings_dir(observatory_of(text)) / text

    def server_config(self, observatory: str) -> dict[str, object] | None:
        """The cache's ``config/<obs>/server_config`` dict, or None when there is none."""
        path = self.config_dir(observatory) / "server_config"
        if not path.is_file():
            return None
        return _read_server_config(path)

    def operational_context(self, observatory: str) -> str | None:
        """``operational_context`` of ``server_config`` (the offline default context)."""
        info = self.server_config(observatory)
        if not info:
            return None
        value = info.get("operational_context")
        return str(value) if value else None

    def _observatories(self) -> list[str]:
        """Observatories that have a config or mappings directory in this cache."""
        cfg = self.config
        found: set[str] = set()
        for root in (cfg.crds_path, self.default_root if not cfg.has_cache else None):
            if root is None:
                continue
            for sub in ("config", "mappings"):
                folder = root / sub
                if folder.is_dir():
                    found.update(p.name for p in folder.iterdir() if p.is_dir())
        for folder in (cfg.cfgpath, cfg.mappath):
            if folder is not None and folder.is_dir():
                found.update(p.name for p in folder.iterdir() if p.is_dir())
        return sorted(found)

    def default_context_name(self, observatory: str | None = None) -> tuple[str, str]:
        """``(context, origin)`` when no context was given explicitly.

        Order: ``CRDS_CONTEXT`` (or ``context=`` of the Config) > ``operational_context`` of
        ``server_config`` > the newest ``<obs>_NNNN.pmap`` of the *bundled* cache (only when
        no cache is configured).  ``origin`` says which, for logs.
        """
        cfg = self.config
        if cfg.context:
            origin = cfg.sources.get("context", "argument")
            if origin == "CRDS_CONTEXT" and not cfg.context.endswith(".pmap") \
                    and not _is_symbolic(cfg.context):
                raise ConfigurationError(
                    f"Only set CRDS_CONTEXT to a literal or symbolic context (.pmap), "
                    f"not {cfg.context!r}", keyword="CRDS_CONTEXT")
            return cfg.context, origin
        observatories = [observatory.lower()] if observatory else self._observatories()
        for obs in observatories:
            context = self.operational_context(obs)
            if context:
                return context, f"{self.config_dir(obs) / 'server_config'}"
        if not cfg.has_cache and self.default_root is not None:
            obs = (observatory or BUNDLED_OBSERVATORY).lower()
            newest = _newest_pmap(self.default_root / "mappings" / obs)
            if newest is not None:
                return newest, "bundled default"
        where = ", ".join(str(self.config_dir(obs)) for obs in observatories) or "the cache"
        raise ConfigurationError(
            "no context: pass --context (context=) or set CRDS_CONTEXT; "
            f"there is no server_config with an operational_context in {where}")

    def context_path(self, context: str | Path | None = None,
                     observatory: str | None = None) -> Path:
        """The file of a context: explicit name/path > CRDS_CONTEXT > server_config > bundled.

        Symbolic ``<obs>-operational`` means the ``server_config`` default; other symbolic
        names (``tmt-edit``, dates) need a CRDS server and are refused.
        """
        if context is None or str(context) == "":
            name, _origin = self.default_context_name(observatory)
        else:
            name = str(context)
        if _is_symbolic(name):
            obs, _, what = name.partition("-")
            if what != "operational":
                raise ConfigurationError(
                    f"symbolic context {name!r} needs a CRDS server; crdsmini works offline: "
                    "name a .pmap file instead")
            resolved = self.operational_context(obs)
            if not resolved:
                raise ConfigurationError(
                    f"{name!r}: no operational_context in "
                    f"{self.config_dir(obs) / 'server_config'}")
            name = resolved
        path = self.mapping_path(name)
        if not path.is_file():
            raise ConfigurationError(
                f"context {name!r} not found: expected {path}", file=str(path))
        return path

    # -- references (spec §5.3) ----------------------------------------------------------------
    def reference_path(self, name: str, observatory: str, instrument: str | None = None) -> Path:
        """Where reference ``name`` belongs in this cache (it need not exist)."""
        root = self.references_root(observatory)
        mode = self.subdir_mode(observatory)
        if mode == "instrument" and instrument:
            return root / instrument.lower() / name
        return root / name

    def locate_reference(self, name: str, observatory: str,
                         instrument: str | None = None) -> Path:
        """The existing file of a reference, or ReferenceNotFoundError naming the expected path.

        The layout's own place is tried first, then the other layouts (flat, any instrument
        directory), so a cache whose ``ref_cache_subdir_mode`` is stale still works.
        """
        expected = self.reference_path(name, observatory, instrument)
        if expected.is_file():
            return expected
        root = self.references_root(observatory)
        alternatives = [root / name]
        if instrument:
            alternatives.append(root / instrument.lower() / name)
        if root.is_dir():
            alternatives.extend(sorted(p / name for p in root.iterdir() if p.is_dir()))
        for candidate in alternatives:
            if candidate.is_file():
                return candidate
        raise ReferenceNotFoundError(
            f"reference file {name!r} is not in the local cache: expected {expected} "
            "(crdsmini never downloads; copy the file there or set CRDS_PATH/CRDS_REFPATH)",
            file=str(expected))


def _is_symbolic(name: str) -> bool:
    base = Path(name).name
    return "-" in base and not base.endswith(_MAPPING_SUFFIXES)


def _newest_pmap(folder: Path) -> str | None:
    if not folder.is_dir():
        return None
    names = [p.name for p in folder.glob("*.pmap")]
    if not names:
        return None
    # Highest serial number wins; unversioned names ('tmt.pmap') sort first.
    def key(name: str) -> tuple[int, str]:
        found = _VERSIONED.search(name)
        return (int(found.group(1)) if found else -1, name)
    return max(names, key=key)


def open_cache(config: Config | None = None, *, context: str | Path | None = None,
               environ: Mapping[str, str] | None = None,
               bundled: Path | None | bool = True) -> Cache:
    """Build the Cache for one call.

    ``config`` defaults to :func:`~crdsmini.config.load_config` (environment read now).  When
    nothing configures a cache and ``context`` is a path inside ``<root>/mappings/<obs>/``,
    that ``<root>`` is the cache (so its references are found); otherwise unset components
    fall back to the bundled root.  ``bundled`` may be a Path (tests), True (locate it) or
    False/None (no fallback).
    """
    if config is None:
        config = load_config(environ)
    if not config.has_cache and context is not None and ("/" in str(context)):
        root = infer_cache_root(Path(str(context)))
        if root is not None:
            return Cache(config, root)
    if isinstance(bundled, Path):
        default_root: Path | None = bundled
    elif bundled:
        try:
            default_root = bundled_root()
        except ConfigurationError:
            default_root = None
    else:
        default_root = None
    return Cache(config, default_root)
