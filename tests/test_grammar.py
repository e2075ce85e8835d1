"""Rules-language §1–2: the mapping file grammar, header fields, duplicates and checksums.

Accepted literal forms load to the Python values they spell; every rejected construct —
anything executable included — is a MappingError naming the file, the line and the column.
Mapping texts are written to ``tmp_path`` and loaded with ``load_mapping``.
"""
from __future__ import annotations

import re

import pytest

from crdsmini import load_mapping
from crdsmini.checksum import compute_checksum
from crdsmini.errors import ChecksumError, MappingError, MappingSyntaxError
from crdsmini.syntax import parse_mapping_text
from mapping_factory import SHA1_PLACEHOLDER, make_rmap, rmap_text, write_mapping

SELECTOR = "Match({ ('X',) : 'x.fits' })"
MARK = "'@@HERE@@'"


def rmap_with_value(construct: str) -> str:
    """rmap text whose header field 'value' is ``construct`` written verbatim."""
    return rmap_text(SELECTOR, value="@@HERE@@").replace(MARK, construct)


def line_of(text: str, fragment: str) -> int:
    return text[:text.index(fragment)].count("\n") + 1


# --------------------------------------------------------------------------- §1.2 accepted literal forms

# (literal as written in the file, the value it loads as)
LITERALS = [
    ("'x'", "x"),
    ('"x"', "x"),
    ("'''x'''", "x"),
    ('"""x"""', "x"),
    ("'''a\nb'''", "a\nb"),                      # triple-quoted strings span lines
    (r"'a\tb\\c\'d'", "a\tb\\c'd"),              # Python escapes
    (r"'\x41\u0042'", "AB"),
    (r"r'a\tb'", "a\\tb"),                       # r/u/b prefixes are legal Python
    ("u'x'", "x"),
    ("b'x'", b"x"),
    ("'a' 'b'", "ab"),                           # adjacent literals concatenate, as in Python
    ("''", ""),
    ("'#not a comment'", "#not a comment"),
    ("1", 1),
    ("-1", -1),
    ("- 1", -1),
    ("1.5", 1.5),
    ("-1.5e3", -1500.0),
    ("1e3", 1000.0),
    (".5", 0.5),
    ("1.", 1.0),
    ("0x10", 16),
    ("1_000", 1000),
    ("True", True),
    ("False", False),
    ("None", None),
    ("(1, 2)", (1, 2)),
    ("(1,)", (1,)),
    ("()", ()),
    ("(1)", 1),                                  # parentheses alone make no tuple
    ("((('a',),),)", ((("a",),),)),
    ("[1, 2]", [1, 2]),
    ("[]", []),
    ("{'a' : {'b' : ('c', [1, {'d' : None}])}}", {"a": {"b": ("c", [1, {"d": None}])}}),
    ("{}", {}),
    ("(1, 2,)", (1, 2)),                         # trailing commas everywhere
    ("[1, 2,]", [1, 2]),
    ("{'a' : 1,}", {"a": 1}),
    ("(\n  'a',  # a comment inside brackets\n  'b',\n)", ("a", "b")),
    ("(None, 1)", (None, 1)),
    ("(None,)", (None,)),
    ("(1, None)", (1, None)),
    ("[None]", [None]),
    ("['a', None]", ["a", None]),
]


@pytest.mark.parametrize(("literal", "value"), LITERALS)
def test_accepted_literal_forms(tmp_path, literal, value):
    path = write_mapping(tmp_path, "lit.rmap", rmap_with_value(literal))
    assert load_mapping(path).header["value"] == value


# Whole-file forms that must load: (description, text)
ACCEPTED_FILES = [
    ("selector first", "selector = " + SELECTOR + "\n" + rmap_text(SELECTOR).split("selector =")[0]),
    ("comment block", rmap_text(SELECTOR, comment="free text\nwith 'quotes'")),
    ("stray expression", rmap_text(SELECTOR) + "'a stray string'\n42\n"),
    ("semicolons", rmap_text(SELECTOR).replace("\nselector", "; selector", 1).replace("}\n;", "};")),
    ("line continuation", rmap_text(SELECTOR).replace("selector = ", "selector = \\\n    ")),
    ("trailing comma in call", rmap_text("Match({ ('X',) : 'x.fits', },)")),
    ("comments everywhere", "# leading\n" + rmap_text(SELECTOR).replace("{\n", "{  # trailing\n")),
    ("CRLF newlines", rmap_text(SELECTOR).replace("\n", "\r\n")),
    ("no final newline", rmap_text(SELECTOR).rstrip("\n")),
]


