"""Bulk runs of ``crdsmini bestrefs --headers`` (alias ``bulk-bestrefs``) and ``crdsmini affected``.

Thin click layer over :mod:`crdsmini.bulk` and :mod:`crdsmini.affected`: :func:`run_bulk`
reads headers (JSON lines, a JSON object, CSV or Parquet; one file, several, or a glob of
them in sorted order), streams them through the bulk engine in chunks (``--jobs N``
processes, or ``--engine dask``), and writes one record per dataset in input order (JSON
lines, CSV or Parquet), with a progress bar on stderr for long runs.  ``crdsmini bestrefs``
calls it in bulk mode, ``crdsmini bulk-bestrefs`` always.

Headers are read the way ``crdsmini bestrefs --headers`` reads them (keys upper-cased, values
as text, FITS <-> META keywords cross-strapped) and then minimised and conditioned as CRDS's
bestrefs does; ``--raw`` passes each header to the rules exactly as given instead (what
``PipelineContext.get_best_references`` does).  Parquet needs the optional ``pyarrow``
(``pip install crdsmini[parquet]``), the Dask engine ``crdsmini[dask]``.

Exit status: 0 ok, 1 some lookups failed (bulk-bestrefs), 2 usage/configuration errors.
"""
from __future__ import annotations

__all__ = ["bulk_bestrefs_command", "affected_command", "register_commands", "run_bulk", "read_headers",
           "expand_headers", "is_glob", "names_a_glob", "format_of", "output_columns", "DEFAULT_CHUNK_SIZE",
           "OUTPUT_FORMATS"]

import csv
import functools
import glob
import io
import itertools
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import click

from crdsmini.errors import CrdsminiError

EXIT_OK, EXIT_LOOKUP, EXIT_CONFIG = 0, 1, 2
DEFAULT_CHUNK_SIZE = 20_000
OUTPUT_FORMATS = ("jsonl", "csv", "parquet")
_ID_COLUMNS = ("dataset", "id", "dataset_id")
_GLOB_CHARACTERS = "*?["


# ------------------------------------------------------------------------------------------
# Input

