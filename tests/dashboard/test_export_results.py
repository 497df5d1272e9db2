"""Result tables for CSV download: contents match the fit, CSV round-trips."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from dashboard.export.results import (
    blup_table,
    fixed_effects_table,
    predictions_table,
    to_csv_bytes,
    variance_components_table,
)
from lmm_core import datasets, fit_lmm


@pytest.fixture(scope="module")
def fit():
    data, _ = datasets.load_example("sleepstudy")
    data = data.copy()
    data.loc[[3, 50], "Reaction"] = np.nan  # two rows left out of the fit
    return fit_lmm("Reaction ~ Days + (Days | Subject)", data), data


def _roundtrip(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(to_csv_bytes(frame)))


def test_fixed_effects_with_df_p_and_ci(fit):
    result, _ = fit
    table = fixed_effects_table(result, "satterthwaite")
    assert list(table["term"]) == ["(Intercept)", "Days"]
    for col in ("estimate", "std_error", "df", "t_value", "p_value", "ci_lower", "ci_upper"):
        assert table[col].notna().all(), col
    np.testing.assert_allclose(table["estimate"], result.beta)
    assert (table["ci_lower"] < table["estimate"]).all()
    back = _roundtrip(table)
    np.testing.assert_array_equal(back["estimate"].to_numpy(), result.beta)  # full precision
    assert set(back["df_method"]) == {"satterthwaite"}


def test_variance_components(fit):
    result, _ = fit
    table = variance_components_table(result)
    assert list(table["kind"]) == ["variance", "variance", "correlation", "residual"]
    assert table["sdcor"].iloc[-1] == pytest.approx(result.sigma)


def test_blups_with_conditional_sd(fit):
    result, _ = fit
    table = blup_table(result)
    assert len(table) == 18 * 2
    assert list(table.columns) == ["group", "level", "effect", "blup", "cond_sd", "n_obs"]
    wide = table.pivot(index="level", columns="effect", values="blup")
    ranef = result.ranef["Subject"]
    np.testing.assert_allclose(wide.loc[ranef.index, ranef.columns], ranef)
    sd = table.pivot(index="level", columns="effect", values="cond_sd")
    np.testing.assert_allclose(sd.loc[ranef.index, ranef.columns], result.ranef_sd["Subject"])
    assert table["n_obs"].sum() == 2 * result.nobs


def test_predictions_one_row_per_data_row(fit):
    result, data = fit
    table = predictions_table(result, data)
    assert len(table) == len(data) and table["row"].iloc[0] == 1
    assert (~table["used"]).sum() == 2
    assert table.loc[~table["used"], "fitted"].isna().all()
    used = table[table["used"]]
    np.testing.assert_allclose(used["fitted"], result.fitted)
    np.testing.assert_allclose(used["observed"] - used["fitted"], used["residual"], atol=1e-9)
    assert list(table["Subject"].astype(str)) == list(data["Subject"].astype(str))
    back = _roundtrip(table)
    assert back["fitted"].isna().sum() == 2
