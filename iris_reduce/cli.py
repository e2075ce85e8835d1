"""The ``iris-reduce`` command: parse options with click, call the library, report.

Errors print ``iris-reduce: error: <path>: <reason>`` on stderr and exit 1; usage errors
(unknown step, ``--output`` with several inputs, ``--sky`` with ``--sky-product``) exit 2.
Tests may inject a reference resolver through ``obj={"resolver": ...}`` of click's runner.
"""
from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

import iris_reduce
from iris_reduce.config import STEP_ORDER, CombineConfig, ReduceConfig, SkyConfig
from iris_reduce.errors import IrisReduceError
from iris_reduce.pipeline import reduce_files
from iris_reduce.stack import SKY_STEPS, make_dark, make_flat, make_sky

__all__ = ["main"]

log = logging.getLogger("iris_reduce")


def _fail(error: IrisReduceError) -> None:
    click.echo(f"iris-reduce: error: {error}", err=True)


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("iris-reduce: %(levelname)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def _parse_steps(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    steps: list[str] = []
    for item in items:
        for step in str(item).split(","):
            step = step.strip().lower()
            if not step:
                continue
            if step not in STEP_ORDER:
                raise click.BadParameter(f"unknown step {step!r} (steps: {', '.join(STEP_ORDER)})")
            steps.append(step)
    return tuple(steps)


def _resolver(ctx: click.Context) -> Any:
    return (ctx.obj or {}).get("resolver") if isinstance(ctx.obj, dict) else None


def _config(**fields: Any) -> ReduceConfig:
    try:
        return ReduceConfig(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        messages = "; ".join(err["msg"].removeprefix("Value error, ") for err in exc.errors())
        raise click.UsageError(messages) from None


def _reference_options(*, overrides: tuple[str, ...], steps: bool = True) -> Callable[[Any], Any]:
    def decorate(func: Any) -> Any:
        options = [
            click.option("--context", help="CRDS context (.pmap) name or path "
                         "[env CRDS_CONTEXT; default: the bundled context]"),
            click.option("--crds-path", type=click.Path(path_type=Path),
                         help="CRDS cache root [env CRDS_PATH; default: the bundled cache]"),
        ]
        if steps:
            options += [
                click.option("--steps", callback=_parse_steps,
                             help="comma-separated steps to run (replaces the default set)"),
                click.option("--skip", multiple=True, callback=_parse_steps,
                             help="remove a step (repeatable)"),
            ]
        for kind in overrides:
            options.append(click.option(f"--override-{kind}", type=click.Path(path_type=Path),
                                        help=f"use this {kind.upper()} file instead of crdsmini"))
        options += [
            click.option("--overwrite", is_flag=True, help="replace an existing output"),
            click.option("--force", is_flag=True, help="re-apply steps already COMPLETE"),
            click.option("-v", "--verbose", count=True, help="log more (-vv for debug)"),
        ]
        for option in reversed(options):
            func = option(func)
        return func
    return decorate


def _clip_options(func: Any) -> Any:
    for option in reversed([
        click.option("--clip-stat", type=click.Choice(["auto", "err", "mad", "std"]),
                     default="auto", show_default=True, help="clipping threshold statistic"),
        click.option("--sigma", type=float, default=3.0, show_default=True, help="clip sigma"),
        click.option("--maxiters", type=int, default=3, show_default=True,
                     help="maximum clipping iterations"),
    ]):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(iris_reduce.__version__, prog_name="iris-reduce",
                      message="%(prog)s %(version)s")
def main() -> None:
    """Calibrate TMT IRIS imager frames with references chosen by crdsmini."""


@main.command()
@click.argument("science", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="output file (one input)")
@click.option("-d", "--output-dir", type=click.Path(path_type=Path),
              help="output directory [default: current directory]")
@click.option("--suffix", default="cal", show_default=True, help="output name suffix")
@_reference_options(overrides=("mask", "dark", "flat", "nonlin"))
@click.option("--sky", "sky_frames", multiple=True, type=click.Path(path_type=Path),
              help="raw sky frame (repeatable)")
@click.option("--sky-list", type=click.Path(path_type=Path), help="file listing sky frames, one path per line (# comments; paths relative to the "
                   "current directory)")
@click.option("--sky-product", type=click.Path(path_type=Path), help="saved sky product")
@click.option("--save-sky", type=click.Path(path_type=Path), help="write the combined sky here")
@click.option("--sky-clip-stat", type=click.Choice(["auto", "err", "mad", "std"]),
              default="auto", show_default=True)
@click.option("--sky-sigma", type=float, default=3.0, show_default=True)
@click.option("--sky-maxiters", type=int, default=3, show_default=True)
@click.option("--sky-scale", type=click.Choice(["none", "median"]), default="none",
              show_default=True)
@click.option("--normalize-method", type=click.Choice(["median", "mean"]), default="median",
              show_default=True)
@click.option("--dry-run", is_flag=True, help="resolve and validate only; print JSON")
@click.option("--fail-fast", is_flag=True, help="stop at the first failing file")
@click.pass_context
def reduce(ctx: click.Context, science: tuple[Path, ...], output: Path | None,
           output_dir: Path | None, suffix: str, context: str | None, crds_path: Path | None,
           steps: tuple[str, ...] | None, skip: tuple[str, ...], override_mask: Path | None,
           override_dark: Path | None, override_flat: Path | None,
           override_nonlin: Path | None, overwrite: bool, force: bool, verbose: int,
           sky_frames: tuple[Path, ...], sky_list: Path | None, sky_product: Path | None,
           save_sky: Path | None, sky_clip_stat: str, sky_sigma: float, sky_maxiters: int,
           sky_scale: str, normalize_method: str, dry_run: bool, fail_fast: bool) -> None:
    """Calibrate SCIENCE frames (dq_init, dark, flat by default; sky with --sky)."""
    _setup_logging(verbose)
    if output is not None and len(science) > 1:
        raise click.UsageError("--output needs exactly one input (use --output-dir)")
    if output is not None and output_dir is not None:
        raise click.UsageError("--output and --output-dir are mutually exclusive")
    frames = list(sky_frames)
    if sky_list is not None:
        try:
            lines = sky_list.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            _fail(IrisReduceError(sky_list, f"cannot read sky list: {exc.strerror or exc}"))
            ctx.exit(1)
        frames += [Path(line.strip()) for line in lines
                   if line.strip() and not line.lstrip().startswith("#")]
    if frames and sky_product is not None:
        raise click.UsageError("--sky/--sky-list and --sky-product are mutually exclusive")
    try:
        sky = SkyConfig(frames=tuple(frames), product=sky_product, save=save_sky, scale=sky_scale,
                        combine=CombineConfig(stat=sky_clip_stat, sigma=sky_sigma,
                                              maxiters=sky_maxiters))
    except ValidationError as exc:
        raise click.UsageError("; ".join(e["msg"].removeprefix("Value error, ")
                                         for e in exc.errors())) from None
    config = _config(output_dir=output_dir, suffix=suffix, context=context, crds_path=crds_path,
                     steps=steps, skip=skip, override_mask=override_mask,
                     override_dark=override_dark, override_flat=override_flat,
                     override_nonlin=override_nonlin, sky=sky, normalize_method=normalize_method,
                     dry_run=dry_run, overwrite=overwrite, force=force, fail_fast=fail_fast)
    results = reduce_files(list(science), output_dir, config, _resolver(ctx),
                           outputs=[output] if output is not None else None)
    failed = False
    for result in results:
        if result.error is not None:
            failed = True
            _fail(result.error)
    if dry_run:
        click.echo(json.dumps({"files": [r.plan for r in results if r.plan is not None]},
                              indent=2))
    else:
        for result in results:
            if result.ok:
                click.echo(str(result.output))
    ctx.exit(1 if failed or len(results) < len(science) else 0)


def _run_make(ctx: click.Context, func: Callable[..., Path], frames: tuple[Path, ...],
              output: Path, config: ReduceConfig) -> None:
    try:
        path = func(list(frames), output, config, _resolver(ctx))
    except IrisReduceError as exc:
        _fail(exc)
        ctx.exit(1)
    click.echo(str(path))


@main.command("make-sky")
@click.argument("sky", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@_reference_options(overrides=("mask", "dark", "flat", "nonlin"))
@_clip_options
@click.option("--sky-scale", type=click.Choice(["none", "median"]), default="none",
              show_default=True, help="divide each frame by its median before combining")
@click.pass_context
def make_sky_command(ctx: click.Context, sky: tuple[Path, ...], output: Path, context: str | None,
                     crds_path: Path | None, steps: tuple[str, ...] | None, skip: tuple[str, ...],
                     override_mask: Path | None, override_dark: Path | None,
                     override_flat: Path | None, override_nonlin: Path | None, overwrite: bool,
                     force: bool, verbose: int, clip_stat: str, sigma: float, maxiters: int,
                     sky_scale: str) -> None:
    """Combine raw SKY frames into a sky product (for reduce --sky-product)."""
    _setup_logging(verbose)
    config = _config(context=context, crds_path=crds_path, steps=steps, skip=skip,
                     override_mask=override_mask, override_dark=override_dark,
                     override_flat=override_flat, override_nonlin=override_nonlin,
                     overwrite=overwrite, force=force, sky=SkyConfig(scale=sky_scale),
                     combine=_combine(clip_stat, sigma, maxiters))
    _check_steps(config, ("dq_init", "dark", "flat"), SKY_STEPS)
    _run_make(ctx, make_sky, sky, output, config)


def _combine(stat: str, sigma: float, maxiters: int) -> CombineConfig:
    try:
        return CombineConfig(stat=stat, sigma=sigma, maxiters=maxiters)
    except ValidationError as exc:
        raise click.UsageError("; ".join(e["msg"] for e in exc.errors())) from None


def _product_options(func: Any) -> Any:
    for option in reversed([
        click.option("--useafter", help="USEAFTER [default: earliest input DATE-OBS/TIME-OBS]"),
        click.option("--pedigree", default="GROUND", show_default=True),
        click.option("--author", default="iris_reduce", show_default=True),
        click.option("--description", help="DESCRIP"),
    ]):
        func = option(func)
    return func


@main.command("make-dark")
@click.argument("frame", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@_reference_options(overrides=("mask", "nonlin"))
@_clip_options
@_product_options
@click.pass_context
def make_dark_command(ctx: click.Context, frame: tuple[Path, ...], output: Path,
                      context: str | None, crds_path: Path | None, steps: tuple[str, ...] | None,
                      skip: tuple[str, ...], override_mask: Path | None,
                      override_nonlin: Path | None, overwrite: bool, force: bool, verbose: int,
                      clip_stat: str, sigma: float, maxiters: int, useafter: str | None,
                      pedigree: str, author: str, description: str | None) -> None:
    """Combine dark FRAMEs into a DARK reference (dq_init per frame; --steps dq_init,nonlin)."""
    _setup_logging(verbose)
    config = _config(context=context, crds_path=crds_path, steps=steps, skip=skip,
                     override_mask=override_mask, override_nonlin=override_nonlin,
                     overwrite=overwrite, force=force,
                     combine=_combine(clip_stat, sigma, maxiters), useafter=useafter,
                     pedigree=pedigree, author=author, description=description)
    _check_steps(config, ("dq_init",), ("dq_init", "nonlin"))
    _run_make(ctx, make_dark, frame, output, config)


@main.command("make-flat")
@click.argument("frame", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
@_reference_options(overrides=("mask", "dark", "nonlin"))
@_clip_options
@click.option("--normalize-method", type=click.Choice(["median", "mean"]), default="median",
              show_default=True)
@_product_options
@click.pass_context
def make_flat_command(ctx: click.Context, frame: tuple[Path, ...], output: Path,
                      context: str | None, crds_path: Path | None, steps: tuple[str, ...] | None,
                      skip: tuple[str, ...], override_mask: Path | None,
                      override_dark: Path | None, override_nonlin: Path | None, overwrite: bool,
                      force: bool, verbose: int, clip_stat: str, sigma: float, maxiters: int,
                      normalize_method: str, useafter: str | None, pedigree: str, author: str,
                      description: str | None) -> None:
    """Combine flat-lamp FRAMEs into a normalised FLAT reference (dq_init, dark per frame)."""
    _setup_logging(verbose)
    config = _config(context=context, crds_path=crds_path, steps=steps, skip=skip,
                     override_mask=override_mask, override_dark=override_dark,
                     override_nonlin=override_nonlin, overwrite=overwrite, force=force,
                     combine=_combine(clip_stat, sigma, maxiters),
                     normalize_method=normalize_method, useafter=useafter, pedigree=pedigree,
                     author=author, description=description)
    _check_steps(config, ("dq_init", "dark"), ("dq_init", "nonlin", "dark"))
    _run_make(ctx, make_flat, frame, output, config)


def _check_steps(config: ReduceConfig, default: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    try:
        config.selected_steps(default, allowed)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@main.command()
@click.argument("outdir", type=click.Path(path_type=Path))
@click.option("--size", type=click.IntRange(min=32), default=64, show_default=True,
              help="frame size n (n x n)")
def synth(outdir: Path, size: int) -> None:
    """Write the deterministic synthetic data set (and its crds/ cache) into OUTDIR."""
    from iris_reduce.synth import write_synthetic

    written = write_synthetic(outdir, size)
    click.echo(f"wrote {len(written)} files to {outdir}")
