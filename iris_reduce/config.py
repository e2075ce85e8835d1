"""Validated configuration (pydantic), mirroring the ``iris-reduce`` command line.

``ReduceConfig`` drives ``reduce`` and, with the step subsets of each command, ``make-sky``,
``make-dark`` and ``make-flat``.  Invalid combinations (unknown step, ``sky`` without sky
input, sky frames together with a sky product) fail at construction time.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "STEP_ORDER",
    "STEP_KEYWORDS",
    "STEP_REFTYPES",
    "Step",
    "CombineConfig",
    "SkyConfig",
    "ReduceConfig",
]

Step = Literal["dq_init", "nonlin", "dark", "flat", "sky", "normalize"]

STEP_ORDER: tuple[str, ...] = ("dq_init", "nonlin", "dark", "flat", "sky", "normalize")

#: step -> header status keyword (spec 8)
STEP_KEYWORDS: dict[str, str] = {
    "dq_init": "S_DQINIT", "nonlin": "S_NLCORR", "dark": "S_DARK", "flat": "S_FLAT",
    "sky": "S_SKYSUB", "normalize": "S_NORMAL",
}

#: step -> CRDS reftype, R_ keyword, override field
STEP_REFTYPES: dict[str, tuple[str, str, str]] = {
    "dq_init": ("MASK", "R_MASK", "override_mask"),
    "nonlin": ("NONLINCOEFF", "R_NONLIN", "override_nonlin"),
    "dark": ("DARK", "R_DARK", "override_dark"),
    "flat": ("FLAT", "R_FLAT", "override_flat"),
}

DEFAULT_REDUCE_STEPS = ("dq_init", "dark", "flat")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CombineConfig(_Frozen):
    """Sigma-clipped combination of frames (sky, make-dark, make-flat)."""

    stat: Literal["auto", "err", "mad", "std"] = "auto"
    sigma: float = Field(3.0, gt=0)
    maxiters: int = Field(3, ge=0)


class SkyConfig(_Frozen):
    """Sky subtraction input: raw sky frames or a saved sky product."""

    frames: tuple[Path, ...] = ()
    product: Path | None = None
    save: Path | None = None
    scale: Literal["none", "median"] = "none"
    combine: CombineConfig = CombineConfig()

    @model_validator(mode="after")
    def _exclusive(self) -> SkyConfig:
        if self.frames and self.product is not None:
            raise ValueError("sky frames and a sky product are mutually exclusive")
        if self.save is not None and not self.frames:
            raise ValueError("saving the sky needs sky frames")
        return self

    @property
    def given(self) -> bool:
        return bool(self.frames) or self.product is not None


class ReduceConfig(_Frozen):
    """Everything ``iris-reduce`` can be told (the library API takes the same object)."""

    output_dir: Path | None = None
    suffix: str = Field("cal", min_length=1)
    context: str | None = None
    crds_path: Path | None = None
    steps: tuple[Step, ...] | None = None
    skip: tuple[Step, ...] = ()
    override_mask: Path | None = None
    override_dark: Path | None = None
    override_flat: Path | None = None
    override_nonlin: Path | None = None
    sky: SkyConfig = SkyConfig()
    normalize_method: Literal["median", "mean"] = "median"
    combine: CombineConfig = CombineConfig()
    useafter: str | None = None
    pedigree: str = "GROUND"
    author: str = "iris_reduce"
    description: str | None = None
    dry_run: bool = False
    overwrite: bool = False
    force: bool = False
    fail_fast: bool = False
    block_rows: int = Field(64, ge=1)
    stack_block_rows: int = Field(128, ge=1)

    @model_validator(mode="after")
    def _sky_step_needs_input(self) -> ReduceConfig:
        if self.steps is not None and "sky" in self.steps and "sky" not in self.skip \
                and not self.sky.given:
            raise ValueError("step 'sky' needs --sky/--sky-list frames or --sky-product")
        return self

    def selected_steps(self, default: tuple[str, ...] | None = None,
                       allowed: tuple[str, ...] = STEP_ORDER) -> tuple[str, ...]:
        """The steps to run, in processing order.

        ``steps`` replaces ``default`` (reduce: dq_init, dark, flat, plus sky when sky input
        is given); ``skip`` removes steps.  A step outside ``allowed`` raises ValueError.
        """
        if default is None:
            default = DEFAULT_REDUCE_STEPS + (("sky",) if self.sky.given else ())
        chosen = set(self.steps if self.steps is not None else default) - set(self.skip)
        extra = chosen - set(allowed)
        if extra:
            raise ValueError(f"step(s) {', '.join(sorted(extra))} not available here (allowed: "
                             f"{', '.join(allowed)})")
        return tuple(step for step in STEP_ORDER if step in chosen)

    def override(self, step: str) -> Path | None:
        """The override file for a reference step, if any."""
        return getattr(self, STEP_REFTYPES[step][2])