@pytest.mark.parametrize(("description", "text"), ACCEPTED_FILES)
def test_accepted_file_forms(tmp_path, description, text):
    path = tmp_path / "form.rmap"
    path.write_bytes(text.encode("utf-8"))
    assert load_mapping(path, ignore_checksum=True).get_best_ref({"A": "X"}) == "x.fits"


def test_all_seven_selectors_are_callable(tmp_path):
    for name, key in (("Match", "('X',)"), ("UseAfter", "'2000-01-01 00:00:00'"), ("VersionAfter", "'1.0'"),
                      ("SelectVersion", "'default'"), ("ClosestTime", "'2000-01-01 00:00:00'"),
                      ("GeometricallyNearest", "1.0"), ("Bracket", "1.0")):
        make_rmap(tmp_path, f"{name}({{ {key} : 'x.fits' }})")


# --------------------------------------------------------------------------- §1.1 statements

# (description, text, what is loaded)
LAST_ASSIGNMENT_WINS = [
    ("two selectors", rmap_text(SELECTOR) + "selector = Match({ ('X',) : 'second.fits' })\n", "second.fits"),
    ("two headers", rmap_text(SELECTOR) + rmap_text(SELECTOR, name="second.rmap").split("selector =")[0],
     "second.rmap"),
]


@pytest.mark.parametrize(("description", "text", "loaded"), LAST_ASSIGNMENT_WINS)
def test_last_assignment_wins(tmp_path, description, text, loaded):
    rmap = load_mapping(write_mapping(tmp_path, "twice.rmap", text), ignore_checksum=True)
    assert loaded in (rmap.get_best_ref({"A": "X"}), rmap.header["name"])


# (description, text, message fragment) — structure errors of §1.1 and §2.
STRUCTURE_ERRORS = [
    ("other target", rmap_text(SELECTOR) + "foo = 1\n",
     "Only define 'header' or 'selector' or 'comment' sections at line 13"),
    ("no selector", rmap_text(SELECTOR).split("selector =")[0], "name 'selector' is not defined"),
    ("no header", "selector = " + SELECTOR + "\n", "name 'header' is not defined"),
    ("string selector", rmap_text("'a.fits'"), "selector must be a dict or a Selector."),
    ("plain dict in rmap", rmap_text("{ ('X',) : 'x.fits' }"), "rmap"),
    ("header not a dict", "header = 'x'\nselector = " + SELECTOR + "\n", "header must be a dict"),
    ("comment not a string", rmap_text(SELECTOR) + "comment = 1\n", "comment must be a string"),
]


@pytest.mark.parametrize(("description", "text", "fragment"), STRUCTURE_ERRORS)
def test_structure_errors(tmp_path, description, text, fragment):
    with pytest.raises(MappingError) as caught:
        load_mapping(write_mapping(tmp_path, "bad.rmap", text), ignore_checksum=True)
    assert str(caught.value).startswith("Can't load file bad.rmap : ")
    assert fragment in str(caught.value)
    assert caught.value.category == "invalid-mapping"


# --------------------------------------------------------------------------- §1.3 rejected constructs

