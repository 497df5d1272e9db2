"""One number format for the whole dashboard (issue 11 item 4): dashboard.base.numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dashboard.base.numbers import MISSING, column_format, fmt, fmt_p, fmt_pct, hover, styled


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (0.00004321, "4.321e-05"),  # a slope per day: was "0.0000"
        (0.0001234, "0.0001234"),  # a slope variance: was "0.0001"
        (0.008123, "0.008123"),
        (1.23e-05, "1.23e-05"),
        (-1.23456e-07, "-1.235e-07"),
        (3e-300, "3e-300"),
        (0.5, "0.5"),
        (0.999996, "1"),
        (10.0, "10"),
        (251.4051, "251.4"),
        (-42.1749, "-42.17"),
        (1751.94, "1752"),  # the integer part is never rounded away
        (123456.7, "123457"),
        (2.5e7, "2.5e+07"),
        (-1.23456e12, "-1.235e+12"),
        (0.0, "0"),
        (-0.0, "0"),
        (np.float64(0.00731), "0.00731"),
        (np.float32(2.5), "2.5"),
    ],
)
def test_fmt_significant_digits(x, text):
    assert fmt(x) == text


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (0, "0"),
        (7, "7"),
        (-12, "-12"),
        (12345, "12,345"),
        (np.int64(180), "180"),
        (10**9, "1,000,000,000"),
    ],
)
def test_fmt_integers_in_full(x, text):
    assert fmt(x) == text


def test_fmt_missing_infinite_and_other_objects():
    for missing in (None, math.nan, np.nan, pd.NA, np.float64("nan")):
        assert fmt(missing) == MISSING
    assert fmt(math.inf) == "∞" and fmt(-math.inf) == "-∞"
    assert fmt("text") == "text"
    assert fmt(True) == "True"


def test_fmt_digits_and_sign():
    assert fmt(0.123456, 2) == "0.12"
    assert fmt(1751.94, 6) == "1751.94"
    assert fmt(3.14159, 1) == "3"
    assert fmt(0.5, 0) == "0.5"  # at least one digit
    assert fmt(12.3, sign=True) == "+12.3"
    assert fmt(-12.3, sign=True) == "-12.3"
    assert fmt(4.2e-6, sign=True) == "+4.2e-06"
    assert fmt(5, sign=True) == "+5"


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.0, "< 0.0001"),
        (3e-12, "< 0.0001"),
        (0.0000999, "< 0.0001"),
        (0.0001, "0.0001"),
        (0.000123456, "0.000123"),
        (0.045678, "0.0457"),
        (0.5, "0.5"),
        (1.0, "1"),
        (1.0000000002, "1"),
        (math.nan, MISSING),
        (None, MISSING),
    ],
)
def test_fmt_p(p, text):
    assert fmt_p(p) == text


def test_fmt_pct():
    assert fmt_pct(0.1342) == "13%"
    assert fmt_pct(0.0042) == "0.42%"
    assert fmt_pct(1.0) == "100%"
    assert fmt_pct(0.0) == "0%"
    assert fmt_pct(math.nan) == MISSING
    assert fmt_pct(0.1342, 3) == "13.4%"


def test_hover_and_column_formats():
    assert hover() == ".4~g" and hover(3) == ".3~g"
    assert column_format() == "%.4g" and column_format(6) == "%.6g"


def test_styled_shows_fmt_strings_and_keeps_the_values():
    frame = pd.DataFrame(
        {
            "term": ["(Intercept)", "Days:Age"],
            "estimate": [251.4051, 4.321e-05],
            "p": [1e-9, 0.0457],
            "n": [180, 18],
            "AIC": [1751.94, 1760.123],
        }
    )
    styler = styled(frame, {"p": "p", "n": "int", "AIC": 6})
    html = styler.to_string(delimiter="|")
    for text in ("251.4", "4.321e-05", "< 0.0001", "0.0457", "180", "1751.94", "1760.12"):
        assert text in html, text
    assert "0.0000" not in html
    pd.testing.assert_frame_equal(styler.data, frame)  # values untouched


def test_styled_default_rule_and_missing_cells():
    frame = pd.DataFrame({"a": [0.00001234, np.nan], "b": ["x", None]})
    html = styled(frame, 3).to_string(delimiter="|")
    assert "1.23e-05" in html and MISSING in html


def test_styled_falls_back_to_the_frame_when_too_large_or_not_unique():
    big = pd.DataFrame(np.zeros((20_001, 2)))
    assert styled(big) is big
    dup = pd.DataFrame([[1.0, 2.0]], columns=["a", "a"])
    assert styled(dup) is dup


def test_styled_integer_rule_keeps_fractions_and_missing():
    frame = pd.DataFrame({"Df": [np.nan, 1.0, 1.5, 12345.0]})
    text = styled(frame, {"Df": "int"}).to_string(delimiter="|")
    assert "|1|" in text.replace("\n", "|") and "1.5" in text and "12,345" in text
    assert MISSING in text
