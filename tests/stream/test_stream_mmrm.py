"""Streamed MMRMs (``us(visit | id)`` and every structure) give the in-memory fit's numbers.

The oracle is the in-memory fit on the same DataFrame (itself checked against R's mmrm in
tests/core/test_mmrm*.py). Batches are small so that subjects are cut by batch ends and
regrouped (:func:`lmm_core.stream.mmrm.whole_subjects`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import lmm_core
from lmm_core.errors import DataError, ModelError
from lmm_core.model.mmrm import MMRMCriterion
from lmm_core.stream import fit_lmm_stream
from lmm_core.stream.mmrm_codes import whole_subjects
from lmm_core.stream.mmrm_results import StreamedMMRMResult
from tests.stream.conftest import same_residual_covariance

RTOL = 1e-10


def _same(a, b, rtol: float = 1e-7) -> None:
    """The same optimum: criterion to RTOL, estimates to the optimizer's tolerance."""
    assert b.objective == pytest.approx(a.objective, rel=RTOL)
    np.testing.assert_allclose(b.beta, a.beta, rtol=rtol, atol=1e-9 * np.abs(a.beta).max())
    np.testing.assert_allclose(b.theta, a.theta, rtol=rtol, atol=1e-7)
    assert list(b.x_names) == list(a.x_names)
    assert (b.nobs, b.n_subjects, b.npar) == (a.nobs, a.n_subjects, a.npar)
    assert b.aic == pytest.approx(a.aic, rel=RTOL)
    assert b.bic == pytest.approx(a.bic, rel=RTOL)


@pytest.mark.parametrize(
    "formula",
    [
        "FEV1 ~ RACE + SEX + ARMCD * AVISIT + us(AVISIT | USUBJID)",
        "FEV1 ~ ARMCD * AVISIT + ar1h(AVISIT | ARMCD / USUBJID)",
        "FEV1 ~ ARMCD + AVISIT + FEV1_BL + cs(AVISIT | USUBJID)",
        "FEV1 ~ ARMCD * AVISIT + toeph(AVISIT | USUBJID)",
        "FEV1 ~ ARMCD * AVISIT + adh(AVISIT | USUBJID)",
        "FEV1 ~ ARMCD * AVISIT + sp_exp(VISITN | USUBJID)",
        "FEV1 ~ ARMCD + sp_exp(VISITN, VISITN2 | USUBJID)",
    ],
)
def test_streamed_mmrm_equals_in_memory(fev, fev_parquet, formula):
    mem = lmm_core.fit_lmm(formula, fev)
    streamed = lmm_core.fit_lmm(formula, str(fev_parquet), batch_size=50)
    assert isinstance(streamed, StreamedMMRMResult)
    _same(mem, streamed)
    same_residual_covariance(mem, streamed)
    for method in ("satterthwaite", "kenward-roger", "between-within", "residual"):
        np.testing.assert_allclose(
            streamed.fixef_table(method).to_numpy(), mem.fixef_table(method).to_numpy(), rtol=1e-5
        )
    assert streamed.messages == mem.messages


