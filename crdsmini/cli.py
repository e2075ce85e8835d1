"""The ``crdsmini`` command line: a thin click layer over the library.

Owns option parsing, output formatting and exit codes only; every decision is made by
:mod:`crdsmini.bestrefs`, :mod:`crdsmini.explain`, :mod:`crdsmini.cache`,
:mod:`crdsmini.headers` and the rules engine.  Exit status (writing-and-tools §6.5):
0 ok, 1 lookup errors, 2 usage or configuration errors (bad option, missing file, no
context, unloadable rules).  Logs go to stderr, results to stdout.

Options follow ``crds bestrefs`` where they exist; like it, ``--files``, ``--types`` and
``--skip-types`` take several values after one flag (``-t dark flat``), and files may
also be given as plain arguments.  ``bestrefs --headers`` with bulk options runs
:func:`crdsmini.cli_bulk.run_bulk` instead (see :func:`bulk_reasons`).
"""
from __future__ import annotations

__all__ = ["main", "bestrefs_command", "explain_command", "bulk_reasons", "EXIT_OK", "EXIT_LOOKUP",
           "EXIT_CONFIG"]

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from crdsmini import __version__
from crdsmini.errors import (ChecksumError, ConfigurationError, CrdsminiError, HeaderError,
                             MappingError)

EXIT_OK = 0
EXIT_LOOKUP = 1
EXIT_CONFIG = 2

# Options that, as in crds bestrefs (argparse nargs='+'), take every following word up to
# the next option.  For --types/--skip-types a word with '.' or '/' is a file, not a type,
# so `crdsmini bestrefs --types flat raw.fits` still works.
_GREEDY = {
    "-f": None, "--files": None,                     # None: the values are plain arguments
    "-t": "--types", "--types": "--types",
    "-k": "--skip-types", "--skip-types": "--skip-types",
}


def _expand_greedy(args: Sequence[str]) -> list[str]:
    result: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word == "--":
            result.extend(args[index - 1:])
            break
        if word not in _GREEDY:
            result.append(word)
            continue
        target = _GREEDY[word]
        values = []
        while index < len(args) and not args[index].startswith("-"):
            value = args[index]
            if target is not None and values and ("." in value or "/" in value):
                break
            values.append(value)
            index += 1
            if target is not None and ("." in value or "/" in value):
                break
        if target is None:
            result.extend(values)
        elif not values:
            result.append(word)  # let click report the missing value
        else:
            for value in values:
                result.extend((target, value))
    return result


