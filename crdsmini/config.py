"""Configuration: the one place where crdsmini reads environment variables.

Owns writing-and-tools §5.2/§5.4: which ``CRDS_*`` variables exist, how their text is
expanded (``~`` and ``$VAR``) and parsed (booleans), and the precedence *explicit argument
> environment > bundled default*.  Everything else receives a :class:`Config` value and never
looks at ``os.environ`` itself, so a library call, a CLI run and a test see the same rules
and nothing is cached between calls (the environment is read when :func:`load_config` is
called, not at import time).
"""
from __future__ import annotations

__all__ = [
    "Config",
    "load_config",
    "loading_settings",
    "parse_bool",
    "expand_path_text",
    "ENV_VARIABLES",
]

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import NamedTuple
from pathlib import Path

from crdsmini.errors import ConfigurationError

# Every variable crdsmini honours (writing-and-tools §5.2).  CRDS_SERVER_URL is listed so
# that `crdsmini bestrefs -v` can report it as ignored: crdsmini never contacts a server.
ENV_VARIABLES: tuple[str, ...] = (
    "CRDS_PATH",
    "CRDS_PATH_SINGLE",
    "CRDS_MAPPATH",
    "CRDS_MAPPATH_SINGLE",
    "CRDS_REFPATH",
    "CRDS_REFPATH_SINGLE",
    "CRDS_CFGPATH",
    "CRDS_CFGPATH_SINGLE",
    "CRDS_CONTEXT",
    "CRDS_IGNORE_MAPPING_CHECKSUM",
    "CRDS_ALLOW_BAD_PARKEY_VALUES",
    "CRDS_ALLOW_BAD_USEAFTER",
    "CRDS_INI_FILE",
    "CRDS_SERVER_URL",
    "CRDSMINI_PARSE_CACHE",
    "CRDSMINI_PARSE_CACHE_READONLY",
)

_PATH_VARIABLES = frozenset(name for name in ENV_VARIABLES
                            if "PATH" in name or name in ("CRDS_INI_FILE", "CRDSMINI_PARSE_CACHE"))

# Spec §5.4: exactly CRDS's spellings; anything else is an error, not False.
_TRUE = frozenset({"True", "true", "TRUE", "T", "t", "1"})
_FALSE = frozenset({"False", "false", "FALSE", "F", "f", "0"})

_VAR = re.compile(r"\$(\w+|\{[^}]*\})")


def parse_bool(name: str, text: str) -> bool:
    """Parse a boolean environment value with CRDS's vocabulary (spec §5.4)."""
    stripped = text.strip()
    if stripped in _TRUE:
        return True
    if stripped in _FALSE:
        return False
    raise ConfigurationError(
        f"Invalid value {text!r} for boolean env var {name!r}: "
        f"use one of True/true/T/t/1 or False/false/F/f/0", keyword=name)


def expand_path_text(text: str, environ: Mapping[str, str]) -> str:
    """Expand ``$VAR``/``${VAR}`` from ``environ`` and a leading ``~``; strip trailing ``/``.

    Unknown variables are left as written (as ``os.path.expandvars`` does), so the error a
    user then sees names the literal text.  ``environ`` is passed in rather than read from
    ``os.environ`` so that expansion follows the same mapping as the values themselves.
    """
    def substitute(found: re.Match[str]) -> str:
        name = found.group(1)
        if name.startswith("{"):
            name = name[1:-1]
        return environ.get(name, found.group(0))

    expanded = _VAR.sub(substitute, text)
    if expanded == "~" or expanded.startswith("~/"):
        home = environ.get("HOME") or os.path.expanduser("~")
        expanded = home + expanded[1:]
    elif expanded.startswith("~"):
        expanded = os.path.expanduser(expanded)
    # Spec §5.2: trailing slashes are stripped (but '/' itself stays the root).
    while len(expanded) > 1 and expanded.endswith("/"):
        expanded = expanded[:-1]
    return expanded


@dataclasses.dataclass(frozen=True)
class Config:
    """The resolved configuration of one crdsmini call (immutable).

    Path fields are ``None`` when neither an explicit argument nor the environment set them;
    the cache layer then falls back to the bundled default context (see :mod:`crdsmini.cache`).
    """

    crds_path: Path | None = None
    crds_path_single: Path | None = None
    mappath: Path | None = None
    mappath_single: Path | None = None
    refpath: Path | None = None
    refpath_single: Path | None = None
    cfgpath: Path | None = None
    cfgpath_single: Path | None = None
    context: str | None = None
    ignore_mapping_checksum: bool = False
    allow_bad_parkey_values: bool = False
    allow_bad_useafter: bool = False
    ini_file: Path | None = None
    server_url: str | None = None
    #: crdsmini's persistent parse cache (a folder), and whether it may only be read
    parse_cache: Path | None = None
    parse_cache_read_only: bool = False
    #: where each non-default value came from: ``{"context": "CRDS_CONTEXT", ...}``
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False)

    @property
    def has_cache(self) -> bool:
        """True when any cache location was configured (else the bundled cache is used)."""
        return any(getattr(self, field) is not None for field in (
            "crds_path", "crds_path_single", "mappath", "mappath_single",
            "refpath", "refpath_single", "cfgpath", "cfgpath_single"))

    def describe(self) -> list[str]:
        """One line per configured setting with its origin, for ``-v`` logging."""
        lines = []
        for field in dataclasses.fields(self):
            if field.name == "sources":
                continue
            value = getattr(self, field.name)
            if value in (None, False):
                continue
            origin = self.sources.get(field.name, "argument")
            lines.append(f"{field.name} = {str(value)!r} (from {origin})")
        return lines


