"""Observatory plug-ins: the behaviour that differs per observatory, behind a small registry.

An observatory contributes extra required keys, a do-not-reprocess rule and header hooks
(rules-language §10).  Observatories without a module here (TMT, Liger, ...) get the empty
plug-in: no extra keys, no hooks, no rule; a new one never needs a fork.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

__all__ = ["ObservatoryPlugin", "get_plugin", "HookFunction"]

HookFunction = Callable[[Any, dict], Any]


@dataclass(frozen=True)
class ObservatoryPlugin:
    """What an observatory adds to the stock selection rules."""

    name: str
    extra_keys: tuple[str, ...] = ()
    dnr_check: Callable[[Mapping[str, Any]], bool] | None = None
    hooks: Mapping[str, HookFunction] = field(default_factory=dict)

    def hook(self, name: str) -> HookFunction | None:
        """The hook function registered under its versioned name, if any."""
        return self.hooks.get(name)


_EMPTY = ObservatoryPlugin(name="")


def get_plugin(observatory: str) -> ObservatoryPlugin:
    """The plug-in of ``observatory`` (case-insensitive); the empty one when there is none."""
    name = observatory.lower()
    if name == "hst":
        from crdsmini.observatories import hst
        return hst.PLUGIN
    if name == "jwst":
        from crdsmini.observatories import jwst
        return jwst.PLUGIN
    return _EMPTY
