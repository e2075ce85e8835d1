"""Selectors: the nodes of an rmap's decision tree, compiled at load for fast lookup.

``build_selector`` turns a ``SelectorCall`` literal into the selector object of its family;
each family lives in its own module.  Selectors raise typed errors (crdsmini.errors); the
CRDS-compatible ``"NOT FOUND ..."`` strings are made by the rmap, never here.
"""
from __future__ import annotations

from crdsmini.selectors.base import BuildContext, Selector, build_selector

__all__ = ["BuildContext", "Selector", "build_selector"]
