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
from lark.lexer import PatternStr

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
        text = children[0]
        quote = text[0]
        if quote in "'\"" and text[1] != quote and "\\" not in text:
            return text[1:-1]  # the common case, 'text' with no prefix, escapes or triple quotes
        return _decode_string(text)

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
        key, value = children
        if key.__class__ is not str:  # a str key, the common case, is always hashable
            _check_key(key, None, None)
        return DictEntry(key, value)

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
            if item.__class__ is not str:
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


_VALUE_TERMINALS = ("STRING", "NUMBER", "NAME")  # the terminals whose text reaches the tree
_NEWLINE_ONCE = "(?:\r?\n|\r)"  # grammar.lark's _NEWLINE is a run of these (as lark writes it)


class _FastPathRefused(Exception):
    """Internal: the fast path met text it does not handle; the reference path decides."""


class _FastParser:
    """The reference parser's own LALR table, driven by a small loop over a one-pass lexer.

    Lexing: the grammar's own terminals, in one regex pass over the whole text, in the same
    order as lark's lexer, so on text it accepts it gives the token stream of the contextual
    lexer plus ``_BracketNewlines`` (the contextual lexer only differs on tokens the parser
    would reject, and rejected text goes to the reference path), except that a run of
    top-level newlines is one _NEWLINE (see ``_init_lexer``).  The token type is read off
    the first character; that relies on the terminals of grammar.lark, which the
    constructor checks.

    Parsing: lark's shift/reduce loop (``ParserState.feed_token``) and its tree-shaping
    callbacks cost more than the lexing and the values together, mostly in per-token objects
    and generic dispatch.  This loop reads the very same table and calls the very same
    ``_ToLiterals`` methods with the very same children (filtered tokens dropped, ``_rule``
    children spliced in, ``[x]`` placeholders as None), but keeps only the values that reach
    the tree and makes no Token (except for NAME, whose position is kept) and no Tree.
    Anything it does not expect -- a token the state has no action for, any exception in a
    callback -- raises, and the caller re-parses with the reference parser.
    """

    def __init__(self, reference: Lark, transformer: Transformer) -> None:
        self._init_lexer(reference.lexer_conf)
        self._init_table(reference, transformer)

    def _init_lexer(self, lexer_conf: Any) -> None:
        terminals = {t.name: t for t in lexer_conf.terminals}
        ignore = [terminals[name] for name in lexer_conf.ignore]
        literals = [t for t in terminals.values() if isinstance(t.pattern, PatternStr)]
        regexes = sorted((t for t in terminals.values() if t not in literals and t.name not in lexer_conf.ignore),
                         key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name))
        if sorted(t.name for t in regexes) != sorted(_VALUE_TERMINALS + ("_NEWLINE",)) or \
                any(len(t.pattern.value) != 1 for t in literals):
            raise RuntimeError("grammar.lark terminals changed: update syntax._FastParser")
        for terminal in terminals.values():
            if re.compile(terminal.pattern.to_regexp()).groups:
                raise RuntimeError(f"grammar.lark terminal {terminal.name} has a capturing group")
        # Newlines are lexed with the white space before each token: inside brackets (almost
        # every newline of a mapping) they are white space anyway, and at top level a run of
        # _NEWLINEs is a run of `_sep`s, which the grammar accepts wherever it accepts one and
        # which builds nothing -- so "a newline came before this token" is all the parser
        # needs, and a sixth of all regex matches disappear.
        # Literals first: no regex terminal can start with a punctuation character, so this
        # order matches the same token as lark's.  Every position matches something (a token,
        # any other character as an error, or the end of the text), so findall can never
        # silently step over text -- e.g. resume inside a trailing comment.
        newline = terminals["_NEWLINE"].pattern.to_regexp()
        if newline != _NEWLINE_ONCE + "+":
            raise RuntimeError("grammar.lark _NEWLINE changed: update syntax._NEWLINE_ONCE")
        ignored = "|".join(t.pattern.to_regexp() for t in ignore)
        possessive = "*+" if sys.version_info >= (3, 11) else "*"
        skip = f"(?:{ignored}|{_NEWLINE_ONCE}){possessive}"  # one newline per turn: no nested repeat
        tokens = "|".join([t.pattern.to_regexp() for t in literals] +
                          [t.pattern.to_regexp() for t in regexes if t.name != "_NEWLINE"])
        self._scan = re.compile(f"({skip}(?:({tokens})|([\\s\\S])|\\Z))").findall
        # Whether skipped text holds a _NEWLINE token: the ignored tokens, lexed greedily with
        # no backtracking (the look-ahead is atomic), then a newline.  Backtracking could end
        # a comment early and read "# a \\" + newline as a line continuation.
        self._newline_in = re.compile(f"(?=((?:{ignored})*))\\1{newline}").match
        self._literals = {t.pattern.value: t.name for t in literals}
        self._openers = frozenset(t.pattern.value for t in literals if t.name in _OPENERS)
        self._closers = frozenset(t.pattern.value for t in literals if t.name in _CLOSERS)

    def _init_table(self, reference: Lark, transformer: Transformer) -> None:
        table = reference.parser.parser.parser.parse_table  # ParsingFrontend > LALR_Parser > _Parser
        self._start = table.start_states["start"]
        self._end = table.end_states["start"]
        for name in reference.lexer_conf.terminals:
            if callable(getattr(transformer, name.name, None)):
                raise RuntimeError(f"{type(transformer).__name__} has a terminal callback {name.name}")
        rules: dict[Any, int] = {}
        self._rules: list[tuple[int, int, str, Any]] = []
        self._table: list[dict[str, int]] = [{} for _ in range(max(table.states) + 1)]
        for state, actions in table.states.items():
            for symbol, (action, arg) in actions.items():
                symbol = str.__str__(symbol)  # lark keeps some names as Tokens, slow dict keys
                if action.name == "Shift":
                    self._table[state][symbol] = arg
                    continue
                if arg not in rules:
                    rules[arg] = len(self._rules)
                    self._rules.append(_rule_plan(arg, transformer))
                self._table[state][symbol] = ~rules[arg]

    def parse(self, text: str) -> Any:
        literals, openers, closers = self._literals, self._openers, self._closers
        table, rules, newline_in = self._table, self._rules, self._newline_in
        state = self._start
        states, values = [state], []
        depth = pos = 0
        line, line_pos = 1, 0  # line number at line_pos, advanced lazily for NAME tokens
        for matched, token, error in self._scan(text):
            pos += len(matched)  # the end of this token
            if not depth and newline_in(matched, 0, len(matched) - len(token)):
                state = self._feed(states, values, "_NEWLINE")
            kind = literals.get(token)
            if kind is not None:
                value = None
                if token in openers:
                    depth += 1
                elif token in closers:
                    depth -= 1  # never below 0: an unmatched closer has no action below
            elif not token:
                if error:
                    raise _FastPathRefused(f"unexpected character before {pos}")
                break  # the end of the text (after any trailing white space or comment)
            else:
                first = token[0]
                if first in "'\"":
                    kind, value = "STRING", token
                elif first in "0123456789.":
                    kind, value = "NUMBER", token
                elif token[-1] in "'\"":
                    kind, value = "STRING", token  # a prefixed string such as r'...'
                else:
                    start = pos - len(token)
                    line += text.count("\n", line_pos, start)
                    line_pos = start
                    kind, value = "NAME", Token("NAME", token, start, line, start - text.rfind("\n", 0, start))
            while True:
                try:
                    action = table[state][kind]
                except KeyError:
                    raise _FastPathRefused(f"unexpected {kind} before {pos}") from None
                if action >= 0:  # shift
                    state = action
                    states.append(state)
                    if value is not None:
                        values.append(value)
                    break
                size, count, origin, reduce = rules[~action]
                if size == 1 and count == 1:  # most reductions: one value in, one out
                    values[-1] = reduce(values[-1:])
                    state = states[-1] = table[states[-2]][origin]
                    continue
                state = self._reduce(states, values, ~action)
                states.append(state)
        return self._feed(states, values, "$END")

    def _reduce(self, states: list[int], values: list[Any], rule: int) -> int:
        """Apply reduction ``rule``: pop its symbols and values, push the reduced value, and
        return the state to go to (the caller pushes it)."""
        size, count, origin, reduce = self._rules[rule]
        if count:
            children = values[-count:]
            del values[-count:]
        else:
            children = []
        if size:
            del states[-size:]
        values.append(reduce(children))
        return self._table[states[-1]][origin]

    def _feed(self, states: list[int], values: list[Any], kind: str) -> Any:
        """Feed one token without a value (a top-level _NEWLINE or the end of the text): the
        same steps as the loop in ``parse``.  Returns the new state, or the parse result once
        ``$END`` reaches the end state."""
        table = self._table
        while True:
            action = table[states[-1]].get(kind)
            if action is None or (action >= 0 and kind == "$END"):
                raise _FastPathRefused(f"unexpected {kind}")
            if action >= 0:
                states.append(action)
                return action
            state = self._reduce(states, values, ~action)
            if kind == "$END" and state == self._end:
                return values[-1]
            states.append(state)


