"""Numbers shown by significant digits on the pages (issue 11 item 4).

sleepstudy with time in thousandths of a day (``T = 1000 Days``): the slope is 0.0105, its
variance 3.5e-05 and the patient-level SDs of the slope 0.0059 and below. Fixed decimals
showed ``0.0000`` for the variance and ``0.006`` before and after the visits on the
Prediction page; the pages must now show the values readably (what ``dashboard.base.numbers``
writes) while the tables keep full-precision values.
"""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa

from dashboard.analysis.records import FitRecord
from dashboard.base.numbers import fmt, fmt_pct
from dashboard.io.roles import Roles
from dashboard.state.session import Keys
from lmm_core import datasets, fit_lmm

FORMULA = "Reaction ~ T + (T | Subject)"


@cache
def _data_and_fit():
    data = datasets.load_example("sleepstudy")[0].copy()
    data["T"] = data["Days"] * 1000
    return data, fit_lmm(FORMULA, data)


def _inject(at):
    data, result = _data_and_fit()
    roles = Roles(subject="Subject", time="T", outcome="Reaction")
    at.session_state[Keys.DATASET] = data
    at.session_state[Keys.DATA_KEY] = "upload:sleep_T"
    at.session_state[Keys.DATA_NAME] = "sleep_T"
    at.session_state[Keys.DATA_SOURCE] = "upload"
    at.session_state[Keys.ROLES] = roles.to_dict()
    record = FitRecord(
        name="M1", formula=FORMULA, reml=True, data_key="upload:sleep_T", data_name="sleep_T",
        result=result, seconds=0.0,
    )  # fmt: skip
    at.session_state[Keys.FITS] = [record]
    at.session_state[Keys.ACTIVE_FIT] = "M1"
    return at


def shown(element) -> pd.DataFrame:
    """The strings a st.dataframe shows (its Styler's display values), else the values."""
    arrow = element.proto.arrow_data
    if not arrow.styler.display_values:
        return element.value.astype(str)
    with pa.ipc.open_stream(io.BytesIO(arrow.styler.display_values)) as reader:
        return reader.read_pandas()


def _table_with(at, column: str):
    (element,) = [d for d in at.dataframe if column in d.value.columns]
    return element


def test_model_page_shows_a_tiny_slope_variance_readably(app):
    at = _inject(app)
    at.switch_page("pages/model.py").run()
    assert not at.exception
    _, result = _data_and_fit()
    varcomp = _table_with(at, "Variance")
    values, text = varcomp.value, shown(varcomp)
    slope = int(np.flatnonzero(values["Variance"].to_numpy() < 1e-3)[0])
    assert values["Variance"].iloc[slope] == result.varcorr_table()["vcov"].iloc[1]
    assert text["Variance"].iloc[slope] == fmt(values["Variance"].iloc[slope])  # 3.507e-05
    assert "e-05" in text["Variance"].iloc[slope]
    fixef = _table_with(at, "Estimate")
    estimates = shown(fixef)["Estimate"].tolist()
    assert fmt(result.fixef["T"]) in estimates  # 0.01047, not 0.0105 or 0.0000
    for table in (varcomp, fixef):
        cells = shown(table).to_numpy().ravel()
        assert not any(str(c) in ("0.0000", "0.000", "-0.0000") for c in cells)


def test_prediction_page_sds_before_and_after_the_visits_differ(app):
    at = _inject(app)
    at.switch_page("pages/prediction.py").run()
    assert not at.exception
    ranef = _table_with(at, "SD before any visit")
    values, text = ranef.value, shown(ranef)
    row = values.index.get_loc("T")
    before, after = text["SD before any visit"].iloc[row], text["SD given the visits"].iloc[row]
    assert before == fmt(values["SD before any visit"].iloc[row])
    assert after == fmt(values["SD given the visits"].iloc[row])
    assert before != after  # was "0.006" and "0.006"
    removed = values["uncertainty removed"].iloc[row]
    assert text["uncertainty removed"].iloc[row] == fmt_pct(removed)
