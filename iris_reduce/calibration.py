"""Per-frame calibration planning shared by ``reduce`` and the stacking commands.

A :class:`Session` lives for one invocation: it owns the reference resolver, the opened
reference files (each opened once, memory-mapped) and the configuration.  ``prepare``
validates one raw frame against the configuration (re-run protection, subarray geometry,
BUNIT for nonlin), chooses its references (overrides, else crdsmini) and cuts them to the
frame; ``calibrate`` then runs the fused kernel on any rows of that frame.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iris_reduce import kernels
from iris_reduce.config import STEP_KEYWORDS, STEP_REFTYPES, ReduceConfig
from iris_reduce.errors import IrisReduceError, KernelError
from iris_reduce.fitsio import RawFrame
from iris_reduce.reffiles import ReferenceFile
from iris_reduce.refs import ReferenceResolver, resolver_from_settings
from iris_reduce.subarray import Geometry, science_geometry

__all__ = ["RefChoice", "FramePlan", "Session", "COUNT_UNITS"]

log = logging.getLogger("iris_reduce")

COUNT_UNITS = ("DN", "ADU", "COUNTS")


@dataclass(frozen=True)
class RefChoice:
    """The reference used (or not) by one step of one frame."""

    step: str
    reftype: str
    source: str              # "crds" or "override"
    file: str                # basename, or "N/A"
    path: Path | None
    context: str | None

    @property
    def applicable(self) -> bool:
        return self.path is not None

    @property
    def record(self) -> str:
        """The R_ keyword value (spec 8)."""
        if self.path is None:
            return "N/A"
        return f"crds://{self.file}" if self.source == "crds" else self.file

    def as_json(self) -> dict[str, Any]:
        return {"source": self.source, "file": self.file,
                "path": None if self.path is None else str(self.path)}


@dataclass
class FramePlan:
    """What will be done to one raw frame: steps, references and their cut block sources."""

    path: Path
    raw: RawFrame
    geometry: Geometry
    steps: tuple[str, ...]                       # selected steps (in order)
    choices: dict[str, RefChoice] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)

    @property
    def runs(self) -> tuple[str, ...]:
        """Steps that will actually run (reference steps whose rules said N/A drop out)."""
        return tuple(s for s in self.steps
                     if s not in self.choices or self.choices[s].applicable)

    @property
    def context(self) -> str | None:
        """The crdsmini context used, when crdsmini chose anything for this frame."""
        for choice in self.choices.values():
            if choice.source == "crds" and choice.context:
                return choice.context
        return None

    @property
    def nlform(self) -> str | None:
        source = self.sources.get("nonlin")
        return getattr(source, "form", None)


class Session:
    """One invocation: configuration, resolver and the reference files opened so far."""

    def __init__(self, config: ReduceConfig, resolver: ReferenceResolver | None = None) -> None:
        self.config = config
        self._resolver = resolver
        self._references: dict[tuple[Path, str], ReferenceFile] = {}

    @property
    def resolver(self) -> ReferenceResolver:
        if self._resolver is None:
            self._resolver = resolver_from_settings(self.config.context, self.config.crds_path)
        return self._resolver

    # ------------------------------------------------------------------ planning
    def check_rerun(self, header: Any, steps: tuple[str, ...], path: Path) -> None:
        """Fail when a step about to run is already COMPLETE in ``header`` (unless --force)."""
        if self.config.force:
            return
        for step in steps:
            key = STEP_KEYWORDS[step]
            value = header.get(key)
            if isinstance(value, str) and value.strip().upper() == "COMPLETE":
                raise IrisReduceError(path, f"{key}='COMPLETE': step {step} was already applied "
                                      "to this file; use --force to apply it again", keyword=key)

    def choose(self, header: Any, steps: tuple[str, ...], path: Path) -> dict[str, RefChoice]:
        """References for the reference steps among ``steps``: overrides, else crdsmini."""
        choices: dict[str, RefChoice] = {}
        lookups: dict[str, str] = {}
        for step in steps:
            if step not in STEP_REFTYPES:
                continue
            reftype = STEP_REFTYPES[step][0]
            override = self.config.override(step)
            if override is not None:
                override = Path(override)
                if not override.is_file():
                    raise IrisReduceError(path, f"{reftype}: override file {override} not found")
                choices[step] = RefChoice(step, reftype, "override", override.name, override, None)
            else:
                lookups[reftype] = step
        if lookups:
            resolved = self.resolver.resolve(header, list(lookups), path)
            for reftype, step in lookups.items():
                r = resolved[reftype]
                choices[step] = RefChoice(step, reftype, "crds", r.file, r.path, r.context)
                if r.path is None:
                    log.warning("%s: %s: the rules say N/A (context %s); step %s skipped",
                                path, reftype, r.context, step)
        return {step: choices[step] for step in steps if step in choices}

    def reference(self, path: Path, reftype: str) -> ReferenceFile:
        key = (Path(path).resolve(), reftype)
        if key not in self._references:
            self._references[key] = ReferenceFile(path, reftype)
        return self._references[key]

    def prepare(self, raw: RawFrame, steps: tuple[str, ...]) -> FramePlan:
        """Validate ``raw`` for ``steps`` and open + cut its references."""
        path = raw.path
        geometry = science_geometry(raw.primary, raw.shape, path)
        self.check_rerun(raw.primary, steps, path)
        if "nonlin" in steps:
            bunit = raw.sci.header.get("BUNIT")
            if bunit is None or str(bunit).strip().upper() not in COUNT_UNITS:
                shown = "missing" if bunit is None else repr(bunit)
                raise IrisReduceError(path, f"nonlin needs SCI BUNIT in counts (DN, ADU, counts); "
                                      f"BUNIT is {shown}", keyword="BUNIT", extension="SCI")
        plan = FramePlan(path, raw, geometry, steps)
        plan.choices = self.choose(raw.primary, steps, path)
        problems: list[str] = []
        for step, choice in plan.choices.items():
            if not choice.applicable:
                continue
            assert choice.path is not None
            reference = self.reference(choice.path, choice.reftype)
            try:
                plan.sources[step] = reference.cut(geometry, path)
            except IrisReduceError as exc:
                problems.append(exc.reason)
        if problems:
            raise IrisReduceError(path, "; ".join(problems))
        return plan

    # ------------------------------------------------------------------ running
    def calibrate(self, plan: FramePlan, sci: np.ndarray, err: np.ndarray, dq: np.ndarray,
                  row0: int = 0) -> None:
        """Run the plan's dq_init/nonlin/dark/flat on rows ``row0..`` of its frame."""
        try:
            kernels.calibrate(sci, err, dq, mask=plan.sources.get("dq_init"),
                              nonlin_ref=plan.sources.get("nonlin"), dark=plan.sources.get("dark"),
                              flat=plan.sources.get("flat"), block_rows=self.config.block_rows,
                              row0=row0)
        except KernelError as exc:
            raise IrisReduceError(plan.path, str(exc)) from None

    def close(self) -> None:
        for reference in self._references.values():
            reference.close()
        self._references.clear()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
