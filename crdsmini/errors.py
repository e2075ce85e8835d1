"""The one error hierarchy of crdsmini.

Every error carries a stable ``category`` string (the names used by the conformance corpus)
that the CLI prints and maps to an exit code.  Lookup failures that CRDS reports as
``"NOT FOUND <message>"`` strings are raised as these classes by the strict API and turned
into strings only at the CRDS-compatible boundary (``get_best_ref``/``get_best_references``).
"""
from __future__ import annotations

__all__ = [
    "CrdsminiError",
    "MappingError",
    "MappingSyntaxError",
    "ChecksumError",
    "LookupFailure",
    "NoMatchError",
    "NoSelectionError",
    "MissingKeyError",
    "InvalidValueError",
    "InvalidDateError",
    "InvalidNumberError",
    "InvalidVersionError",
    "AmbiguousMatchError",
    "ExpressionError",
    "UnknownInstrumentError",
    "UnknownReftypeError",
    "ConfigurationError",
    "HeaderError",
    "ReferenceNotFoundError",
    "AuthoringError",
    "IdenticalMatchError",
    "MissingFileError",
    "FileExistsConflictError",
    "UnsupportedError",
    "DuplicateEntryError",
    "CacheLockedError",
    "OtherError",
]


class CrdsminiError(Exception):
    """Base of every error crdsmini raises on purpose.

    Lookups make (and remember) many of these without raising them, so construction is
    kept cheap: the message lives in ``args`` and the location fields are class defaults,
    set on the instance only when known.  An error that may be shared (remembered by a
    selector, or common to many datasets of a bulk run) is raised as ``detached()``.
    """

    category = "other"
    file: str | None = None
    line: int | None = None
    column: int | None = None
    keyword: str | None = None

    def __init__(self, message: str = "", *, file: str | None = None,
                 line: int | None = None, column: int | None = None,
                 keyword: str | None = None) -> None:
        # Exception.__new__ already stored the positional arguments in args.
        if not self.args and message:
            self.args = (message,)
        if file is not None:
            self.file = file
        if line is not None:
            self.line = line
        if column is not None:
            self.column = column
        if keyword is not None:
            self.keyword = keyword

    @property
    def message(self) -> str:
        """The text CRDS would show (``"NOT FOUND " + message`` for lookups)."""
        return self.args[0] if self.args else ""

    def __str__(self) -> str:
        return self.message

    def detached(self) -> "CrdsminiError":
        """A copy to raise: raising an instance records a traceback in it, which a shared
        instance must not collect."""
        copy = type(self).__new__(type(self), *self.args)
        copy.__dict__.update(self.__dict__)
        return copy

    def location(self) -> str:
        """``file:line:column`` as far as known, for CLI messages."""
        parts = [p for p in (self.file, self.line, self.column) if p is not None]
        return ":".join(str(p) for p in parts)


class OtherError(CrdsminiError):
    """Raised for failures that fit no other category."""

    category = "other"


class MappingError(CrdsminiError):
    """Raised when a mapping file cannot be loaded (bad structure, missing header key...)."""

    category = "invalid-mapping"


class MappingSyntaxError(MappingError):
    """Raised when mapping text is not in the mapping grammar (names file:line:column)."""


class ChecksumError(CrdsminiError):
    """Raised when a mapping's sha1sum is missing or wrong and checksums are enforced."""

    category = "checksum-error"


class LookupFailure(CrdsminiError):
    """Raised when no rule selects a file; Match falls back to weaker rows on these only."""

    category = "not-found"


class NoMatchError(LookupFailure):
    """Raised when a Match selector has no surviving row (``No match found.``)."""


class NoSelectionError(LookupFailure):
    """Raised when a UseAfter/VersionAfter has no key at or before the dataset value."""


class MissingKeyError(CrdsminiError):
    """Raised when a required lookup parameter is absent from the header."""

    category = "missing-key"


class InvalidValueError(CrdsminiError):
    """Raised when a header value is not among the values an rmap uses for that parkey."""

    category = "invalid-value"


class InvalidDateError(CrdsminiError):
    """Raised when a dataset date/time cannot be parsed."""

    category = "invalid-date"


class InvalidNumberError(CrdsminiError):
    """Raised when a numeric selector parameter is not a number."""

    category = "invalid-value"


class InvalidVersionError(CrdsminiError):
    """Raised when a VersionAfter parameter is not a version string."""

    category = "invalid-value"


class AmbiguousMatchError(CrdsminiError):
    """Raised when equally good Match rows cannot be merged."""

    category = "ambiguous"


class ExpressionError(CrdsminiError):
    """Raised when a parkey_relevance expression cannot be evaluated (unknown name...)."""

    category = "expression-error"


class UnknownInstrumentError(CrdsminiError):
    """Raised when a pipeline context has no instrument of that name."""

    category = "unknown-instrument"


class UnknownReftypeError(CrdsminiError):
    """Raised when an instrument context has no reference type of that name."""

    category = "unknown-reftype"


class ConfigurationError(CrdsminiError):
    """Raised when the cache, context or environment configuration is unusable."""

    category = "configuration"


class HeaderError(CrdsminiError):
    """Raised when a dataset header file cannot be read."""

    category = "invalid-header"


class ReferenceNotFoundError(CrdsminiError):
    """Raised when a selected reference file is not present in the local cache."""

    category = "missing-file"


class AuthoringError(CrdsminiError):
    """Raised when a rule edit (insert/delete/new context) cannot be made."""

    category = "other"


class IdenticalMatchError(AuthoringError):
    """Raised when two inserted references share match parameters and date."""

    category = "identical-match"


class MissingFileError(AuthoringError):
    """Raised when a file named on the command line does not exist."""

    category = "missing-file"


class FileExistsConflictError(AuthoringError):
    """Raised when a write would overwrite an existing mapping or reference."""

    category = "file-exists"


class UnsupportedError(AuthoringError):
    """Raised when an operation is valid but not supported for this mapping."""

    category = "unsupported"


class DuplicateEntryError(AuthoringError):
    """Raised when a strict rewrite refuses a mapping with duplicate keys."""

    category = "duplicate-entry"


class CacheLockedError(AuthoringError):
    """Raised when another run holds the cache lock for longer than the wait allows."""

    category = "locked"
