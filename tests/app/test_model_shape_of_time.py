"""Model page in AppTest, issue 13: the shape of time in the builder (population curve and the
subject's own curve), the knots shown, and the summary of a fitted spline model."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.state.session import Keys
from lmm_core import datasets, fit_lmm
from tests.app.conftest import texts

W = Keys.MODEL_W
CHICKS = "weight ~ ns(Time, 3) + Diet + ns(Time, 3):Diet + (ns(Time, 2) | Chick)"


def _model(app, example: str):
    if example != "sleepstudy":
        app.selectbox(key=Keys.W_EXAMPLE).select(example).run()
    at = app.switch_page("pages/model.py").run()
    assert not at.exception
    return at


def _select(at, name: str, value: str):
    at.selectbox(key=W + name).select(value).run()
    assert not at.exception
    return at


def _keys(at) -> set[str]:
    return {s.key for s in at.selectbox}


def _fixed_table(at):
    (frame,) = [d.value for d in at.dataframe if "t value" in d.value.columns]
    return frame


def test_spline_shape_chosen_in_the_builder_fitted_and_summarised(app):
    at = _model(app, "chickweight")
    assert at.code[0].value == "weight ~ Time + Diet + (1 | Chick)"  # a straight line at first
    shape = at.selectbox(key=W + "shape")
    assert shape.value == "straight line"
    assert shape.options[:3] == ["straight line", "quadratic", "natural spline (2 df)"]
    assert shape.options[-1] == "natural spline (10 df)"  # 12 distinct days, capped at 10
    assert W + "time_scale" in _keys(at)

    _select(at, "shape", "natural spline (3 df)")
    assert at.code[0].value == "weight ~ ns(Time, 3) + Diet + (1 | Chick)"
    captions = texts(at.caption)
    assert "knots at 6 and 14 days" in captions  # the engine's quantile knots, in days
    assert "before 0 days and after 21 days" in captions
    assert W + "time_scale" not in _keys(at)  # a curve has no unit: no rescaling offered
    assert "No time scale with a curve" in captions

    at.multiselect(key=W + "interactions").select("Time x Diet").run()
    at.multiselect(key=W + "subject_slopes").select("Time").run()
    assert at.code[0].value == (
        "weight ~ ns(Time, 3) + Diet + ns(Time, 3):Diet + (Time | Chick)"
    )  # the interaction carries the shape; each chick's own line is straight at first
    _select(at, "subject_shape", "natural spline (2 df)")
    assert at.code[0].value == CHICKS
    assert "knot at 10 days" in texts(at.caption)
    assert not at.warning

    at.button(key="model_fit").click().run()
    assert not at.exception
    (record,) = at.session_state[Keys.FITS]
    assert record.name == "M1: natural spline (3 df) + random curve (2 df) + Diet + Time x Diet"
    data, _ = datasets.load_example("chickweight")
    ref = fit_lmm(CHICKS, data)
    assert ref.design.bases["ns(Time, 3)"].knots == (6.0, 14.0)
    assert ref.design.bases["ns(Time, 2)"].knots == (10.0,)
    fixed = _fixed_table(at)
    assert {"ns(Time, 3)1", "ns(Time, 3)2", "ns(Time, 3)3", "ns(Time, 3)3:Diet4"} <= set(
        fixed.index
    )
    np.testing.assert_allclose(fixed["Estimate"], ref.fixef, rtol=1e-6)
    captions = texts(at.caption)
    assert "**Curved time:** the rows of `ns(Time, 3)` (and of their interactions)" in captions
    assert "**Trajectories** page" in captions and "F test" in captions
    assert "**Random curves:** the SDs of `ns(Time, 2)`" in captions


def test_subject_curve_more_flexible_than_the_population_is_said(app):
    at = _model(app, "sleepstudy")
    at.multiselect(key=W + "subject_slopes").select("Days").run()
    options = at.selectbox(key=W + "subject_shape").options
    assert options[-1] == "natural spline (9 df)"  # 10 visits per subject: at most 9 df
    _select(at, "subject_shape", "quadratic")
    assert at.code[0].value == "Reaction ~ Days + (poly(Days, 2) | Subject)"
    warning = texts(at.warning).replace("\\", "")  # shown as markdown, escaped
    assert "own curve is a quadratic, but the population curve is a straight line" in warning
    _select(at, "shape", "quadratic")
    assert at.code[0].value == "Reaction ~ poly(Days, 2) + (poly(Days, 2) | Subject)"
    assert "own curve" not in texts(at.warning)
    assert "parabola" in texts(at.caption)
    _select(at, "subject_shape", "straight line")
    assert at.code[0].value == "Reaction ~ poly(Days, 2) + (Days | Subject)"
    assert not at.warning
    at.button(key="model_fit").click().run()
    assert not at.exception
    assert at.session_state[Keys.FITS][0].name == "M1: quadratic + random slope"


def test_subject_curve_bounded_by_the_visits(app):
    """Orthodont: 4 visits at 4 ages per child: at most 3 df for either curve."""
    at = _model(app, "orthodont")
    assert at.selectbox(key=W + "shape").options == [
        "straight line", "quadratic", "natural spline (2 df)", "natural spline (3 df)"
    ]  # fmt: skip
    at.multiselect(key=W + "subject_slopes").select("age").run()
    assert at.selectbox(key=W + "subject_shape").options[-1] == "natural spline (3 df)"
    # the shape is kept across page switches, as every builder choice
    _select(at, "shape", "natural spline (2 df)")
    at.switch_page("pages/explore.py").run()
    at = at.switch_page("pages/model.py").run()
    assert at.selectbox(key=W + "shape").value == "natural spline (2 df)"
    assert at.code[0].value.startswith("distance ~ ns(age, 2) + Sex")


@pytest.mark.parametrize(
    ("example", "formula", "name"),
    [
        ("sleepstudy", "Reaction ~ poly(Days, 2) + (poly(Days, 2) | Subject)",
         "M1: quadratic + random quadratic"),
        ("chickweight", "weight ~ ns(Time, 3) * Diet + (ns(Time, 2) | Chick)",
         "M1: natural spline (3 df) + random curve (2 df) + Diet + Time x Diet"),
    ],
)  # fmt: skip
def test_typed_curved_models_render_their_summary(app, example, formula, name):
    at = _model(app, example)
    at.text_area(key=W + "typed").input(formula)
    at.button(key="model_fit").click().run()
    assert not at.exception and not at.error
    assert [r.name for r in at.session_state[Keys.FITS]] == [name]
    data, _ = datasets.load_example(example)
    ref = fit_lmm(formula, data)
    np.testing.assert_allclose(_fixed_table(at)["Estimate"], ref.fixef, rtol=1e-6)
    captions = texts(at.caption)
    assert "**Curved time:**" in captions and "**Random curves:**" in captions
    assert ("(and of their interactions)" in captions) == ("*" in formula)
    # the builder's spelling of the same model is that fit, not a second one
    if example == "chickweight":
        at.text_area(key=W + "typed").input(CHICKS)
        at.button(key="model_fit").click().run()
        assert len(at.session_state[Keys.FITS]) == 1
        assert "already fitted" in texts(at.info)
