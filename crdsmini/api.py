"""Drop-in replacements for ``crds.getrecommendations`` and ``crds.getreferences``, offline.

Same signatures and semantics as CRDS's client API (issue item 6):

* ``getrecommendations(parameters, reftypes=None, context=None, ...)`` returns
  ``{reftype: file name}`` with CRDS's values: ``'NOT FOUND n/a'`` for types that do not
  apply, ``'NOT FOUND <message>'`` for failed lookups, OMIT types absent.  A missing or
  unknown instrument raises.
* ``getreferences(...)`` returns ``{reftype: local path}``; ``'NOT FOUND n/a'`` values are
  kept, any other failed lookup raises (the typed crdsmini error, message
  ``Error determining best reference for '<type>' = <message>``), and a reference that is
  not in the local cache raises :class:`~crdsmini.errors.ReferenceNotFoundError` naming the
  path where it was expected.  Nothing is ever downloaded.

The parameters are looked up as CRDS's top level does: minimised to the context's
parameters (lower- or upper-case keys) and conditioned.  ``context`` is a ``.pmap`` name or
path; the default follows the configuration (``CRDS_CONTEXT``, the cache's server_config,
the bundled context).  ``ignore_cache`` and ``fast`` are accepted for compatibility and
have no effect.  A :class:`ContextSession` keeps one loaded context for repeated calls.
"""
from __future__ import annotations

__all__ = ["getrecommendations", "getreferences", "ContextSession", "open_context"]

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from crdsmini.bestrefs import load_context
from crdsmini.cache import Cache, observatory_of, open_cache
from crdsmini.config import Config, load_config
from crdsmini.errors import ConfigurationError, CrdsminiError, OtherError

NOT_FOUND = "NOT FOUND "


@dataclasses.dataclass(frozen=True)
class ContextSession:
    """One loaded context and the cache its references live in; reuse it for many lookups."""

    cache: Cache
    context: Any

    @property
    def name(self) -> str:
        """The context's file name (``tmt_0010.pmap``)."""
        return self.context.name

    @property
    def observatory(self) -> str:
        return str(self.context.observatory).lower()

    def _include(self, reftypes: Iterable[str] | str | None) -> list[str] | None:
        if reftypes is None:
            return None
        if isinstance(reftypes, str):
            reftypes = [reftypes]
        return [str(t).lower() for t in reftypes] or None

    def getrecommendations(self, parameters: Mapping[str, Any],
                           reftypes: Iterable[str] | str | None = None) -> dict[str, Any]:
        """``{reftype: name or 'NOT FOUND ...'}`` exactly as CRDS's ``getrecommendations``."""
        header = self.context.minimize_header(dict(parameters))
        return self.context.get_best_references(header, include=self._include(reftypes))

    def getreferences(self, parameters: Mapping[str, Any],
                      reftypes: Iterable[str] | str | None = None) -> dict[str, Any]:
        """``{reftype: local path}``; n/a kept as ``'NOT FOUND n/a'``; failures raise."""
        header = self.context.minimize_header(dict(parameters))
        answers = self.context.select_references(header, include=self._include(reftypes))
        failure: CrdsminiError | None = None
        for reftype, value in answers.items():
            if isinstance(value, CrdsminiError):
                failure = failure or type(value)(
                    f"Error determining best reference for {reftype!r} = {value.message}",
                    keyword=reftype)
        if failure is not None:
            raise failure
        return {reftype: self._localize(reftype, value) for reftype, value in answers.items()
                if value is not None}

    def _localize(self, reftype: str, value: Any) -> Any:
        if isinstance(value, str):
            if value.startswith(NOT_FOUND):
                return value
            return str(self.locate(value, reftype))
        if isinstance(value, tuple):
            return tuple(str(self.locate(str(v), reftype)) for v in value)
        if isinstance(value, dict):
            return {k: str(self.locate(str(v), reftype)) for k, v in value.items()}
        raise OtherError(f"unexpected answer for {reftype!r}: {value!r}")

    def locate(self, name: str, reftype: str | None = None) -> Path:
        """The local path of a reference file of this context's observatory."""
        instrument = self._instrument_for(reftype)
        return self.cache.locate_reference(name, self.observatory, instrument)

    def _instrument_for(self, reftype: str | None) -> str | None:
        context = self.context
        if context.kind == "imap":
            return str(context.instrument).lower()
        if context.kind == "rmap":
            return str(context.instrument).lower()
        if len(context.selections) == 1:
            (only,) = context.selections
            return only
        return None


def open_context(context: str | Path | None = None, *, observatory: str | None = None,
                 config: Config | None = None) -> ContextSession:
    """Load a context (explicit > CRDS_CONTEXT > server_config > bundled) for repeated use."""
    config = config if config is not None else load_config()
    cache = open_cache(config, context=context)
    loaded = load_context(cache, context,
                          observatory=observatory.lower() if observatory else None)
    return ContextSession(cache, loaded)


def _session(context: str | Path | None, observatory: str | None) -> ContextSession:
    if context is not None and observatory and str(context).endswith(".pmap") \
            and "/" not in str(context) and observatory_of(str(context)) != observatory.lower():
        raise ConfigurationError(f"context {context!r} is not a {observatory!r} context")
    return open_context(context, observatory=observatory)


def getrecommendations(parameters: Mapping[str, Any], reftypes: Iterable[str] | None = None,
                       context: str | Path | None = None, ignore_cache: bool = False,
                       observatory: str | None = None, fast: bool = False) -> dict[str, Any]:
    """Best reference *names* for ``parameters`` (CRDS ``getrecommendations``, offline)."""
    return _session(context, observatory).getrecommendations(parameters, reftypes)


def getreferences(parameters: Mapping[str, Any], reftypes: Iterable[str] | None = None,
                  context: str | Path | None = None, ignore_cache: bool = False,
                  observatory: str | None = None, fast: bool = False) -> dict[str, Any]:
    """Best reference *local paths* for ``parameters`` (CRDS ``getreferences``, no download)."""
    return _session(context, observatory).getreferences(parameters, reftypes)