# (description, text, fragment of the message, line of the error or None = where the construct is)
VALUE_CONSTRUCTS = [
    ("set literal", "{'a', 'b'}", "set", None),
    ("arithmetic", "'a' + 'b'", "+", None),
    ("call of a non-selector", "len('a')",
     "Selector 'len' is not one of supported Selectors: ['Bracket', 'ClosestTime', 'GeometricallyNearest', "
     "'Match', 'SelectVersion', 'UseAfter', 'VersionAfter']", None),
    ("__import__", "__import__('os')", "Selector '__import__' is not one of supported Selectors", None),
    ("__import__ call chain", "__import__('os').system('true')", ("__import__", ".system"), None),
    ("open() in a header value", "open('/etc/passwd')", "Selector 'open' is not one of supported Selectors", None),
    ("eval() in a header value", "eval('1')", "Selector 'eval' is not one of supported Selectors", None),
    ("attribute", "'a'.upper", ".upper", None),
    ("subscript", "'abc'[0]", "[", None),
    ("lambda", "lambda: 1", "lambda", None),
    ("f-string", "f'x{1}'", "f-string", None),
    ("f-string, upper case prefix", "F'x'", "f-string", None),
    ("unknown name", "bar", "name 'bar' is not defined", None),
    ("unknown selector", "Foo({})", "Selector 'Foo' is not one of supported Selectors", None),
    ("comparison", "1 < 2", "<", None),
    ("conditional", "'a' if True else 'b'", "if", None),
    ("not", "not x", ("not", "'x'"), None),
    ("comprehension", "[x for x in 'ab']", "for", None),
    ("walrus", "(x := 1)", "x", None),
    ("complex number", "1j", "complex", None),
    ("ellipsis", "...", "...", None),
    ("bad token $", "$", "$", None),
    ("bad token backtick", "`x`", "`", None),
    ("unclosed string", "'abc", "'abc", None),
    ("keyword argument", "Match(x={})", "=", None),
    ("star argument", "Match(*x)", "*", None),
    ("two arguments", "Match({}, {})", "exactly one dict", None),
    ("no argument", "Match()", "exactly one dict", None),
    ("non-dict argument", "Match('x')", "exactly one dict", None),
    ("mixed bytes and str", "b'x' 'y'", "bytes", None),
]
# Malformed escapes are Python syntax errors; they must surface as crdsmini errors too.
for construct in (r"'\uaca'", r"'\x4'", r"'\N{NO SUCH NAME}'", r"'\U0011ffff'", "b'\u00e9'"):
    VALUE_CONSTRUCTS.append(pytest.param(
        f"bad escape {construct}", construct, "", None))


@pytest.mark.parametrize(("description", "construct", "fragment", "line"), VALUE_CONSTRUCTS)
def test_rejected_value_constructs(tmp_path, description, construct, fragment, line):
    text = rmap_with_value(construct)
    with pytest.raises(MappingSyntaxError) as caught:
        load_mapping(write_mapping(tmp_path, "bad.rmap", text))
    message = str(caught.value)
    expected_line = line or line_of(text, construct)
    assert message.startswith("Can't load file bad.rmap : ")
    assert any(f in message for f in ((fragment,) if isinstance(fragment, str) else fragment)), message
    assert re.search(rf"\bline {expected_line}\b", message), message
    assert re.search(r"\bcolumn \d+", message), message
    assert (caught.value.file, caught.value.line) == ("bad.rmap", expected_line)


# Statements other than assignments to header/selector/comment.  (description, statement lines)
STATEMENTS = [
    ("import", "import os"),
    ("from import", "from os import system"),
    ("for loop", "for x in y:\n    pass"),
    ("while loop", "while True:\n    pass"),
    ("if", "if True:\n    header = {}"),
    ("with", "with open('x') as f:\n    pass"),
    ("try", "try:\n    pass\nexcept Exception:\n    pass"),
    ("def", "def f():\n    return 1"),
    ("class", "class C:\n    pass"),
    ("decorator", "@property\ndef f():\n    pass"),
    ("global", "global x"),
    ("del", "del x"),
    ("augmented assignment", "header += {}"),
    ("assert", "assert False"),
    ("raise", "raise SystemExit"),
    ("return", "return 1"),
    ("yield", "yield 1"),
    ("call statement", "__import__('os').system('true')"),
    ("exec", "exec('import os')"),
    ("chained assignment", "header = selector = {}"),
    ("annotated assignment", "x: int = 1"),
    ("tuple assignment", "a, b = 1, 2"),
]