def _rule_plan(rule: Any, transformer: Transformer) -> tuple[int, int, str, Any]:
    """(symbols to pop, values to pop, the rule's name, children -> value) for one rule.

    Mirrors lark's ParseTreeBuilder for an inline transformer (LALR, maybe_placeholders):
    filtered terminals carry no value, a ``_name`` rule's children are spliced into its
    parent, ``[x]`` leaves None where x is absent, ``?rule`` without an alias passes a lone
    child through, and everything else is the transformer method of the alias or rule name.
    """
    options = rule.options
    if options.keep_all_tokens:
        raise RuntimeError(f"grammar.lark rule {rule.origin.name} keeps all tokens: update syntax._FastParser")
    for symbol in rule.expansion:
        if symbol.is_term and symbol.filter_out == (symbol.name in _VALUE_TERMINALS):
            raise RuntimeError(f"grammar.lark terminal {symbol.name} in rule {rule.origin.name}: "
                               "update syntax._FastParser")
    kept = [symbol for symbol in rule.expansion if not (symbol.is_term and symbol.filter_out)]
    # How many None placeholders go before each kept child, and after the last one.
    nones = [0] * (len(kept) + 1)
    if options.empty_indices:
        slot = 0
        symbols = iter(rule.expansion)
        for empty in options.empty_indices:
            if empty:
                nones[slot] += 1
            else:
                symbol = next(symbols)
                if not (symbol.is_term and symbol.filter_out):
                    slot += 1
    splice = [not symbol.is_term and symbol.name.startswith("_") for symbol in kept]
    name = str.__str__(rule.origin.name)
    if name.startswith("_"):
        method = None  # spliced into the parent: the children list is the value
        if callable(getattr(transformer, name, None)):
            raise RuntimeError(f"{type(transformer).__name__}.{name}: a _rule cannot have a callback")
    else:
        method = getattr(transformer, rule.alias or options.template_source or name, None)
        if method is None or getattr(method, "visit_wrapper", None) is not None:
            raise RuntimeError(f"{type(transformer).__name__} has no plain method for rule {name}")
    if options.expand1 and not rule.alias:
        if method is None:
            raise RuntimeError(f"grammar.lark rule ?{name}: update syntax._FastParser")
        build = method

        def method(children: list[Any]) -> Any:
            return children[0] if len(children) == 1 else build(children)
    return len(rule.expansion), len(kept), name, _reducer(splice, nones, method)


def _reducer(splice: list[bool], nones: list[int], method: Any) -> Any:
    if not any(splice) and not any(nones):
        return method if method is not None else _same  # the children are the value's children
    if splice == [True, False] and not any(nones) and method is None:
        return _append  # left recursion: `_list: _list "," item`
    plan = list(zip(nones, splice))
    trailing = nones[-1]

    def reduce(children: list[Any]) -> Any:
        filtered: list[Any] = []
        for (placeholders, spliced), child in zip(plan, children):
            if placeholders:
                filtered += [None] * placeholders
            if spliced:
                filtered += child
            else:
                filtered.append(child)
        if trailing:
            filtered += [None] * trailing
        return filtered if method is None else method(filtered)

    return reduce


def _same(children: list[Any]) -> list[Any]:
    return children


def _append(children: list[Any]) -> list[Any]:
    spliced, item = children
    spliced.append(item)  # safe: an LALR value is used exactly once
    return spliced


@functools.lru_cache(maxsize=1)
def _fast_parser() -> _FastParser:
    """The reference parser's LALR table, driven by ``_FastParser``; values are built inline."""
    return _FastParser(_parser(False), _ToLiterals())


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
