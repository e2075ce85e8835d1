"""Mapping text -> literal tree, with the lark grammar in ``grammar.lark``.

This module owns reading mapping *text*: it knows nothing of selection.  It accepts only
literal data (strings, numbers, True/False/None, tuples, lists, dicts and selector calls)
and rejects everything else with an error naming the file, line, column and the text found.
"""
from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

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
        return DictEntry(children[0], children[1], meta.line)

    @v_args(meta=True)
    def set(self, meta, children):
        raise _Reject("set literals are not allowed in mappings", meta.line, meta.column)


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
    return ast.literal_eval(text)


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


@functools.lru_cache(maxsize=2)
def _parser(with_lines: bool) -> Lark:
    """The LALR parser; the fast one transforms inline, the other keeps positions."""
    grammar = (Path(__file__).with_name("grammar.lark")).read_text(encoding="utf-8")
    if with_lines:
        return Lark(grammar, parser="lalr", lexer="contextual", postlex=_BracketNewlines(),
                    propagate_positions=True, maybe_placeholders=True)
    return Lark(grammar, parser="lalr", lexer="contextual", postlex=_BracketNewlines(),
                maybe_placeholders=True, transformer=_ToLiterals())


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
    try:
        if with_lines:
            statements = _ToLiteralsWithLines().transform(_parser(True).parse(text))
        else:
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
