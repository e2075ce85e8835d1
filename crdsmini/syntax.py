"""Mapping text -> literal tree, with the lark grammar in ``grammar.lark``.

This module owns reading mapping *text*: it knows nothing of selection.  It accepts only
literal data (strings, numbers, True/False/None, tuples, lists, dicts and selector calls)
and rejects everything else with an error naming the file, line, column and the text found.
"""
from __future__ import annotations

import ast
import warnings
import functools
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.lexer import Lexer, PatternStr

from crdsmini.errors import MappingError, MappingSyntaxError
from crdsmini.literals import SELECTOR_NAMES, DictEntry, DictLiteral, SelectorCall

__all__ = ["MappingSource", "parse_mapping_text"]

_SECTIONS = ("header", "selector", "comment")
_OPENERS = {"LPAR", "LSQB", "LBRACE"}
_CLOSERS = {"RPAR", "RSQB", "RBRACE"}


@dataclass(frozen=True)
class MappingSource:
    """The sections of one mapping file as literals, plus where they came from."""

    name: str
    text: str
    header: DictLiteral
    selector: Any  # DictLiteral for pmap/imap, SelectorCall for rmaps (validated later)
    comment: str | None
    header_line: int
    selector_line: int


class _BracketNewlines:
    """Post-lexer: inside brackets a newline is just white space, as in Python."""

    always_accept = ("_NEWLINE",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        for token in stream:
            if token.type in _OPENERS:
                depth += 1
            elif token.type in _CLOSERS:
                depth = max(depth - 1, 0)
            elif token.type == "_NEWLINE" and depth:
                continue
            yield token


class _Reject(Exception):
    """Internal: a literal the grammar parses but a mapping may not contain."""

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


class _ToLiterals(Transformer):
    """Builds plain values; selection logic never lives here.

    Used inline by the LALR parser (no tree is built), which is why it takes no position
    metadata; ``_ToLiteralsWithLines`` adds line numbers for ``check``.
    """

    def start(self, statements):
        return [s for s in statements if s is not None]

    def assign(self, children):
        name, value = children
        return ("assign", str(name), value, name.line, name.column)

    def bare(self, children):
        return ("bare", None, children[0], None, None)

    def string(self, children):
        return _decode_string(children[0])

    def strings(self, tokens):
        parts = [_decode_string(token) for token in tokens]
        if len({type(p) for p in parts}) > 1:
            raise _Reject("cannot mix bytes and str literals", tokens[0].line, tokens[0].column)
        return parts[0] if len(parts) == 1 else parts[0][:0].join(parts)

    def number(self, children):
        return _decode_number(children[0])

    def negative(self, children):
        return -_decode_number(children[0])

    def name(self, children):
        token = children[0]
        constants = {"True": True, "False": False, "None": None}
        if str(token) in constants:
            return constants[str(token)]
        raise _Reject(f"name '{token}' is not defined", token.line, token.column)

    def call(self, children):
        token, arguments = children
        args = arguments or []
        if str(token) not in SELECTOR_NAMES:
            raise _Reject(f"Selector '{token}' is not one of supported Selectors: {list(SELECTOR_NAMES)}",
                          token.line, token.column)
        if len(args) != 1 or not isinstance(args[0], DictLiteral):
            raise _Reject(f"Selector '{token}' takes exactly one dict argument", token.line, token.column)
        return SelectorCall(str(token), args[0], token.line)

    def arguments(self, children):
        return list(children)

    def empty_tuple(self, children):
        return ()

    def paren(self, children):
        return children[0]

    def tuple(self, children):
        return tuple(children)

    def list(self, children):
        return list(children)

    def dict(self, children):
        return DictLiteral(tuple(children))

    def pair(self, children):
        _check_key(children[0], None, None)
        return DictEntry(children[0], children[1])

    def set(self, children):
        raise _Reject("set literals are not allowed in mappings", None, None)


class _ToLiteralsWithLines(_ToLiterals):
    """The same values, with the line of every dict and dict entry (for ``check``)."""

    @v_args(meta=True)
    def dict(self, meta, children):
        return DictLiteral(tuple(children), meta.line if not meta.empty else 0)

    @v_args(meta=True)
    def pair(self, meta, children):
        _check_key(children[0], meta.line, meta.column)
        return DictEntry(children[0], children[1], meta.line)

    @v_args(meta=True)
    def set(self, meta, children):
        raise _Reject("set literals are not allowed in mappings", meta.line, meta.column)


def _check_key(key: Any, line: int | None, column: int | None) -> None:
    """Dict keys must be hashable values, as in Python: no lists or dicts, even inside tuples."""
    if isinstance(key, (list, DictLiteral)):
        kind = "list" if isinstance(key, list) else "dict"
        raise _Reject(f"unhashable type: '{kind}' used as a dict key", line, column)
    if isinstance(key, tuple):
        for item in key:
            _check_key(item, line, column)


def _decode_string(token: Token) -> str | bytes:
    text = str(token)
    quote = text[0]
    if quote in "'\"" and "\\" not in text:  # the common case: no prefix, no escapes
        return text[3:-3] if text.startswith(quote * 3) and len(text) >= 6 else text[1:-1]
    prefix = text[: len(text) - len(text.lstrip("rRuUbBfF"))]
    if "f" in prefix.lower():
        raise _Reject("f-strings are not allowed in mappings", token.line, token.column)
    # The lexer guarantees `text` is exactly one string literal, so literal_eval only ever
    # decodes escapes here; it evaluates nothing.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "invalid escape sequence" is Python's lint, not ours
            return ast.literal_eval(text)
    except (SyntaxError, ValueError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise _Reject(f"invalid string literal {text[:40]!r}: {reason}", token.line, token.column) from None


def _decode_number(token: Token) -> int | float:
    text = str(token)
    if text[-1] in "jJ":
        raise _Reject(f"complex number {text} is not allowed in mappings", token.line, token.column)
    try:
        if text[:2].lower() in ("0x", "0o", "0b"):
            return int(text, 0)
        if any(c in text for c in ".eE"):
            return float(text)
        return int(text)
    except ValueError:
        raise _Reject(f"invalid number {text}", token.line, token.column) from None


@functools.lru_cache(maxsize=1)
def _grammar() -> str:
    return (Path(__file__).with_name("grammar.lark")).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=2)
def _parser(with_lines: bool) -> Lark:
    """The reference LALR parser (lark's contextual lexer); the other keeps positions.

    It is the judge: the fast path below only ever returns what this one would, and any text
    the fast path does not accept is re-parsed here so errors read the same either way.
    """
    if with_lines:
        return Lark(_grammar(), parser="lalr", lexer="contextual", postlex=_BracketNewlines(),
                    propagate_positions=True, maybe_placeholders=True)
    return Lark(_grammar(), parser="lalr", lexer="contextual", postlex=_BracketNewlines(),
                maybe_placeholders=True, transformer=_ToLiterals())


class _BareToken(Token):
    """A token without position: only the parser's ``type`` and the text are ever read.

    Building lark's full Token (eight attributes) for each of ~150,000 tokens was a third
    of the load time; positions are only needed for NAME tokens (statement and selector
    lines), which stay full Tokens, and for error messages, which the reference path makes.
    """

    __slots__ = ()
    start_pos = line = column = end_line = end_column = end_pos = None

    @property
    def value(self) -> str:  # type: ignore[override]
        return str.__str__(self)


def _bare_class(kind: str) -> type:
    return type(f"_{kind.strip('_').title()}Token", (_BareToken,), {"__slots__": (), "type": kind})


class _FastLexer(Lexer):
    """The grammar's own terminals, lexed in one regex pass over the whole text.

    Same regular expressions as lark's lexer, in the same order, so on text it accepts it
    yields exactly the token stream of the contextual lexer plus ``_BracketNewlines`` (the
    contextual lexer only differs on tokens the parser would reject, and rejected text goes
    to the reference path).  The token type is read off the first character; that relies on
    the terminals of grammar.lark, which the constructor checks.
    """

    _REGEX_TERMINALS = ("STRING", "NUMBER", "NAME", "_NEWLINE")

    def __init__(self, lexer_conf: Any) -> None:
        terminals = {t.name: t for t in lexer_conf.terminals}
        ignore = [terminals[name] for name in lexer_conf.ignore]
        literals = [t for t in terminals.values() if isinstance(t.pattern, PatternStr)]
        regexes = sorted((t for t in terminals.values() if t not in literals and t.name not in lexer_conf.ignore),
                         key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name))
        if sorted(t.name for t in regexes) != sorted(self._REGEX_TERMINALS) or \
                any(len(t.pattern.value) != 1 for t in literals):
            raise RuntimeError("grammar.lark terminals changed: update syntax._FastLexer")
        for terminal in terminals.values():
            if re.compile(terminal.pattern.to_regexp()).groups:
                raise RuntimeError(f"grammar.lark terminal {terminal.name} has a capturing group")
        # Literals first: no regex terminal can start with a punctuation character, so this
        # order matches the same token as lark's.  Every position matches something (a token,
        # any other character as an error, or the end of the text), so findall can never
        # silently step over text -- e.g. resume inside a trailing comment.
        skip = "(?:" + "|".join(t.pattern.to_regexp() for t in ignore) + ")"
        skip += "*+" if sys.version_info >= (3, 11) else "*"
        tokens = "|".join([t.pattern.to_regexp() for t in literals] + [t.pattern.to_regexp() for t in regexes])
        self._scan = re.compile(f"({skip})(?:({tokens})|([\\s\\S])|\\Z)").findall
        self._literals = {t.pattern.value: str.__new__(_bare_class(t.name), t.pattern.value) for t in literals}
        self._openers = {t.pattern.value for t in literals if t.name in _OPENERS}
        self._closers = {t.pattern.value for t in literals if t.name in _CLOSERS}
        self._string, self._number = _bare_class("STRING"), _bare_class("NUMBER")
        self._newline = str.__new__(_bare_class("_NEWLINE"), "\n")

    def lex(self, text: str) -> list[Token]:
        literals, openers, closers = self._literals, self._openers, self._closers
        string, number, newline, new = self._string, self._number, self._newline, str.__new__
        out: list[Token] = []
        append = out.append
        depth = pos = 0
        line, line_pos = 1, 0  # line number at line_pos, advanced lazily for NAME tokens
        for skipped, token, error in self._scan(text):
            if not token:
                if error:
                    raise _FastPathRefused(pos + len(skipped))
                break  # the end of the text (after any trailing white space or comment)
            start = pos + len(skipped)
            pos = start + len(token)
            literal = literals.get(token)
            if literal is not None:
                if token in openers:
                    depth += 1
                elif token in closers and depth:
                    depth -= 1
                append(literal)
                continue
            first = token[0]
            if first in "'\"":
                append(new(string, token))
            elif first in "\r\n":
                if not depth:
                    append(newline)
            elif first in "0123456789.":
                append(new(number, token))
            elif token[-1] in "'\"":
                append(new(string, token))  # a prefixed string such as r'...'
            else:
                line += text.count("\n", line_pos, start)
                line_pos = start
                append(Token("NAME", token, start, line, start - text.rfind("\n", 0, start)))
        return out


