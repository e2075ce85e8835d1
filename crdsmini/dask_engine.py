"""Scale-out on Dask (optional extra ``crdsmini[dask]``): the bulk engine per partition.

Owns the ``--engine dask`` path of ``crdsmini bestrefs --headers`` (and ``bulk-bestrefs``):
headers are read as a ``dask.dataframe`` (Parquet, CSV or flat JSON lines; one file, several,
or a glob of them, concatenated in sorted order as the local engine reads them), each
partition is answered by
:class:`crdsmini.bulk.BulkSelector` -- the very function the CLI and the library use, so
the answers cannot drift -- through ``map_partitions``, and the result is written as a
Parquet dataset (a folder of part files).  With no scheduler address a ``LocalCluster`` is
started on this machine.

The loaded context travels once, pickled, as one shared graph value; each worker process
unpickles it once (kept per process by its SHA-1) whatever the number of partitions.
"""
from __future__ import annotations

__all__ = ["available", "bestrefs_frame", "run_bestrefs", "local_client"]

import hashlib
import math
import pickle
from pathlib import Path
from typing import Any, Sequence

from crdsmini.errors import ConfigurationError

_CONTEXTS: dict[str, Any] = {}  # per worker process: SHA-1 of the pickled context -> context
_ID_COLUMNS = ("dataset", "id", "dataset_id")


def available() -> bool:
    """True when dask[dataframe,distributed] can be imported."""
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def _require() -> None:
    if not available():
        raise ConfigurationError("--engine dask needs the optional dask extra: pip install 'crdsmini[dask]'")


def _context(payload: bytes) -> Any:
    key = hashlib.sha1(payload).hexdigest()
    context = _CONTEXTS.get(key)
    if context is None:
        context = _CONTEXTS[key] = pickle.loads(payload)
    return context


def _is_missing(value: Any) -> bool:
    """An empty cell: None, NaN or pandas' NA (pandas 3 string columns)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return type(value).__name__ == "NAType"


def _partition(frame: Any, payload: bytes, include: list[str] | None, condition: bool,
               columns: list[str]) -> Any:
    """Answer one pandas partition; the same rows as the CLI's CSV/Parquet output."""
    import pandas as pd

    from crdsmini.bulk import BulkSelector
    from crdsmini.cli_bulk import _bestrefs_header, _finish_rows

    names = list(frame.columns)
    id_column = next((c for c in names if str(c).lower() in _ID_COLUMNS), None)
    keys = [c for c in names if c != id_column]
    items = []
    for position, row in enumerate(frame.itertuples(index=True, name=None)):
        index, values = row[0], row[1:]
        header = {str(key): value for key, value in zip(names, values)
                  if key != id_column and not _is_missing(value)}
        dataset = str(values[names.index(id_column)]) if id_column else str(index)
        items.append((dataset, header))
    del keys
    if condition:
        items = [_bestrefs_header(item) for item in items]
    selector = BulkSelector(_context(payload), include=include, condition=condition)
    rows, _ = _finish_rows(columns, [d for d, _ in items], selector.select_shared([h for _, h in items]))
    failed = [row[1] is not None or any(isinstance(v, str) and v.startswith("NOT FOUND ")
                                        and v != "NOT FOUND n/a" for v in row[3:]) for row in rows]
    out = pd.DataFrame(rows, columns=["dataset", "error", "error_category"] + list(columns), dtype=object)
    out = out.astype("string")
    out["failed"] = pd.Series(failed, index=out.index, dtype=bool)
    return out


def bestrefs_frame(context: Any, frame: Any, *, include: Sequence[str] | None = None,
                   condition: bool = True, columns: Sequence[str] | None = None) -> Any:
    """A dask DataFrame of answers (``dataset``, ``error``, ``error_category``, one column per
    filekind, and a boolean ``failed``) for a dask DataFrame of headers, partition by
    partition.  ``condition`` as for the CLI (False: headers exactly as given)."""
    _require()
    import dask
    import pandas as pd

    from crdsmini.cli_bulk import output_columns

    columns = list(columns) if columns else output_columns(context, include)
    payload = dask.delayed(pickle.dumps(context, protocol=pickle.HIGHEST_PROTOCOL), pure=True)
    meta = pd.DataFrame({name: pd.Series(dtype="string") for name in
                         ["dataset", "error", "error_category"] + columns})
    meta["failed"] = pd.Series(dtype=bool)
    return frame.map_partitions(_partition, payload, list(include) if include else None, condition, columns,
                                meta=meta)


def local_client(workers: int = 2, scheduler: str | None = None) -> Any:
    """A distributed Client: to ``scheduler``, or to a new LocalCluster of ``workers`` processes."""
    _require()
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    return Client(cluster)


def _read(headers: str | Path | Sequence[str | Path], input_format: str | None) -> Any:
    """One dask DataFrame of every headers file, in the order of ``expand_headers``.

    Several files are read one by one and concatenated, because dask's own multi-file
    readers order paths their way (naturally: ``h2`` before ``h10``), not as the local
    engine does.
    """
    import dask.dataframe as dd

    from crdsmini.cli_bulk import expand_headers
    paths = expand_headers(headers)
    if len(paths) == 1:
        return _read_one(paths[0], input_format)
    return dd.concat([_read_one(path, input_format) for path in paths])


def _read_one(path: str, input_format: str | None) -> Any:
    import dask.dataframe as dd

    from crdsmini.cli_bulk import format_of
    if path == "-":
        raise ConfigurationError("--engine dask cannot read headers from stdin")
    fmt = format_of(path, input_format)
    if fmt == "parquet":
        return dd.read_parquet(path)
    if fmt == "csv":
        return dd.read_csv(path, dtype=str, keep_default_na=False)
    if fmt == "jsonl":
        return dd.read_json(path, lines=True, dtype=False, blocksize=2**24)
    raise ConfigurationError(f"--engine dask reads Parquet, CSV or flat JSON lines, not {fmt}")


def run_bestrefs(context: Any, headers_path: str | Path | Sequence[str | Path], output: str, *, include: Sequence[str] | None = None,
                 condition: bool = True, scheduler: str | None = None, workers: int = 2,
                 input_format: str | None = None) -> tuple[int, int]:
    """Answer every header of ``headers_path`` (a file, several, or globs) on Dask and write
    ``output`` (a Parquet dataset); returns (datasets, datasets with a failed lookup)."""
    _require()
    import dask

    client = local_client(workers, scheduler)
    try:
        answers = bestrefs_frame(context, _read(headers_path, input_format), include=include, condition=condition)
        write = answers.drop(columns=["failed"]).to_parquet(output, write_index=False, compute=False)
        _, count, failures = dask.compute(write, answers.shape[0], answers["failed"].sum())
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None and scheduler is None:
            cluster.close()
    return int(count), int(failures)
