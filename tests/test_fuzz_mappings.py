"""Property: any file either loads as a mapping or raises a crdsmini error — never another exception.

Inputs are random byte strings and random mutations (deleted, inserted and swapped
characters and tokens) of real mapping texts: the CRDS corpus mappings in
``/work/shared/conformance/mappings`` when that folder exists (read at run time, never copied
into the project) plus mappings written by ``mapping_factory`` that use every selector and key
form — and random well-formed rules over every selector family with odd keys.  Each input
is written to disk and loaded with ``load_mapping``; whatever loads is then asked for
references with a few headers, which must also fail only with crdsmini errors.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crdsmini import InstrumentContext, PipelineContext, ReferenceMapping, load_mapping
from crdsmini.errors import CrdsminiError
from mapping_factory import imap_text, make_tree, pmap_text, rmap_text

CORPUS = Path("/work/shared/conformance/mappings")
_CORPUS_LIMIT = 40_000  # characters; bigger files only slow each example down

FACTORY_RMAPS = [
    rmap_text("""Match({
    ('HRC', 'A|B', '# >3000 and <=4200 #') : UseAfter({
        '2000-01-01 00:00:00' : 'a.fits',
        '2005-01-01 00:00:00' : 'b.fits',
    }),
    ('(W.C)', 'NOT C', 'between 1 5') : UseAfter({ '1999-01-01 00:00:00' : 'N/A' }),
    ('{S|B}', 'N/A', '>=2.5e1') : UseAfter({ '1999-01-01 00:00:00' : 'OMIT' }),
    ('*', 'F?W|G*', 'ANY') : UseAfter({ '1999-01-01 00:00:00' : ('t1.fits', 't2.fits') }),
})""", parkey=(("DETECTOR", "AMP", "WAVE"), ("DATE-OBS", "TIME-OBS")), rmap_relevance='(DETECTOR != "SBC")',
              parkey_relevance={"amp": '(DETECTOR in ["HRC", "WFC"])'}, substitutions={"AMP": {"ALL": ("A", "B")}},
              extra_keys=("FLAG",), comment="every Match key form"),
    rmap_text("VersionAfter({ '0.0.2' : 'v002.fits', '1.2.3.4' : 'v1234.fits', '5.2' : 'v52.fits' })",
              parkey=(("VER",),), observatory="JWST", rmap_omit='(VER == "9")'),
    rmap_text("SelectVersion({ '<3.1' : 'lt31.fits', '<=5' : 'le5.fits', '= 6' : 'eq6.fits', 'default' : 'd.fits' })",
              parkey=(("SW",),), reffile_required="NO"),
    rmap_text("ClosestTime({ '2017-04-24 00:00:00' : 'a.fits', 'Feb 01 2018' : 'b.fits' })",
              parkey=(("DATE-OBS", "TIME-OBS"),)),
    rmap_text("GeometricallyNearest({ 1.2 : 'g120.fits', '1.5' : 'g150.fits', 5 : Match({ ('X',) : 'x.fits' }) })",
              parkey=(("WAVE",), ("A",)), observatory="HST", instrument="WFPC2", filekind="FLATFILE"),
    rmap_text("Bracket({ 1.2 : 'b120.fits', 1.5 : 'b150.fits', 5.0 : {'x' : 'bx.fits'} })", parkey=(("WAVE",),)),
    rmap_text("Match({ () : UseAfter({ '2000-01-01T12:00:00' : 'tsep.fits', '2000-01-01' : 'day.fits' }) })",
              parkey=((), ("DATE-OBS", "TIME-OBS")), merge_overlaps="0", hooks={"fallback_header": "none"}),
]
FACTORY_CONTEXTS = [
    imap_text({"dark": "tobs_inst_dark.rmap", "flat": "N/A", "mask": "OMIT"}),
    pmap_text({"INST": "tobs_inst.imap", "WFII": "tobs_inst.imap"}),
]

# Snippets worth inserting: brackets, quotes, comment and escape characters, selector names,
# special values, executable text, and odd numbers.
SNIPPETS = [
    "(", ")", "{", "}", "[", "]", ",", ":", "=", "'", '"', "'''", "#", "\\", "\n", "\r", "\t", " ", ";", "\x00",
    "None", "True", "False", "Match(", "UseAfter(", "Bracket({", "VersionAfter", "selector", "header", "comment",
    "__import__('os')", "lambda", "import os", "f'", "b'", "r'", "*", "|", "?", "N/A", "OMIT", "not ", "between ",
    ">", "<=", "1e309", "-", ".", "0x", "1j", "...", "\u00e9", "\U0001f600", "'parkey' : (),", "'parkey' : 'A',",
    "(('A',),)", "2000-01-01 00:00:00", "{'a': 1}", "[1, 2]",
]

# Quoted strings swapped in for quoted strings keep the syntax valid, so the damage reaches
# the selectors: odd key forms, bad dates and versions, special values.
STRING_VALUES = [
    "N/A", "*", "ANY", "OMIT", "", "|", "A|", "(", "(X", "([)", "{", "{X}", "#", "# >1 #", "#>1 AND <5#", ">", ">abc",
    ">=2.5e1", "between 5 1", "between 1", "between a b", "NOT", "NOT ", "not (", "10:20", "a:b", "F?W|G*", "[",
    "1.0E3", "nan", "inf", "-2147483648", "2000-01-01 00:00:00", "2000-13-45 99:99:99", "Jan 01 2000", "default",
    "<3", "<=", "= 6", "1.2.3.4", "abc", "1e309", "GENERIC", "UNDEFINED", "always", "(DET == 'A')", "(DET ==",
    "(True)", "True", "REFERENCE", "PIPELINE", "x.fits",
]

HEADER_VALUES = ["HRC", "WFC", "A", "X", "1.0", "5", "N/A", "*", "ANY", "UNDEFINED", "", "abc", "nan", "inf", "1e400",
                 "2000-01-01", "00:00:00", "2005-06-01 12:00:00", "NOT A", "(W.C)", "between 1 5", "1.2.3", "default"]

_TOKEN = re.compile(r"""'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|\w+|\s+|.""", re.S)