class _CrdsStyleCommand(click.Command):
    """A click command whose multi-value options accept several words, crds-style."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _expand_greedy(args))


def _split_types(values: Sequence[str]) -> list[str]:
    names: list[str] = []
    for value in values:
        for part in value.replace(",", " ").split():
            names.append(part.lower())
    return names


def _verbosity(verbose: int, verbosity: int | None) -> int:
    if verbosity is None:
        return verbose
    # crds --verbosity=N: 30 shows every lookup; map onto -v / -vv.
    return max(verbose, 2 if verbosity >= 60 else 1 if verbosity > 0 else 0)


def _fail(message: str, category: str, code: int = EXIT_CONFIG) -> None:
    click.echo(f"crdsmini: error [{category}] {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="crdsmini")
def main() -> None:
    """crdsmini: CRDS-compatible calibration reference selection, offline.

    Configuration comes from CRDS_PATH, CRDS_CONTEXT (and the other CRDS_* variables);
    with nothing set, the bundled TMT/IRIS context is used.
    """


_COMMON_OPTIONS = [
    click.argument("files", nargs=-1, type=click.Path(dir_okay=False)),
    click.option("-n", "--context", "--new-context", "context", metavar="CTX",
                 help="Context .pmap (name in the cache, or a path).  Default: CRDS_CONTEXT, "
                      "the cache's server_config, or the bundled context."),
    click.option("-t", "--types", "types", multiple=True, metavar="TYPE...",
                 help="Only these reference types (several words or commas)."),
    click.option("--headers", "header_files", multiple=True, type=click.Path(dir_okay=False),
                 metavar="FILE.jsonl",
                 help="Dataset headers as JSON lines (one header or {id: header} per line); "
                      "bestrefs bulk mode also reads .json, .csv, .parquet and quoted globs."),
    click.option("-v", "--verbose", count=True, help="More log detail on stderr (-vv: each lookup)."),
    click.option("--verbosity", type=int, default=None, hidden=True,
                 help="crds-style verbosity number (30 shows each lookup)."),
]


def _with_common(function):
    for decorator in reversed(_COMMON_OPTIONS):
        function = decorator(function)
    return function


# Bulk mode of bestrefs: options that only it has, and per-dataset options it cannot honour.

def bulk_reasons(files: Sequence[str], header_files: Sequence[str], *, jobs: int | None,
                 output: str | None, input_format: str | None, raw: bool, chunk_size: int | None,
                 parse_cache: str | None, engine: str, scheduler: str | None,
                 output_format: str | None) -> list[str]:
    """Why ``bestrefs`` would run in bulk mode: the options (then the headers files) that ask
    for it, in option order; empty for the per-dataset mode.

    Bulk mode needs --headers and no FILES.  It is asked for by any of --jobs, --output,
    --input-format, --raw, --chunk-size, --parse-cache, --engine dask, --scheduler,
    --format csv|parquet, or a headers file that is CSV/Parquet or a glob.
    """
    from crdsmini.cli_bulk import format_of, names_a_glob

    reasons = [name for name, given in (
        ("--jobs", jobs is not None), ("--output", output is not None),
        ("--input-format", input_format is not None), ("--raw", raw),
        ("--chunk-size", chunk_size is not None), ("--parse-cache", parse_cache is not None),
        ("--engine dask", engine == "dask"), ("--scheduler", scheduler is not None),
        (f"--format {output_format}", output_format in ("csv", "parquet"))) if given]
    if files:
        return reasons  # FILES: only explicit options count (they are then an error)
    for path in header_files:
        if names_a_glob(path):
            reasons.append(f"the glob --headers {path!r}")
        elif format_of(path, None) in ("csv", "parquet"):
            reasons.append(f"--headers {Path(path).name}")
    return reasons


@main.command("bestrefs", cls=_CrdsStyleCommand)
@_with_common
@click.option("-o", "--old-context", metavar="CTX",
              help="Also compute with CTX and report only the types whose result changed "
                   "(bulk mode: only the datasets whose references change).")
@click.option("-k", "--skip-types", "skip_types", multiple=True, metavar="TYPE...",
              help="Leave these reference types out.")
@click.option("--all-types", is_flag=True,
              help="Every type of the instrument's imap (crdsmini's default anyway).")
@click.option("-u", "--update-bestrefs", is_flag=True,
              help="Write CRDS_CTX, CRDS_VER and the R_<TYPE> keywords into each FITS file's "
                   "primary header (atomically).")
@click.option("--print-new-references", is_flag=True,
              help="One line per result: <dataset> <instrument> <type> <old> <new> (crds format).")
@click.option("--print-affected", is_flag=True,
              help="Print the datasets whose results changed.")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "jsonl", "csv", "parquet"]),
              default=None,
              help="Output format: text (default), json or jsonl on stdout; bulk mode: jsonl "
                   "(default), csv or parquet (default: from --output's suffix).")
@click.option("--explain", is_flag=True,
              help="Explain each choice: rules path, parameters, surviving rows, dates.")
@click.option("--jobs", "-j", type=click.IntRange(1), default=None,
              help="Bulk: worker processes (the parsed context is sent once to each)  [default: 1]")
@click.option("--output", "output", metavar="FILE",
              help="Bulk: output file (default: stdout; Parquet needs a file).")
@click.option("--input-format", type=click.Choice(("jsonl", "json", "csv", "parquet")),
              help="Bulk: format of --headers (default: from its suffix).")
@click.option("--chunk-size", type=click.IntRange(1), default=None,
              help="Bulk: headers per chunk (memory ~ jobs x chunk)  [default: 20000]")
@click.option("--progress/--no-progress", default=None,
              help="Bulk: progress bar on stderr (default: when stderr is a terminal).")
@click.option("--parse-cache", metavar="DIR",
              help="Bulk: persistent parse cache folder (read and filled; may be read-only).")
@click.option("--raw", is_flag=True,
              help="Bulk: use each header exactly as given (no key normalisation, no conditioning).")
@click.option("--engine", type=click.Choice(("local", "dask")), default="local", show_default=True,
              help="Bulk: local (--jobs processes) or dask (map_partitions; writes Parquet).")
@click.option("--scheduler", metavar="ADDRESS",
              help="Bulk, --engine dask: scheduler address (default: a LocalCluster of --jobs workers).")
def bestrefs_command(files: tuple[str, ...], context: str | None,
                     types: tuple[str, ...], header_files: tuple[str, ...], verbose: int,
                     verbosity: int | None, old_context: str | None,
                     skip_types: tuple[str, ...], all_types: bool, update_bestrefs: bool,
                     print_new_references: bool, print_affected: bool, output_format: str | None,
                     explain: bool, jobs: int | None, output: str | None, input_format: str | None,
                     chunk_size: int | None, progress: bool | None, parse_cache: str | None,
                     raw: bool, engine: str, scheduler: str | None) -> None:
    """Choose the best reference files for dataset FILES (FITS, JSON or JSON lines).

    FILES may also follow -f/--files, crds style.  Without --print-new-references,
    --print-affected or --format, one block per dataset lists each type's reference.

    Two modes.  Per dataset (FILES, or --headers FILE.jsonl alone): text blocks, json or
    jsonl records, --explain, --update-bestrefs, --print-new-references.  Bulk (--headers
    with no FILES, plus any of --jobs, --output, --input-format, --raw, --chunk-size,
    --parse-cache, --engine dask, --scheduler, --format csv|parquet, or a .csv/.parquet/.pq
    or glob headers file): millions of headers streamed in input order, one record per
    dataset (jsonl, csv or parquet), exit 1 if any lookup failed; with --old-context only
    the datasets whose references change.  Bulk mode is `crdsmini bulk-bestrefs`.

    \b
    Examples:
      crdsmini bestrefs raw.fits
      crdsmini bestrefs --headers archive.csv --jobs 2 --output refs.parquet
      crdsmini bestrefs --headers 'archive/*.parquet' --engine dask --output refs.parquet
    """
    reasons = bulk_reasons(files, header_files, jobs=jobs, output=output, input_format=input_format,
                           raw=raw, chunk_size=chunk_size, parse_cache=parse_cache, engine=engine,
                           scheduler=scheduler, output_format=output_format)
    if reasons and (files or not header_files):
        where = f"no dataset FILES (got {files[0]})" if files else "--headers FILE: none given"
        raise click.UsageError(f"bulk mode (asked for by {', '.join(reasons)}) needs {where}")
    if reasons:
        _check_bulk_conflicts(reasons[0], explain=explain, update=update_bestrefs,
                              print_new=print_new_references, print_affected=print_affected,
                              skip_types=skip_types, output_format=output_format)
        from crdsmini.cli_bulk import DEFAULT_CHUNK_SIZE, run_bulk

        sys.exit(run_bulk(header_files, context=context, old_context=old_context,
                          input_format=input_format, output=output, output_format=output_format,
                          types=_split_types(types), raw=raw, jobs=jobs or 1,
                          chunk_size=chunk_size or DEFAULT_CHUNK_SIZE, progress=progress,
                          parse_cache=parse_cache, engine=engine, scheduler=scheduler))
    _run(files, header_files, context=context, old_context=old_context,
         types=_split_types(types), skip_types=_split_types(skip_types),
         verbose=_verbosity(verbose, verbosity), update=update_bestrefs,
         print_new=print_new_references, print_affected=print_affected,
         output_format=output_format or "text", explain=explain)


def _check_bulk_conflicts(reason: str, *, explain: bool, update: bool, print_new: bool,
                          print_affected: bool, skip_types: Sequence[str],
                          output_format: str | None) -> None:
    """Per-dataset options that bulk mode cannot honour are a usage error, never ignored."""
    from crdsmini.cli_bulk import OUTPUT_FORMATS

    conflicts = [name for name, given in (
        ("--explain", explain), ("--update-bestrefs", update),
        ("--print-new-references", print_new), ("--print-affected", print_affected),
        ("--skip-types", bool(skip_types)),
        (f"--format {output_format}", output_format is not None and output_format not in OUTPUT_FORMATS))
        if given]
    if conflicts:
        raise click.UsageError(f"{' and '.join(conflicts)} cannot be used in bulk mode (chosen by "
                               f"{reason}); drop the bulk options for per-dataset output")


@main.command("explain", cls=_CrdsStyleCommand)
@_with_common
@click.option("--format", "output_format", type=click.Choice(["text", "json"]),
              default="text", show_default=True, help="Output format on stdout.")
def explain_command(files: tuple[str, ...], context: str | None,
                    types: tuple[str, ...], header_files: tuple[str, ...], verbose: int,
                    verbosity: int | None, output_format: str) -> None:
    """Explain why each reference was (or was not) chosen for dataset FILES.

    The same as `crdsmini bestrefs --explain`: for each type the rules path, the parameter
    values used, the Match rows that survive with their weights, the UseAfter date chosen
    and its neighbours; for a failure the nearest rows and the values the rules accept.
    """
    _run(files, header_files, context=context, old_context=None, types=_split_types(types),
         skip_types=[], verbose=_verbosity(verbose, verbosity), update=False, print_new=False,
         print_affected=False, output_format=output_format, explain=True)


def _run(files: Sequence[str], header_files: Sequence[str], *, context: str | None,
         old_context: str | None, types: list[str], skip_types: list[str], verbose: int,
         update: bool, print_new: bool, print_affected: bool, output_format: str,
         explain: bool) -> None:
    from crdsmini import bestrefs as lib
    from crdsmini.cache import open_cache
    from crdsmini.config import load_config
    from crdsmini.headers import read_datasets

    if not files and not header_files:
        raise click.UsageError("no datasets: give FITS/JSON files or --headers FILE.jsonl")
    log = lib.Log(sys.stderr, verbosity=verbose)
    try:
        config = load_config(context=context)
        cache = open_cache(config, context=context)
        for line in config.describe():
            log.debug(f"config: {line}", 1)
        if config.ini_file is not None:
            log.warning(f"CRDS_INI_FILE={config.ini_file} is not read by crdsmini; "
                        "set CRDS_PATH/CRDS_CONTEXT in the environment instead")
        new_ctx = lib.load_context(cache, context)
        old_ctx = lib.load_context(open_cache(config, context=old_context), old_context) \
            if old_context else None
        datasets = read_datasets(files, header_files)
    except (ConfigurationError, HeaderError, MappingError, ChecksumError) as exc:
        _fail(str(exc), exc.category)
        return
    except CrdsminiError as exc:  # anything else that stops the run before any lookup
        _fail(str(exc), exc.category)
        return
    log.debug(f"context: {new_ctx.path}", 1)
    if not update:
        log.debug("No file header updates requested;  dry run.  "
                  "Use --update-bestrefs to update FITS headers.", 1)
    run = lib.compute_bestrefs(datasets, new_ctx, old_context=old_ctx, types=types or None,
                               skip_types=skip_types, log=log)
    if update:
        run = lib.apply_updates(run, version=f"crdsmini {__version__}", log=log)

    explanations = None
    if explain:
        from crdsmini import explain as explain_lib
        explanations = [explain_lib.explain_dataset(new_ctx, result.dataset,
                                                    types=types or None,
                                                    skip_types=skip_types)
                        for result in run.results]
    _emit(run, output_format=output_format, print_new=print_new, print_affected=print_affected,
          explanations=explanations, log=log)
    if verbose:
        log.summary()
    sys.exit(EXIT_LOOKUP if run.error_count else EXIT_OK)


def _emit(run: Any, *, output_format: str, print_new: bool, print_affected: bool,
          explanations: list[Any] | None, log: Any) -> None:
    from crdsmini import bestrefs as lib

    if output_format in ("json", "jsonl"):
        records = []
        for index, result in enumerate(run.results):
            record = lib.to_record(result, run)
            if explanations is not None:
                record["explain"] = explanations[index].to_json()
            records.append(record)
        if output_format == "jsonl":
            for record in records:
                click.echo(json.dumps(record, sort_keys=False))
        else:
            document = {"context": run.context, "old_context": run.old_context,
                        "errors": run.error_count, "datasets": records}
            click.echo(json.dumps(document, indent=2))
        return
    if explanations is not None:
        for explanation in explanations:
            click.echo(explanation.to_text())
    if print_new:
        for line in lib.new_reference_lines(run):
            click.echo(line)
    if print_affected:
        affected = lib.affected_datasets(run)
        log.info(f"Affected products = {len(affected)}")
        for name in affected:
            click.echo(name)
    if explanations is None and not print_new and not print_affected:
        click.echo(_table(run), nl=False)


def _table(run: Any) -> str:
    """The default human output: one block per dataset, one line per type."""
    lines: list[str] = []
    for result in run.results:
        title = f"{result.dataset.id}  (context {run.context}"
        if run.old_context:
            title += f", compared with {run.old_context}"
        if result.instrument:
            title += f", instrument {result.instrument}"
        lines.append(title + ")")
        if result.error is not None:
            lines.append(f"  ERROR [{result.error.category}] {result.error}")
            lines.append("")
            continue
        shown = result.changed() if result.compared else {
            reftype: ("none", new) for reftype, new in result.types.items()}
        if not shown:
            lines.append("  (no changes)")
        width = max((len(name) for name in shown), default=0)
        for reftype, (old, new) in shown.items():
            if new.status == "found":
                text = new.bestref
            elif new.status == "n/a":
                text = "n/a"
            elif new.status == "not-found":
                text = f"n/a  ({new.message} -- see --explain)"
            else:
                text = f"ERROR [{new.category}] {new.message}"
            if result.compared:
                text = f"{old} -> {text}"
            lines.append(f"  {reftype:<{width}}  {text}")
        if result.update_error:
            lines.append(f"  ERROR {result.update_error}")
        elif result.updated:
            lines.append(f"  (header updated)")
        lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")


def _register_commands(group: click.Group) -> None:
    """Gather the commands that live in their own modules (rule authoring, bulk runs)."""
    from crdsmini import cli_authoring, cli_bulk

    for command in cli_authoring.COMMANDS:
        group.add_command(command)
    cli_bulk.register_commands(group)


_register_commands(main)
