"""Spec §9.1 expression language: one table per rule, read top to bottom like the spec."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdsmini.errors import ExpressionError, MappingError
from crdsmini.expressions import (
    BoolOp, Compare, Constant, Expression, ListNode, Name, TupleNode, compile_expression,
)

HEADER = {"DETECTOR": "SBC", "OBSTYPE": "SPECTROSCOPIC", "EXPTYPE": "EXTERNAL/SCI", "N": "3"}


def value(text: str, namespace: dict | None = None, **kwargs: object) -> object:
    return compile_expression(text, **kwargs).evaluate(HEADER if namespace is None else namespace)


# --------------------------------------------------------------------------- literals

LITERALS = [
    ("'abc'", "abc"),
    ('"abc"', "abc"),
    ('"it\'s"', "it's"),
    (r"'say \"hi\"'", 'say "hi"'),
    (r"'a\nb\tc\\d'", "a\nb\tc\\d"),
    (r"'\x41\101\u0042\U00000043'", "AABC"),
    (r"'\N{GREEK SMALL LETTER ALPHA}'", "\u03b1"),
    (r"'\q'", "\\q"),                      # unknown escapes keep the backslash, as in Python
    ("''", ""),
    ("'EXTERNAL/SCI'", "EXTERNAL/SCI"),
    ("0", 0),
    ("42", 42),
    ("1_000", 1000),
    ("0x1F", 31),
    ("0o17", 15),
    ("0b101", 5),
    ("00", 0),
    ("1.5", 1.5),
    (".5", 0.5),
    ("1.", 1.0),
    ("1e3", 1000.0),
    ("2.5E-1", 0.25),
    ("-1", -1),
    ("-1.0", -1.0),
    ("- -2", 2),
    ("-True", -1),
    ("True", True),
    ("False", False),
    ("None", None),
    ("()", ()),
    ("(1,)", (1,)),
    ("(1, 'a')", (1, "a")),
    ("(1, 'a',)", (1, "a")),
    ("1, 2", (1, 2)),
    ("1,", (1,)),
    ("[]", []),
    ("[1]", [1]),
    ("['a', 'b',]", ["a", "b"]),
    ("[(1, 2), [3]]", [(1, 2), [3]]),
    ("(((1)))", 1),
    ("(\n 'a',\n 'b'\n)", ("a", "b")),        # newlines join inside brackets
    ("  'a'  ", "a"),
    ("\n'a'\n", "a"),
]


@pytest.mark.parametrize(("text", "expected"), LITERALS)
def test_literals(text: str, expected: object) -> None:
    result = value(text, {})
    assert result == expected
    assert type(result) is type(expected)


# --------------------------------------------------------------------------- operators

N = {"A": "x", "B": "y", "ONE": 1, "TWO": 2, "EMPTY": "", "ZERO": 0, "L": ["x", "z"]}

OPERATORS = [
    # == != and the orderings, on strings and numbers
    ("A == 'x'", True),
    ("A == 'X'", False),                    # case matters
    ("A != 'x'", False),
    ("A != B", True),
    ("ONE == 1.0", True),
    ("ONE == '1'", False),                  # no coercion
    ("ONE < TWO", True),
    ("ONE <= 1", True),
    ("TWO > ONE", True),
    ("TWO >= 3", False),
    ("'a' < 'b'", True),
    ("(1, 2) < (1, 3)", True),
    # chained comparisons
    ("0 < ONE < TWO", True),
    ("0 < TWO < ONE", False),
    ("ONE == 1 == 1.0", True),
    ("1 < 2 > 0", True),
    ("A == 'x' != B", True),
    # in / not in
    ("A in ('x', 'y')", True),
    ("A in ['y', 'z']", False),
    ("A not in ['y', 'z']", True),
    ("A not in ('x',)", False),
    ("'x' in L", True),
    ("'b' in 'abc'", True),
    ("A in ()", False),
    ("A in []", False),
    ("A in (B, 'x')", True),
    ("A in [B]", False),
    # and / or: short-circuit, returning the deciding operand
    ("A == 'x' and B == 'y'", True),
    ("A == 'x' and B == 'z'", False),
    ("A and B", "y"),
    ("EMPTY and B", ""),
    ("ZERO or EMPTY", ""),
    ("EMPTY or A", "x"),
    ("A or UNDEFINED_NAME", "x"),           # never looked up
    ("EMPTY and UNDEFINED_NAME", ""),
    ("ZERO or EMPTY or A", "x"),
    ("A and B and ONE", 1),
    ("A == 'z' or B == 'y' and ONE == 2", False),   # and binds tighter than or
    ("A == 'x' or B == 'z' and ONE == 2", True),
    # not
    ("not A", False),
    ("not EMPTY", True),
    ("not A == 'y'", True),                 # not binds looser than ==
    ("not not A", True),
    ("not A == 'x' and B == 'y'", False),
    ("not (A == 'x' and B == 'z')", True),
    # conditional
    ("1 if A == 'x' else 0", 1),
    ("1 if A == 'y' else 0", 0),
    ("'p' if EMPTY else 'q' if A else 'r'", "q"),
    ("ONE if A else UNDEFINED_NAME", 1),    # the other branch is never evaluated
    ("(A if ZERO else B) == 'y'", True),
    # unary minus
    ("-ONE", -1),
    ("-ONE < 0", True),
    ("-ONE in (-1, 1)", True),
]


@pytest.mark.parametrize(("text", "expected"), OPERATORS)
def test_operators(text: str, expected: object) -> None:
    result = value(text, N)
    assert result == expected
    assert type(result) is type(expected)


def test_list_display_is_fresh_each_time() -> None:
    expression = compile_expression("[A]")
    first = expression.evaluate(N)
    first.append("mutated")  # type: ignore[union-attr]
    assert expression.evaluate(N) == ["x"]


def test_chained_comparison_evaluates_middle_operand_once() -> None:
    class Counting(dict):
        lookups = 0

        def __getitem__(self, key: str) -> object:
            Counting.lookups += 1
            return super().__getitem__(key)

    assert compile_expression("0 < M < 5").evaluate(Counting(M=3)) is True
    assert Counting.lookups == 1


# --------------------------------------------------------------------------- corpus

CORPUS = [
    # (expression, dotted_names, namespace, expected)
    ('(DARKCORR != "OMIT")', (), {"DARKCORR": "PERFORM"}, True),
    ('(DARKCORR != "OMIT")', (), {"DARKCORR": "OMIT"}, False),
    ('(DARKCORR != "OMIT")', (), {"DARKCORR": "UNDEFINED"}, True),
    ('((DETECTOR != "SBC") and (ATODCORR != "OMIT"))', (),
     {"DETECTOR": "HRC", "ATODCORR": "PERFORM"}, True),
    ('((DETECTOR != "SBC") and (ATODCORR != "OMIT"))', (),
     {"DETECTOR": "SBC", "ATODCORR": "PERFORM"}, False),
    ('((DETECTOR != "SBC") and (ATODCORR != "OMIT"))', (),
     {"DETECTOR": "SBC"}, False),           # short-circuit: ATODCORR never needed
    ('(OBSTYPE == "SPECTROSCOPIC") and (EXPTYPE == "EXTERNAL/SCI")', (),
     {"OBSTYPE": "SPECTROSCOPIC", "EXPTYPE": "EXTERNAL/SCI"}, True),
    ('(OBSTYPE == "SPECTROSCOPIC") and (EXPTYPE == "EXTERNAL/SCI")', (),
     {"OBSTYPE": "SPECTROSCOPIC", "EXPTYPE": "INTERNAL"}, False),
    ('(SAMP_SEQ not in ["SPARS4","SPARS16","SPARS32","SPARS128"])', (),
     {"SAMP_SEQ": "SPARS16"}, False),
    ('(SAMP_SEQ not in ["SPARS4","SPARS16","SPARS32","SPARS128"])', (),
     {"SAMP_SEQ": "RAPID"}, True),
    ('(META.EXPOSURE.TYPE not in ("MIR_IMAGE", "NRC_IMAGE", "NIS_IMAGE"))',
     ("META.EXPOSURE.TYPE",), {"META_EXPOSURE_TYPE": "NRC_IMAGE"}, False),
    ('(META.EXPOSURE.TYPE not in ("MIR_IMAGE", "NRC_IMAGE", "NIS_IMAGE"))',
     ("META.EXPOSURE.TYPE",), {"META_EXPOSURE_TYPE": "MIR_LRS-FIXEDSLIT"}, True),
    ('((FLASHCUR !=  "NONE") and (FLSHCORR != "OMIT"))', (),
     {"FLASHCUR": "LOW", "FLSHCORR": "PERFORM"}, True),
    ('((FLASHCUR !=  "NONE") and (FLSHCORR != "OMIT"))', (),
     {"FLASHCUR": "NONE", "FLSHCORR": "PERFORM"}, False),
    ('(FW1OFFST == "-1.0" or FW1OFFST == "1.0")', (), {"FW1OFFST": "1.0"}, True),
    ('(FW1OFFST == "-1.0" or FW1OFFST == "1.0")', (), {"FW1OFFST": "-1.0"}, True),
    ('(FW1OFFST == "-1.0" or FW1OFFST == "1.0")', (), {"FW1OFFST": "0.0"}, False),
    ('(1 if DET == "A" else 0)', (), {"DET": "A"}, 1),
    ('(1 if DET == "A" else 0)', (), {"DET": "B"}, 0),
    ("True", (), {}, True),
    ("(True)", (), {}, True),
    ('det == "a"', (), {"det": "a"}, True),
    ('(DET == "a")', (), {"DET": "A"}, False),   # case matters inside the expression
    ('(DETECTOR == "HRC" and OBSTYPE == "CORONAGRAPHIC")', (),
     {"DETECTOR": "HRC", "OBSTYPE": "CORONAGRAPHIC"}, True),
    ('((DETECTOR == "FUV" and OBSMODE == "TIME-TAG") and (BADTCORR != "OMIT"))', (),
     {"DETECTOR": "FUV", "OBSMODE": "ACCUM", "BADTCORR": "PERFORM"}, False),
    ('(LIFE_ADJ == "3.0")', (), {"LIFE_ADJ": "3.0"}, True),
    ("keep_comments", (), {"keep_comments": False}, False),
]


@pytest.mark.parametrize(("text", "dotted", "namespace", "expected"), CORPUS)
def test_corpus_expressions(text: str, dotted: tuple[str, ...], namespace: dict,
                            expected: object) -> None:
    expression = compile_expression(text, dotted_names=dotted, source="corpus.rmap")
    assert expression.text == text
    result = expression.evaluate(namespace)
    assert result == expected
    assert type(result) is type(expected)


NAMES = [
    ('(DARKCORR != "OMIT")', (), {"DARKCORR"}),
    ('((DETECTOR != "SBC") and (ATODCORR != "OMIT"))', (), {"DETECTOR", "ATODCORR"}),
    ('(META.EXPOSURE.TYPE not in ("MIR_IMAGE",))', ("META.EXPOSURE.TYPE",), {"META_EXPOSURE_TYPE"}),
    ('(1 if DET == "A" else OTHER)', (), {"DET", "OTHER"}),
    ("True", (), set()),
    ("not -X in [Y, (Z,)]", (), {"X", "Y", "Z"}),
]


@pytest.mark.parametrize(("text", "dotted", "names"), NAMES)
def test_names(text: str, dotted: tuple[str, ...], names: set[str]) -> None:
    assert compile_expression(text, dotted_names=dotted).names == frozenset(names)


# --------------------------------------------------------------------------- dotted names

DOTTED = [
    # (text, dotted_names, namespace, expected)
    ("META.A == 'x'", ["META.A"], {"META_A": "x"}, True),
    ("META.A.B == META.A", ["META.A", "META.A.B"], {"META_A_B": "y", "META_A": "y"}, True),
    ("META.A.B == META.A", ["META.A.B", "META.A"], {"META_A_B": "y", "META_A": "z"}, False),
    ("X == 'META.A'", ["META.A"], {"X": "META_A"}, True),  # plain substring replacement, as CRDS
    ("NODOT == 'a'", ["NODOT", "META.A"], {"NODOT": "a"}, True),
]


@pytest.mark.parametrize(("text", "dotted", "namespace", "expected"), DOTTED)
def test_dotted_names_are_rewritten(text: str, dotted: list[str], namespace: dict,
                                    expected: object) -> None:
    expression = compile_expression(text, dotted_names=dotted)
    assert expression.text == text
    assert expression.evaluate(namespace) == expected


def test_dotted_name_not_listed_is_attribute_access() -> None:
    with pytest.raises(MappingError, match=r"attribute access is not allowed\) at column 5"):
        compile_expression("META.B == 'x'", dotted_names=["META.A"])


# --------------------------------------------------------------------------- rejected

REJECTED = [
    # (text, expected offending text, column)
    ('(DETECTOR x= "SBC")', "'x'", 11),
    ("__import__('os').system('x')", "'('", 11),
    ("len('a')", "'('", 4),
    ("'a'.upper()", "'.'", 4),
    ("'abc'[0]", "'['", 6),
    ("'abc'[0:1]", "'['", 6),
    ("1+2", "'+'", 2),
    ("1 - 2", "'-'", 3),
    ("2 * 3", "'*'", 3),
    ("2 ** 3", "'**'", 3),
    ("7 // 2", "'//'", 3),
    ("7 % 2", "'%'", 3),
    ("1 | 2", "'|'", 3),
    ("~1", "'~'", 1),
    ("+1", "'+'", 1),
    ("lambda: 1", "'lambda'", 1),
    ("x is None", "'is'", 3),
    ("x is not None", "'is'", 3),
    ("{'a'}", "'{'", 1),
    ("{'a': 1}", "'{'", 1),
    ('f"x"', "'\"x\"'", 2),
    ("r'x'", "\"'x'\"", 2),
    ("b'x'", "\"'x'\"", 2),
    ("'a' 'b'", "\"'b'\"", 5),
    ("a = 1", "'='", 3),
    ("a := 1", "':='", 3),
    ("a += 1", "'+='", 3),
    ("x=", "'='", 2),
    ("a.b", "'.'", 2),
    ("[x for x in y]", "'for'", 4),
    ("yield x", "'yield'", 1),
    ("await x", "'await'", 1),
    ("import os", "'import'", 1),
    ("*a", "'*'", 1),
    ("a if b", "end of expression", 7),
    ("a if b else", "end of expression", 12),
    ("a not b", "'b'", 7),
    ("not", "end of expression", 4),
    ("a ==", "end of expression", 5),
    ("== a", "'=='", 1),
    ("a < < b", "'<'", 5),
    ("a <> b", "'>'", 4),
    ("a === b", "'='", 5),
    ("a ! b", "'!'", 3),
    ("a and", "end of expression", 6),
    ("and a", "'and'", 1),
    ("in a", "'in'", 1),
    ("", "end of expression", 1),
    ("   ", "end of expression", 4),
    ("(", "end of expression", 2),
    (")", "')'", 1),
    ("(a", "end of expression", 3),
    ("a)", "')'", 2),
    ("[a", "end of expression", 3),
    ("(,)", "','", 2),
    ("[,]", "','", 2),
    ("[1,,]", "','", 4),
    ("(1,,)", "','", 4),
    ("a b", "'b'", 3),
    ("1 2", "'2'", 3),
    ("1abc", "'abc'", 2),
    ("1j", "'j'", 2),
    ("007", "'007'", 1),
    ("0_7", "'0_7'", 1),
    ("'abc", "\"'\"", 1),
    ('"abc', "'\"'", 1),
    ("'a\nb'", "\"'\"", 1),
    (r"'\x4'", "\"'\\\\x4'\"", 1),
    (r"'\u12'", "\"'\\\\u12'\"", 1),
    (r"'\U00110000'", "\"'\\\\U00110000'\"", 1),
    (r"'\N{NO SUCH CHARACTER NAME}'", "\"'\\\\N{NO SUCH CHARACTER NAME}'\"", 1),
    ("a\n== b", "newline", 2),
    ("a; b", "';'", 2),
    ("a # comment", "'#'", 3),
    ("$a", "'$'", 1),
    ("a @ b", "'@'", 3),
    ("`a`", "'`'", 1),
    ("...", "'...'", 1),
    ("a\\\n== b", "'\\\\'", 2),
    ("(" * 60 + "1" + ")" * 60, "nested more than 50 levels", 51),
    ("not " * 60 + "1", "nested more than 50 levels", 201),
    ("-" * 60 + "1", "nested more than 50 levels", 51),
]


@pytest.mark.parametrize(("text", "offending", "column"), REJECTED)
def test_rejected_at_compile(text: str, offending: str, column: int) -> None:
    with pytest.raises(MappingError) as info:
        compile_expression(text, source="bad.rmap")
    error = info.value
    assert error.category == "invalid-mapping"
    assert error.file == "bad.rmap"
    assert error.column == column
    message = str(error)
    assert message.startswith(f"Can't load file bad.rmap : invalid expression {text!r}: ")
    assert offending in message
    assert message.endswith(f" at column {column}")


def test_spec_example_message_exactly() -> None:
    with pytest.raises(MappingError) as info:
        compile_expression('(DETECTOR x= "SBC")', source="hst_acs_darkfile_badexpr.rmap")
    assert str(info.value) == (
        "Can't load file hst_acs_darkfile_badexpr.rmap : invalid expression "
        "'(DETECTOR x= \"SBC\")': unexpected 'x' at column 11")


def test_message_without_source() -> None:
    with pytest.raises(MappingError) as info:
        compile_expression("1+2")
    assert str(info.value) == "invalid expression '1+2': unexpected '+' (arithmetic is not allowed) at column 2"
    assert info.value.file is None


def test_non_string_expression_is_a_load_error() -> None:
    with pytest.raises(MappingError, match="must be a string"):
        compile_expression(True, source="synphot.rmap")  # type: ignore[arg-type]


def test_rejection_never_executes_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    def trap(*args: object, **kwargs: object) -> object:
        raise AssertionError("expression text reached the import machinery")

    monkeypatch.setattr(builtins, "__import__", trap)
    for text in ("__import__('os').system('x')", "open('/etc/passwd')", "exec('1')"):
        with pytest.raises(MappingError):
            compile_expression(text)


# --------------------------------------------------------------------------- evaluation errors

EVALUATION_ERRORS = [
    # (text, namespace, exact message)
    ('det == "a"', {"DET": "A"}, "name 'det' is not defined"),
    ('(OTHER == "X")', {}, "name 'OTHER' is not defined"),
    ("A == 'x' and OTHER", {"A": "x"}, "name 'OTHER' is not defined"),
    ("A in (1, OTHER)", {"A": "x"}, "name 'OTHER' is not defined"),
    ("META.A == 'x'", {"META.A": "x"}, "name 'META_A' is not defined"),
    ("A < 1", {"A": "x"}, "'<' not supported between instances of 'str' and 'int'"),
    ("A >= 1", {"A": "x"}, "'>=' not supported between instances of 'str' and 'int'"),
    ("0 < A < 2", {"A": "1"}, "'<' not supported between instances of 'int' and 'str'"),
    ("A > None", {"A": "x"}, "'>' not supported between instances of 'str' and 'NoneType'"),
    ("1 in A", {"A": "abc"}, "'in <string>' requires string as left operand, not int"),
    ("A in 1", {"A": "x"}, "argument of type 'int' is not iterable"),
    ("-A", {"A": "x"}, "bad operand type for unary -: 'str'"),
]


@pytest.mark.parametrize(("text", "namespace", "message"), EVALUATION_ERRORS)
def test_evaluation_errors(text: str, namespace: dict, message: str) -> None:
    expression = compile_expression(text, dotted_names=["META.A"], source="x.rmap")
    with pytest.raises(ExpressionError) as info:
        expression.evaluate(namespace)
    assert str(info.value) == message
    assert info.value.category == "expression-error"
    assert info.value.file == "x.rmap"


def test_unknown_name_reports_the_keyword() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression('(OTHER == "X")').evaluate({})
    assert info.value.keyword == "OTHER"


# --------------------------------------------------------------------------- the object

def test_expression_is_immutable_and_comparable() -> None:
    first = compile_expression('(DETECTOR != "SBC")', source="a.rmap")
    second = compile_expression('(DETECTOR != "SBC")', source="b.rmap")
    assert first == second and hash(first) == hash(second)
    assert isinstance(first, Expression)
    with pytest.raises(AttributeError):
        first.text = "True"  # type: ignore[misc]


TREES = [
    ("A", Name("A")),
    ("'a'", Constant("a")),
    ("-1", Constant(-1)),
    ("A == 'x'", Compare(Name("A"), ("==",), (Constant("x"),))),
    ("A and B or C", BoolOp("or", (BoolOp("and", (Name("A"), Name("B"))), Name("C")))),
    ("A not in [1]", Compare(Name("A"), ("not in",), (ListNode((Constant(1),)),))),
    ("(A, 1)", TupleNode((Name("A"), Constant(1)))),
]


@pytest.mark.parametrize(("text", "tree"), TREES)
def test_tree(text: str, tree: object) -> None:
    assert compile_expression(text).tree == tree


def test_namespace_may_be_any_mapping() -> None:
    from types import MappingProxyType

    assert compile_expression("A == 'x'").evaluate(MappingProxyType({"A": "x"})) is True


# --------------------------------------------------------------------------- properties

PIECES = st.sampled_from([
    "A", "B", "META.X", "'s'", '"t"', "1", "-", "2.5", "(", ")", "[", "]", ",", "==", "!=",
    "<", "<=", ">", ">=", "in", "not", "and", "or", "if", "else", "True", "False", "None",
    ".", "+", "*", "=", "{", "}", ":", "lambda", "is", "'", '"', "\\", "\n", " ", "x(",
    "__import__", "#", "@", "f'", "\\x", "0x", "1e", "_",
])


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_random_text_only_raises_mapping_error(text: str) -> None:
    try:
        compile_expression(text, dotted_names=["META.X"], source="random.rmap")
    except MappingError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, max_size=30).map(" ".join))
def test_token_soup_only_raises_mapping_error(text: str) -> None:
    try:
        expression = compile_expression(text, dotted_names=["META.X"], source="soup.rmap")
    except MappingError:
        return
    # Whatever compiles evaluates to a value or raises ExpressionError, nothing else.
    try:
        expression.evaluate({"A": "a", "B": "b", "META_X": "x"})
    except ExpressionError:
        pass


@st.composite
def grammar_text(draw: st.DrawFn, depth: int = 0) -> str:
    """Random text inside the grammar; compound operands are parenthesised, as Python needs."""
    atoms = ["A", "B", "'a'", '"b"', "1", "2.5", "True", "False", "None", "()", "[]"]
    if depth >= 4 or draw(st.booleans()):
        return draw(st.sampled_from(atoms))
    inner = grammar_text(depth + 1)
    shape = draw(st.integers(0, 6))
    if shape == 0:
        op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in", "not in", "and", "or"]))
        return f"({draw(inner)}) {op} ({draw(inner)})"
    if shape == 1:
        return f"not ({draw(inner)})"
    if shape == 2:
        return f"-({draw(inner)})"
    if shape == 3:
        return "[" + ", ".join(draw(st.lists(inner, max_size=3))) + "]"
    if shape == 4:
        return "(" + ", ".join(draw(st.lists(inner, min_size=1, max_size=3))) + ",)"
    if shape == 5:
        return f"({draw(inner)}) if ({draw(inner)}) else ({draw(inner)})"
    return f"({draw(inner)}) < ({draw(inner)}) != ({draw(inner)})"


@settings(max_examples=300, deadline=None)
@given(grammar_text())
def test_grammar_text_always_compiles(text: str) -> None:
    expression = compile_expression(text)
    assert expression.names <= {"A", "B"}
    try:
        expression.evaluate({"A": "a", "B": 2})
    except ExpressionError:
        pass
