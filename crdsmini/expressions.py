"""Header expressions: ``rmap_relevance``, ``rmap_omit`` and ``parkey_relevance`` values.

This module owns the small expression language of spec §9.1.  Text goes one way:
``compile_expression`` tokenizes it, parses the tokens into a tiny immutable tree of
``Node`` objects and turns that tree, once, into nested Python closures; ``Expression``
then evaluates those closures against a header namespace on every lookup.  Expression
text is never handed to ``eval``/``exec``/``compile``: anything outside the grammar below
is a load error (``MappingError``) before a single name is looked up.

Grammar (Python's precedence and semantics throughout)::

    expressions := expression (',' expression)* [',']      # a bare tuple at top level
    expression  := disjunction ['if' disjunction 'else' expression]
    disjunction := conjunction ('or' conjunction)*
    conjunction := inversion ('and' inversion)*
    inversion   := 'not' inversion | comparison
    comparison  := factor (compare_op factor)*             # chained like Python
    compare_op  := '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not' 'in'
    factor      := '-' factor | atom
    atom        := NAME | STRING | NUMBER | 'True' | 'False' | 'None'
                 | '(' [expression (',' expression)* [',']] ')'
                 | '[' [expression (',' expression)* [',']] ']'
"""
from __future__ import annotations

import keyword
import operator
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NoReturn, Union

from crdsmini.errors import ExpressionError, MappingError

__all__ = [
    "Expression",
    "compile_expression",
    "Node",
    "Name",
    "Constant",
    "TupleNode",
    "ListNode",
    "Negate",
    "Not",
    "BoolOp",
    "Compare",
    "IfElse",
]

# Deep enough for any real rmap (they nest three levels); shallow enough that the
# recursive-descent parser and the closures it builds never approach Python's
# recursion limit, so hostile text fails as a MappingError, not a RecursionError.
MAX_NESTING = 50


# --------------------------------------------------------------------------- tokens

@dataclass(frozen=True)
class _Token:
    kind: str  # NAME, KEYWORD, STRING, NUMBER, OP, NEWLINE, ERROR, END
    text: str  # the source text of the token
    position: int  # 0-based offset into the (substituted) text
    value: object = None  # decoded literal value; for ERROR, the reason


_NUMBER = r"""
      0[xX](?:_?[0-9a-fA-F])+
    | 0[oO](?:_?[0-7])+
    | 0[bB](?:_?[01])+
    | (?:\d(?:_?\d)*)?\.\d(?:_?\d)*(?:[eE][+-]?\d(?:_?\d)*)?
    | \d(?:_?\d)*\.(?:[eE][+-]?\d(?:_?\d)*)?
    | \d(?:_?\d)*[eE][+-]?\d(?:_?\d)*
    | \d(?:_?\d)*
"""

# Every Python operator and delimiter is tokenized (longest first) so that the parser,
# not the tokenizer, reports the first thing out of place, at the column where it is.
_PUNCTUATION = r"""
      \*\*= | //= | >>= | <<= | \.\.\. | -> | :=
    | == | != | <= | >= | \*\* | // | >> | <<
    | [-+*/%@&|^]=
    | [-+*/%@&|^~<>=.,:;()\[\]{}!]
"""

_TOKEN_RE = re.compile(
    rf"""
      (?P<SPACE>[ \t\f]+)
    | (?P<NEWLINE>\r\n|\r|\n)
    | (?P<NUMBER>{_NUMBER})
    | (?P<NAME>[^\W\d]\w*)
    | (?P<STRING>'(?:[^'\\\r\n]|\\[\s\S])*'|"(?:[^"\\\r\n]|\\[\s\S])*")
    | (?P<UNTERMINATED>['"])
    | (?P<OP>{_PUNCTUATION})
    | (?P<ERROR>[\s\S])
    """,
    re.VERBOSE,
)

_GRAMMAR_KEYWORDS = frozenset({"and", "or", "not", "in", "if", "else", "True", "False", "None"})
_BRACKETS = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}