def format_of(path: str | Path | None, given: str | None) -> str:
    if given:
        return given
    if path is None or str(path) == "-":
        return "jsonl"
    suffix = Path(str(path)).suffix.lower()
    return {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json"}.get(suffix, "jsonl")


def is_glob(pattern: str | Path) -> bool:
    """True when ``pattern`` holds a glob character (``*``, ``?``, ``[``)."""
    return any(character in str(pattern) for character in _GLOB_CHARACTERS)


def names_a_glob(pattern: str | Path) -> bool:
    """True when a --headers value is a glob to expand: glob characters, and neither ``-``
    (stdin) nor a path that exists (a file may have glob characters in its name)."""
    return is_glob(pattern) and str(pattern) != "-" and not Path(pattern).exists()


def expand_headers(patterns: str | Path | Sequence[str | Path]) -> list[str]:
    """The headers files named by ``patterns``, in the order given.

    A glob stands for every matching file in sorted order, so that the output order does
    not depend on the file system; ``-`` (stdin) and a path that exists are taken as they
    are, glob characters or not.  A glob that matches no file is a :class:`HeaderError`.
    """
    from crdsmini.errors import HeaderError
    if isinstance(patterns, (str, Path)):
        patterns = [patterns]
    paths: list[str] = []
    for pattern in map(str, patterns):
        if not names_a_glob(pattern):
            paths.append(pattern)
            continue
        matches = sorted(path for path in glob.glob(pattern) if Path(path).is_file())
        if not matches:
            raise HeaderError(f"no headers file matches {pattern!r}", file=pattern)
        paths.extend(matches)
    return paths


def _json_entries(obj: Any, default_id: str, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    from crdsmini.errors import HeaderError
    if not isinstance(obj, dict):
        raise HeaderError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if obj and all(isinstance(value, dict) for value in obj.values()):  # {dataset_id: header}
        for dataset_id, params in obj.items():
            yield str(dataset_id), params
        return
    id_key = next((k for k in obj if k.lower() in _ID_COLUMNS and isinstance(obj[k], str)), None)
    if id_key is not None:  # a flat record naming its dataset, as a CSV/Parquet row does
        obj = dict(obj)
        yield obj.pop(id_key), obj
    else:
        yield default_id, obj


def read_headers(path: str | Path, fmt: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(dataset_id, header)`` pairs from a headers file, streamed (never all in memory).

    JSON lines: a header or ``{id: header}`` per line (blank and ``#`` lines skipped); a
    header's ``dataset``/``id`` string names it, else ``<file>:<line>`` as for ``crdsmini
    bestrefs --headers``.  ``.json``: one
    object of either form.  CSV and Parquet: one header per row, keys from the column names;
    a ``dataset``/``id`` column names the dataset (else ``<file>:<row>``); empty Parquet
    cells (null) are absent keys.
    """
    from crdsmini.errors import HeaderError
    from crdsmini.headers import iter_json_lines
    fmt = format_of(path, fmt)
    name = Path(str(path)).name
    try:
        if fmt == "parquet":
            yield from _parquet_headers(path, name)
            return
        handle = sys.stdin if str(path) == "-" else open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise HeaderError(f"cannot read {path}: {exc}", file=str(path)) from None
    with handle:
        if fmt == "json":
            try:
                obj = json.load(handle)
            except ValueError as exc:
                raise HeaderError(f"{path}: not JSON: {exc}", file=str(path)) from None
            yield from _json_entries(obj, name, str(path))
        elif fmt == "csv":
            reader = csv.DictReader(handle)
            id_column = next((c for c in reader.fieldnames or () if c.lower() in _ID_COLUMNS), None)
            for number, row in enumerate(reader, start=1):
                dataset = row.pop(id_column) if id_column else f"{name}:{number}"
                yield dataset, row
        else:
            for number, obj in iter_json_lines(handle, path):
                yield from _json_entries(obj, f"{name}:{number}", f"{path}:{number}")


def _parquet_headers(path: str | Path, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    pq = _pyarrow_parquet()
    table = pq.ParquetFile(str(path))
    id_column = next((c for c in table.schema_arrow.names if c.lower() in _ID_COLUMNS), None)
    number = 0
    for batch in table.iter_batches(batch_size=65536):
        for row in batch.to_pylist():
            number += 1
            dataset = str(row.pop(id_column)) if id_column else f"{name}:{number}"
            yield dataset, {k: v for k, v in row.items() if v is not None}


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise click.UsageError("Parquet needs pyarrow: pip install 'crdsmini[parquet]'") from None
    return pq


def _jsonl_lines(path: str | Path) -> Iterator[tuple[str, int, str]]:
    """The raw (file name, line number, text) of a JSON-lines file; parsed in the workers."""
    from crdsmini.errors import HeaderError
    name = Path(str(path)).name
    try:
        handle = sys.stdin if str(path) == "-" else open(path, encoding="utf-8")
    except OSError as exc:
        raise HeaderError(f"cannot read {path}: {exc}", file=str(path)) from None
    with handle:
        for number, line in enumerate(handle, start=1):
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                yield name, number, stripped


def _parse_lines(normalise: bool, chunk: Sequence[tuple[str, int, str]]) -> list[tuple[str, Any]]:
    """A chunk of JSON-lines text -> (dataset, header) pairs (runs in the worker)."""
    from crdsmini.errors import HeaderError
    items: list[tuple[str, Any]] = []
    for name, number, text in chunk:
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise HeaderError(f"{name}:{number}: not JSON: {exc}", file=name, line=number) from None
        items.extend(_json_entries(obj, f"{name}:{number}", f"{name}:{number}"))
    return [_bestrefs_header(item) for item in items] if normalise else items


def _normalised(chunk: Sequence[tuple[str, Mapping[str, Any]]]) -> list[tuple[str, Any]]:
    return [_bestrefs_header(item) for item in chunk]


def _bestrefs_header(item: tuple[str, Mapping[str, Any]]) -> tuple[str, Any]:
    """A header read the way ``crdsmini bestrefs --headers`` reads it (or the error)."""
    from crdsmini.headers import dataset_header
    dataset, params = item
    try:
        return dataset, dataset_header(params)
    except CrdsminiError as exc:
        return dataset, exc


# ------------------------------------------------------------------------------------------
# Output (formatting runs in the worker that answered the chunk)

def output_columns(context: Any, types: Sequence[str] | None) -> list[str]:
    """The filekind columns of CSV/Parquet output: ``types`` or every selection, first seen."""
    if types:
        return [t.lower() for t in types]
    imaps = context.selections.values() if context.kind == "pmap" else [context]
    return list(dict.fromkeys(kind for imap in imaps for kind in imap.selections))


def _value_text(value: Any) -> Any:
    from crdsmini.bulk import crds_value
    value = crds_value(value)
    return json.dumps(list(value)) if isinstance(value, tuple) else value


def _json_fragment(result: Any) -> str:
    if isinstance(result, CrdsminiError):
        return '"error": ' + json.dumps({"category": result.category, "message": result.message})
    bestrefs = {kind: (list(v) if isinstance(v, tuple) else v) for kind, v in
                ((kind, _crds(value)) for kind, value in result.items())}
    text = '"bestrefs": ' + json.dumps(bestrefs)
    errors = {kind: value.category for kind, value in result.items() if isinstance(value, CrdsminiError)}
    if errors:
        text += ', "errors": ' + json.dumps(errors)
    return text


def _crds(value: Any) -> Any:
    from crdsmini.bulk import crds_value
    return crds_value(value)


def _finish_jsonl(ids: Sequence[str], results: Sequence[Any]) -> tuple[str, int]:
    """JSON-lines text of a chunk, and its number of failed datasets; one fragment per group."""
    fragments: dict[int, str] = {}
    failed: dict[int, bool] = {}
    lines = []
    failures = 0
    for dataset, result in zip(ids, results):
        key = id(result)
        fragment = fragments.get(key)
        if fragment is None:
            fragment = fragments[key] = _json_fragment(result)
            failed[key] = isinstance(result, CrdsminiError) or any(
                isinstance(v, CrdsminiError) for v in result.values())
        failures += failed[key]
        lines.append('{"dataset": ' + json.dumps(dataset) + ", " + fragment + "}\n")
    return "".join(lines), failures


def _finish_rows(columns: Sequence[str], ids: Sequence[str], results: Sequence[Any]) -> tuple[list[list[Any]], int]:
    """CSV/Parquet rows of a chunk: dataset, error, error_category, then one value per column."""
    rows = []
    failures = 0
    cells: dict[int, list[Any]] = {}
    for dataset, result in zip(ids, results):
        key = id(result)
        cached = cells.get(key)
        if cached is None:
            if isinstance(result, CrdsminiError):
                cached = [result.message, result.category] + [None] * len(columns)
            else:
                cached = [None, None] + [_value_text(result[c]) if c in result else None for c in columns]
            cached.append(isinstance(result, CrdsminiError)
                          or any(isinstance(v, CrdsminiError) for v in result.values()))
            cells[key] = cached
        failures += cached[-1]
        rows.append([dataset] + cached[:-1])
    return rows, failures


class _Writer:
    """Writes chunks of records to a JSON-lines, CSV or Parquet output, in order."""

    def __init__(self, path: str | None, fmt: str, header: Sequence[str]) -> None:
        self.fmt, self.header, self.path = fmt, list(header), path
        self._parquet = None
        if fmt == "parquet":
            if not path or path == "-":
                raise click.UsageError("Parquet output needs --output FILE")
            _pyarrow_parquet()
            self.stream: TextIO | None = None
        else:
            self.stream = sys.stdout if not path or path == "-" else open(path, "w", encoding="utf-8", newline="")
            if fmt == "csv":
                self._csv = csv.writer(self.stream)
                self._csv.writerow(self.header)

    def write(self, payload: Any) -> None:
        if self.fmt == "jsonl":
            self.stream.write(payload)
        elif self.fmt == "csv":
            self._csv.writerows(payload)
        else:
            import pyarrow as pa
            columns = list(zip(*payload)) if payload else [[] for _ in self.header]
            table = pa.table({name: pa.array([None if v is None else str(v) for v in values], pa.string())
                              for name, values in zip(self.header, columns)})
            if self._parquet is None:
                self._parquet = _pyarrow_parquet().ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        elif self.fmt == "parquet":  # no rows: still write an empty table with the columns
            import pyarrow as pa
            _pyarrow_parquet().write_table(pa.table({n: pa.array([], pa.string()) for n in self.header}), self.path)
        if self.stream is not None and self.stream is not sys.stdout:
            self.stream.close()
        elif self.stream is not None:
            self.stream.flush()


class _Progress:
    """A progress bar on stderr (tqdm when installed, else a plain counter line)."""

    def __init__(self, enabled: bool, unit: str = "headers") -> None:
        self.enabled = enabled
        self.count = 0
        self._bar = None
        if enabled:
            try:
                from tqdm import tqdm
                self._bar = tqdm(unit=f" {unit}", unit_scale=True, file=sys.stderr, mininterval=0.5)
            except ImportError:
                self._bar = None

    def update(self, n: int) -> None:
        self.count += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
        else:
            sys.stderr.write(f"\r{self.count} headers")
            sys.stderr.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            sys.stderr.write("\n")


# ------------------------------------------------------------------------------------------
# Commands

def _load(context: str | None, parse_cache: str | None) -> Any:
    from crdsmini.bestrefs import load_context
    from crdsmini.cache import open_cache
    from crdsmini.config import load_config
    from crdsmini.loading import load_mapping
    from crdsmini.parse_cache import ParseCache

    config = load_config(context=context)
    cache = open_cache(config, context=context)
    path = cache.context_path(context)
    if parse_cache:
        return load_mapping(path, ignore_checksum=config.ignore_mapping_checksum, cache=ParseCache(parse_cache))
    return load_context(cache, context)


def _items(paths: Sequence[str], input_format: str | None, raw: bool) -> Iterator[tuple[str, Any]]:
    items = itertools.chain.from_iterable(read_headers(path, input_format) for path in paths)
    return items if raw else map(_bestrefs_header, items)


def _counted(items: Iterable[Any], progress: _Progress, every: int = 5000) -> Iterator[Any]:
    pending = 0
    for item in items:
        yield item
        pending += 1
        if pending == every:
            progress.update(pending)
            pending = 0
    progress.update(pending)


_SHARED_OPTIONS = [
    click.option("--headers", "headers_file", required=True, metavar="FILE",
                 help="Headers: JSON lines (.jsonl, '-' for stdin), .json, .csv or .parquet; a quoted "
                      "glob ('archive/*.parquet') reads every match in sorted order."),
    click.option("--input-format", type=click.Choice(("jsonl", "json", "csv", "parquet")),
                 help="Format of --headers (default: from its suffix)."),
    click.option("--output", "output", metavar="FILE", help="Output file (default: stdout)."),
    click.option("--output-format", type=click.Choice(OUTPUT_FORMATS),
                 help="jsonl, csv or parquet (default: from --output's suffix, else jsonl)."),
    click.option("-t", "--types", "types", multiple=True, metavar="TYPE",
                 help="Only these reference types (repeat or separate with commas)."),
    click.option("--raw", is_flag=True,
                 help="Use each header exactly as given (no key normalisation, no conditioning)."),
    click.option("--jobs", "-j", type=click.IntRange(1), default=1, show_default=True,
                 help="Worker processes (the context is sent once to each)."),
    click.option("--chunk-size", type=click.IntRange(1), default=DEFAULT_CHUNK_SIZE, show_default=True,
                 help="Headers per chunk (memory ~ jobs x chunk)."),
    click.option("--progress/--no-progress", default=None,
                 help="Progress bar on stderr (default: when stderr is a terminal)."),
    click.option("--parse-cache", metavar="DIR",
                 help="Persistent parse cache folder (read and filled; may be read-only)."),
]


def _shared(function: Any) -> Any:
    for decorator in reversed(_SHARED_OPTIONS):
        function = decorator(function)
    return function


def _types(values: Sequence[str]) -> list[str]:
    return [t.strip().lower() for value in values for t in value.split(",") if t.strip()]


@click.command("bulk-bestrefs")
@click.option("-n", "--context", "--new-context", "context", metavar="CTX",
              help="Context (name in the cache or path); default as for bestrefs.")
@click.option("-o", "--old-context", metavar="CTX",
              help="Also evaluate under CTX and list only the datasets whose references change "
                   "(same as `crdsmini affected`).")
@_shared
@click.option("--engine", type=click.Choice(("local", "dask")), default="local", show_default=True,
              help="local: this machine (--jobs processes); dask: dask.dataframe.map_partitions.")
@click.option("--scheduler", metavar="ADDRESS",
              help="Dask scheduler address (default: start a LocalCluster with --jobs workers).")
def bulk_bestrefs_command(context: str | None, old_context: str | None, headers_file: str,
                          input_format: str | None, output: str | None, output_format: str | None,
                          types: tuple[str, ...], raw: bool, jobs: int, chunk_size: int,
                          progress: bool | None, parse_cache: str | None, engine: str,
                          scheduler: str | None) -> None:
    """Best references for every header of --headers, in input order, one record each.

    The same as `crdsmini bestrefs --headers FILE` in bulk mode (see its --help).
    """
    sys.exit(run_bulk(headers_file, context=context, old_context=old_context, input_format=input_format,
                      output=output, output_format=output_format, types=types, raw=raw, jobs=jobs,
                      chunk_size=chunk_size, progress=progress, parse_cache=parse_cache, engine=engine,
                      scheduler=scheduler))


def run_bulk(headers: str | Sequence[str], *, context: str | None = None, old_context: str | None = None,
             input_format: str | None = None, output: str | None = None, output_format: str | None = None,
             types: Sequence[str] = (), raw: bool = False, jobs: int = 1, chunk_size: int = DEFAULT_CHUNK_SIZE,
             progress: bool | None = None, parse_cache: str | None = None, engine: str = "local",
             scheduler: str | None = None) -> int:
    """A bulk run as ``crdsmini bestrefs --headers`` / ``bulk-bestrefs`` does it; the exit status.

    ``headers``: one file, several, or globs of them (see :func:`expand_headers`), read in that
    order.  With ``old_context`` only the datasets whose references change are written (the
    ``affected`` output, always on this machine).  Writes to ``output`` (stdout when None) and
    reports errors on stderr; raises :class:`click.UsageError` for impossible combinations.
    """
    try:
        paths = expand_headers(headers)
    except CrdsminiError as exc:
        return _fail(str(exc))
    if old_context:
        return _affected(old_context, context, paths, input_format, output, output_format, types, raw,
                         progress, parse_cache)
    from crdsmini import bulk

    fmt = format_of(output, output_format) if output or output_format else "jsonl"
    if fmt == "json":
        fmt = "jsonl"
    try:
        ctx = _load(context, parse_cache)
    except CrdsminiError as exc:
        return _fail(str(exc))
    include = _types(types) or None
    if engine == "dask":
        from crdsmini import dask_engine
        if fmt != "parquet":
            raise click.UsageError("--engine dask writes Parquet: give --output FILE.parquet")
        try:
            count, failures = dask_engine.run_bestrefs(ctx, paths, output, include=include,
                                                       condition=not raw, scheduler=scheduler, workers=jobs,
                                                       input_format=input_format)
        except CrdsminiError as exc:
            return _fail(str(exc))
        click.echo(f"crdsmini: {count} datasets, {failures} with failed lookups -> {output}", err=True)
        return EXIT_LOOKUP if failures else EXIT_OK
    columns = output_columns(ctx, include)
    finish = (_finish_jsonl if fmt == "jsonl" else functools.partial(_finish_rows, columns))
    writer = _Writer(output, fmt, ["dataset", "error", "error_category"] + columns)
    bar = _Progress(sys.stderr.isatty() if progress is None else progress)
    failures = 0
    try:
        # Only reading happens here: JSON parsing and key normalisation run in the workers.
        if all(format_of(path, input_format) == "jsonl" for path in paths):
            items: Iterable[Any] = itertools.chain.from_iterable(_jsonl_lines(path) for path in paths)
            prepare: Any = functools.partial(_parse_lines, not raw)
        else:
            items = itertools.chain.from_iterable(read_headers(path, input_format) for path in paths)
            prepare = None if raw else _normalised
        items = _counted(items, bar)
        for payload, failed in bulk.iter_best_references(ctx, items, include=include, condition=not raw,
                                                         jobs=jobs, chunk_size=chunk_size, with_ids=True,
                                                         finish=finish, prepare=prepare):
            writer.write(payload)
            failures += failed
    except CrdsminiError as exc:
        return _fail(str(exc))
    finally:
        bar.close()
        writer.close()
    return EXIT_LOOKUP if failures else EXIT_OK


@click.command("affected")
@click.option("-o", "--old-context", required=True, metavar="CTX", help="The context in use.")
@click.option("-n", "--new-context", "--context", "new_context", metavar="CTX",
              help="The new context (default as for bestrefs).")
@_shared
def affected_command(old_context: str, new_context: str | None, headers_file: str, input_format: str | None,
                     output: str | None, output_format: str | None, types: tuple[str, ...], raw: bool,
                     jobs: int, chunk_size: int, progress: bool | None, parse_cache: str | None) -> None:
    """List only the datasets whose references change from --old-context to --new-context.

    The two contexts are compared first; only datasets that a changed rule can reach are
    evaluated again.  One record per changed dataset: {dataset, instrument, changes:
    {type: {old, new}}} (CSV/Parquet: one row per changed type).
    """
    try:
        paths = expand_headers(headers_file)
    except CrdsminiError as exc:
        sys.exit(_fail(str(exc)))
    sys.exit(_affected(old_context, new_context, paths, input_format, output, output_format, types, raw,
                       progress, parse_cache))


def _affected(old_context: str, new_context: str | None, paths: Sequence[str], input_format: str | None,
              output: str | None, output_format: str | None, types: Sequence[str], raw: bool,
              progress: bool | None, parse_cache: str | None) -> int:
    from crdsmini.affected import affected_datasets, context_difference

    fmt = format_of(output, output_format) if output or output_format else "jsonl"
    if fmt == "json":
        fmt = "jsonl"
    try:
        old, new = _load(old_context, parse_cache), _load(new_context, parse_cache)
    except CrdsminiError as exc:
        return _fail(str(exc))
    wanted = set(_types(types))
    difference = context_difference(old, new)
    writer = _Writer(output, fmt, ["dataset", "instrument", "type", "old", "new"])
    bar = _Progress(sys.stderr.isatty() if progress is None else progress)
    stats: dict[str, int] = {}
    try:
        items = _counted(_items(paths, input_format, raw), bar)
        items = ((d, h) for d, h in items if not isinstance(h, CrdsminiError))
        for change in affected_datasets(old, new, items, condition=not raw, difference=difference, stats=stats):
            kinds = {k: v for k, v in change.types.items() if not wanted or k in wanted}
            if not kinds and not (change.old_error or change.new_error):
                continue
            if fmt == "jsonl":
                record: dict[str, Any] = {"dataset": change.dataset, "instrument": change.instrument,
                                          "changes": {k: {"old": _jsonable(a), "new": _jsonable(b)}
                                                      for k, (a, b) in kinds.items()}}
                if change.old_error or change.new_error:
                    record["old_error"], record["new_error"] = change.old_error, change.new_error
                writer.write(json.dumps(record) + "\n")
            else:
                rows = [[change.dataset, change.instrument, k, _value_text(a), _value_text(b)]
                        for k, (a, b) in kinds.items()]
                if change.old_error or change.new_error:
                    rows.append([change.dataset, change.instrument, "*", change.old_error, change.new_error])
                writer.write(rows)
    except CrdsminiError as exc:
        return _fail(str(exc))
    finally:
        bar.close()
        writer.close()
    click.echo(f"crdsmini: {stats.get('datasets', 0)} datasets, {stats.get('candidates', 0)} re-evaluated "
               f"(context diff: {sum(len(v) for v in difference.changed.values())} changed types), "
               f"{stats.get('changed', 0)} changed", err=True)
    return EXIT_OK


def register_commands(group: click.Group) -> None:
    """Add ``bulk-bestrefs`` and ``affected`` to a click group (``crdsmini.cli.main``)."""
    group.add_command(bulk_bestrefs_command)
    group.add_command(affected_command)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _fail(message: str) -> int:
    click.echo(f"crdsmini: error: {message}", err=True)
    return EXIT_CONFIG