@pytest.mark.parametrize(("description", "statement"), STATEMENTS)
def test_rejected_statements(tmp_path, description, statement):
    text = statement + "\n" + rmap_text(SELECTOR)
    with pytest.raises(MappingError) as caught:
        load_mapping(write_mapping(tmp_path, "bad.rmap", text))
    message = str(caught.value)
    assert message.startswith("Can't load file bad.rmap : ")
    lines = statement.count("\n") + 1
    found = re.search(r"\bline (\d+)\b", message)
    assert found and 1 <= int(found.group(1)) <= lines, message
    if isinstance(caught.value, MappingSyntaxError):
        assert re.search(r"\bcolumn \d+", message), message


# Brackets left open: the error is reported where the file ends (or where the next statement starts).
UNCLOSED = [
    ("unclosed selector dict", rmap_text(SELECTOR).replace("'x.fits' })", "'x.fits'\n")),
    ("unclosed header dict", "header = {\n    'name' : 'x.rmap',\n"),
    ("unclosed call", "header = {}\nselector = Match({ ('X',) : 'x.fits' }\n"),
    ("unclosed tuple", rmap_text("Match({ ('X', : 'x.fits' })")),
    ("unclosed triple-quoted string", rmap_text(SELECTOR) + 'comment = """\nnever closed\n'),
    ("stray closer", rmap_text(SELECTOR) + "}\n"),
]


@pytest.mark.parametrize(("description", "text"), UNCLOSED)
def test_unclosed_brackets(tmp_path, description, text):
    with pytest.raises(MappingSyntaxError) as caught:
        load_mapping(write_mapping(tmp_path, "bad.rmap", text))
    message = str(caught.value)
    assert message.startswith("Can't load file bad.rmap : syntax error at line ")
    assert re.search(r"\bline \d+, column \d+", message), message
    assert 1 <= caught.value.line <= text.count("\n") + 1


def test_parse_mapping_text_reports_position():
    text = "header = {\n    'a' : 1,\n    'b' : @,\n}\nselector = {}\n"
    with pytest.raises(MappingSyntaxError) as caught:
        parse_mapping_text(text, "pos.rmap")
    error = caught.value
    assert (error.file, error.line, error.column) == ("pos.rmap", 3, 11)
    assert error.category == "invalid-mapping"
    assert error.location() == "pos.rmap:3:11"


# An unhashable dict key is Python's TypeError in CRDS; here a MappingError naming the file and line.
UNHASHABLE_KEYS = [
    ("list key in the header", rmap_text(SELECTOR).replace("header = {\n", "header = {\n    ['a'] : 1,\n")),
    ("list key in a Match", rmap_text("Match({ ['X'] : 'x.fits' })")),
]
UNHASHABLE_KEYS += [pytest.param(description, text) for description, text in [
        ("dict key in a UseAfter", rmap_text("UseAfter({ {} : 'x.fits' })")),
        ("dict key in a Match", rmap_text("Match({ {'a' : 1} : 'x.fits' })")),
        ("dict key in the header", rmap_text(SELECTOR).replace("header = {\n", "header = {\n    {} : 1,\n")),
    ]]


@pytest.mark.parametrize(("description", "text"), UNHASHABLE_KEYS)
def test_unhashable_keys(tmp_path, description, text):
    with pytest.raises(MappingError) as caught:
        load_mapping(write_mapping(tmp_path, "bad.rmap", text), ignore_checksum=True)
    message = str(caught.value)
    assert "bad.rmap" in message and not re.search(r"\bline 0\b", message), message


# --------------------------------------------------------------------------- §1.4 duplicates

def test_duplicate_header_key_last_wins(tmp_path):
    text = rmap_text(SELECTOR, name="first.rmap").replace("    'observatory'",
                                                          "    'name' : 'second.rmap',\n    'observatory'")
    assert load_mapping(write_mapping(tmp_path, "dup.rmap", text)).header["name"] == "second.rmap"


# (selector, header value of A, answer) — Python dict semantics, then §6.1 step 5.
DUPLICATE_KEYS = [
    ("Match({ ('X',) : 'first.fits', ('X',) : 'second.fits' })", "X", "second.fits"),
    ("Match({ 1 : 'one.fits', True : 't.fits' })", "1.0", "t.fits"),          # 1 == True: one entry, key 1
    ("Match({ 1 : 'one.fits', 1.0 : 'float.fits' })", "1.0", "float.fits"),
    ("Match({ (1,) : 'one.fits', (True,) : 't.fits' })", "1.0", "t.fits"),
    ("Match({ (True,) : 't.fits', (1,) : 'one.fits' })", "T", "one.fits"),  # the first key object is kept
]