def _tokenize(text: str) -> list[_Token]:
    """Split ``text`` into tokens; malformed pieces become ERROR tokens for the parser."""
    tokens: list[_Token] = []
    depth = 0
    for match in _TOKEN_RE.finditer(text):
        kind = match.lastgroup
        piece = match.group()
        start = match.start()
        if kind == "SPACE":
            continue
        if kind == "NEWLINE":
            # Python joins lines inside brackets; elsewhere a newline ends the expression.
            if depth <= 0:
                tokens.append(_Token("NEWLINE", piece, start))
            continue
        if kind == "NAME":
            name = unicodedata.normalize("NFKC", piece)  # as Python does for identifiers
            if not name.isidentifier():
                tokens.append(_Token("ERROR", piece, start, "invalid identifier"))
            elif name in _GRAMMAR_KEYWORDS:
                tokens.append(_Token("KEYWORD", name, start))
            elif keyword.iskeyword(name):
                tokens.append(_Token("ERROR", piece, start, f"Python keyword {name!r} is not allowed"))
            else:
                tokens.append(_Token("NAME", piece, start, name))
        elif kind == "NUMBER":
            tokens.append(_number_token(piece, start))
        elif kind == "STRING":
            tokens.append(_string_token(piece, start))
        elif kind == "UNTERMINATED":
            tokens.append(_Token("ERROR", piece, start, "unterminated string"))
            break
        elif kind == "OP":
            depth += _BRACKETS.get(piece, 0)
            tokens.append(_Token("OP", piece, start))
        else:
            tokens.append(_Token("ERROR", piece, start))
    while tokens and tokens[-1].kind == "NEWLINE":
        tokens.pop()
    while tokens and tokens[0].kind == "NEWLINE":
        tokens.pop(0)
    tokens.append(_Token("END", "", len(text)))
    return tokens


def _number_token(piece: str, start: int) -> _Token:
    try:
        if piece[:2].lower() in ("0x", "0o", "0b") or not any(c in piece for c in ".eE"):
            value: object = int(piece, 0)
        else:
            value = float(piece)
    except ValueError:
        # int(..., 0) refuses exactly what Python refuses: leading zeros such as 007.
        return _Token("ERROR", piece, start, "invalid number")
    return _Token("NUMBER", piece, start, value)


_SIMPLE_ESCAPES = {
    "\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f",
    "n": "\n", "r": "\r", "t": "\t", "v": "\v",
}
_ESCAPE_RE = re.compile(r"\\(?:(\r\n|\r|\n)|([0-7]{1,3})|x|u|U|N|([\s\S]))")
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}


