"""Safe file writes: temp file in the target folder, fsync, rename; and the cache lock.

Every file crdsmini writes goes through here so that the promise "users lose nothing" is
kept in one place:

* a new file is first written to a hidden temporary file *in the target folder* (so the
  final rename never crosses file systems), flushed and fsync'ed, then renamed over the
  target; the folder is fsync'ed after the rename;
* an existing file is never replaced unless the caller says so (``overwrite=True``);
* several files written together (:class:`WriteSet`) are all staged before the first
  rename; if anything fails, staged files are removed and already-renamed targets are put
  back exactly as they were (new ones deleted, replaced ones restored from a hard-link
  backup), so either every file changes or none does;
* :class:`CacheLock` serialises concurrent editing runs on one cache with ``flock`` on a
  lock file: the second run waits up to a timeout, then fails with a clear message.
"""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from crdsmini.errors import AuthoringError, CacheLockedError, FileExistsConflictError

__all__ = ["atomic_write_text", "atomic_write_bytes", "WriteSet", "CacheLock", "LOCK_NAME"]

LOCK_NAME = ".crdsmini.lock"


def _fsync_directory(directory: Path) -> None:
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:  # some file systems do not allow opening directories
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _stage(target: Path, write: Callable[[int], None]) -> Path:
    """Write a hidden temporary file next to ``target`` with ``write(fd)``; fsync it."""
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    temp = Path(temp_name)
    try:
        write(handle)
        os.fsync(handle)
    except BaseException:
        os.close(handle)
        temp.unlink(missing_ok=True)
        raise
    os.close(handle)
    return temp


def _write_all(handle: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(handle, view)
        view = view[written:]


def _refuse_existing(target: Path, overwrite: bool) -> None:
    if not overwrite and target.exists():
        raise FileExistsConflictError(
            f"Refusing to overwrite existing file '{target}' (use --force to replace it)",
            file=str(target))


def atomic_write_bytes(target: str | Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``target`` atomically; refuse an existing target unless ``overwrite``."""
    writes = WriteSet()
    writes.add_bytes(target, data, overwrite=overwrite)
    writes.commit()
    return Path(target)


def atomic_write_text(target: str | Path, text: str, *, overwrite: bool = False) -> Path:
    """Write ``text`` (UTF-8, LF line ends as given) to ``target`` atomically."""
    return atomic_write_bytes(target, text.encode("utf-8"), overwrite=overwrite)


@dataclass
class _Pending:
    target: Path
    write: Callable[[int], None]
    overwrite: bool
    mode: int | None = None


class WriteSet:
    """Files that must change together: all are staged, then all are renamed, or none.

    Add files with :meth:`add_bytes`, :meth:`add_text` or :meth:`add_copy`, then call
    :meth:`commit`.  Existence checks run again at commit time, right before staging.
    """

    def __init__(self) -> None:
        self._pending: list[_Pending] = []

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def targets(self) -> list[Path]:
        """The files this set will write, in order."""
        return [item.target for item in self._pending]

    def add_bytes(self, target: str | Path, data: bytes, *, overwrite: bool = False) -> None:
        """Schedule ``data`` to be written to ``target``."""
        path = Path(target)
        self._check_new(path)
        self._pending.append(_Pending(path, lambda handle: _write_all(handle, data), overwrite))

    def add_text(self, target: str | Path, text: str, *, overwrite: bool = False) -> None:
        """Schedule ``text`` (UTF-8) to be written to ``target``."""
        self.add_bytes(target, text.encode("utf-8"), overwrite=overwrite)

    def add_copy(self, source: str | Path, target: str | Path, *, overwrite: bool = False) -> None:
        """Schedule a byte copy of ``source`` to ``target`` (permission bits copied too)."""
        source_path, path = Path(source), Path(target)
        self._check_new(path)

        def write(handle: int) -> None:
            with open(source_path, "rb") as reader:
                while chunk := reader.read(1 << 20):
                    _write_all(handle, chunk)

        mode = source_path.stat().st_mode & 0o777
        self._pending.append(_Pending(path, write, overwrite, mode))

    def _check_new(self, path: Path) -> None:
        if any(item.target.resolve() == path.resolve() for item in self._pending):
            raise AuthoringError(f"'{path}' would be written twice in one operation", file=str(path))

    def commit(self) -> list[Path]:
        """Stage every file, then rename them all into place; undo everything on failure."""
        for item in self._pending:
            _refuse_existing(item.target, item.overwrite)
            if not item.target.parent.is_dir():
                raise AuthoringError(f"Folder '{item.target.parent}' does not exist", file=str(item.target))
        staged: list[tuple[_Pending, Path]] = []
        renamed: list[tuple[Path, Path | None]] = []  # (target, backup of the old file or None)
        try:
            for item in self._pending:
                temp = _stage(item.target, item.write)
                staged.append((item, temp))
                if item.mode is not None:
                    os.chmod(temp, item.mode)
                elif item.target.exists():
                    os.chmod(temp, item.target.stat().st_mode & 0o777)
                else:
                    os.chmod(temp, 0o666 & ~_umask())
            for item, temp in staged:
                backup = None
                if item.target.exists():
                    backup = _backup(item.target)
                # The target is recorded before the rename: if the rename itself fails the
                # rollback still restores (or leaves) the target as it was.
                renamed.append((item.target, backup))
                os.replace(temp, item.target)
            for directory in {item.target.parent for item in self._pending}:
                _fsync_directory(directory)
        except BaseException:
            for target, backup in reversed(renamed):
                _undo(target, backup)
            for _, temp in staged:
                temp.unlink(missing_ok=True)
            raise
        for _, backup in renamed:
            if backup is not None:
                backup.unlink(missing_ok=True)
        return [item.target for item in self._pending]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _backup(target: Path) -> Path:
    """A hard link (else a copy) of ``target``, so the old bytes survive the rename."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".bak", dir=target.parent)
    os.close(handle)
    backup = Path(name)
    backup.unlink()
    try:
        os.link(target, backup)
    except OSError:
        shutil.copy2(target, backup)
    return backup


def _undo(target: Path, backup: Path | None) -> None:
    if backup is None:
        # Only remove what this write created: if the rename never happened the target
        # does not exist (it was checked absent before staging).
        target.unlink(missing_ok=True)
    else:
        os.replace(backup, target)


class CacheLock:
    """An exclusive ``flock`` on ``<folder>/.crdsmini.lock`` held for one editing run.

    ``timeout`` seconds to wait for another run to finish (0 = fail at once).  The lock is
    released when the process ends, even on a crash, so a stale lock file is harmless.
    """

    def __init__(self, folder: str | Path, *, timeout: float = 60.0, poll: float = 0.05) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.timeout = timeout
        self.poll = poll
        self._handle: int | None = None

    def __enter__(self) -> "CacheLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock or raise CacheLockedError after ``timeout`` seconds."""
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(handle)
                    raise
                if time.monotonic() >= deadline:
                    os.close(handle)
                    raise CacheLockedError(
                        f"Another crdsmini run holds the cache lock '{self.path}'; gave up after "
                        f"{self.timeout:g} s (try again when it has finished)", file=str(self.path)) from None
                time.sleep(self.poll)
        os.ftruncate(handle, 0)
        os.write(handle, f"{os.getpid()}\n".encode())
        self._handle = handle

    def release(self) -> None:
        """Release the lock (the lock file itself stays; it is reused)."""
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            os.close(self._handle)
            self._handle = None
