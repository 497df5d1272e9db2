"""Model-level bad input through the Model page (AppTest): typos, hostile and huge formulas,
models the data cannot support.

Every case starts from a fitted ``M1`` on sleepstudy and checks: no exception box, a clear
message naming the offending token, ``M1`` kept and still the active model. Hostile
formulas must never run code: each one tries to create a marker file (absolute path in a
temporary folder) that must not exist afterwards. The time of each refused formula
(button click to page drawn) is printed and loosely bounded: "fast, no hang".
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from dashboard.state import cached
from dashboard.state.session import Keys
from lmm_core.model import optimize
from tests.app.conftest import ROOT, texts, upload

W = Keys.MODEL_W
M1 = "M1: random slope"
FIRST = "Reaction ~ Days + (Days | Subject)"
TIMINGS: dict[str, float] = {}


def _names(at) -> list[str]:
    return [r.name for r in at.session_state[Keys.FITS]]


def _fit_typed(at, formula: str):
    at.text_area(key=W + "typed").input(formula)
    start = time.perf_counter()
    at.button(key="model_fit").click().run()
    seconds = time.perf_counter() - start
    TIMINGS[formula[:70]] = round(seconds, 3)
    assert not at.exception, [e.value for e in at.exception]
    return at, seconds


@pytest.fixture
def fitted(app):
    """The Model page with M1 (random slope on sleepstudy) fitted and active."""
    at = app.switch_page("pages/model.py").run()
    at, _ = _fit_typed(at, FIRST)
    assert _names(at) == [M1]
    return at


def _kept(at) -> None:
    """The earlier fit is kept, still active, and its summary is still shown."""
    assert _names(at) == [M1]
    assert at.session_state[Keys.ACTIVE_FIT] == M1
    assert not at.session_state[Keys.JOBS]
    assert at.subheader[-1].value == f"3. Summary of {M1}"


def _error(at) -> str:
    found = texts(at.error)
    assert found, "no error message on the page"
    return found


# --------------------------------------------------------------------------- typos
TYPOS = [  # formula, what the message must contain (the offending token, a hint)
    ("Reaction ~ Days + (Days | Subjct)", ["`Subjct`", "did you mean `Subject`"]),
    ("Reaction ~ Dayz + (1 | Subject)", ["`Dayz`", "did you mean `Days`"]),
    ("Reaction ~ Days + (1 | Patient)", ["`Patient`", "columns: Reaction, Days, Subject"]),
    ("Reaction ~ Days + (Days | Subject", ["Unbalanced parentheses", "`(`", "never closed"]),
    ("Reaction ~ Days + Days | Subject)", ["Unbalanced parentheses", "`)`", "no matching"]),
    ("Reaction ~ log(Days + (1 | Subject)", ["`log(`", "never closed"]),
    ("Reaction + Days + (Days | Subject)", ["has no `~`"]),
    ("Reaction Days + (Days | Subject)", ["`Reaction`", "`Days`", "forget a `+`"]),
    ("Reaction ~ Days + (Days | )", ["something on each side of `|`"]),
    ("Reaction ~ ~ Days", ["`~`"]),
    ("Reaction ~ Days + (0 | Subject)", ["nothing to estimate on the left of `|`"]),
    ("Reaction ~ factor(Days) + us(factor(Days) | Subject)", ["must be a column name"]),
    ("", None),  # empty box: the builder's formula is fitted instead (no error)
]


@pytest.mark.parametrize(("formula", "expected"), TYPOS, ids=[t[0] or "empty" for t in TYPOS])
def test_formula_typo_is_named_and_earlier_fit_kept(fitted, formula, expected):
    at, seconds = _fit_typed(fitted, formula)
    if expected is None:
        assert _names(at) == [M1, "M2: random intercept"]
        return
    message = _error(at)
    for part in expected:
        assert part in message, message
    _kept(at)
    assert seconds < 10, seconds


# --------------------------------------------------------------------------- hostile
HOSTILE = [  # formula template ({m} = marker path), token the message must name
    ("__import__('os').system('touch {m}')", "`'`"),
    ('Reaction ~ I(__import__("os").system("touch {m}"))', '`"`'),
    ("Reaction ~ I(__import__(os).system(touch)) + (1 | Subject)", "`__import__`"),
    ("Reaction ~ open({m}) + (1 | Subject)", "`open`"),
    ("Reaction ~ open('{m}', 'w') + (1 | Subject)", "`'`"),
    ("Reaction ~ `__import__('os').system('touch {m}')` + (1 | Subject)", "`__import__("),
    ("Reaction ~ Days + (1 | `{m}`)", "{m}"),
    ("Reaction ~ lambda x: x + (1 | Subject)", "`lambda`"),
    ("Reaction ~ (lambda: open(m))() + (1 | Subject)", "`open`"),
    ("Reaction ~ Days.__class__.__subclasses__ + (1 | Subject)", "`Days.__class__"),
    ("Reaction ~ os.system(touch) + (1 | Subject)", "`os.system`"),
    ("Reaction ~ eval(Days) + (1 | Subject)", "`eval`"),
    ("Reaction ~ exec(Days) + (1 | Subject)", "`exec`"),
    ("Reaction ~ Days + (1 | Subject); import os", "`;`"),
    ("Reaction ~ Days[0] + (1 | Subject)", "`[`"),
    ("Reaction ~ {{1: 2}} + (1 | Subject)", "`{{`"),
    ("Reaction ~ f(x=1) + (1 | Subject)", "`f`"),
    ("Reaction ~ Days + (x=1 | Subject)", "`=`"),
    ("Reaction ~ ns(Days, x=__import__) + (1 | Subject)", "`x`"),
    ("Reaction ~ ns(Days, df=open('{m}')) + (1 | Subject)", "`'`"),
    ("Reaction ~ ns(Days, df=system(1)) + (1 | Subject)", "`system`"),
]


@pytest.mark.parametrize(("template", "token"), HOSTILE, ids=[h[0][:40] for h in HOSTILE])
def test_hostile_formula_runs_nothing(fitted, tmp_path, template, token):
    marker = tmp_path / "MARKER"
    formula = template.format(m=marker)
    at, seconds = _fit_typed(fitted, formula)
    assert not marker.exists(), f"{formula} created the marker file"
    message = _error(at)
    assert token.format(m=marker) in message, message
    assert "could not be" in message
    _kept(at)
    assert list(tmp_path.iterdir()) == []
    assert seconds < 10, seconds


def test_markdown_in_a_formula_stays_text(fitted):
    """A backticked name holding Markdown is shown as code: no image, no link is rendered."""
    formula = "Reaction ~ `![x](http://198.51.100.1/x.png)` + `a` + (1 | Subject)"
    at, _ = _fit_typed(fitted, formula)
    message = _error(at)
    # the engine names the column in a code span; the span is closed by its own fence
    assert "`![x](http://198.51.100.1/x.png)`" in message
    outside_code = message.replace("`![x](http://198.51.100.1/x.png)`", "")
    assert "](" not in outside_code, message
    _kept(at)


# --------------------------------------------------------------------------- huge
def _terms(n: int) -> str:
    return "Reaction ~ " + " + ".join(f"x{i}" for i in range(n)) + " + (1 | Subject)"


HUGE = {
    "5000 terms": (_terms(5000), "characters long; the limit is 10,000"),
    "100 kB name": ("Reaction ~ Days + " + "a" * 100_000, "characters long; the limit is 10,000"),
    "5000 nested parens": (
        "Reaction ~ " + "(" * 5000 + "Days" + ")" * 5000,
        "levels deep; the limit is 100",
    ),
    "crossing to 2^26 terms": (
        "Reaction ~ (" + " + ".join(f"v{i}" for i in range(26)) + ")^26 + (1 | Subject)",
        "expands to more than 1000 terms",
    ),
}


@pytest.mark.parametrize("case", list(HUGE))
def test_huge_formula_is_refused_fast(fitted, case):
    formula, expected = HUGE[case]
    at, seconds = _fit_typed(fitted, formula)
    print(f"huge formula {case} ({len(formula):,} characters): refused in {seconds:.2f} s")
    assert expected in _error(at)
    caret = [c.value for c in at.code if c.value.endswith("^")]
    assert caret and all(len(c) < 300 for c in caret), "the caret shows a window, not 100 kB"
    _kept(at)
    assert seconds < 10, seconds


def test_hundreds_of_aliased_terms_fit_quickly(fitted):
    """600 collinear terms (under the length limit): the rank check drops 599 of them in
    about a second (it took minutes with one QR per dropped column)."""
    formula = "Reaction ~ " + " + ".join(f"I(Days + {i})" for i in range(600)) + " + (1 | Subject)"
    assert len(formula) < 10_000
    at, seconds = _fit_typed(fitted, formula)
    print(f"600 aliased terms: fitted in {seconds:.2f} s")
    assert _names(at)[0] == M1 and len(_names(at)) == 2
    assert _names(at)[1].startswith("M2: random intercept without Days + I(Days + 0)")
    assert _names(at)[1].endswith("more terms") and len(_names(at)[1]) < 90  # a short name
    notes = texts(at.info)
    assert "`I(Days + 599)`" in notes and "dropped from the model" in notes, notes[-500:]
    assert seconds < 30, seconds


# --------------------------------------------------------------------------- not estimable
NOT_ESTIMABLE = [  # formula, phrases of the plain-words explanation
    (
        "Reaction ~ Days + (factor(Days) | Subject)",
        ["180 random effects", "for 180 observations", "Use fewer random slopes"],
    ),
    (
        "Reaction ~ Days + (Days | Subject:Days)",
        ["has 180 levels for 180 observations", "repeated measurements"],
    ),
    ("Reaction ~ factor(Days) * Subject + (1 | Subject)", ["exact function of the fixed"]),
]


@pytest.mark.parametrize(("formula", "expected"), NOT_ESTIMABLE, ids=[n[0] for n in NOT_ESTIMABLE])
def test_model_the_data_cannot_support_is_explained(fitted, formula, expected):
    at, _ = _fit_typed(fitted, formula)
    message = _error(at)
    assert "could not be fitted" in message and "Earlier fits are kept" in message, message
    for part in expected:
        assert part in message, message
    assert "Traceback" not in message and "Error:" not in message
    _kept(at)


def test_singular_nonsense_is_fitted_with_a_plain_warning(fitted):
    at, _ = _fit_typed(fitted, "Reaction ~ Days + (1 | Days)")
    assert _names(at) == [M1, "M2: random intercept"]
    warnings = texts(at.warning)
    assert "singular fit" in warnings and "estimated as zero" in warnings, warnings
    assert "Consider" in warnings
    assert at.session_state[Keys.FITS][-1].result.is_singular


def test_random_slope_with_too_few_levels(app):
    """3 subjects x 2 visits: a random slope needs 6 random effects for 6 rows (refused); the
    random intercept is fitted (singular, explained)."""
    noise = [0.31, -0.52, 0.77, 0.12, -0.94, 0.45]
    data = pd.DataFrame(
        {"patient": list("aabbcc"), "week": [0, 1] * 3, "score": [10 + e for e in noise]}
    )
    at = upload(app, "few_levels.csv", data.to_csv(index=False).encode())
    assert not at.exception
    assert at.session_state[Keys.DATA_NAME] == "few_levels.csv", texts(at.error)
    at = at.switch_page("pages/model.py").run()
    at, _ = _fit_typed(at, "score ~ week + (1 | patient)")
    assert len(_names(at)) == 1, texts(at.error) + texts(at.info)
    (first,) = _names(at)
    at, _ = _fit_typed(at, "score ~ week + (week | patient)")
    message = _error(at)
    assert "6 random effects" in message and "for 6 observations" in message, message
    assert "Use fewer random slopes" in message
    assert _names(at) == [first] and at.session_state[Keys.ACTIVE_FIT] == first


def test_a_fit_that_does_not_converge_is_explained(fitted, monkeypatch):
    """The optimizer's convergence check fails (forced): the fit is kept with a warning."""

    def not_flat(counter, phi, fmin, lower):
        return np.ones_like(phi), None, np.inf

    monkeypatch.setattr(optimize, "_newton_step", not_flat)
    cached.fit_model.clear()
    try:
        at, _ = _fit_typed(fitted, "Reaction ~ 1 + Days + (Days || Subject)")
    finally:
        cached.fit_model.clear()
    record = at.session_state[Keys.FITS][-1]
    assert not record.result.converged
    assert "could not confirm that it found the best fit" in texts(at.warning)
    assert "criterion is not flat" in texts(at.info)


def test_timings_reported():
    """Prints the click-to-page times of this module's formulas (run with -s to see them)
    and writes them to ``artifacts/model_bad_input_timings.json``."""
    if TIMINGS:
        slowest = sorted(TIMINGS.items(), key=lambda kv: -kv[1])[:8]
        print("slowest formula round trips (s):", slowest)
        out = ROOT / "artifacts" / "model_bad_input_timings.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(TIMINGS, indent=1))
