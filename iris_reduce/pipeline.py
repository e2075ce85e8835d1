"""``reduce``: calibrate science frames (load -> dq_init -> nonlin -> dark -> flat -> sky ->
normalize -> write), one file at a time, with one combined sky per invocation.

Each science file is independent: a failure is reported for that file and nothing is
written for it; other files go on unless ``fail_fast``.  A sky that cannot be built fails
the whole invocation.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iris_reduce import kernels
from iris_reduce.calibration import FramePlan, Session
from iris_reduce.config import ReduceConfig
from iris_reduce.errors import IrisReduceError, KernelError
from iris_reduce.fitsio import ImageSpec, RawFrame, file_stem, write_fits_atomic
from iris_reduce.records import write_records
from iris_reduce.refs import ReferenceResolver
from iris_reduce.stack import (
    SKY_STEPS,
    Signature,
    SkyModel,
    build_sky,
    load_sky_product,
    open_frames,
    write_sky_product,
)

__all__ = ["Result", "reduce_file", "reduce_files", "output_path"]

log = logging.getLogger("iris_reduce")


@dataclass(frozen=True)
class Result:
    """Outcome for one science file: the output written (or planned), or the error."""

    input: Path
    output: Path | None
    error: IrisReduceError | None = None
    plan: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class _SkyFailure(Exception):
    """Internal: the shared sky could not be made; the whole invocation fails."""

    def __init__(self, error: IrisReduceError) -> None:
        super().__init__(str(error))
        self.error = error


def output_path(path: str | Path, config: ReduceConfig, output_dir: str | Path | None = None) -> Path:
    """``<output-dir>/<stem>_<suffix>.fits`` (output dir default: the current directory)."""
    directory = Path(output_dir if output_dir is not None else (config.output_dir or "."))
    return directory / f"{file_stem(path)}_{config.suffix}.fits"


class _Reducer:
    """Reduces science files of one invocation, sharing references and the sky."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.config = session.config
        self.steps = self.config.selected_steps()
        self._sky_raws: list[RawFrame] | None = None
        self._sky_signature: Signature | None = None
        self._sky: SkyModel | None = None
        self._sky_plans_checked = False

    # ------------------------------------------------------------------ sky
    def sky_signature(self) -> Signature:
        if self._sky_signature is None:
            sky = self.config.sky
            try:
                if sky.product is not None:
                    self._sky = load_sky_product(sky.product)
                    self._sky_signature = self._sky.signature
                    if sky.scale == "median" and self._sky.scale_mode != "median":
                        raise IrisReduceError(sky.product, "--sky-scale median needs a sky product "
                                              "made with --sky-scale median (SKYSCMOD is "
                                              f"{self._sky.scale_mode!r})", keyword="SKYSCMOD")
                else:
                    self._sky_raws, self._sky_signature = open_frames(list(sky.frames),
                                                                      role="sky frame")
            except IrisReduceError as exc:
                raise _SkyFailure(exc) from None
        return self._sky_signature

    def sky_model(self) -> SkyModel:
        if self._sky is None:
            assert self._sky_raws is not None and self._sky_signature is not None
            sky = self.config.sky
            name = sky.save.name if sky.save is not None else "COMBINED"
            steps = tuple(s for s in self.steps if s in SKY_STEPS)
            try:
                self._sky = build_sky(self.session, self._sky_raws, self._sky_signature, steps,
                                      sky.combine, sky.scale, name)
                if sky.save is not None:
                    write_sky_product(self._sky, sky.save, overwrite=self.config.overwrite)
            except IrisReduceError as exc:
                raise _SkyFailure(exc) from None
        return self._sky

    def check_sky_plans(self) -> None:
        """Dry run: resolve and cut the sky frames' references without combining."""
        if self._sky_plans_checked or self._sky_raws is None:
            return
        steps = tuple(s for s in self.steps if s in SKY_STEPS)
        try:
            for raw in self._sky_raws:
                self.session.prepare(raw, steps)
        except IrisReduceError as exc:
            raise _SkyFailure(exc) from None
        self._sky_plans_checked = True

    def close(self) -> None:
        for raw in self._sky_raws or ():
            raw.close()

    # ------------------------------------------------------------------ science
    def run(self, path: str | Path, output: str | Path) -> Result:
        path, output = Path(path), Path(output)
        try:
            return self._run(path, output)
        except IrisReduceError as exc:
            if Path(exc.path) != path:
                exc = IrisReduceError(exc.path, f"{exc.reason} (while reducing {path})",
                                      exc.keyword, exc.extension)
            log.debug("failed: %s", exc)
            return Result(path, None, exc)

    def _run(self, path: Path, output: Path) -> Result:
        config = self.config
        if output.exists() and not config.overwrite:
            raise IrisReduceError(output, "output exists; use --overwrite to replace it")
        with RawFrame.open(path) as raw:
            if "sky" in self.steps:
                signature = self.sky_signature()
                signature.check(Signature.of(path, raw.primary, raw.shape),
                                blame=signature.path, role="sky")
            plan = self.session.prepare(raw, self.steps)
            if config.dry_run:
                if "sky" in self.steps:
                    self.check_sky_plans()
                return Result(path, output, None, self._describe(plan, output))
            sky = self.sky_model() if "sky" in self.steps else None
            self._process(plan, raw, sky, output)
        log.info("%s -> %s", path, output)
        return Result(path, output)

    def _describe(self, plan: FramePlan, output: Path) -> dict[str, Any]:
        return {"input": str(plan.path), "output": str(output), "steps": list(plan.runs),
                "context": plan.context,
                "references": {c.reftype: c.as_json() for c in plan.choices.values()}}

    def _process(self, plan: FramePlan, raw: RawFrame, sky: SkyModel | None,
                 output: Path) -> None:
        config = self.config
        path = plan.path
        history: list[str] = []
        sci, err, dq = raw.read()
        if raw.err is None:
            log.info("%s: no ERR extension; errors start at 0", path)
            history.append("ERR extension absent in input: errors started at 0")
        if raw.dq is None:
            history.append("DQ extension absent in input: flags started at 0")
        self.session.calibrate(plan, sci, err, dq)
        extra: dict[str, Any] = {}
        for step in plan.runs:
            choice = plan.choices.get(step)
            if choice is not None:
                history.append(f"{step}: {choice.reftype} {choice.record}"
                               + (f" (NLFORM={plan.nlform})" if step == "nonlin" else ""))
        for step, choice in plan.choices.items():
            if not choice.applicable:
                history.append(f"{step}: skipped, {choice.reftype} is N/A in {choice.context}")
        if plan.nlform is not None and "nonlin" in plan.runs:
            extra["NLFORM"] = (plan.nlform, "non-linearity polynomial form")
        if sky is not None:
            extra.update(self._subtract_sky(plan, sci, err, dq, sky))
            history.append(f"sky: subtracted {sky.name} ({sky.records.get('SKYCSTAT', '?')} "
                           f"clipping, scale {sky.scale_mode})")
        if "normalize" in plan.runs:
            try:
                factor = kernels.normalize(sci, err, dq, config.normalize_method)
            except KernelError as exc:
                raise IrisReduceError(path, f"normalize: {exc}") from None
            extra["NORMMETH"] = (config.normalize_method, "normalization statistic")
            extra["NORMFACT"] = (factor, "normalization factor")
            history.append(f"normalize: divided by the {config.normalize_method} {factor!r}")
        header = raw.primary.copy()
        write_records(header, ran=plan.runs, attempted=plan.steps, choices=plan.choices,
                      context=plan.context, extra=extra, history=history)
        sci_header = raw.sci.header.copy()
        images = [ImageSpec("SCI", sci, sci_header),
                  ImageSpec("ERR", err, raw.err.header if raw.err is not None else None),
                  ImageSpec("DQ", dq, raw.dq.header if raw.dq is not None else None)]
        passthrough = [raw.hdul[i] for i in raw.extra]
        write_fits_atomic(output, header, images, passthrough, overwrite=config.overwrite)

    def _subtract_sky(self, plan: FramePlan, sci: np.ndarray, err: np.ndarray, dq: np.ndarray,
                      sky: SkyModel) -> dict[str, Any]:
        records: dict[str, Any] = {"R_SKY": (sky.name, "sky subtracted")}
        records.update(sky.records)
        scale = 1.0
        if sky.scale_mode == "median":
            try:
                scale = kernels.median_of_good(sci, dq)
            except KernelError as exc:
                raise IrisReduceError(plan.path, f"sky scaling: {exc}") from None
            if not np.isfinite(scale) or scale <= 0:
                raise IrisReduceError(plan.path, f"sky scaling: science median {scale!r} is not "
                                      "finite and > 0")
            records["SKYSCALE"] = (scale, "science median the sky was scaled to")
        factor = np.float32(scale)
        rows = self.config.block_rows
        for r0 in range(0, sci.shape[0], rows):
            r1 = min(r0 + rows, sci.shape[0])
            value, error = sky.value[r0:r1], sky.error[r0:r1]
            if scale != 1.0:
                value, error = value * factor, error * factor
            kernels.subtract_sky(sci[r0:r1], err[r0:r1], dq[r0:r1], value, error,
                                 sky.flags[r0:r1])
        return records