def test_criterion_from_sums_equals_the_rows_at_any_theta(fev):
    """At a fixed theta (not the optimum) the summed criterion, its gradient and its exact
    Hessian equal the in-memory ones to rounding; REML and ML."""
    formula = "FEV1 ~ RACE + ARMCD * AVISIT + us(AVISIT | USUBJID)"
    for reml in (True, False):
        mem = lmm_core.fit_lmm(formula, fev, reml=reml)
        streamed = fit_lmm_stream(formula, fev, reml=reml, batch_size=64)
        a, b = mem.criterion, streamed.criterion
        assert isinstance(b, MMRMCriterion) and b.design is None
        theta = mem.theta + 0.05 * np.sin(np.arange(len(mem.theta)))
        assert b(theta) == pytest.approx(a(theta), rel=1e-12)
        np.testing.assert_allclose(b.gradient(theta), a.gradient(theta), rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(b.hessian(theta), a.hessian(theta), rtol=1e-8, atol=1e-6)


def test_missing_rows_aliased_columns_and_messy_names(tmp_path):
    """Column names with spaces, units and accents; a numeric visit; missing outcomes and
    covariates left out with the in-memory note; an aliased column dropped by R's rule."""
    rng = np.random.default_rng(5)
    rows = []
    for i in range(60):
        arm = ("placebo", "active")[i % 2]
        u = rng.normal(0, 1.0)
        for v in range(1, 5):
            if i % 7 == 0 and v > 2:  # drop-outs
                continue
            y = 2.0 + 0.3 * v - 0.4 * v * (arm == "active") + u + rng.normal(0, 0.7)
            rows.append((f"pt {i}", v, arm, 1000.0 * y, 70 + i % 5))
    df = pd.DataFrame(rows, columns=["patient id", "visit nº", "arm", "FEV (mL)", "weight [kg]"])
    df["weight copy"] = 2.0 * df["weight [kg]"]
    df.loc[[4, 30], "FEV (mL)"] = np.nan
    df.loc[11, "weight [kg]"] = np.nan
    formula = (
        "`FEV (mL)` ~ arm * factor(`visit nº`) + `weight [kg]` + `weight copy` + "
        "ar1(`visit nº` | `patient id`)"
    )
    mem = lmm_core.fit_lmm(formula, df)
    path = tmp_path / "trial.parquet"
    df.to_parquet(path)
    streamed = lmm_core.fit_lmm(formula, str(path), batch_size=7)
    _same(mem, streamed)
    assert streamed.messages == mem.messages
    assert any("left out" in m for m in streamed.messages)
    assert any("weight copy" in m for m in streamed.messages)
    assert list(streamed.residual_covariance().index) == ["1", "2", "3", "4"]


def test_whole_subjects_never_cuts_a_subject():
    ids = ["a"] * 3 + ["b"] * 4 + ["c"] + ["d"] * 5
    frame = pd.DataFrame({"id": ids, "x": np.arange(len(ids))})
    frames = [frame.iloc[i : i + 3] for i in range(0, len(frame), 3)]
    out = list(whole_subjects(iter(frames), "id"))
    assert pd.concat(out)["x"].tolist() == list(range(len(ids)))
    seen: set = set()
    for part in out:
        assert not (set(part["id"]) & seen)
        seen |= set(part["id"])


def test_bad_input_gets_the_in_memory_messages(fev, tmp_path):
    twice = pd.concat([fev, fev.iloc[[5]]], ignore_index=True)
    formula = "FEV1 ~ ARMCD * AVISIT + us(AVISIT | USUBJID)"
    with pytest.raises(DataError, match="more than once") as mem:
        lmm_core.fit_lmm(formula, twice)
    with pytest.raises(DataError, match="more than once") as streamed:
        fit_lmm_stream(formula, twice, batch_size=50)
    assert str(streamed.value) == str(mem.value)

    moved = fev.copy()
    first = moved.index[(moved["USUBJID"] == "PT2") & moved["FEV1"].notna()][0]
    moved.loc[first, "ARMCD"] = "TRT" if moved.loc[first, "ARMCD"] != "TRT" else "PBO"
    grouped = "FEV1 ~ AVISIT + us(AVISIT | ARMCD / USUBJID)"
    with pytest.raises(DataError, match="more than one level") as mem:
        lmm_core.fit_lmm(grouped, moved)
    with pytest.raises(DataError, match="more than one level") as streamed:
        fit_lmm_stream(grouped, moved, batch_size=50)
    assert str(streamed.value) == str(mem.value)

    one_visit = fev[fev["AVISIT"] == "VIS1"]
    with pytest.raises(ModelError, match="needs at least two visits"):
        fit_lmm_stream("FEV1 ~ ARMCD + us(AVISIT | USUBJID)", one_visit)


def test_a_model_above_the_memory_limit_is_refused_with_its_estimate(fev):
    formula = "FEV1 ~ RACE + SEX + ARMCD * AVISIT + us(AVISIT | USUBJID)"
    with pytest.raises(ModelError, match=r"needs about .* GiB .* patterns of visits"):
        fit_lmm_stream(formula, fev, max_memory_gib=1e-6)


def test_empirical_covariances_stream_the_rows_again(fev, fev_parquet):
    """CR0, CR2, CR3 and their Satterthwaite df from one more pass over the rows sorted by
    patient equal the in-memory sandwich (mmrm's Empirical covariances)."""
    formula = "FEV1 ~ RACE + ARMCD * AVISIT + us(AVISIT | USUBJID)"
    mem = lmm_core.fit_lmm(formula, fev)
    streamed = lmm_core.fit_lmm(formula, str(fev_parquet), batch_size=50)
    for kind in ("CR0", "CR2", "CR3"):
        np.testing.assert_allclose(
            streamed.vcov_sandwich(kind).to_numpy(), mem.vcov_sandwich(kind).to_numpy(),
            rtol=1e-5, atol=1e-12,
        )  # fmt: skip
        for method in ("satterthwaite", "between-within", "residual"):
            np.testing.assert_allclose(
                streamed.fixef_table(method, vcov_method=kind).to_numpy(),
                mem.fixef_table(method, vcov_method=kind).to_numpy(),
                rtol=1e-5,
            )
    view = streamed.on_sample(fev[fev["USUBJID"].isin(["PT3", "PT10"])])
    np.testing.assert_allclose(view.vcov_sandwich("CR2"), streamed.vcov_sandwich("CR2"))


def test_without_rows_to_stream_again(fev):
    streamed = fit_lmm_stream("FEV1 ~ ARMCD * AVISIT + us(AVISIT | USUBJID)", fev)
    with pytest.raises(ModelError, match="newdata"):
        streamed.predict()
    mem = lmm_core.fit_lmm("FEV1 ~ ARMCD * AVISIT + us(AVISIT | USUBJID)", fev)
    np.testing.assert_allclose(streamed.predict(fev.head(8)), mem.predict(fev.head(8)), rtol=1e-9)
    rowless = replace(streamed, rows=None, derived={})
    with pytest.raises(ModelError, match="no rows to stream"):
        rowless.fixef_table(vcov_method="CR0")


def test_units_do_not_change_the_streamed_fit(fev):
    """Outcome x 1000: the same fit in the new unit (coefficients x 1000, criterion shifted by
    2 n log 1000)."""
    formula = "FEV1 ~ ARMCD * AVISIT + ar1(AVISIT | USUBJID)"
    a = fit_lmm_stream(formula, fev)
    scaled = fev.assign(FEV1=fev["FEV1"] * 1000.0)
    b = fit_lmm_stream(formula, scaled)
    np.testing.assert_allclose(b.beta, 1000.0 * a.beta, rtol=1e-7)
    shift = 2.0 * (a.nobs - (len(a.beta) if a.reml else 0)) * np.log(1000.0)
    assert b.objective == pytest.approx(a.objective + shift, rel=1e-10)


def test_the_fit_seen_on_a_sample_of_patients(fev):
    """The app's view: the whole fit's estimates, the sample's rows (fitted values and
    residuals of those rows as in memory)."""
    formula = "FEV1 ~ ARMCD * AVISIT + ar1(AVISIT | USUBJID)"
    mem = lmm_core.fit_lmm(formula, fev)
    whole = fit_lmm_stream(formula, fev)
    picked = fev[fev["USUBJID"].isin(["PT3", "PT10", "PT77"])]
    view = whole.on_sample(picked)
    assert view.is_sample_view and not whole.is_sample_view
    assert (view.nobs, view.n_subjects) == (mem.nobs, mem.n_subjects)
    assert view.design.residual.n_subjects == 3
    used = picked.dropna(subset=["FEV1"])
    np.testing.assert_allclose(view.predict(), mem.predict(used), rtol=1e-9)
    assert view.design.y.tolist() == used["FEV1"].tolist()
    np.testing.assert_allclose(view.beta, whole.beta)
    with pytest.raises(DataError, match="No row of the sample"):
        whole.on_sample(picked.assign(FEV1=np.nan))


def test_sp_exp_in_any_unit_of_time(fev):
    """Visits in days or in seconds: the same streamed fit (the distance's unit is the median
    gap between a patient's consecutive times, learned by SQL), equal to the in-memory one."""
    days = fev.assign(day=7.0 * fev["VISITN"] + 0.5 * fev["VISITN2"])
    seconds = days.assign(day=days["day"] * 86_400.0)
    formula = "FEV1 ~ ARMCD * AVISIT + sp_exp(day | USUBJID)"
    a = fit_lmm_stream(formula, days, batch_size=64)
    b = fit_lmm_stream(formula, seconds, batch_size=64)
    mem = lmm_core.fit_lmm(formula, seconds)
    assert b.objective == pytest.approx(a.objective, rel=1e-10)
    assert b.objective == pytest.approx(mem.objective, rel=RTOL)
    np.testing.assert_allclose(b.theta, a.theta, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(b.beta, a.beta, rtol=1e-7)


def test_least_squares_means_of_a_streamed_mmrm(fev):
    """emmeans-style means by arm and visit (Satterthwaite and Kenward-Roger): the grid comes
    from the fit's recipes and levels, the covariance from the sums; as in memory."""
    formula = "FEV1 ~ RACE + ARMCD * AVISIT + us(AVISIT | USUBJID)"
    mem = lmm_core.fit_lmm(formula, fev)
    streamed = fit_lmm_stream(formula, fev, batch_size=64)
    for method in ("satterthwaite", "kenward-roger"):
        a = lmm_core.lsmeans(mem, "ARMCD", by="AVISIT", df_method=method, data=fev)
        b = lmm_core.lsmeans(streamed, "ARMCD", by="AVISIT", df_method=method, data=fev)
        assert a.index.equals(b.index) and list(a.columns) == list(b.columns)
        num = a.select_dtypes("number").columns
        np.testing.assert_allclose(b[num].to_numpy(float), a[num].to_numpy(float), rtol=1e-5)


def test_a_sort_above_the_memory_limit_is_refused_not_spilled(tmp_path, monkeypatch):
    """Health data are never written to disk: DuckDB's spilling is off, so a sort by patient
    larger than the memory limit gets a message, and no temporary directory appears."""
    from lmm_core.stream.sources import DuckDBEngine, as_source

    rng = np.random.default_rng(0)
    n = 3_000_000
    frame = pd.DataFrame(
        {"patient": rng.permutation(n).astype(str), "y": np.arange(n, dtype=float)}
    )
    path = tmp_path / "big.parquet"
    frame.to_parquet(path)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    eng = DuckDBEngine(as_source(path), memory_limit="20MB")
    try:
        with pytest.raises(ModelError, match="needs more memory than its limit .* never spilled"):
            for _ in eng.batches(["patient", "y"], "TRUE", 100_000, order_by=["patient"]):
                pass
    finally:
        eng.close()
    assert list(work.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "big.parquet",
        "cwd",
    ]
