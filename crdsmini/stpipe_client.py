"""The functions of stpipe's ``crds_client`` module, served by crdsmini (offline).

A reduction package that imports ``stpipe.crds_client`` for its reference files can import
this module instead: the names, arguments and return conventions are the same
(``'N/A'`` for a type that does not apply, a local path otherwise, typed errors for lookup
failures and for references missing from the cache).  Nothing here contacts a server.
"""
from __future__ import annotations

__all__ = [
    "get_multiple_reference_paths",
    "get_reference_file",
    "check_reference_open",
    "get_context_used",
    "reference_uri_to_cache_path",
]

from collections.abc import Iterable, Mapping
from typing import Any

from crdsmini.api import getreferences, open_context
from crdsmini.cache import open_cache
from crdsmini.config import load_config
from crdsmini.errors import ReferenceNotFoundError


def get_multiple_reference_paths(parameters: Mapping[str, Any],
                                 reference_file_types: Iterable[str],
                                 observatory: str) -> dict[str, str]:
    """``{reftype: local path or 'N/A'}`` for several reference types at once."""
    if not isinstance(parameters, Mapping):
        raise TypeError("First argument must be a dict of parameters")
    paths = getreferences(dict(parameters), reftypes=list(reference_file_types),
                          observatory=observatory)
    return {reftype: ("N/A" if isinstance(path, str) and "N/A" in path.upper() else path)
            for reftype, path in paths.items()}


def get_reference_file(parameters: Mapping[str, Any], reference_file_type: str,
                       observatory: str) -> str:
    """The local path of one reference type, or ``'N/A'``."""
    return get_multiple_reference_paths(parameters, [reference_file_type],
                                        observatory)[reference_file_type.lower()]


def check_reference_open(refpath: str) -> str:
    """Return ``refpath`` after checking it is ``'N/A'`` or a readable file."""
    if refpath != "N/A" and str(refpath).strip() != "":
        try:
            with open(refpath, "rb"):
                pass
        except OSError as exc:
            raise ReferenceNotFoundError(f"reference file {refpath!r} cannot be opened: {exc}",
                                         file=str(refpath)) from None
    return refpath


def get_context_used(observatory: str) -> str:
    """The name of the context that lookups for ``observatory`` use now (``tmt_0010.pmap``)."""
    return open_context(observatory=observatory).name


def reference_uri_to_cache_path(reference_uri: str, observatory: str) -> str:
    """``crds://NAME`` (as written in headers by --update-bestrefs) -> the local path of NAME."""
    if not reference_uri.startswith("crds://"):
        raise ValueError(f"Reference URI must start with crds://: {reference_uri!r}")
    name = reference_uri[len("crds://"):].rsplit("/", 1)[-1]
    cache = open_cache(load_config())
    return str(cache.locate_reference(name, observatory.lower()))