class _FastPathRefused(Exception):
    """Internal: the fast lexer met text it does not handle; the reference path decides."""


@functools.lru_cache(maxsize=1)
def _fast_parser() -> Lark:
    """The same LALR tables fed by ``_FastLexer``; values are built inline."""
    return Lark(_grammar(), parser="lalr", lexer=_FastLexer, maybe_placeholders=True, transformer=_ToLiterals())


def _describe(exc: UnexpectedInput, text: str) -> str:
    if isinstance(exc, UnexpectedCharacters):
        found = text[exc.pos_in_stream:exc.pos_in_stream + 20].split("\n")[0]
        return f"unexpected text {found!r}"
    if isinstance(exc, UnexpectedEOF):
        return "unexpected end of file (unclosed bracket or string?)"
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == "$END":
            return "unexpected end of file (unclosed bracket or string?)"
        expected = sorted(exc.expected)[:8]
        return f"unexpected {str(exc.token)!r}, expected one of {', '.join(expected)}"
    return str(exc)


def parse_mapping_text(text: str, name: str = "<string>", *, with_lines: bool = False) -> MappingSource:
    """Parse mapping ``text`` into its sections; ``name`` is used in error messages.

    ``with_lines`` records the line of every dict entry (slower; for ``check``).
    """
    statements = None
    if not with_lines:
        try:
            statements = _fast_parser().parse(text)
        except Exception:  # noqa: BLE001 - anything unusual is re-parsed below, which reports it
            statements = None
    try:
        if with_lines:
            statements = _ToLiteralsWithLines().transform(_parser(True).parse(text))
        elif statements is None:
            statements = _parser(False).parse(text)
    except UnexpectedInput as exc:
        line, column = getattr(exc, "line", None), getattr(exc, "column", None)
        if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
            line = text.count("\n") + 1
        raise MappingSyntaxError(
            f"Can't load file {name} : syntax error at line {line}, column {column}: {_describe(exc, text)}",
            file=name, line=line, column=column) from None
    except (VisitError, _Reject) as exc:
        inner = exc.orig_exc if isinstance(exc, VisitError) else exc
        if isinstance(inner, _Reject):
            if inner.line is None and not with_lines:
                return parse_mapping_text(text, name, with_lines=True)  # to report the position
            where = f" at line {inner.line}, column {inner.column}" if inner.line is not None else ""
            raise MappingSyntaxError(f"Can't load file {name} : {inner}{where}",
                                     file=name, line=inner.line, column=inner.column) from None
        if isinstance(inner, (SyntaxError, ValueError)):
            raise MappingSyntaxError(f"Can't load file {name} : {inner}", file=name) from None
        raise
    sections: dict[str, tuple[Any, int]] = {}
    for kind, target, value, line, column in statements:
        if kind == "bare":
            continue  # stray expression statements are accepted and ignored, as in CRDS
        if target not in _SECTIONS:
            raise MappingError(
                f"Can't load file {name} : Only define 'header' or 'selector' or 'comment' sections at line {line}",
                file=name, line=line, column=column, keyword=target)
        sections[target] = (value, line)  # the last assignment wins
    for required in ("header", "selector"):
        if required not in sections:
            raise MappingError(f"Can't load file {name} : name '{required}' is not defined",
                               file=name, keyword=required)
    header, header_line = sections["header"]
    if not isinstance(header, DictLiteral):
        raise MappingError(f"Can't load file {name} : header must be a dict", file=name, line=header_line,
                           keyword="header")
    selector, selector_line = sections["selector"]
    comment = sections.get("comment", (None, 0))[0]
    if comment is not None and not isinstance(comment, str):
        raise MappingError(f"Can't load file {name} : comment must be a string", file=name,
                           keyword="comment")
    return MappingSource(name=name, text=text, header=header, selector=selector, comment=comment,
                         header_line=header_line, selector_line=selector_line)