@pytest.mark.parametrize(("selector", "value", "answer"), DUPLICATE_KEYS)
def test_duplicate_keys_last_value_wins(tmp_path, selector, value, answer):
    rmap = make_rmap(tmp_path, selector)
    assert len(rmap.selector.rows) == 1
    assert rmap.get_best_ref({"A": value}) == answer


def test_keys_equal_after_conditioning_are_an_error(tmp_path):
    with pytest.raises(MappingError) as caught:
        make_rmap(tmp_path, "Match({ ('HRC',) : 'a.fits', ('hrc',) : 'b.fits' })")
    assert "Key ('HRC',) appears more than once " in str(caught.value)


# --------------------------------------------------------------------------- §1.5 checksum

def test_checksum_verified(tmp_path):
    path = write_mapping(tmp_path, "sum.rmap", rmap_text(SELECTOR, name="sum.rmap"))
    assert load_mapping(path).get_best_ref({"A": "X"}) == "x.fits"


# (description, edit of the correctly summed text, message or None when it still verifies)
CHECKSUM_EDITS = [
    ("changed file name", lambda t: t.replace("'x.fits'", "'y.fits'"), "sha1sum mismatch in 'sum.rmap'"),
    ("added blank line", lambda t: t + "\n", "sha1sum mismatch in 'sum.rmap'"),
    ("no sha1sum", lambda t: "\n".join(l for l in t.split("\n") if "sha1sum" not in l),
     "sha1sum is missing in 'sum.rmap'"),
    ("CRLF copy", lambda t: t.replace("\n", "\r\n"), None),
    ("edit on the sha1sum line", lambda t: t.replace("'sha1sum' :", "'sha1sum' :  "), None),
    ("another line mentioning sha1sum", lambda t: t + "# sha1sum of nothing\n", None),
]


@pytest.mark.parametrize(("description", "edit", "message"), CHECKSUM_EDITS)
def test_checksum_edits(tmp_path, description, edit, message):
    text = write_mapping(tmp_path, "sum.rmap", rmap_text(SELECTOR, name="sum.rmap")).read_text()
    path = tmp_path / "sum.rmap"
    path.write_bytes(edit(text).encode("utf-8"))
    if message is None:
        load_mapping(path)
    else:
        with pytest.raises(ChecksumError) as caught:
            load_mapping(path)
        assert caught.value.message == message
        assert caught.value.category == "checksum-error"
    assert load_mapping(path, ignore_checksum=True).name == "sum.rmap"


def test_header_ignore_checksum_has_no_effect(tmp_path):
    text = rmap_text(SELECTOR, ignore_checksum=True).replace(SHA1_PLACEHOLDER, "f" * 40)
    with pytest.raises(ChecksumError):
        load_mapping(write_mapping(tmp_path, "x.rmap", text))


def test_checksum_skips_sha1sum_lines():
    assert compute_checksum("a\n'sha1sum' : 'x'\nb\n") == compute_checksum("a\nb\n")


# --------------------------------------------------------------------------- §1.6 header case folding

# (header value as written, value as read)
FOLDING = [
    ("DARKFILE", "darkfile"),
    ("ALWAYS", "always"),
    ('(DEADCORR != "OMIT")', '(DEADCORR != "OMIT")'),
    ("(A) and (B)", "(A) and (B)"),            # starts with ( and ends with ): kept
    ("(A", "(a"),
    ("A)", "a)"),
    (("DETECTOR",), ("DETECTOR",)),            # non-strings untouched
    (True, True),
]


@pytest.mark.parametrize(("written", "read"), FOLDING)
def test_header_string_values_fold_case(tmp_path, written, read):
    assert make_rmap(tmp_path, SELECTOR, field=written).header_value("field") == read


