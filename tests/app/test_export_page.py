"""Export page in AppTest: message without a fit; code, CSV and report buttons after one."""

from __future__ import annotations

from dashboard.state.session import Keys
from tests.app.conftest import texts


def _export(at):
    at.switch_page("pages/export.py").run()
    assert not at.exception
    return at


def test_without_a_fit_shows_a_message_and_a_link(app):
    at = _export(app)
    assert at.title[0].value == "Export"
    assert "Fit one on the Model page first" in texts(at.info)
    assert not at.get("download_button")


def test_after_a_fit(app):
    at = app.switch_page("pages/model.py").run()
    at.multiselect(key=Keys.MODEL_W + "subject_slopes").select("Days").run()
    at.button(key="model_fit").click().run()
    assert not at.exception
    at = _export(at)
    page = texts(at.markdown)
    assert "Reaction ~ Days + (Days | Subject)" in page and "sleepstudy.csv" in page
    codes = [c.value for c in at.code]
    assert any("fit_lmm('Reaction ~ Days + (Days | Subject)', data, reml=True)" in c for c in codes)
    assert any("m <- lmer(Reaction ~ 1 + Days + (1 + Days | Subject)" in c for c in codes)
    assert any("RANDOM INTERCEPT Days / SUBJECT=Subject TYPE=UN;" in c for c in codes)
    buttons = at.get("download_button")
    assert len(buttons) >= 1 + 3 + 4 + 1  # data, 3 codes, 4 tables, report
    assert all(b.proto.help for b in buttons), "every button explains itself"

    at.selectbox(key=Keys.INFER_W + "export_df").set_value("Kenward-Roger (slower)").run()
    assert not at.exception
    codes = [c.value for c in at.code]
    assert any('summary(m, ddf = "Kenward-Roger")' in c for c in codes)
    assert any("DDFM=KR;" in c for c in codes)
    assert at.session_state[Keys.INFER_SETTINGS]["df_method"] == "Kenward-Roger (slower)"


CHICK = "weight ~ ns(Time, 3) * Diet + (ns(Time, 2) | Chick)"


def test_spline_model(app):
    """Issue 13: the Export page of a spline model writes the learned knots in every language
    and lists them."""
    from dashboard.analysis.records import FitRecord
    from lmm_core import datasets, fit_lmm

    at = app.selectbox(key=Keys.W_EXAMPLE).select("chickweight").run()
    result = fit_lmm(CHICK, datasets.load_example("chickweight")[0])
    record = FitRecord(name="M1: curved growth", formula=CHICK, reml=True,
                       data_key="example:chickweight", data_name="chickweight", result=result,
                       seconds=0.3)  # fmt: skip
    at.session_state[Keys.FITS] = [record]
    at.session_state[Keys.ACTIVE_FIT] = record.name
    at = _export(at)
    assert not at.error
    assert CHICK in texts(at.markdown) and "chickweight.csv" in texts(at.markdown)
    python, r, sas = (c.value for c in at.code)
    ns3 = "ns(Time, knots = c(6, 14), Boundary.knots = c(0, 21))"
    assert f"    'weight ~ {ns3} * Diet'\n" in python
    assert "library(splines)" in r and f"    {ns3} +\n    Diet +\n    {ns3}:Diet +\n" in r
    assert "#   ns(Time, 3) in the app: knots 6, 14; boundary knots 0, 21" in r
    assert "PROC MIXED has no spline effect" in sas
    assert "RANDOM INTERCEPT ns_Time_2_1 ns_Time_2_2 / SUBJECT=Chick TYPE=UN;" in sas
    (bases,) = [d.value for d in at.dataframe if "Knots" in d.value.columns]
    assert list(bases["Term"]) == ["ns(Time, 3)", "ns(Time, 2)"]
    assert list(bases["Knots"]) == ["6, 14", "10"]
    assert "learned from the data" in texts(at.markdown)
    assert len(at.get("download_button")) >= 1 + 3 + 4 + 1
