"""The fast parse path (``syntax._FastParser``) gives exactly the reference parser's literals.

The fast path drives lark's own LALR table with its own loop; the reference path is lark's
parser with the contextual lexer and the inline ``_ToLiterals`` transformer.  On every
mapping file, and on a table of tricky texts, both give the same statements (compared with
``==`` and, stricter, by ``repr`` so that 1 == 1.0 == True cannot hide a difference).  Text
the reference rejects, the fast path refuses too (it raises; the caller then re-parses with
the reference parser, so errors read the same).
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest
from lark import Lark, Transformer

from conformance_corpus import CORPUS, require_corpus
from crdsmini.checksum import read_mapping_text
from crdsmini.errors import CrdsminiError
from crdsmini.syntax import _BracketNewlines, _FastParser, _fast_parser, _grammar, _parser, parse_mapping_text

ROOT = Path(__file__).resolve().parents[1]
_MAPPINGS = (".pmap", ".imap", ".rmap")


def _corpus_files() -> list[str]:
    if not CORPUS.is_dir():
        return ["<corpus absent>"]
    return sorted(str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.?map") if p.suffix in _MAPPINGS)


def _project_files() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "mappings").rglob("*.?map") if p.suffix in _MAPPINGS)


def _assert_same(text: str) -> None:
    try:
        expected = _parser(False).parse(text)
    except Exception:  # noqa: BLE001 - rejected by the reference: the fast path must refuse it too
        with pytest.raises(Exception):
            _fast_parser().parse(text)
        return
    got = _fast_parser().parse(text)  # never refuses text the reference accepts
    assert got == expected
    assert repr(got) == repr(expected)


@pytest.mark.parametrize("name", _corpus_files())
def test_every_corpus_mapping(name):
    require_corpus()
    _assert_same(read_mapping_text(CORPUS / name))


@pytest.mark.parametrize("name", _project_files())
def test_every_project_mapping(name):
    _assert_same(read_mapping_text(ROOT / name))


def test_the_project_has_mappings():
    assert _project_files()


HEADER = "header = {'mapping': 'REFERENCE', 'name': 't.rmap'}\n"

# (what the text exercises, the text)
TRICKY = [
    ("nested tuples", HEADER + "selector = Match({(('a', 'b'), ('c', ('d',))) : 'f.fits'})\n"),
    ("empty dict, list, tuple", HEADER + "selector = {}\nx = []\ny = ()\n"),
    ("one-element tuple", HEADER + "selector = {('a',) : (1,), ('b') : (2)}\n"),
    ("trailing commas", HEADER + "selector = Match({('a', 'b',) : ['x', 'y',], 'k' : {'z' : 1,},},)\n"),
    ("comments", "# leading\n" + HEADER + "selector = Match({  # open\n  'a' : 'b',  # entry\n  # alone\n})  # end\n"),
    ("comment at the very end", HEADER + "selector = {}\n# last line, no newline"),
    ("line continuation", HEADER + "selector = \\\n  Match({\n 'a' : \\\n 'b'})\n"),
    ("CRLF line continuation", HEADER + "selector = \\\r\n  Match({\r\n 'a' : \\\r\n 'b'})\r\n"),
    ("backslash ending a comment", HEADER + "x = 1  # not a continuation \\\nselector = {}\n"),
    ("comment lines between statements", HEADER + "\n  # a\n\n# b \\\n\t\nselector = {}\n\n"),
    ("newlines inside brackets", HEADER + "selector = Match(\n{\n'a'\n:\n(\n'b'\n,\n)\n}\n)\n"),
    ("r-, b-, u-strings", HEADER + "selector = {r'a\\d': R'\\x', 'b': b'z', 'c': u'q', 'd': Rb'\\y', 'e': bR'w'}\n"),
    ("escapes and quotes", HEADER + "selector = {'a\\n': \"it's\", 'b': 'say \"hi\"', 'c': '\\u00e9\\t'}\n"),
    ("triple quotes", HEADER + "comment = '''two\nlines'''\nselector = {\"\"\"k\"\"\"  : '''''', '': \"\"}\n"),
    ("implicit concatenation", HEADER + "selector = {'a' 'b' : 'c' \"d\" '''e'''}\n"),
    ("unicode", HEADER + "selector = {'détecteur' : 'Ω.fits', 'k': '日本'}\n"),
    ("numbers", HEADER + "selector = {'a': 1e-5, 'b': .5, 'c': -3, 'd': 0x1F, 'e': 1_000, 'f': 2.,"
                         " 'g': 0o17, 'h': 0b101, 'i': -0.25E+2, 'j': 007}\n"),
    ("constants", HEADER + "selector = {True: False, None: (None, True), 'x': [False]}\n"),
    ("selector calls nested", HEADER + "selector = Match({('a',) : UseAfter({'2020-01-01 00:00:00' : "
                                       "'f.fits'}), ('b',) : SelectVersion({'<3': Bracket({1: ('x', 'y')})})})\n"),
    ("semicolons and bare values", HEADER + "x = 1; 'bare'; (1, 2)\nselector = {};\n;\n"),
    ("blank lines and CRLF", "\r\n\r\n" + HEADER.replace("\n", "\r\n") + "selector = {\r\n'a': 'b'\r\n}\r\n"),
    ("CR line ends", HEADER.replace("\n", "\r") + "selector = Match({\r'a': 'b'})\r"),
    ("last assignment wins", HEADER + "selector = {}\nselector = {'a': 1}\n"),
    ("empty text", ""),
    ("only a comment", "# nothing\n"),
    ("lists and dicts as values", HEADER + "selector = {'a': [[1, [2]], {'b': {'c': ()}}]}\n"),
    ("duplicate keys kept", HEADER + "selector = {'a': 1, 'a': 2}\n"),
]

# Refused by both; the reference's error is the one reported.
REFUSED = [
    ("newline after '='", HEADER + "selector =\n {}\n"),
    ("newline after '-'", HEADER + "x = -\n1\nselector = {}\n"),
    ("unbalanced closer", HEADER + "selector = {}}\n"),
    ("mismatched brackets", HEADER + "selector = {'a': (1, 2]}\n"),
    ("unclosed bracket", HEADER + "selector = {'a': 1\n"),
    ("selector without argument", HEADER + "selector = Match()\n"),
    ("selector with two arguments", HEADER + "selector = Match({}, {})\n"),
    ("unknown selector", HEADER + "selector = Lookup({})\n"),
    ("unknown name", HEADER + "selector = {'a': nothing}\n"),
    ("set literal", HEADER + "selector = {'a', 'b'}\n"),
    ("list as a key", HEADER + "selector = {('a', ['b']): 1}\n"),
    ("mixed bytes and str", HEADER + "selector = {'a': b'x' 'y'}\n"),
    ("f-string", HEADER + "selector = {'a': f'x'}\n"),
    ("complex number", HEADER + "selector = {'a': 2j}\n"),
    ("bad escape", HEADER + "selector = {'a': '\\N{NOT A NAME}'}\n"),
    ("non-ASCII bytes", HEADER + "selector = {'a': b'é'}\n"),
    ("stray character", HEADER + "selector = {'a': 1} $\n"),
    ("unterminated string", HEADER + "selector = {'a': 'b}\n"),
    ("attribute access", HEADER + "selector = os.system('x')\n"),
]


@pytest.mark.parametrize("text", [text for _, text in TRICKY], ids=[what for what, _ in TRICKY])
def test_tricky_texts(text):
    _parser(False).parse(text)  # valid for the reference
    _assert_same(text)


@pytest.mark.parametrize("text", [text for _, text in REFUSED], ids=[what for what, _ in REFUSED])
def test_refused_texts_report_the_reference_error(text):
    _assert_same(text)
    with pytest.raises(CrdsminiError) as fast:
        parse_mapping_text(text, "t.rmap")
    with pytest.raises(CrdsminiError) as reference:
        parse_mapping_text(text, "t.rmap", with_lines=True)  # always the reference lexer and parser
    assert (fast.value.category, fast.value.message) == (reference.value.category, reference.value.message)


_PIECES = ["header", "selector", "x", "Match", "UseAfter", "True", "None", "=", "{", "}", "(", ")", "[", "]",
           ",", ",", ":", ":", ";", "-", "\n", "\n", " ", "'a'", "'b'", "b'c'", "r'\\d'", "'''t'''", "1", ".5",
           "2e3", "# c\n", "\\\n", "{'k': 'v'}", "('p', 'q')"]


@pytest.mark.parametrize("seed", range(20))
def test_random_token_soup(seed):
    """Random sequences of the grammar's tokens: accepted alike or refused alike."""
    rng = random.Random(seed)
    for _ in range(150):
        pieces = rng.choices(_PIECES, k=rng.randint(0, 25))
        _assert_same(" ".join(pieces) if rng.random() < 0.5 else "".join(pieces))


