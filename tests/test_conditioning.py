"""Rules-language §5: every row of the verified conditioning table, plus the regex traps."""
from __future__ import annotations

import pytest

from crdsmini.conditioning import condition_value

# (input, expected) — the spec's verified table, row by row, left column then right.
SPEC_TABLE = [
    ("1", "1.0"),
    ("1.", "1.0"),
    ("0001", "1.0"),
    (1, "1.0"),
    (True, "T"),
    (".5", "0.5"),
    ("+3", "3.0"),
    ("-0", "-0.0"),
    ("1e3", "1000.0"),
    ("1.5e-3", "0.0015"),
    ("1e15", "1000000000000000.0"),
    ("1e16", "1e+16"),
    ("123456789012345678", "1.2345678901234568e+17"),
    ("3.14159265358979323846", "3.141592653589793"),
    (" 7 ", "7.0"),
    ("1 2", "1 2"),
    ("1_000", "1_000"),
    ("0x10", "0X10"),
    ("nan", "NAN"),
    ("inf", "INF"),
    ("1.0.0", "1.0.0"),
    ("any", "*"),
    (" any ", "*"),
    ("n/a", "N/A"),
    ("not_applicable", "N/A"),
    ("()", "N/A"),
    ("-2147483648", "N/A"),
    ("4294967295", "-1.0"),
    ("-999", "-999.0"),
    ("t", "T"),
    ("True", "T"),
    ("false", "F"),
    ("YES", "YES"),
    ("None", "NONE"),
    ("", ""),
    ("hrc", "HRC"),
    ("a|b", "A|B"),
    ("2013-11-05 15:21:34", "2013-11-05 15:21:34"),
    ("UNDEFINED", "UNDEFINED"),
    (None, "NONE"),
]

# Consequences of the spec's rules that the table does not list.
DERIVED = [
    ("not applicable", "N/A"),           # step 3 synonym with a space
    ("NOT APPLICABLE", "N/A"),
    ("N/A", "N/A"),
    (" n/a ", "N/A"),                    # stripped before matching
    ("-2147483648.0", "N/A"),
    ("-2147483648X0", "N/A"),            # '.' in the step-3 regex is a wildcard
    ("-2147483648.00", "N/A"),           # numeric first: becomes -2147483648.0
    ("-2147483648.0x", "-2147483648.0X"),  # ...but the step-3 regex is anchored
    ("4294967295.0", "-1.0"),
    ("4294967295.", "-1.0"),
    ("ANY", "*"),
    ("*", "*"),
    ("ANYTHING", "ANYTHING"),
    ("F", "F"),
    ("FALSE", "F"),
    (False, "F"),
    (0, "0.0"),
    (2.5, "2.5"),
    ("-.5", "-0.5"),
    ("+1.", "1.0"),
    ("1e", "1E"),                        # incomplete exponent: not a number
    (".", "."),
    ("-", "-"),
    ("+", "+"),
    ("1.e3", "1.E3"),                    # the regex has no 'digits-dot-exponent' branch
    ("\t12\n", "12.0"),
    ("f606w", "F606W"),
    ("(DETECTOR)", "(DETECTOR)"),
    ("٣", "٣"),                          # non-ASCII digits are text, not numbers
]


@pytest.mark.parametrize(("value", "expected"), SPEC_TABLE + DERIVED,
                         ids=[repr(v) for v, _ in SPEC_TABLE + DERIVED])
def test_condition_value(value: object, expected: str) -> None:
    assert condition_value(value) == expected


@pytest.mark.parametrize(("value", "_"), SPEC_TABLE + DERIVED,
                         ids=[repr(v) for v, _ in SPEC_TABLE + DERIVED])
def test_condition_value_is_idempotent(value: object, _: str) -> None:
    # The loader conditions keys and the lookup conditions values with the same function;
    # a second pass must not move a value to a different key.
    once = condition_value(value)
    assert condition_value(once) == once


@pytest.mark.parametrize("spelling", ["1", "1.0", "1.", "01", "+1", "1e0", " 1 "])
def test_number_spellings_collide(spelling: str) -> None:
    assert condition_value(spelling) == "1.0"
