"""dashboard.base.markup: user text shown through Markdown stays text (no image, link or HTML).

The checks read the produced Markdown with CommonMark's code-span rule (a run of n backticks
opens a span that only a run of exactly n backticks closes) and require that nothing
outside the spans can start an image, a link or HTML.
"""

from __future__ import annotations

import re

import pytest

from dashboard.base.markup import code_span, escape_message, escape_text

HOSTILE = [
    "y ~ `![x](http://198.51.100.1/x.png)` + (1 | g)",
    "y ~ `a` + `b``c` + x",
    "`leading and trailing`",
    "<img src=x onerror=alert(1)>",
    "[click](http://198.51.100.1/) **bold** :red[red] $x^2$",
    "plain y ~ time + (1 | patient)",
    "```",
    "",
]


def split_code_spans(md: str) -> tuple[list[str], str]:
    """CommonMark inline code spans of ``md`` (contents) and the text outside them."""
    spans, outside, i = [], [], 0
    while i < len(md):
        if md[i] == "\\" and i + 1 < len(md):  # an escaped character is text
            outside.append(md[i : i + 2])
            i += 2
            continue
        if md[i] != "`":
            outside.append(md[i])
            i += 1
            continue
        run = re.match(r"`+", md[i:]).group()
        closer = re.compile(r"(?<!`)" + run + r"(?!`)")
        m = closer.search(md, i + len(run))
        if m is None:  # no closer: the run is literal text
            outside.append(run)
            i += len(run)
            continue
        content = md[i + len(run) : m.start()].replace("\n", " ")
        if len(content) > 2 and content[0] == content[-1] == " " and content.strip():
            content = content[1:-1]
        spans.append(content)
        i = m.end()
    return spans, "".join(outside)


def active_outside(text: str) -> list[str]:
    """Unescaped characters that could start Markdown/HTML in text outside code spans."""
    unescaped = re.sub(r"\\.", "", text)
    return re.findall(r"!\[|\]\(|<|\[|\$|:\w+\[", unescaped)


@pytest.mark.parametrize("text", HOSTILE)
def test_code_span_holds_any_text_as_one_span(text):
    spans, outside = split_code_spans(code_span(text))
    assert spans == [text if text.strip() else " "]
    assert outside == ""


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_text_leaves_nothing_active(text):
    spans, outside = split_code_spans(escape_text(text))
    assert spans == [] and not active_outside(outside)


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_message_keeps_code_spans_and_nothing_else_is_active(text):
    message = f"Unknown column `{text.replace('`', '')}` (columns: {text}, Days)."
    spans, outside = split_code_spans(escape_message(message))
    assert not active_outside(outside), outside
    if text.replace("`", "").strip():
        assert spans[0] == text.replace("`", "")


def test_ordinary_messages_read_the_same():
    message = "Unknown column `Dayz` at position 11; did you mean `Days`?"
    assert escape_message(message) == message
    assert escape_message("Fitted M1: random slope") == "Fitted M1: random slope"
    assert code_span("Reaction ~ Days + (Days | Subject)") == "`Reaction ~ Days + (Days | Subject)`"


def test_the_checker_sees_an_image_outside_a_span():
    naive = "`y ~ `![x](http://198.51.100.1/x.png)` + 1`"  # f"`{formula}`": broken
    _, outside = split_code_spans(naive)
    assert active_outside(outside)


def test_names_are_shown_without_formula_backticks():
    """Issue 11 item 5: backticks belong in formulas; tables and figures show the names."""
    import numpy as np
    import pandas as pd

    from dashboard.base.markup import plain_cells, plain_estimates, plain_index, plain_name
    from lmm_core import datasets, fit_lmm
    from lmm_core.predict.per_group import shrinkage_estimates

    assert plain_name("`Visit day`:SexM") == "Visit day:SexM"
    assert plain_name(np.nan) is np.nan and plain_name("(Intercept)") == "(Intercept)"
    frame = pd.DataFrame({"term": ["`a b`", "c"], "v": [1, 2]}, index=["`x y`", "z"])
    assert list(plain_index(frame).index) == ["x y", "z"]
    assert list(plain_cells(frame, ["term", "missing"])["term"]) == ["a b", "c"]
    assert list(frame["term"]) == ["`a b`", "c"]  # a copy: the input is unchanged

    data = datasets.load_example("sleepstudy")[0].rename(columns={"Days": "Visit day"})
    res = fit_lmm("Reaction ~ `Visit day` + (`Visit day` | Subject)", data)
    est = shrinkage_estimates(res, "Subject")
    assert est.columns == ("(Intercept)", "`Visit day`")
    shown = plain_estimates(est)
    assert shown.columns == ("(Intercept)", "Visit day")
    assert "own:Visit day" in shown.table.columns and "mixed:Visit day" in shown.table.columns
    np.testing.assert_array_equal(shown.table.to_numpy(), est.table.to_numpy())
    plain = shrinkage_estimates(
        fit_lmm("Reaction ~ Days + (Days | Subject)", datasets.load_example("sleepstudy")[0]),
        "Subject",
    )
    assert plain_estimates(plain) is plain  # nothing to change