def _random_value(rng, depth: int) -> str:
    """Text of a random literal (sometimes one the grammar or the transformer rejects)."""
    def gap() -> str:  # inside brackets: all white space
        return rng.choice(["", " ", "\n", "  # c\n", " \\\n"])

    atoms = ["'a'", '"b"', "'''c\nd'''", "r'\\e'", "b'f'", "'g' 'h'", "u'ü'", "1", "-2", ".5", "3e-4", "0x1F",
             "True", "False", "None", "''", "'x\\'y'"]
    if depth <= 0 or rng.random() < 0.4:
        return rng.choice(atoms)
    items = [_random_value(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    trailing = "," if items and rng.random() < 0.3 else ""
    kind = rng.choice(["tuple", "list", "dict", "call"])
    if kind == "tuple":
        inner = items[0] + "," if len(items) == 1 else (", " + gap()).join(items) + trailing
        return "(" + gap() + inner + gap() + ")"
    if kind == "list":
        return "[" + gap() + (", " + gap()).join(items) + trailing + gap() + "]"
    pairs = [f"{_random_value(rng, 0) if rng.random() < 0.7 else _random_value(rng, 1)} :{gap()} {item}"
             for item in items]
    body = "{" + gap() + ("," + gap()).join(pairs) + trailing + gap() + "}"
    return body if kind == "dict" else rng.choice(["Match", "UseAfter", "SelectVersion"]) + "(" + body + ")"


@pytest.mark.parametrize("seed", range(20))
def test_random_literal_trees(seed):
    """Random nested literals and selector calls, with newlines, comments and continuations
    inside the brackets (about three in four are valid)."""
    rng = random.Random(seed)
    for _ in range(50):
        statements = [f"{rng.choice(['header', 'selector', 'comment', 'x'])} = {_random_value(rng, 4)}"
                      for _ in range(rng.randint(1, 4))]
        _assert_same(rng.choice(["\n", ";", "\n\n# c\n"]).join(statements) + rng.choice(["", "\n", "  # end"]))


# -- the table driver on rule shapes the mapping grammar does not use ------------------------

_SHAPES_RULES = r"""
start: (_line? _NEWLINE)* _line?
_line: item (";" item)*
?item: pair | group | call | atom
pair: NAME "=" [atom] ":" [atom]
group: "(" [_items] ")"
_items: _item_list ","?
_item_list: item ("," item)*
call: NAME "{" [item] "," [item] "}"
?atom: STRING | NUMBER | NAME | "-" NUMBER -> negative
"""


def _shape(name):
    def callback(self, children):
        return (name, [str(child) if isinstance(child, str) else child for child in children])
    return callback


# Every rule as (name, children), so the test sees exactly what each callback got.
_Shapes = type("_Shapes", (Transformer,), {name: _shape(name) for name in
                                           ("start", "item", "pair", "group", "call", "atom", "negative")})


@pytest.fixture(scope="module")
def shapes():
    """A grammar with ?rules without alias, [x] placeholders in the middle and at the end,
    nested _rules, and the mapping grammar's own terminals (which the fast lexer needs)."""
    text = _grammar()
    grammar = _SHAPES_RULES + text[text.index("\nNAME:"):]
    reference = Lark(grammar, parser="lalr", lexer="contextual", postlex=_BracketNewlines(),
                     maybe_placeholders=True, transformer=_Shapes())
    return reference, _FastParser(reference, _Shapes())


@pytest.mark.parametrize("text", [
    "", "\n\n", "a", "'s'", "-1", "a = 1 : 2", "a = : ", "a = 'x' :", "a = : b",
    "()", "(a)", "(a,)", "(a, b, c)", "(a, (b, c), ())", "((()))", "f{a, b}", "f{, }", "f{a, }", "f{, b}",
    "x = 1 : 2; (a, b)\n\ny\n", "(\na,\n b\n)", "a\n;b", "a = 1 : 2 2",
])
def test_rule_shapes_match_lark(shapes, text):
    """The table driver mirrors lark's tree building, not just the shapes grammar.lark has."""
    reference, fast = shapes
    try:
        expected = reference.parse(text)
    except Exception:  # noqa: BLE001
        with pytest.raises(Exception):
            fast.parse(text)
        return
    assert fast.parse(text) == expected
    assert repr(fast.parse(text)) == repr(expected)
