"""A persistent cache of loaded mappings, keyed by the SHA-1 of each file's bytes.

Owns how a parsed (and, for rmaps, compiled) mapping is kept on disk between processes, so
that a second load of an unchanged file skips the parser and the rule compilation.

Safety rules:

* **Never stale.**  An entry is found by the SHA-1 of the file's *bytes* (plus its file name,
  which appears in messages) under a folder named after a fingerprint of the crdsmini code
  that built it (every module, the grammar, the Python version).  A changed file, or a
  changed crdsmini, simply misses.  Each entry repeats its own key and is checked on read.
* **Optional and read-only capable.**  A missing, unreadable or corrupt entry is a miss (the
  file is parsed as usual); a folder that cannot be written (``read_only=True``, or a
  read-only file system) is only read.  Writes are atomic (temporary file + rename), so
  concurrent processes never see half an entry.
* **Only files that loaded.**  A file that fails to parse or compile is never cached, so its
  error is always reported by the real code path.
* The mapping text is not stored: it is the file itself, read anyway to compute the key.

Entries are pickles read with an allow-list of classes (crdsmini's own, paths, dates).  Like
a CRDS cache, the folder must be one the user trusts: whoever can write there can change
which rules are loaded.  The folder comes from the caller (``crdsmini.config`` when it
defines a setting for it); this module never reads the environment.
"""
from __future__ import annotations

__all__ = ["ParseCache", "code_fingerprint", "file_digest", "read_mapping_bytes"]

import functools
import hashlib
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

_FORMAT = "crdsmini-parse-cache-1"
_ALLOWED_MODULES = ("crdsmini.",)
_ALLOWED_GLOBALS = {
    ("pathlib", "PosixPath"), ("pathlib", "WindowsPath"), ("pathlib", "PurePosixPath"),
    ("pathlib", "PureWindowsPath"), ("pathlib", "Path"),
    ("datetime", "datetime"), ("datetime", "date"), ("datetime", "time"), ("datetime", "timedelta"),
    ("datetime", "timezone"),
    ("builtins", "frozenset"), ("builtins", "set"), ("builtins", "complex"), ("builtins", "slice"),
    ("copyreg", "_reconstructor"), ("builtins", "object"),
    ("operator", "itemgetter"),  # the compiled header-value getters of Match and relevance
}
_TEXT = "text"  # persistent id standing for the mapping text (re-attached from the file)


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-1 of the code that parses and compiles mappings (every crdsmini module and the
    grammar), the Python version and the pickle protocol: entries of other code never match."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha1(f"{_FORMAT} {sys.version} {pickle.HIGHEST_PROTOCOL}".encode())
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".lark") and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(package)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def file_digest(data: bytes) -> str:
    """The cache key of a file: SHA-1 of its bytes, exactly as on disk."""
    return hashlib.sha1(data).hexdigest()


def read_mapping_bytes(path: str | Path) -> tuple[bytes, str]:
    """The file's bytes and its text as ``checksum.read_mapping_text`` reads it (UTF-8,
    universal newlines), from one read."""
    with open(path, "rb") as handle:
        data = handle.read()
    text = data.decode("utf-8")
    if "\r" in text:  # universal newlines, as open(..., newline=None) reads
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return data, text


class _Pickler(pickle.Pickler):
    def __init__(self, file: Any, text: str) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._text = text

    def persistent_id(self, obj: Any) -> str | None:
        return _TEXT if obj is self._text else None


_FOUND_CLASSES: dict[tuple[str, str], Any] = {}  # allowed (module, name) -> the object


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, text: str) -> None:
        super().__init__(file)
        self._text = text

    def persistent_load(self, pid: Any) -> Any:
        if pid == _TEXT:
            return self._text
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")

    def find_class(self, module: str, name: str) -> Any:
        found = _FOUND_CLASSES.get((module, name))  # a warm load asks for the same few dozen
        if found is not None:
            return found
        if module.startswith(_ALLOWED_MODULES) or (module, name) in _ALLOWED_GLOBALS:
            found = _FOUND_CLASSES[(module, name)] = super().find_class(module, name)
            return found
        raise pickle.UnpicklingError(f"parse cache: {module}.{name} is not allowed")


class ParseCache:
    """Loaded mappings on disk under ``directory``; ``read_only`` never writes there."""

    def __init__(self, directory: str | Path, *, read_only: bool = False) -> None:
        self.directory = Path(directory).expanduser()
        self.read_only = read_only
        self.hits = 0
        self.misses = 0
        self.writes = 0

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        return f"ParseCache({str(self.directory)!r}, {mode})"

    def _entry_path(self, digest: str, name: str) -> str:
        key = hashlib.sha1(f"{digest}\0{name}".encode()).hexdigest()
        # Plain strings: this runs once per file of every warm load.
        return os.path.join(str(self.directory), f"v1-{code_fingerprint()[:16]}", key[:2], f"{key}.pickle")

    def get(self, digest: str, name: str, text: str) -> Any | None:
        """The object stored for this file content and name, or None (a miss)."""
        path = self._entry_path(digest, name)
        try:
            with open(path, "rb") as handle:
                stored = _Unpickler(handle, text).load()
        except FileNotFoundError:
            self.misses += 1
            return None
        except Exception:  # noqa: BLE001 - a corrupt/foreign entry is only a miss
            self.misses += 1
            return None
        if not (isinstance(stored, tuple) and len(stored) == 4 and stored[0] == _FORMAT
                and stored[1] == digest and stored[2] == name):
            self.misses += 1
            return None
        self.hits += 1
        return stored[3]

    def put(self, digest: str, name: str, text: str, obj: Any) -> bool:
        """Store ``obj`` for this file content and name; False when nothing was written."""
        if self.read_only:
            return False
        path = Path(self._entry_path(digest, name))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(prefix=".entry-", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(handle, "wb") as out:
                    _Pickler(out, text).dump((_FORMAT, digest, name, obj))
                os.replace(temp, path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except (OSError, pickle.PicklingError, TypeError, AttributeError):
            # A read-only or full file system: keep working without writing.
            return False
        self.writes += 1
        return True
