"""JWST: two keys every JWST rmap requires besides its own parkeys (rules-language §10.1)."""
from __future__ import annotations

from crdsmini.observatories import ObservatoryPlugin

__all__ = ["PLUGIN"]

PLUGIN = ObservatoryPlugin(name="jwst", extra_keys=("META.VISIT.TSOVISIT", "META.INSTRUMENT.LAMP_STATE"))