def test_filekind_and_instrument_read_lower_case(tmp_path):
    rmap = make_rmap(tmp_path, SELECTOR, instrument="ACS", filekind="DARKFILE")
    assert (rmap.instrument, rmap.filekind) == ("acs", "darkfile")


# --------------------------------------------------------------------------- §2 required header fields

# (kind, header key removed, message after the prefix)
MISSING_HEADER = [
    ("rmap", "derived_from", "Required header key 'derived_from' is missing."),
    ("rmap", "mapping", "Required header key 'mapping' is missing."),
    ("rmap", "name", "Required header key 'name' is missing."),
    ("rmap", "observatory", "Required header key 'observatory' is missing."),
    ("rmap", "parkey", "'parkey'"),
    ("rmap", "filekind", "Required header key 'filekind' is missing."),
    ("rmap", "instrument", "Required header key 'instrument' is missing."),
]


@pytest.mark.parametrize(("kind", "key", "message"), MISSING_HEADER)
def test_missing_header_keys(tmp_path, kind, key, message):
    text = "\n".join(line for line in rmap_text(SELECTOR).split("\n") if not line.startswith(f"    '{key}'"))
    with pytest.raises(MappingError) as caught:
        load_mapping(write_mapping(tmp_path, "h.rmap", text), ignore_checksum=True)
    assert str(caught.value) == f"Can't load file h.rmap : {message}"


# (parkey as written, message fragment or None when it loads) — §2.1.
PARKEY_FORMS = [
    ((("A",),), None),
    ([["A"]], None),
    ((("A",), ("B",)), None),                                           # more levels than nesting
    (("A", ("B",)), "parameters should be a list or tuple of header keys"),
    ("A", "parameters should be a list or tuple of header keys"),
    ((), "tuple index out of range"),
    ((("A", None),), "parameter None is not a header keyword name"),          # found by the fuzz test
    ((("A", 3),), "parameter 3 is not a header keyword name"),
]


@pytest.mark.parametrize(("parkey", "fragment"), PARKEY_FORMS)
def test_parkey_forms(tmp_path, parkey, fragment):
    if fragment is None:
        assert make_rmap(tmp_path, SELECTOR, parkey=parkey).get_best_ref({"A": "X"}) == "x.fits"
    else:
        with pytest.raises(MappingError) as caught:
            make_rmap(tmp_path, SELECTOR, parkey=parkey)
        assert fragment in str(caught.value)


# The mapping class comes from the extension; other extensions use the header 'mapping'.
# (file name, header 'mapping', loads as kind or None = error)
EXTENSIONS = [
    ("a.rmap", "REFERENCE", "rmap"),
    ("a.RMAP", "REFERENCE", "rmap"),
    ("a.txt", "REFERENCE", "rmap"),
    ("a.rmap", "PIPELINE", "rmap"),          # the extension decides
    ("a.txt", "SOMETHING", None),
]


@pytest.mark.parametrize(("filename", "mapping", "kind"), EXTENSIONS)
def test_mapping_kind(tmp_path, filename, mapping, kind):
    text = rmap_text(SELECTOR).replace("'REFERENCE'", repr(mapping))
    path = write_mapping(tmp_path, filename, text)
    if kind is None:
        with pytest.raises(MappingError):
            load_mapping(path)
    else:
        assert load_mapping(path).kind == kind


@pytest.mark.parametrize(("extra_keys", "fragment"), [
    (("FLAG",), None),
    ("FLAG", "extra_keys should be a list or tuple of header keys"),   # not four keys F, L, A, G
    (("FLAG", None), "parameter None is not a header keyword name"),
])
def test_extra_keys_forms(tmp_path, extra_keys, fragment):
    if fragment is None:
        rmap = make_rmap(tmp_path, SELECTOR, parkey=(("A",),), extra_keys=extra_keys)
        assert rmap.required_parkeys[-1] == "FLAG" and rmap.get_best_ref({"A": "X"}) == "x.fits"
    else:
        with pytest.raises(MappingError) as caught:
            make_rmap(tmp_path, SELECTOR, parkey=(("A",),), extra_keys=extra_keys)
        assert fragment in str(caught.value) and caught.value.file