def reduce_files(paths: Sequence[str | Path], output_dir: str | Path | None = None,
                 config: ReduceConfig = ReduceConfig(), resolver: ReferenceResolver | None = None,
                 outputs: Sequence[str | Path | None] | None = None) -> list[Result]:
    """Reduce several science files; one Result per file attempted (in order).

    With ``config.fail_fast`` the first failure stops the run (later files get no Result).
    A sky failure fails every remaining file with the sky's error.
    """
    results: list[Result] = []
    with Session(config, resolver) as session:
        reducer = _Reducer(session)
        try:
            for index, path in enumerate(paths):
                target = outputs[index] if outputs is not None else None
                out = Path(target) if target is not None else output_path(path, config, output_dir)
                try:
                    result = reducer.run(path, out)
                except _SkyFailure as failure:
                    results.extend(Result(Path(p), None, failure.error) for p in paths[index:])
                    break
                results.append(result)
                if not result.ok and config.fail_fast:
                    break
        finally:
            reducer.close()
    return results


def reduce_file(path: str | Path, output: str | Path | None = None,
                config: ReduceConfig = ReduceConfig(),
                resolver: ReferenceResolver | None = None) -> Path:
    """Reduce one science file; returns the output path, raises IrisReduceError on failure."""
    results = reduce_files([path], None, config, resolver, outputs=[output])
    result = results[0]
    if result.error is not None:
        raise result.error
    assert result.output is not None
    return result.output
