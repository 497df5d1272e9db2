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
