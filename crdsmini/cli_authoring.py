"""The rule-authoring commands: checksum, insert-reference, delete-reference, new-context,
set-header, del-header, check, diff (writing spec §8).

Thin click wrappers: they parse options, call ``refactor``/``newcontext``/``checks``/
``mapdiff``, format results and map errors to output and exit status.  Every file they write
goes through :class:`crdsmini.atomic.WriteSet` (temp file + fsync + rename, all or nothing).

Errors are printed first, as ``crdsmini: error [<category>] <message>``, so that the first
category name in the output is the one that counts.  Exit status: 0 on success, 1 on any
error (``diff``: 0 same, 1 different, 2 error).

The commands are registered on the main ``crdsmini`` group by ``crdsmini.cli``; ``COMMANDS``
lists them.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import click

from crdsmini.atomic import CacheLock, WriteSet
from crdsmini.cache import Cache, infer_cache_root, observatory_of
from crdsmini.checksum import compute_checksum, read_mapping_text, stated_checksum
from crdsmini.checks import CheckOptions, check_paths, format_findings
from crdsmini.config import Config, load_config
from crdsmini.errors import ConfigurationError, CrdsminiError, FileExistsConflictError, MissingFileError
from crdsmini.refactor import (
    InsertOptions,
    checksum_document,
    del_header,
    delete_references,
    insert_references,
    load_document,
    parse_header_value,
    read_references,
    set_header,
)
from crdsmini.mapdiff import diff_mappings, format_differences
from crdsmini.newcontext import find_context_for, next_name, plan_new_context
from crdsmini.writer import render

__all__ = [
    "checksum_command",
    "insert_reference_command",
    "delete_reference_command",
    "new_context_command",
    "set_header_command",
    "del_header_command",
    "check_command",
    "diff_command",
    "COMMANDS",
]


# --------------------------------------------------------------------------- helpers


def _report_error(error: CrdsminiError) -> None:
    where = error.location()
    prefix = f"{where}: " if where and where not in error.message else ""
    click.echo(f"crdsmini: error [{error.category}] {prefix}{error.message}", err=True)


def _fail(error: CrdsminiError, code: int = 1) -> None:
    _report_error(error)
    sys.exit(code)


def _warn(messages: Iterable[str]) -> None:
    for message in messages:
        click.echo(f"crdsmini: warning: {message}", err=True)


def _load_valid_values(path: str | Path | None, rmap_name: str) -> Mapping[str, Sequence[str]] | None:
    """Valid values from a JSON file ({parkey: [values]}) or a folder of ``<rmap>.json``."""
    if not path:
        return None
    location = Path(path)
    if location.is_dir():
        location = location / f"{rmap_name}.json"
        if not location.is_file():
            return None
    try:
        data = json.loads(location.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"Cannot read valid values from '{location}': {exc}", file=str(location)) from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"'{location}' must hold a JSON object {{parkey: [values]}}", file=str(location))
    return {str(k): [str(v) for v in values] for k, values in data.items()}


def _cache_valid_values(cache: Cache | None, header: Mapping[str, Any]) -> Path | None:
    """``config/<obs>/valid_values/<instrument>_<filekind>.json`` of the cache, when present."""
    if cache is None:
        return None
    observatory = str(header.get("observatory", "")).lower()
    name = f"{str(header.get('instrument', '')).lower()}_{str(header.get('filekind', '')).lower()}.json"
    try:
        candidate = cache.config_dir(observatory) / "valid_values" / name
    except ConfigurationError:
        return None
    return candidate if candidate.is_file() else None


def _open_cache(mapping_path: Path, explicit: str | None, config: Config) -> Cache | None:
    """The cache being edited: --cache, else the ``<root>`` of ``<root>/mappings/<obs>/OLD``,
    else the configured one (CRDS_PATH...), else None."""
    if explicit:
        root = Path(explicit)
        return Cache(load_config(crds_path=str(root)), root)
    root = infer_cache_root(mapping_path)
    if root is not None:
        return Cache(load_config(crds_path=str(root)), root)
    return Cache(config, None) if config.has_cache else None


def _same_bytes(first: Path, second: Path) -> bool:
    if first.stat().st_size != second.stat().st_size:
        return False
    with open(first, "rb") as a, open(second, "rb") as b:
        while True:
            chunk = a.read(1 << 20)
            if chunk != b.read(1 << 20):
                return False
            if not chunk:
                return True


def _unified_diff(old_text: str, new_text: str, old_name: str, new_name: str) -> str:
    return "".join(difflib.unified_diff(old_text.splitlines(keepends=True), new_text.splitlines(keepends=True),
                                        fromfile=old_name, tofile=new_name))


def _references_option(func: Any) -> Any:
    """``--references A B C`` as in crds refactor2: the first name is the option value, the
    rest arrive as extra arguments."""
    func = click.argument("more_references", nargs=-1, type=click.Path())(func)
    return click.option("--references", "references", multiple=True, type=click.Path(),
                        help="Reference file(s) (several may follow one --references).")(func)


# --------------------------------------------------------------------------- checksum


@click.command("checksum")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--verify", is_flag=True, help="Only compare the stated and computed sums; change nothing.")
@click.option("--dry-run", is_flag=True, help="Report which files would change; write nothing.")
def checksum_command(files: Sequence[str], verify: bool, dry_run: bool) -> None:
    """Rewrite each mapping canonically with a fresh sha1sum (same bytes as `crds checksum`).

    Files with duplicate keys are refused and left untouched.  With --verify, exit 1 when
    any sum is missing or wrong and print the expected sum.
    """
    errors = 0
    for name in files:
        path = Path(name)
        try:
            if not path.is_file():
                raise MissingFileError(f"No such file '{name}'", file=name)
            text = read_mapping_text(path)
            if verify:
                errors += _verify_one(path, text)
                continue
            document = checksum_document(text, path.name)
            _, new_text = render(document)
        except CrdsminiError as error:
            _report_error(error)
            errors += getattr(error, "count", 1)
            continue
        if new_text.encode("utf-8") == path.read_bytes():
            click.echo(f"'{name}' is canonical and its sum is correct")
            continue
        if dry_run:
            click.echo(f"would rewrite '{name}' (sha1sum {compute_checksum(new_text)})")
            continue
        writes = WriteSet()
        writes.add_text(path, new_text, overwrite=True)
        try:
            writes.commit()
        except (CrdsminiError, OSError) as error:
            click.echo(f"crdsmini: error [other] cannot write '{name}': {error}", err=True)
            errors += 1
            continue
        click.echo(f"Adding checksum for '{name}'")
    sys.exit(1 if errors else 0)


def _verify_one(path: Path, text: str) -> int:
    if load_config().ignore_mapping_checksum:
        click.echo("crdsmini: warning: mapping checksums are disabled by CRDS_IGNORE_MAPPING_CHECKSUM", err=True)
        return 0
    stated, computed = stated_checksum(text), compute_checksum(text)
    if stated is None:
        click.echo(f"crdsmini: error [checksum-error] sha1sum is missing in '{path}' (expected '{computed}')",
                   err=True)
        return 1
    if stated != computed:
        click.echo(f"crdsmini: error [checksum-error] sha1sum mismatch in '{path}': stated '{stated}', "
                   f"expected '{computed}'", err=True)
        return 1
    click.echo(f"'{path}' sha1sum OK")
    return 0


# --------------------------------------------------------------------------- insert / delete


def _common_edit_options(func: Any) -> Any:
    options = [
        click.option("--force", is_flag=True,
                     help="Overwrite existing files (and, for insert, accept a reference whose "
                          "INSTRUME/REFTYPE differ from the rmap)."),
        click.option("--update-context", is_flag=True,
                     help="Also write the new .imap and .pmap that select the new rmap (next version names)."),
        click.option("--in-place-imap", is_flag=True, help="With --update-context: edit the current imap instead."),
        click.option("--context", "context", type=click.Path(),
                     help="With --update-context: the pmap to start from (default: the newest one selecting OLD)."),
        click.option("--cache", type=click.Path(),
                     help="The cache folder (default: <root> of <root>/mappings/<obs>/OLD, else CRDS_PATH)."),
        click.option("--dry-run", is_flag=True, help="Compute everything, write nothing."),
        click.option("--diff", "show_diff", is_flag=True, help="Print the unified diff of every mapping written."),
        click.option("--lock-timeout", type=float, default=60.0, show_default=True,
                     help="Seconds to wait for another run holding the cache lock."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command("insert-reference")
@click.option("--old-rmap", required=True, type=click.Path(), help="The rmap to start from.")
@click.option("--new-rmap", type=click.Path(),
              help="The rmap to write (default: the next version name next to the old one).")
@_references_option
@click.option("--crds-compat", is_flag=True,
              help="Byte-identical CRDS output: keep the old header 'name' (CRDS never updates it), "
                   "insert missing keywords as UNDEFINED, do not compare INSTRUME/REFTYPE with the rmap.")
@click.option("--allow-bad-values", is_flag=True,
              help="Insert values outside the valid values, or missing keywords as UNDEFINED "
                   "(also env CRDS_ALLOW_BAD_PARKEY_VALUES).")
@click.option("--allow-bad-useafter", is_flag=True,
              help="Fake 1900-01-01 00:00:00 for a missing/unreadable USEAFTER (also env CRDS_ALLOW_BAD_USEAFTER).")
@click.option("--valid-values", "valid_values", type=click.Path(),
              help="JSON {parkey: [values]} or a folder of <rmap>.json files to validate new keys against "
                   "(default: the cache's config/<obs>/valid_values/<instrument>_<filekind>.json).")
@click.option("--strict", is_flag=True, help="A new key wider than an existing row is an error.")
@click.option("--install", is_flag=True, help="Copy the reference files into the cache's references folder.")
@_common_edit_options
def insert_reference_command(old_rmap: str, new_rmap: str | None, references: Sequence[str],
                             more_references: Sequence[str], crds_compat: bool, allow_bad_values: bool,
                             allow_bad_useafter: bool, valid_values: str | None, strict: bool, install: bool,
                             force: bool, update_context: bool, in_place_imap: bool, context: str | None,
                             cache: str | None, dry_run: bool, show_diff: bool, lock_timeout: float) -> None:
    """Insert reference file(s) into an rmap where CRDS would (crds refactor2 insert_reference).

    Unlike CRDS, the new rmap's header 'name' is set to its file name; --crds-compat keeps
    CRDS's bytes (old name kept).  With --update-context --install this is the whole TMT
    workflow in one command: new rmap, new imap and pmap with fresh sums, reference files
    copied into the cache.  Nothing is written when anything fails.
    """
    try:
        refs = list(references) + list(more_references)
        if not refs:
            raise click.UsageError("give at least one reference file with --references")
        config = load_config()
        request = _EditRequest(old_rmap, new_rmap, refs, force=force, update_context=update_context,
                               in_place_imap=in_place_imap, context=context, install=install, cache=cache,
                               dry_run=dry_run, show_diff=show_diff, lock_timeout=lock_timeout)
        request.insert_options = InsertOptions(
            crds_compat=crds_compat,
            allow_bad_values=allow_bad_values or config.allow_bad_parkey_values,
            allow_bad_useafter=allow_bad_useafter or config.allow_bad_useafter,
            force=force, strict=strict)
        request.valid_values = valid_values
        _edit_rmap(request, config)
    except CrdsminiError as error:
        _fail(error)


@click.command("delete-reference")
@click.option("--old-rmap", required=True, type=click.Path(), help="The rmap to start from.")
@click.option("--new-rmap", type=click.Path(), help="The rmap to write (default: the next version name).")
@_references_option
@click.option("--crds-compat", is_flag=True, help="Keep the old header 'name', as CRDS does.")
@_common_edit_options
def delete_reference_command(old_rmap: str, new_rmap: str | None, references: Sequence[str],
                             more_references: Sequence[str], crds_compat: bool, force: bool, update_context: bool,
                             in_place_imap: bool, context: str | None, cache: str | None, dry_run: bool,
                             show_diff: bool, lock_timeout: float) -> None:
    """Remove every entry selecting the named reference file(s) (the inverse of insert-reference).

    REF names are basenames; the files need not exist.
    """
    try:
        refs = list(references) + list(more_references)
        if not refs:
            raise click.UsageError("give at least one reference name with --references")
        request = _EditRequest(old_rmap, new_rmap, refs, force=force, update_context=update_context,
                               in_place_imap=in_place_imap, context=context, install=False, cache=cache,
                               dry_run=dry_run, show_diff=show_diff, lock_timeout=lock_timeout)
        request.deleting = True
        request.insert_options = InsertOptions(crds_compat=crds_compat)
        _edit_rmap(request, load_config())
    except CrdsminiError as error:
        _fail(error)


class _EditRequest:
    """What one insert/delete run was asked to do (the parsed command line)."""

    def __init__(self, old_rmap: str, new_rmap: str | None, refs: Sequence[str], **flags: Any) -> None:
        self.old_path = Path(old_rmap)
        self.new_rmap = new_rmap
        self.refs = list(refs)
        self.deleting = False
        self.insert_options = InsertOptions()
        self.valid_values: str | None = None
        self.force: bool = flags["force"]
        self.update_context: bool = flags["update_context"]
        self.in_place_imap: bool = flags["in_place_imap"]
        self.context: str | None = flags["context"]
        self.install: bool = flags["install"]
        self.cache: str | None = flags["cache"]
        self.dry_run: bool = flags["dry_run"]
        self.show_diff: bool = flags["show_diff"]
        self.lock_timeout: float = flags["lock_timeout"]


def _edit_rmap(request: _EditRequest, config: Config) -> None:
    old_path = request.old_path
    cache = _open_cache(old_path, request.cache, config)
    lock_folder = old_path.resolve().parent
    if cache is not None:
        try:
            lock_folder = cache.mappings_dir(observatory_of(old_path.name))
        except ConfigurationError:
            pass
    lock = None if request.dry_run else CacheLock(lock_folder, timeout=request.lock_timeout)
    if lock is not None:
        lock.acquire()
    try:
        # Names are chosen and everything is read under the lock: a run that waited sees
        # what the previous one wrote.
        new_path = Path(request.new_rmap) if request.new_rmap else \
            old_path.parent / next_name(old_path.name, old_path.parent)
        _refuse_existing_new(old_path, new_path, request.force)
        summary, writes, planned = _plan_edit(request, old_path, new_path, cache)
        if request.show_diff:
            for path, before, after in planned:
                click.echo(_unified_diff(before, after, f"{path} (before)", str(path)), nl=False)
        if request.dry_run:
            click.echo("Dry run: nothing written. Would write: " + ", ".join(str(t) for t in writes.targets))
            for line in summary:
                click.echo("  " + line)
            return
        writes.commit()
    finally:
        if lock is not None:
            lock.release()
    for line in summary:
        click.echo(line)


def _refuse_existing_new(old_path: Path, new_path: Path, force: bool) -> None:
    in_place = new_path.exists() and old_path.exists() and new_path.resolve() == old_path.resolve()
    if new_path.exists() and not in_place and not force:
        raise FileExistsConflictError(
            f"Refusing to overwrite existing '{new_path}' (choose another --new-rmap or use --force)",
            file=str(new_path))


def _plan_edit(request: _EditRequest, old_path: Path, new_path: Path,
               cache: Cache | None) -> tuple[list[str], WriteSet, list[tuple[Path, str, str]]]:
    document = load_document(old_path, kind="rmap")
    in_place = new_path.exists() and new_path.resolve() == old_path.resolve()
    if request.deleting:
        result = delete_references(document, request.refs, old_name=old_path.name, new_name=new_path.name,
                                   crds_compat=request.insert_options.crds_compat)
    else:
        values_path = request.valid_values or _cache_valid_values(cache, document.header)
        options = request.insert_options
        options = dataclasses.replace(options, valid_values=_load_valid_values(values_path, old_path.name))
        result = insert_references(document, read_references(request.refs), old_name=old_path.name,
                                   new_name=new_path.name, options=options)
    _warn(result.warnings)
    edited, text = render(result.document)
    writes = WriteSet()
    writes.add_text(new_path, text, overwrite=request.force or in_place)
    planned: list[tuple[Path, str, str]] = [(new_path, read_mapping_text(old_path), text)]
    summary = []
    for insertion in result.insertions:
        replaced = f" (replacing '{insertion.replaced}')" if insertion.replaced else ""
        summary.append(f"Inserted '{insertion.reference}' into '{old_path.name}' -> '{new_path.name}': "
                       f"{insertion.effect} at {insertion.keys!r}{replaced}")
    for keys, name in result.deleted:
        summary.append(f"Deleted '{name}' at {keys!r} from '{old_path.name}' -> '{new_path.name}'")
    if request.update_context:
        pmap = Path(request.context) if request.context else find_context_for(old_path.name, old_path.parent)
        plan = plan_new_context(pmap, [(new_path.name, edited.header)], output_dir=new_path.parent,
                                in_place_imap=request.in_place_imap, taken=[new_path.name])
        for item in plan.files:
            if item.path.exists() and not item.in_place and not request.force:
                raise FileExistsConflictError(f"Refusing to overwrite existing '{item.path}'", file=str(item.path))
            writes.add_text(item.path, item.text, overwrite=item.in_place or request.force)
            planned.append((item.path, read_mapping_text(item.old_path), item.text))
        summary.extend(plan.summary)
    if request.install:
        summary.extend(_plan_install(request, cache, edited.header, writes))
    return summary, writes, planned


def _plan_install(request: _EditRequest, cache: Cache | None, header: Mapping[str, Any],
                  writes: WriteSet) -> list[str]:
    if cache is None:
        raise ConfigurationError("--install needs the cache folder: give --cache or set CRDS_PATH",
                                 keyword="--cache")
    summary = []
    observatory, instrument = str(header.get("observatory", "")), str(header.get("instrument", ""))
    for ref in request.refs:
        target = cache.reference_path(Path(ref).name, observatory, instrument)
        if target.exists() and _same_bytes(Path(ref), target):
            summary.append(f"'{target}' is already in the cache")
            continue
        if target.exists() and not request.force:
            raise FileExistsConflictError(
                f"Refusing to overwrite the different reference file already in the cache '{target}' "
                "(use --force)", file=str(target))
        if not request.dry_run:
            target.parent.mkdir(parents=True, exist_ok=True)
        writes.add_copy(ref, target, overwrite=request.force)
        summary.append(f"Installed '{Path(ref).name}' as '{target}'")
    return summary


# --------------------------------------------------------------------------- new context


@click.command("new-context")
@click.argument("old_pmap", type=click.Path())
@click.argument("new_rmaps", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output-dir", type=click.Path(), help="Where to write (default: the old pmap's folder).")
@click.option("--in-place-imap", is_flag=True, help="Edit the current imap(s) and re-sum them; no new pmap.")
@click.option("--dry-run", is_flag=True, help="Print what would be written; write nothing.")
@click.option("--diff", "show_diff", is_flag=True, help="Print the unified diff of every file written.")
def new_context_command(old_pmap: str, new_rmaps: Sequence[str], output_dir: str | None, in_place_imap: bool,
                        dry_run: bool, show_diff: bool) -> None:
    """Write the imap(s) and pmap that select NEW_RMAP... (next version names, fresh sums).

    Every new file gets derived_from = the file it replaces and name = its own file name.
    """
    try:
        rmaps = [(Path(path).name, load_document(path, kind="rmap").header) for path in new_rmaps]
        plan = plan_new_context(old_pmap, rmaps, output_dir=output_dir, in_place_imap=in_place_imap)
        writes = WriteSet()
        for item in plan.files:
            writes.add_text(item.path, item.text, overwrite=item.in_place)
            if show_diff:
                click.echo(_unified_diff(read_mapping_text(item.old_path), item.text, str(item.old_path),
                                         str(item.path)), nl=False)
        if not dry_run:
            writes.commit()
    except CrdsminiError as error:
        _fail(error)
    for line in plan.summary:
        click.echo(("would: " if dry_run else "") + line)


# --------------------------------------------------------------------------- header edits


def _header_edit(file: str, output: str | None, force: bool, edit: Any) -> None:
    path = Path(file)
    try:
        document = load_document(path)
        target = Path(output) if output else path
        in_place = target.exists() and target.resolve() == path.resolve()
        if target.exists() and not in_place and not force:
            raise FileExistsConflictError(f"Refusing to overwrite existing '{target}' (use --force)",
                                          file=str(target))
        edited = edit(document)
        if not in_place:
            edited = edited.with_header(name=target.name, derived_from=path.name)
        _, text = render(edited)
        writes = WriteSet()
        writes.add_text(target, text, overwrite=True if in_place else force)
        writes.commit()
    except CrdsminiError as error:
        _fail(error)
    click.echo(f"Wrote '{target}'")


@click.command("set-header")
@click.argument("file", type=click.Path())
@click.argument("key")
@click.argument("value")
@click.option("--literal", is_flag=True, help="Read VALUE as a Python literal (42, True, ('A', 'B')).")
@click.option("-o", "--output", type=click.Path(), help="Write to this file instead of editing FILE in place.")
@click.option("--force", is_flag=True, help="Overwrite an existing --output file.")
def set_header_command(file: str, key: str, value: str, literal: bool, output: str | None, force: bool) -> None:
    """Set header KEY to VALUE and re-sum (canonical rewrite)."""
    typed = parse_header_value(value) if literal else value
    _header_edit(file, output, force, lambda document: set_header(document, key, typed))


@click.command("del-header")
@click.argument("file", type=click.Path())
@click.argument("key")
@click.option("-o", "--output", type=click.Path(), help="Write to this file instead of editing FILE in place.")
@click.option("--force", is_flag=True, help="Overwrite an existing --output file.")
def del_header_command(file: str, key: str, output: str | None, force: bool) -> None:
    """Delete header KEY and re-sum (canonical rewrite)."""
    _header_edit(file, output, force, lambda document: del_header(document, key))


# --------------------------------------------------------------------------- check / diff


@click.command("check")
@click.argument("files", nargs=-1, type=click.Path())
@click.option("--context", "context", type=click.Path(), help="Also check this context and everything it selects.")
@click.option("--strict", is_flag=True, help="Name mismatches are errors; non-canonical files are warnings.")
@click.option("--check-references", is_flag=True, help="Warn about reference files missing from the cache.")
@click.option("--ignore-checksum", is_flag=True, help="Checksum problems are warnings.")
@click.option("--valid-values", "valid_values", type=click.Path(),
              help="JSON {parkey: [values]} to check every rmap's Match values against.")
@click.option("--cache", type=click.Path(), help="The cache folder (for --check-references; default: inferred).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def check_command(files: Sequence[str], context: str | None, strict: bool, check_references: bool,
                  ignore_checksum: bool, valid_values: str | None, cache: str | None, fmt: str) -> None:
    """Check mappings: syntax, duplicates, sums, headers, nesting, dates, overlaps, references.

    One line per finding: FILE:LINE: SEVERITY [CODE] MESSAGE (or --format json).  A pmap or
    imap is checked with everything it selects.  Exit 1 when there are errors.
    """
    paths = list(files) + ([context] if context else [])
    if not paths:
        raise click.UsageError("give mapping files and/or --context")
    try:
        config = load_config()
        caches = [c for c in (_open_cache(Path(p), cache, config) for p in paths) if c is not None]
        options = CheckOptions(strict=strict, ignore_checksum=ignore_checksum or config.ignore_mapping_checksum,
                               check_references=check_references, cache=caches[0] if caches else None,
                               mapping_dirs=(Path(context).parent,) if context else (),
                               valid_values=_load_valid_values(valid_values, "") if valid_values else None)
        findings = check_paths(paths, options)
    except CrdsminiError as error:
        _fail(error)
    click.echo(format_findings(findings, fmt))
    sys.exit(1 if any(f.severity == "error" for f in findings) else 0)


@click.command("diff")
@click.argument("old", type=click.Path())
@click.argument("new", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--no-recurse", is_flag=True, help="For contexts: do not descend into the mappings they select.")
def diff_command(old: str, new: str, fmt: str, no_recurse: bool) -> None:
    """Logical differences between two mappings or two contexts.

    Added, deleted and replaced files per match row and date, header changes; for contexts
    the same for every nested mapping that changed.  Exit 0 same, 1 different, 2 error.
    """
    try:
        differences = diff_mappings(old, new, recurse=not no_recurse)
    except CrdsminiError as error:
        _fail(error, 2)
    output = format_differences(differences, fmt)
    if output:
        click.echo(output)
    sys.exit(1 if differences else 0)


COMMANDS = (
    checksum_command,
    insert_reference_command,
    delete_reference_command,
    new_context_command,
    set_header_command,
    del_header_command,
    check_command,
    diff_command,
)
