"""Data page in AppTest (issue 11): dates as the time, the time guess, outcomes that are
binary or counts, and the example picker and banner in step with the active dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.state.session import Keys
from tests.app.conftest import texts, upload
from tests.fixtures.clinic_bp import clinic_csv

GOOD_CSV = b"patient,week,sbp\n" + b"\n".join(
    f"P{p},{w},{120 + p + w * 0.5:.1f}".encode() for p in range(8) for w in (0, 4, 8)
)


def _dates_key(app, what: str) -> str:
    return f"{Keys.W_DATES}{what}_{app.session_state[Keys.DATA_KEY]}"


def test_after_the_teach_study_the_picker_and_banner_follow_and_any_example_loads(app):
    upload(app, "clinic.csv", GOOD_CSV)
    assert "Loaded **clinic.csv**" in texts(app.success)
    app.switch_page("pages/teach.py").run()
    app.button(key=Keys.TEACH_W + "use_study").click().run()
    assert not app.exception
    app.switch_page("pages/data.py").run()
    assert not app.exception
    name = app.session_state[Keys.DATA_NAME]
    assert name.startswith("teach_study_seed")
    assert f"**{name}**" in texts(app.markdown)
    assert app.selectbox(key=Keys.W_EXAMPLE).value is None  # not "sleepstudy"
    assert "Loaded" not in texts(app.success)  # no banner about the earlier upload
    app.selectbox(key=Keys.W_EXAMPLE).select("sleepstudy").run()
    assert not app.exception
    assert app.session_state[Keys.DATA_NAME] == "sleepstudy"
    assert app.selectbox(key=Keys.W_EXAMPLE).value == "sleepstudy"


def test_after_an_upload_the_active_example_can_be_picked_again(app):
    upload(app, "clinic.csv", GOOD_CSV)
    assert app.selectbox(key=Keys.W_EXAMPLE).value is None
    app.selectbox(key=Keys.W_EXAMPLE).select("sleepstudy").run()
    assert app.session_state[Keys.DATA_NAME] == "sleepstudy"
    assert "Loaded" not in texts(app.success)


def test_visit_dates_become_the_time_in_one_click(app):
    upload(app, "clinic bp.csv", clinic_csv())
    assert not app.exception
    assert app.session_state[Keys.DATA_NAME] == "clinic bp.csv"  # loaded, not held back
    roles = app.session_state[Keys.ROLES]
    assert (roles["subject"], roles["time"]) == ("Patient ID", "Visit date")  # not Age
    assert "Age" in roles["covariates"]
    assert "holds dates (ISO dates)" in texts(app.error)
    assert "not numeric" not in texts(app.error)
    assert app.selectbox(key=_dates_key(app, "column")).value == "Visit date"
    app.radio(key=_dates_key(app, "unit")).set_value("weeks").run()
    app.button(key=_dates_key(app, "apply")).click().run()
    assert not app.exception
    name = "Visit date (weeks since first visit)"
    data = app.session_state[Keys.DATASET]
    assert list(data.columns)[:3] == ["Patient ID", "Visit date", name]
    assert data[name].dtype == float
    first = data.groupby("Patient ID")[name].min()
    assert (first == 0).all() and data[name].max() <= 105
    assert app.session_state[Keys.ROLES]["time"] == name
    assert app.selectbox(key=f"role_time_{app.session_state[Keys.DATA_KEY]}").value == name
    assert f"Added '{name}'" in texts(app.success).replace("\\", "")
    assert "holds dates" not in texts(app.error)
    assert not app.error  # the report is clean: the Explore link is offered
    app.switch_page("pages/model.py").run()
    assert not app.exception


def test_time_since_a_randomisation_date_column(app):
    frame = pd.read_csv(__import__("io").BytesIO(clinic_csv()), sep=";", decimal=",")
    frame["Randomised"] = frame.groupby("Patient ID")["Visit date"].transform("min")
    upload(app, "rand.csv", frame.to_csv(index=False).encode())
    assert app.session_state[Keys.ROLES]["time"] == "Visit date"  # not the constant date
    app.selectbox(key=_dates_key(app, "origin")).select("Randomised").run()
    app.radio(key=_dates_key(app, "unit")).set_value("days").run()
    app.button(key=_dates_key(app, "apply")).click().run()
    assert not app.exception
    assert app.session_state[Keys.ROLES]["time"] == "Visit date (days since Randomised)"


def test_a_time_constant_within_subjects_is_flagged(app):
    upload(app, "clinic.csv", clinic_csv())
    key = f"role_time_{app.session_state[Keys.DATA_KEY]}"
    app.selectbox(key=key).select("Age").run()
    assert not app.exception
    warning = texts(app.warning)
    assert "The time 'Age' never changes within a subject" in warning
    assert "choose 'Visit date' as the time and convert it" in warning
    assert app.selectbox(key=_dates_key(app, "column")).value == "Visit date"  # offered


def _binary_csv() -> bytes:
    rng = np.random.default_rng(3)
    rows = [f"S{s},{t},{int(rng.random() < 0.3 + 0.05 * t)}" for s in range(30) for t in range(5)]
    return ("id,week,relapse\n" + "\n".join(rows)).encode()


def test_a_binary_outcome_is_named_on_the_data_and_model_pages(app):
    upload(app, "relapse.csv", _binary_csv())
    assert not app.exception
    assert app.session_state[Keys.ROLES]["outcome"] == "relapse"
    assert "only two values (0 and 1)" in texts(app.warning)
    app.switch_page("pages/model.py").run()
    assert not app.exception
    # the Model page offers the logistic mixed model (GLMM) for it, by default
    assert app.selectbox(key=Keys.MODEL_W + "family").value == "binomial"
    assert "only two values (0 and 1)" not in texts(app.warning)  # the LMM note is for LMMs
    app.selectbox(key=Keys.MODEL_W + "family").select("gaussian").run()
    assert "The outcome 'relapse' has only two values (0 and 1)" in texts(app.warning)


def test_a_continuous_outcome_gets_no_such_note(app):
    app.switch_page("pages/model.py").run()
    shown = texts(app.warning) + texts(app.info)
    assert "two values" not in shown and "counts" not in shown


def test_the_model_page_follows_the_outcome_chosen_in_its_builder(app):
    frame = pd.read_csv(__import__("io").BytesIO(_binary_csv()))
    frame["score"] = np.linspace(10.0, 20.0, len(frame)).round(3)
    upload(app, "two outcomes.csv", frame.to_csv(index=False).encode())
    assert app.session_state[Keys.ROLES]["outcome"] == "score"
    app.switch_page("pages/model.py").run()
    assert "two values" not in texts(app.warning)
    app.selectbox(key=Keys.MODEL_W + "outcome").select("relapse").run()
    assert not app.exception
    assert app.selectbox(key=Keys.MODEL_W + "family").value == "binomial"  # follows the outcome
