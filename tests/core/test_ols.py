"""lmm_core.model.ols: least squares against numpy's lstsq and statsmodels' OLS."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from lmm_core import ModelError, datasets, fit_lmm
from lmm_core.model.ols import ols_fit


def _random_problem(seed: int, n: int = 60, p: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1)) * [1.0, 10.0, 0.01][: p - 1]])
    y = X @ rng.normal(size=p) + rng.normal(size=n)
    return X, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimates_equal_lstsq_and_se_equal_statsmodels(seed):
    X, y = _random_problem(seed)
    names = [f"x{i}" for i in range(X.shape[1])]
    table = ols_fit(X, y, names)
    assert list(table.index) == names
    assert list(table.columns) == ["estimate", "std_error"]
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    np.testing.assert_allclose(table["estimate"], beta, rtol=1e-10, atol=1e-12)
    ref = sm.OLS(y, X).fit()
    np.testing.assert_allclose(table["estimate"], ref.params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(table["std_error"], ref.bse, rtol=1e-10)


def test_sleepstudy_design_matches_statsmodels_formula_fit():
    data, _ = datasets.load_example("sleepstudy")
    res = fit_lmm("Reaction ~ Days + (1 | Subject)", data)
    table = ols_fit(res.design.X, res.design.y, res.x_names)
    ref = sm.OLS(data["Reaction"].to_numpy(), sm.add_constant(data["Days"].to_numpy())).fit()
    np.testing.assert_allclose(table["estimate"], ref.params, rtol=1e-10)
    np.testing.assert_allclose(table["std_error"], ref.bse, rtol=1e-10)
    # the naive SE of the slope is the textbook s / sqrt(Sxx)
    days = data["Days"].to_numpy(float)
    resid = data["Reaction"] - table["estimate"].iloc[0] - table["estimate"].iloc[1] * days
    s = np.sqrt((resid**2).sum() / (len(days) - 2))
    assert table.loc["Days", "std_error"] == pytest.approx(
        s / np.sqrt(((days - days.mean()) ** 2).sum()), rel=1e-10
    )


def test_rank_deficient_and_too_few_rows_are_refused():
    X, y = _random_problem(3)
    with pytest.raises(ModelError, match="rank deficient"):
        ols_fit(np.column_stack([X, X[:, 1] * 2]), y, list("abcde"))
    with pytest.raises(ModelError, match="more rows"):
        ols_fit(X[:4], y[:4], list("abcd"))
    with pytest.raises(ModelError, match="names"):
        ols_fit(X, y, ["only", "three", "names"])


def test_returns_a_frame_indexed_by_term():
    X, y = _random_problem(4, p=2)
    table = ols_fit(X, y, ["(Intercept)", "time"])
    assert isinstance(table, pd.DataFrame)
    assert table.index.name == "term"
    assert (table["std_error"] > 0).all()
