"""AppTest of the Tour page: Next through every step and Back to the start, the fits kept
when leaving, the presenter view, and data without a time role."""

from __future__ import annotations

from dashboard.state.session import Keys
from tests.app.conftest import figures_on, texts

PAGE = "pages/tour.py"


def _tour(at):
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _title(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("## "))


def test_next_through_all_steps_and_back_to_the_start(app):
    at = _tour(app)
    titles = []
    for k in range(8):
        titles.append(_title(at))
        assert f"Step {k + 1} of 8" in texts(at.caption)
        assert len(figures_on(at)) + len(at.dataframe) == 1  # one chart per screen
        assert not at.warning, texts(at.warning)
        if k < 7:
            at.button(key=Keys.W_TOUR_NEXT).click().run()
            assert not at.exception, at.exception
    assert at.button(key=Keys.W_TOUR_NEXT).disabled
    assert len(set(titles)) == 8
    assert titles[0].startswith("## The raw data") and titles[-1] == "## What to report"
    body = " ".join(m.value for m in at.markdown)
    assert "Reaction ~ Days + (Days | Subject)" in body and "95% CI" in body
    for k in range(7, 0, -1):
        at.button(key=Keys.W_TOUR_BACK).click().run()
        assert _title(at) == titles[k - 1]
    assert at.button(key=Keys.W_TOUR_BACK).disabled


def test_ols_step_shows_both_standard_errors(app):
    at = _tour(app)
    at.button(key=Keys.W_TOUR_NEXT).click().run()
    body = " ".join(m.value for m in at.markdown)
    assert "**1.24**" in body and "**1.55**" in body  # lm and lmer (random slope)
    fig = figures_on(at)[0]
    ols = [t for t in fig["data"] if t.get("name") == "OLS: one line"]
    assert len(ols) == 1
    x, y = (ols[0]["x"], ols[0]["y"])
    slope = (y[1] - y[0]) / (x[1] - x[0])
    assert abs(slope - 10.4673) / 10.4673 < 1e-4


def test_leaving_keeps_the_fits_and_opens_the_step_page(app):
    at = _tour(app)
    for _ in range(3):
        at.button(key=Keys.W_TOUR_NEXT).click().run()
    at.button(key=Keys.W_TOUR_LEAVE).click().run()
    assert not at.exception, at.exception
    fits = at.session_state[Keys.FITS]
    formulas = {r.formula for r in fits}
    assert formulas == {"Reaction ~ Days + (1 | Subject)", "Reaction ~ Days + (Days | Subject)"}
    active = next(r for r in fits if r.name == at.session_state[Keys.ACTIVE_FIT])
    assert active.formula == "Reaction ~ Days + (Days | Subject)"
    assert "Trajectories" in [t.value for t in at.title]
    at = _tour(at)  # back on the tour: same step, no second fit
    assert _title(at).startswith("## A random slope")
    assert len(at.session_state[Keys.FITS]) == 2


def test_presenter_view_hides_the_controls_and_escape_button_leaves_it(app):
    at = _tour(app)
    at.toggle(key=Keys.W_TOUR_PRESENT).set_value(True).run()
    assert at.session_state[Keys.TOUR_PRESENT]
    assert not at.toggle  # the toggle itself is hidden in the view
    assert any("stSidebar" in h.proto.body for h in at.get("html"))
    fig = figures_on(at)[0]
    assert fig["layout"]["height"] == 500 and fig["layout"]["font"]["size"] == 18
    at.button(key=Keys.W_TOUR_END_PRESENT).click().run()
    assert not at.session_state[Keys.TOUR_PRESENT]
    assert at.toggle(key=Keys.W_TOUR_PRESENT).value is False


def test_data_without_time_skip_the_time_steps(app):
    app.session_state[Keys.ROLES] = {**app.session_state[Keys.ROLES], "time": None}
    at = _tour(app)
    captions = texts(at.caption)
    assert "Step 1 of 4" in captions and "needs a time column" in captions
    titles = []
    for k in range(4):
        titles.append(_title(at))
        assert not at.exception and not at.warning
        if k < 3:
            at.button(key=Keys.W_TOUR_NEXT).click().run()
    assert titles[0].startswith("## One line for everyone") and titles[-1] == "## What to report"
    assert {r.formula for r in at.session_state[Keys.FITS]} == {"Reaction ~ 1 + (1 | Subject)"}


def test_without_a_subject_the_tour_points_to_the_data_page(app):
    app.session_state[Keys.ROLES] = {**app.session_state[Keys.ROLES], "subject": None}
    at = _tour(app)
    assert "The tour needs a subject column" in texts(at.info)