def _string_token(piece: str, start: int) -> _Token:
    """Decode a quoted literal with Python's escapes (unknown escapes keep the backslash)."""
    body = piece[1:-1]
    out: list[str] = []
    index = 0
    while True:
        match = _ESCAPE_RE.search(body, index)
        if match is None:
            out.append(body[index:])
            break
        out.append(body[index:match.start()])
        index = match.end()
        letter = match.group()[1]
        if match.group(1) is not None:  # backslash-newline continues the line
            pass
        elif match.group(2) is not None:
            out.append(chr(int(match.group(2), 8)))
        elif letter in _HEX_DIGITS:
            width = _HEX_DIGITS[letter]
            digits = body[index:index + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                return _Token("ERROR", piece, start, f"truncated \\{letter} escape in string")
            code = int(digits, 16)
            if code > 0x10FFFF:
                return _Token("ERROR", piece, start, f"illegal Unicode character \\{letter}{digits}")
            out.append(chr(code))
            index += width
        elif letter == "N":
            close = body.find("}", index)
            if not body.startswith("{", index) or close < 0:
                return _Token("ERROR", piece, start, "malformed \\N{...} escape in string")
            try:
                out.append(unicodedata.lookup(body[index + 1:close]))
            except KeyError:
                return _Token("ERROR", piece, start, "unknown Unicode character name in string")
            index = close + 1
        else:
            out.append(_SIMPLE_ESCAPES.get(letter, "\\" + letter))
    return _Token("STRING", piece, start, "".join(out))


# --------------------------------------------------------------------------- tree

@dataclass(frozen=True)
class Name:
    """A header keyword looked up in the namespace."""

    id: str


@dataclass(frozen=True)
class Constant:
    """A string, number, ``True``, ``False`` or ``None`` literal."""

    value: object


@dataclass(frozen=True)
class TupleNode:
    """``(a, b)``: a tuple display."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class ListNode:
    """``[a, b]``: a list display (a fresh list on every evaluation, as in Python)."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Negate:
    """``-x``."""

    operand: Node


@dataclass(frozen=True)
class Not:
    """``not x``."""

    operand: Node


@dataclass(frozen=True)
class BoolOp:
    """``a and b and ...`` / ``a or b or ...``; yields the deciding operand."""

    op: str  # "and" | "or"
    values: tuple[Node, ...]


@dataclass(frozen=True)
class Compare:
    """``a < b <= c``: a chain of comparisons, each operand evaluated once."""

    left: Node
    ops: tuple[str, ...]  # "==", "!=", "<", "<=", ">", ">=", "in", "not in"
    comparators: tuple[Node, ...]


@dataclass(frozen=True)
class IfElse:
    """``body if test else orelse``."""

    test: Node
    body: Node
    orelse: Node


Node = Union[Name, Constant, TupleNode, ListNode, Negate, Not, BoolOp, Compare, IfElse]


# --------------------------------------------------------------------------- parser

_COMPARE_OPS = frozenset({"==", "!=", "<", "<=", ">", ">="})

_HINTS = {
    "(": "calls are not allowed",
    "[": "subscripts are not allowed",
    ".": "attribute access is not allowed",
    "=": "assignment is not allowed; did you mean '=='?",
    ":=": "assignment is not allowed",
    "{": "sets and dicts are not allowed",
    "}": "sets and dicts are not allowed",
    ":": "slices, lambdas and dicts are not allowed",
}
_ARITHMETIC = frozenset({"+", "-", "*", "/", "//", "%", "**", "@", "&", "|", "^", "~", "<<", ">>"})
_AUGMENTED = frozenset(op + "=" for op in _ARITHMETIC if op != "~")


class _ParseFailure(Exception):
    """Internal: a syntax error at a token; compile_expression turns it into MappingError."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position


class _Parser:
    """Recursive descent over the token list, one method per grammar rule."""

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._index = 0
        self._depth = 0

    # token helpers ---------------------------------------------------------------
    def _peek(self) -> _Token:
        return self._tokens[self._index]

    def _next(self) -> _Token:
        token = self._tokens[self._index]
        if token.kind != "END":
            self._index += 1
        return token

    def _at(self, kind: str, text: str) -> bool:
        token = self._tokens[self._index]
        return token.kind == kind and token.text == text

    def _accept(self, kind: str, text: str) -> bool:
        if self._at(kind, text):
            self._index += 1
            return True
        return False

    def _unexpected(self, token: _Token) -> NoReturn:
        if token.kind == "END":
            raise _ParseFailure("unexpected end of expression", token.position)
        if token.kind == "NEWLINE":
            raise _ParseFailure("unexpected newline", token.position)
        hint: object = None
        if token.kind == "ERROR":
            hint = token.value
        elif token.kind == "OP":
            if token.text in _ARITHMETIC:
                hint = "arithmetic is not allowed"
            elif token.text in _AUGMENTED:
                hint = "assignment is not allowed"
            else:
                hint = _HINTS.get(token.text)
        elif token.kind == "STRING":
            where = self._tokens.index(token)
            before = self._tokens[where - 1] if where else token
            if before.kind == "NAME" and before.position + len(before.text) == token.position:
                hint = "string prefixes such as f'' or r'' are not allowed"
        reason = f"unexpected {token.text!r}"
        raise _ParseFailure(f"{reason} ({hint})" if hint else reason, token.position)

    def _expect(self, kind: str, text: str) -> None:
        if not self._accept(kind, text):
            self._unexpected(self._peek())

    def _enter(self) -> None:
        self._depth += 1
        if self._depth > MAX_NESTING:
            raise _ParseFailure(f"expression nested more than {MAX_NESTING} levels deep",
                                self._peek().position)

    # grammar rules ---------------------------------------------------------------
    def parse(self) -> Node:
        node = self._expressions(closing=None)
        if self._peek().kind != "END":
            self._unexpected(self._peek())
        return node

    def _expressions(self, closing: str | None) -> Node:
        """A comma-separated run: one expression alone, else a tuple (top level and parens)."""
        first = self._expression()
        if not self._at("OP", ","):
            return first
        items = [first]
        while self._accept("OP", ","):
            if self._peek().kind == "END" or (closing and self._at("OP", closing)):
                break
            items.append(self._expression())
        return TupleNode(tuple(items))

    def _expression(self) -> Node:
        self._enter()
        body = self._disjunction()
        if self._accept("KEYWORD", "if"):
            test = self._disjunction()
            self._expect("KEYWORD", "else")
            body = IfElse(test, body, self._expression())
        self._depth -= 1
        return body

    def _disjunction(self) -> Node:
        values = [self._conjunction()]
        while self._accept("KEYWORD", "or"):
            values.append(self._conjunction())
        return values[0] if len(values) == 1 else BoolOp("or", tuple(values))

    def _conjunction(self) -> Node:
        values = [self._inversion()]
        while self._accept("KEYWORD", "and"):
            values.append(self._inversion())
        return values[0] if len(values) == 1 else BoolOp("and", tuple(values))

    def _inversion(self) -> Node:
        if self._accept("KEYWORD", "not"):
            self._enter()
            node: Node = Not(self._inversion())
            self._depth -= 1
            return node
        return self._comparison()

    def _comparison(self) -> Node:
        left = self._factor()
        ops: list[str] = []
        comparators: list[Node] = []
        while True:
            token = self._peek()
            if token.kind == "OP" and token.text in _COMPARE_OPS:
                op = token.text
            elif token.kind == "KEYWORD" and token.text == "in":
                op = "in"
            elif token.kind == "KEYWORD" and token.text == "not":
                self._next()
                if not self._at("KEYWORD", "in"):
                    self._unexpected(self._next())
                op = "not in"
            else:
                break
            self._next()
            ops.append(op)
            comparators.append(self._factor())
        if not ops:
            return left
        return Compare(left, tuple(ops), tuple(comparators))

    def _factor(self) -> Node:
        if self._accept("OP", "-"):
            self._enter()
            operand = self._factor()
            self._depth -= 1
            if isinstance(operand, Constant) and type(operand.value) in (int, float):
                return Constant(-operand.value)  # type: ignore[operator]
            return Negate(operand)
        return self._atom()

    def _atom(self) -> Node:
        token = self._next()
        if token.kind == "NAME":
            return Name(str(token.value))
        if token.kind in ("STRING", "NUMBER"):
            return Constant(token.value)
        if token.kind == "KEYWORD" and token.text in ("True", "False", "None"):
            return Constant({"True": True, "False": False, "None": None}[token.text])
        if token.kind == "OP" and token.text == "(":
            if self._accept("OP", ")"):
                return TupleNode(())
            node = self._expressions(closing=")")
            self._expect("OP", ")")
            return node
        if token.kind == "OP" and token.text == "[":
            items: list[Node] = []
            while not self._accept("OP", "]"):
                items.append(self._expression())
                if not self._accept("OP", ","):
                    self._expect("OP", "]")
                    break
            return ListNode(tuple(items))
        self._unexpected(token)


# --------------------------------------------------------------------------- closures

Evaluator = Callable[[Mapping[str, object]], object]


def _in(item: object, container: object) -> bool:
    return item in container  # type: ignore[operator]


def _not_in(item: object, container: object) -> bool:
    return item not in container  # type: ignore[operator]


_OPERATORS: dict[str, Callable[[object, object], object]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge, "in": _in, "not in": _not_in,
}


def _build(node: Node, source: str | None) -> Evaluator:
    """Turn a tree into one closure per node, so evaluation never revisits the tree."""
    if isinstance(node, Constant):
        value = node.value
        return lambda namespace: value
    if isinstance(node, Name):
        return _build_name(node.id, source)
    if isinstance(node, TupleNode):
        if all(isinstance(item, Constant) for item in node.items):
            constant = tuple(item.value for item in node.items)  # type: ignore[union-attr]
            return lambda namespace: constant
        parts = [_build(item, source) for item in node.items]
        return lambda namespace: tuple([part(namespace) for part in parts])
    if isinstance(node, ListNode):
        parts = [_build(item, source) for item in node.items]
        return lambda namespace: [part(namespace) for part in parts]
    if isinstance(node, Negate):
        operand = _build(node.operand, source)
        return lambda namespace: -operand(namespace)  # type: ignore[operator]
    if isinstance(node, Not):
        operand = _build(node.operand, source)
        return lambda namespace: not operand(namespace)
    if isinstance(node, BoolOp):
        return _build_boolop(node, source)
    if isinstance(node, Compare):
        return _build_compare(node, source)
    if isinstance(node, IfElse):
        test, body, orelse = (_build(n, source) for n in (node.test, node.body, node.orelse))
        return lambda namespace: body(namespace) if test(namespace) else orelse(namespace)
    raise TypeError(f"not an expression node: {node!r}")  # unreachable from the parser


def _build_name(name: str, source: str | None) -> Evaluator:
    message = f"name '{name}' is not defined"

    def lookup(namespace: Mapping[str, object]) -> object:
        try:
            return namespace[name]
        except KeyError:
            raise ExpressionError(message, file=source, keyword=name) from None

    return lookup


def _build_boolop(node: BoolOp, source: str | None) -> Evaluator:
    parts = [_build(value, source) for value in node.values]
    if node.op == "and":
        def conjunction(namespace: Mapping[str, object]) -> object:
            for part in parts:
                result = part(namespace)
                if not result:
                    return result
            return result
        return conjunction

    def disjunction(namespace: Mapping[str, object]) -> object:
        for part in parts:
            result = part(namespace)
            if result:
                return result
        return result
    return disjunction


def _operand(node: Node, source: str | None, container: bool) -> Evaluator:
    # A constant list on the right of `in` is only searched, so a prebuilt tuple gives the
    # same answer without building a list per lookup.
    if container and isinstance(node, ListNode) and all(isinstance(i, Constant) for i in node.items):
        return _build(TupleNode(node.items), source)
    return _build(node, source)


def _build_compare(node: Compare, source: str | None) -> Evaluator:
    left = _build(node.left, source)
    ops = [_OPERATORS[op] for op in node.ops]
    rights = [_operand(c, source, op in ("in", "not in"))
              for c, op in zip(node.comparators, node.ops)]
    if len(ops) == 1:
        compare, right = ops[0], rights[0]
        if isinstance(node.comparators[0], Constant):
            constant = node.comparators[0].value
            return lambda namespace: compare(left(namespace), constant)
        return lambda namespace: compare(left(namespace), right(namespace))
    steps = list(zip(ops, rights))

    def chain(namespace: Mapping[str, object]) -> object:
        current = left(namespace)
        for compare, right in steps:
            following = right(namespace)
            result = compare(current, following)
            if not result:
                return result
            current = following
        return result
    return chain


# --------------------------------------------------------------------------- public API

@dataclass(frozen=True)
class Expression:
    """A compiled header expression; immutable, evaluated many times."""

    text: str
    names: frozenset[str]
    tree: Node = field(repr=False)
    source: str | None = field(default=None, repr=False, compare=False)
    _evaluator: Evaluator = field(default=lambda namespace: None, repr=False, compare=False)

    def evaluate(self, namespace: Mapping[str, object]) -> object:
        """Value of the expression with names bound from ``namespace``.

        Raises ExpressionError for an unknown name (``name 'X' is not defined``) and for any
        operation Python would refuse, with Python's own message (e.g. ``'<' not supported
        between instances of 'str' and 'int'``).
        """
        try:
            return self._evaluator(namespace)
        except ExpressionError:
            raise
        except Exception as exc:  # a value from the header Python cannot compare, negate...
            raise ExpressionError(str(exc), file=self.source) from exc


def compile_expression(text: str, *, dotted_names: Iterable[str] = (),
                       source: str | None = None) -> Expression:
    """Parse ``text`` into an Expression, or raise MappingError naming source and column.

    Each name of ``dotted_names`` containing '.' is first replaced, as plain text, by its
    '_' form (``META.EXPOSURE.TYPE`` -> ``META_EXPOSURE_TYPE``), as CRDS does for required
    parkeys; other dotted names remain and are rejected as attribute access.
    """
    if not isinstance(text, str):
        raise MappingError(_message(source, f"expression must be a string, not {type(text).__name__}"),
                           file=source)
    substituted = text
    for dotted in sorted({n for n in dotted_names if "." in n}, key=len, reverse=True):
        substituted = substituted.replace(dotted, dotted.replace(".", "_"))
    try:
        tree = _Parser(_tokenize(substituted)).parse()
    except _ParseFailure as failure:
        column = failure.position + 1
        # '.' -> '_' keeps every length, so columns in the substituted text are columns in text.
        raise MappingError(
            _message(source, f"invalid expression {text!r}: {failure.reason} at column {column}"),
            file=source, column=column,
        ) from None
    return Expression(text=text, names=_names(tree), tree=tree, source=source,
                      _evaluator=_build(tree, source))


def _message(source: str | None, detail: str) -> str:
    return f"Can't load file {source} : {detail}" if source else detail


def _names(node: Node) -> frozenset[str]:
    found: set[str] = set()
    pending: list[Node] = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, Name):
            found.add(current.id)
        elif isinstance(current, (TupleNode, ListNode)):
            pending.extend(current.items)
        elif isinstance(current, (Negate, Not)):
            pending.append(current.operand)
        elif isinstance(current, BoolOp):
            pending.extend(current.values)
        elif isinstance(current, Compare):
            pending.append(current.left)
            pending.extend(current.comparators)
        elif isinstance(current, IfElse):
            pending.extend((current.test, current.body, current.orelse))
    return frozenset(found)