# field name -> environment variable
_FIELD_VARIABLES: dict[str, str] = {
    "crds_path": "CRDS_PATH",
    "crds_path_single": "CRDS_PATH_SINGLE",
    "mappath": "CRDS_MAPPATH",
    "mappath_single": "CRDS_MAPPATH_SINGLE",
    "refpath": "CRDS_REFPATH",
    "refpath_single": "CRDS_REFPATH_SINGLE",
    "cfgpath": "CRDS_CFGPATH",
    "cfgpath_single": "CRDS_CFGPATH_SINGLE",
    "context": "CRDS_CONTEXT",
    "ignore_mapping_checksum": "CRDS_IGNORE_MAPPING_CHECKSUM",
    "allow_bad_parkey_values": "CRDS_ALLOW_BAD_PARKEY_VALUES",
    "allow_bad_useafter": "CRDS_ALLOW_BAD_USEAFTER",
    "ini_file": "CRDS_INI_FILE",
    "server_url": "CRDS_SERVER_URL",
    "parse_cache": "CRDSMINI_PARSE_CACHE",
    "parse_cache_read_only": "CRDSMINI_PARSE_CACHE_READONLY",
}

_BOOL_FIELDS = frozenset({"ignore_mapping_checksum", "allow_bad_parkey_values",
                          "allow_bad_useafter", "parse_cache_read_only"})


def load_config(environ: Mapping[str, str] | None = None, **explicit: object) -> Config:
    """Resolve the configuration now: explicit keyword arguments win over the environment.

    ``environ`` defaults to ``os.environ`` *at call time*.  Explicit arguments use the field
    names of :class:`Config` (``crds_path=``, ``context=``...); ``None`` means "not given".
    Empty environment values count as unset, as in CRDS.  Raises ConfigurationError for an
    unknown argument or an invalid boolean.
    """
    env = os.environ if environ is None else environ
    unknown = set(explicit) - set(_FIELD_VARIABLES)
    if unknown:
        raise ConfigurationError(f"unknown configuration setting(s): {sorted(unknown)}")
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for field, variable in _FIELD_VARIABLES.items():
        given = explicit.get(field)
        if given is not None:
            value: object = given
            sources[field] = "argument"
            if field in _PATH_VARIABLES_FIELDS:
                value = Path(expand_path_text(str(given), env))
            elif field == "context":
                value = expand_path_text(str(given), env)
            elif field in _BOOL_FIELDS and isinstance(given, str):
                value = parse_bool(field, given)
            values[field] = value
            continue
        value = _from_environment(field, env)
        if value is not None:
            values[field] = value
            sources[field] = variable
    return Config(sources=sources, **values)  # type: ignore[arg-type]


def _from_environment(field: str, env: Mapping[str, str]) -> object | None:
    """The value of ``field``'s variable in ``env``, parsed; None when unset or empty (as
    in CRDS).  Raises ConfigurationError for an invalid boolean."""
    variable = _FIELD_VARIABLES[field]
    text = env.get(variable, "")
    if not text.strip():
        return None
    if field in _BOOL_FIELDS:
        return parse_bool(variable, text)
    if variable in _PATH_VARIABLES:
        return Path(expand_path_text(text.strip(), env))
    if field == "context":
        return expand_path_text(text.strip(), env)
    return text.strip()


_PATH_VARIABLES_FIELDS = frozenset(field for field, variable in _FIELD_VARIABLES.items()
                                   if variable in _PATH_VARIABLES)


class LoadingSettings(NamedTuple):
    """The three settings every ``load_mapping`` call reads (see :func:`loading_settings`)."""

    ignore_mapping_checksum: bool
    parse_cache: Path | None
    parse_cache_read_only: bool


def loading_settings(environ: Mapping[str, str] | None = None) -> LoadingSettings:
    """``load_config()``'s checksum and parse-cache settings alone, read at call time.

    Loading a mapping needs only these; reading them without the whole configuration
    keeps a warm (parse-cached) load from spending a tenth of its time here.  Same
    variables, same parsing, same errors as :func:`load_config`.
    """
    env = os.environ if environ is None else environ
    return LoadingSettings(ignore_mapping_checksum=bool(_from_environment("ignore_mapping_checksum", env)),
                           parse_cache=_from_environment("parse_cache", env),  # type: ignore[arg-type]
                           parse_cache_read_only=bool(_from_environment("parse_cache_read_only", env)))