def _seed_texts() -> list[str]:
    texts = list(FACTORY_RMAPS) + list(FACTORY_CONTEXTS)
    if CORPUS.is_dir():
        for path in sorted(CORPUS.rglob("*.?map")):
            text = path.read_text(encoding="utf-8", errors="replace")
            if len(text) <= _CORPUS_LIMIT:
                texts.append(text)
    return texts


SEEDS = _seed_texts()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder holding a valid context tree, so names in fuzzed pmaps/imaps can resolve."""
    path = tmp_path_factory.mktemp("fuzz")
    make_tree(path, {"dark": "Match({ ('X',) : 'x.fits', ('N/A',) : 'na.fits' })",
                     "flat": ("UseAfter({ '2000-01-01 00:00:00' : 'f.fits' })", {"parkey": (("DATE-OBS", "TIME-OBS"),)})})
    return path


def _kind_of(text: str) -> str:
    mapping = re.search(r"'mapping'\s*:\s*'(\w+)'", text)
    return {"PIPELINE": ".pmap", "INSTRUMENT": ".imap"}.get(mapping.group(1).upper() if mapping else "", ".rmap")


def _exercise(mapping, values: list[str]) -> None:
    """Ask a loaded mapping for references; only crdsmini errors may escape."""
    if isinstance(mapping, ReferenceMapping):
        keys = list(mapping.required_parkeys)
        for shift in range(2):
            header = {key: values[(index + shift) % len(values)] for index, key in enumerate(keys)}
            mapping.get_best_ref(header)
            _try(mapping.select, header)
        mapping.get_best_ref({})
        mapping.reference_names()
    elif isinstance(mapping, (InstrumentContext, PipelineContext)):
        header = {"INSTRUME": "inst", "A": values[0], "DATE-OBS": "2001-01-01", "TIME-OBS": values[-1]}
        _try(mapping.get_best_references, header)
        _try(mapping.select_references, header, ["dark", "unknown"])
        _try(lambda: mapping.get_best_references(mapping.minimize_header(header)))
        mapping.reference_names()
        mapping.mapping_names()


def _try(function, *args) -> None:
    try:
        function(*args)
    except CrdsminiError:
        pass


# Engine bugs already recorded as strict xfail rows elsewhere.  The properties tolerate exactly
# these (type and message) so they keep looking for new ones; delete a line once its bug is fixed.
KNOWN_ENGINE_BUGS: list[tuple[type, str, str]] = []  # all recorded bugs are fixed; add new ones here


def _known_bug(error: BaseException) -> bool:
    return any(isinstance(error, kind) and re.search(pattern, str(error)) for kind, pattern, _ in KNOWN_ENGINE_BUGS)


def _load_and_exercise(path: Path, ignore_checksum: bool, values: list[str]) -> None:
    try:
        mapping = load_mapping(path, ignore_checksum=ignore_checksum)
        event(f"loaded: {mapping.kind}")
        _exercise(mapping, values)
    except CrdsminiError as error:  # only load errors get here: lookups trap their own
        assert str(error)  # every error says something
        event(f"load failed: {error.category}")
    except Exception as error:
        if not _known_bug(error):
            raise
        event(f"known engine bug: {type(error).__name__}")


ALL_EDITS = ("delete", "insert", "swap", "drop-token", "copy-token", "swap-tokens", "replace-token", "replace-string")


def _mutate(data, text: str, edits: tuple[str, ...] = ALL_EDITS) -> str:
    """Apply one to four random edits: characters or whole tokens deleted, inserted, swapped,
    or a quoted string replaced by another."""
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        operation = data.draw(st.sampled_from(edits), label="operation")
        if operation in ("delete", "insert", "swap"):
            if not text and operation != "insert":
                continue
            at = data.draw(st.integers(0, len(text)), label="at")
            if operation == "delete":
                text = text[:at] + text[at + data.draw(st.integers(1, 8), label="length"):]
            elif operation == "insert":
                snippet = data.draw(st.sampled_from(SNIPPETS) | st.text(max_size=6), label="snippet")
                text = text[:at] + snippet + text[at:]
            else:
                other = data.draw(st.integers(0, len(text) - 1), label="other")
                at = min(at, len(text) - 1)
                chars = list(text)
                chars[at], chars[other] = chars[other], chars[at]
                text = "".join(chars)
            continue
        tokens = _TOKEN.findall(text)
        if not tokens:
            continue
        index = data.draw(st.integers(0, len(tokens) - 1), label="token")
        if operation == "drop-token":
            del tokens[index]
        elif operation == "copy-token":
            tokens.insert(data.draw(st.integers(0, len(tokens)), label="to"), tokens[index])
        elif operation == "replace-string":
            strings = [i for i, token in enumerate(tokens) if token[:1] in "'\""]
            if not strings:
                continue
            index = data.draw(st.sampled_from(strings), label="string")
            tokens[index] = repr(data.draw(st.sampled_from(STRING_VALUES) | st.text(max_size=6), label="string value"))
        elif operation == "swap-tokens":
            other = data.draw(st.integers(0, len(tokens) - 1), label="other token")
            tokens[index], tokens[other] = tokens[other], tokens[index]
        else:
            tokens[index] = data.draw(st.sampled_from(SNIPPETS), label="replacement")
        text = "".join(tokens)
    return text


FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Mutated string literals such as '\d' make Python's own escape decoding warn, as it does for
# CRDS, which evaluates the same text; the warning is not what these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning",
                                        "ignore:invalid escape sequence:SyntaxWarning")


@settings(FUZZ, max_examples=300)
@given(content=st.binary(max_size=400), suffix=st.sampled_from([".rmap", ".imap", ".pmap", ".map"]))
def test_random_bytes_load_or_raise_crdsmini_errors(folder, content, suffix):
    path = folder / f"random{suffix}"
    path.write_bytes(content)
    _load_and_exercise(path, ignore_checksum=True, values=HEADER_VALUES)


@settings(FUZZ, max_examples=600)
@given(data=st.data(), seed=st.sampled_from(SEEDS), ignore_checksum=st.booleans(),
       values=st.lists(st.sampled_from(HEADER_VALUES), min_size=1, max_size=6))
def test_mutated_mappings_load_or_raise_crdsmini_errors(folder, data, seed, ignore_checksum, values):
    text = _mutate(data, seed)
    path = folder / f"mutated{_kind_of(seed)}"
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    _load_and_exercise(path, ignore_checksum=ignore_checksum, values=values)


@settings(FUZZ, max_examples=300)
@given(data=st.data(), seed=st.sampled_from(FACTORY_RMAPS),
       values=st.lists(st.sampled_from(HEADER_VALUES), min_size=1, max_size=6))
def test_mutated_rules_still_look_up_cleanly(folder, data, seed, values):
    # Only quoted strings of the selector are replaced: the syntax stays valid, so most inputs
    # load and the lookup code (not only the loader) meets the damaged rules.
    head, _, selector = seed.partition("selector = ")
    text = head + "selector = " + _mutate(data, selector, edits=("replace-string",))
    path = folder / "mutated_rules.rmap"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _load_and_exercise(path, ignore_checksum=True, values=values)


def test_seed_texts_load(folder):
    """The unmutated seeds are sound, so the mutations start from real, working mappings."""
    loaded = 0
    for index, text in enumerate(SEEDS):
        path = folder / f"seed{index}{_kind_of(text)}"
        path.write_text(text, encoding="utf-8")
        try:
            load_mapping(path, ignore_checksum=True)
            loaded += 1
        except CrdsminiError:
            pass  # corpus files built to be broken, or contexts naming files not present here
    assert loaded >= len(FACTORY_RMAPS)


# Deep nesting is the one input shape random edits never reach, so it is tried directly.
# Python's own parser refuses more than 200 nested brackets ("too many nested parentheses").
DEEP = [
    ("tuple", "(" * 1000 + "1" + ",)" * 1000),
    ("list", "[" * 1000 + "]" * 1000),
    ("dict", "{'a' : " * 1000 + "1" + "}" * 1000),
]


@pytest.mark.parametrize(("shape", "value"), DEEP)
def test_deeply_nested_values_raise_crdsmini_errors(folder, shape, value):
    text = rmap_text("Match({ ('X',) : 'x.fits' })", value="@@").replace("'@@'", value)
    path = folder / f"deep_{shape}.rmap"
    path.write_text(text, encoding="utf-8")
    try:
        load_mapping(path, ignore_checksum=True)
    except CrdsminiError:
        pass


# --------------------------------------------------------------------------- random well-formed rules

_SELECTORS = ["Match", "Match", "UseAfter", "VersionAfter", "SelectVersion", "ClosestTime", "GeometricallyNearest",
              "Bracket"]
_PARAMS = ["DETECTOR", "AMP", "WAVE", "DATE-OBS", "TIME-OBS", "SUBARRAY", "META.SUBARRAY.NAME"]
_SCALARS = (st.sampled_from(STRING_VALUES) | st.integers(-5, 5) | st.booleans() | st.none()
            | st.floats(allow_nan=False, allow_infinity=False, width=32))
_TERMINALS = st.sampled_from(["'a.fits'", "'b.fits'", "'N/A'", "'OMIT'", "('t1.fits', 't2.fits')", "{'x' : 'y.fits'}"])


@st.composite
def _rules(draw, depth=0):
    """Selector text over every family with odd keys, and the parkey levels it consumes."""
    selector = draw(st.sampled_from(_SELECTORS))
    names = tuple(draw(st.lists(st.sampled_from(_PARAMS), min_size=0 if selector == "Match" else 1, max_size=3,
                                unique=True)))
    entries, nested_levels = [], []
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.lists(_SCALARS, min_size=len(names), max_size=len(names)).map(tuple) if selector == "Match"
                   else _SCALARS)
        if depth < 2 and draw(st.booleans()):
            choice, levels = draw(_rules(depth + 1))
            nested_levels.append(levels)
        else:
            choice = draw(_TERMINALS)
        entries.append(f"{key!r} : {choice}")
    deeper = draw(st.sampled_from(nested_levels)) if nested_levels else []
    return f"{selector}({{ " + ", ".join(entries) + " })", [names] + deeper


@settings(FUZZ, max_examples=300)
@given(rules=_rules(), merge=st.sampled_from(["1", "0"]), observatory=st.sampled_from(["TOBS", "HST", "JWST"]),
       values=st.lists(st.sampled_from(HEADER_VALUES + STRING_VALUES), min_size=1, max_size=8))
def test_random_rules_load_or_raise_crdsmini_errors(folder, rules, merge, observatory, values):
    selector, parkey = rules
    path = folder / "random_rules.rmap"
    path.write_text(rmap_text(selector, parkey=tuple(parkey), observatory=observatory, merge_overlaps=merge),
                    encoding="utf-8")
    _load_and_exercise(path, ignore_checksum=True, values=values)
