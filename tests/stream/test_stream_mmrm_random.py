"""Streamed random effects above the subject beside a covariance of the visits
(``y ~ arm * visit + (1 | hospital) + ar1(visit | patient)``) give the in-memory fit's numbers.

The oracle is the in-memory fit on the same DataFrame (itself checked against nlme in
tests/core/test_mmrm_random.py). Batches are small so that subjects are cut by batch ends and
regrouped, and files are shuffled so that a cell's subjects arrive in many batches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmm_core
from lmm_core.design.reterms import amalgamate
from lmm_core.errors import DataError, ModelError
from lmm_core.inference.estimable import row_tests
from lmm_core.model import mmrm_random
from lmm_core.model.mmrm_random import RandomMMRMCriterion, cell_sums
from lmm_core.model.mmrm_random_optimize import random_mmrm_start
from lmm_core.stream import fit_lmm_stream
from lmm_core.stream.mmrm_pass import accumulate
from lmm_core.stream.mmrm_plan import plan_mmrm_stream
from lmm_core.stream.mmrm_random import CellTotal
from lmm_core.stream.mmrm_random_results import StreamedMMRMRandomResult
from lmm_core.stream.sources import DuckDBEngine, as_source
from tests.stream.conftest import same_residual_covariance

ROOT = Path(__file__).resolve().parents[2]
TRIAL = ROOT / "tests" / "fixtures" / "mmrm_random" / "trial_small.csv"
RTOL = 1e-10


def hospitals(seed: int = 7, n_hosp: int = 12, per: int = 10) -> pd.DataFrame:
    """A multi-hospital trial: random hospital intercepts and time slopes, AR(1) visits,
    drop-outs, missed visits, a missing outcome and a missing covariate, messy names and a
    covariate that is a copy of another (aliased)."""
    rng = np.random.default_rng(seed)
    rows = []
    for h in range(n_hosp):
        u0, u1 = rng.normal(0, 1.5), rng.normal(0, 0.3)
        for i in range(per):
            arm = ("placebo", "active")[(h + i) % 2]
            last = 5 if rng.random() > 0.3 else int(rng.integers(2, 5))
            e = rng.normal(0, 1.0)
            for v in range(1, last + 1):
                e = 0.6 * e + rng.normal(0, 0.8)
                if rng.random() < 0.08:
                    continue
                y = 10 + u0 + (0.5 + u1 - 0.3 * (arm == "active")) * v + e
                rows.append((f"H {h:02d}", f"pt {h}-{i}", arm, f"V{v}", float(v), 100 * y,
                             50 + 3 * h + rng.normal()))  # fmt: skip
    df = pd.DataFrame(rows, columns=["hôpital", "patient id", "arm", "visit", "time", "FEV (mL)",
                                     "age [y]"])  # fmt: skip
    df["age copy"] = 2.0 * df["age [y]"]
    df.loc[[3, 40], "FEV (mL)"] = np.nan
    df.loc[17, "age [y]"] = np.nan
    return df


def _same(a, b, rtol: float = 1e-6) -> None:
    """The same optimum: criterion to RTOL, estimates to the optimizer's tolerance (it stops
    when the Newton decrement is below 1e-6, so the unit-free ``psi`` of two fits from starts
    equal to rounding differ by about 1e-7)."""
    assert isinstance(b, StreamedMMRMRandomResult)
    assert b.converged and a.converged
    assert b.objective == pytest.approx(a.objective, rel=RTOL)
    np.testing.assert_allclose(b.beta, a.beta, rtol=rtol, atol=1e-8 * np.abs(a.beta).max())
    np.testing.assert_allclose(b.theta, a.theta, rtol=rtol, atol=1e-6)
    assert list(b.x_names) == list(a.x_names)
    assert (b.nobs, b.n_subjects, b.npar, b.ngroups) == (a.nobs, a.n_subjects, a.npar, a.ngroups)
    assert b.aic == pytest.approx(a.aic, rel=RTOL)
    assert b.bic == pytest.approx(a.bic, rel=RTOL)
    assert b.messages == a.messages
    assert b.is_singular == a.is_singular
    for ga, gb in zip(a.covariance_matrices(), b.covariance_matrices(), strict=True):
        np.testing.assert_allclose(gb, ga, rtol=1e-6, atol=1e-9 * np.abs(ga).max())
    va, vb = a.varcorr_table(), b.varcorr_table()
    assert va[["group", "var1", "var2"]].equals(vb[["group", "var1", "var2"]])
    np.testing.assert_allclose(vb["vcov"], va["vcov"], rtol=1e-6, atol=1e-9)
    for (name, ra), (other, rb) in zip(a.ranef.items(), b.ranef.items(), strict=True):
        assert name == other and list(ra.index) == list(rb.index)
        np.testing.assert_allclose(rb.to_numpy(), ra.to_numpy(), rtol=1e-5, atol=1e-6)
    for method in ("satterthwaite", "residual", "wald"):
        ta, tb = a.fixef_table(method), b.fixef_table(method)
        p_a, p_b = ta.pop("p_value"), tb.pop("p_value")  # tiny p values: relative 1e-4
        np.testing.assert_allclose(tb.to_numpy(), ta.to_numpy(), rtol=1e-5)
        np.testing.assert_allclose(p_b, p_a, rtol=1e-3, atol=1e-12)


@pytest.mark.parametrize(
    ("formula", "reml"),
    [
        ("FEV1 ~ ARMCD * AVISIT + (1 | RACE) + ar1(AVISIT | USUBJID)", True),
        ("FEV1 ~ ARMCD * AVISIT + (1 | RACE) + ar1(AVISIT | USUBJID)", False),
        ("FEV1 ~ RACE + ARMCD * AVISIT + (1 | SEX) + us(AVISIT | USUBJID)", True),
        ("FEV1 ~ ARMCD * AVISIT + (1 | RACE) + (1 | SEX) + cs(AVISIT | ARMCD / USUBJID)", True),
        ("FEV1 ~ ARMCD * AVISIT + (VISITN || RACE) + ar1h(AVISIT | USUBJID)", True),
    ],
)
def test_streamed_fev_equals_in_memory(fev, fev_parquet, formula, reml):
    mem = lmm_core.fit_lmm(formula, fev, reml=reml)
    streamed = lmm_core.fit_lmm(formula, str(fev_parquet), reml=reml, batch_size=50)
    _same(mem, streamed)
    same_residual_covariance(mem, streamed)
    new = fev.dropna().head(12)
    for include_re in (True, False):
        np.testing.assert_allclose(
            streamed.predict(new, include_re), mem.predict(new, include_re), rtol=1e-8
        )


@pytest.mark.parametrize(
    "rhs",
    [
        "arm * visit + `age [y]` + `age copy` + (1 | `hôpital`) + ar1(visit | `patient id`)",
        "arm * time + (time | `hôpital`) + toeph(visit | `patient id`)",
        "arm * visit + (1 | `hôpital`) + us(visit | arm / `patient id`)",
    ],
)
def test_streamed_multi_hospital_trial_equals_in_memory(tmp_path, rhs):
    """Missing rows left out with the in-memory note, an aliased column dropped, a random
    slope, group-specific structures; subjects cut by batch ends."""
    df = hospitals()
    path = tmp_path / "trial.parquet"
    df.sample(frac=1.0, random_state=5).to_parquet(path, row_group_size=30)
    formula = f"`FEV (mL)` ~ {rhs}"
    mem = lmm_core.fit_lmm(formula, df)
    streamed = lmm_core.fit_lmm(formula, str(path), batch_size=23)
    _same(mem, streamed)
    assert any("left out" in m for m in streamed.messages)
    if "age copy" in rhs:
        assert any("age copy" in m for m in streamed.messages)


def test_nlme_trial_and_cell_counts(tmp_path):
    """The fixture trial checked against nlme (30 hospitals): the same fit streamed; pass 1's
    SQL count of cells equals the cells pass 2 sums."""
    df = pd.read_csv(TRIAL)
    formula = "y ~ arm * avisit + (1 | hospital) + ar1(avisit | patient)"
    path = tmp_path / "trial.parquet"
    df.sample(frac=1.0, random_state=2).to_parquet(path, row_group_size=100)
    _same(lmm_core.fit_lmm(formula, df), fit_lmm_stream(formula, str(path), batch_size=64))
    eng = DuckDBEngine(as_source(str(path)))
    plan = plan_mmrm_stream(formula, eng)
    frames = eng.batches(plan.base.columns, plan.base.where, 64, order_by=["patient"])
    total = accumulate(frames, plan, 64, kind=CellTotal)
    assert isinstance(total, CellTotal) and total.n == plan.base.n_used == len(df)
    assert sum(plan.patterns.values()) == len(total.sums)
    sizes: dict[int, int] = {}
    for cell in total.sums.values():
        sizes[len(cell.visits)] = sizes.get(len(cell.visits), 0) + 1
    assert sizes == plan.patterns
    assert sum(c.n for c in total.sums.values()) == plan.residual.n_subjects


def test_criterion_and_start_from_sums_equal_the_rows(fev):
    """At a fixed psi (not the optimum) the criterion from every cell's outer products, its
    gradient and the conditional modes equal the in-memory ones to rounding; the start from the
    sums (moment covariances, per-level least squares) equals the in-memory start."""
    formulas = [
        "FEV1 ~ ARMCD * AVISIT + (1 | RACE) + (1 | SEX) + us(AVISIT | ARMCD / USUBJID)",
        "FEV1 ~ ARMCD * AVISIT + (VISITN | RACE) + cs(AVISIT | USUBJID)",
    ]
    for formula in formulas:
        for reml in (True, False):
            mem = lmm_core.fit_lmm(formula, fev, reml=reml)
            a, design = mem.criterion, mem.design
            terms = amalgamate(design.reterms)[0]
            res = design.residual
            cells = cell_sums(
                np.column_stack([t.z for t in terms] + [design.X, design.y]),
                res.subject_codes,
                res.visit_codes,
                res.group_codes,
                np.column_stack([t.codes for t in terms]),
            )
            b = RandomMMRMCriterion.from_sums(res, design.reterms, cells, design.n, reml)
            assert b.design is None and (b.n, b.p, b.q_z) == (a.n, a.p, a.q_z)
            assert b.s0 == pytest.approx(a.s0, rel=1e-12)
            np.testing.assert_allclose(b.scale, a.scale, rtol=1e-12)
            np.testing.assert_allclose(random_mmrm_start(b), random_mmrm_start(a), rtol=1e-10)
            psi = mem.theta + 0.05 * np.sin(np.arange(len(mem.theta)))
            assert b(psi) == pytest.approx(a(psi), rel=1e-12)
            ga, gb = a.value_and_gradient(psi)[1], b.value_and_gradient(psi)[1]
            np.testing.assert_allclose(gb, ga, rtol=1e-8, atol=1e-9 * np.abs(ga).max())
            for ma, mb in zip(a.modes(psi), b.modes(psi), strict=True):
                np.testing.assert_allclose(mb, ma, rtol=1e-9, atol=1e-12)


def test_what_needs_the_rows_is_refused_with_a_message(fev):
    formula = "FEV1 ~ ARMCD * AVISIT + (1 | RACE) + ar1(AVISIT | USUBJID)"
    streamed = fit_lmm_stream(formula, fev)
    with pytest.raises(ModelError, match="needs each patient's rows"):
        streamed.fixef_table(df_method="between-within")
    with pytest.raises(ModelError, match="Kenward-Roger needs each patient's rows"):
        streamed.fixef_table("kenward-roger")
    with pytest.raises(ModelError, match="Kenward-Roger needs each patient's rows"):
        row_tests(streamed, np.eye(len(streamed.beta))[:1], "kenward-roger")
    two = fit_lmm_stream("FEV1 ~ AVISIT + (1 | RACE) + (1 | SEX) + ar1(AVISIT | USUBJID)", fev)
    with pytest.raises(ModelError, match="per level of a single grouping factor"):
        two.vcov_sandwich("CR0")
    with pytest.raises(ModelError, match="newdata"):
        streamed.predict()
    mem = lmm_core.fit_lmm(formula, fev)
    want = row_tests(mem, np.eye(len(mem.beta))[:2], "satterthwaite").to_numpy(float)
    got = row_tests(streamed, np.eye(len(mem.beta))[:2], "satterthwaite").to_numpy(float)
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("kind", ["CR0", "CR2", "CR3"])
def test_cluster_sandwich_from_the_cells_sums(tmp_path, kind):
    """Clustered by hospital (the single grouping factor): ``X_h'V_h^-1X_h`` and
    ``X_h'V_h^-1r_h`` from the cells equal the rows' Woodbury products, so the sandwich and
    its Satterthwaite df equal the in-memory ones (checked against clubSandwich there)."""
    df = hospitals()
    path = tmp_path / "trial.parquet"
    df.to_parquet(path)
    formula = "`FEV (mL)` ~ arm * time + (time | `hôpital`) + ar1(visit | `patient id`)"
    mem = lmm_core.fit_lmm(formula, df)
    streamed = lmm_core.fit_lmm(formula, str(path), batch_size=60)
    a, b = mem.vcov_sandwich(kind).to_numpy(), streamed.vcov_sandwich(kind).to_numpy()
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-9 * np.abs(a).max())
    np.testing.assert_allclose(
        streamed.fixef_table(vcov_method=kind).to_numpy(),
        mem.fixef_table(vcov_method=kind).to_numpy(),
        rtol=1e-5,
    )


def test_bad_input_gets_a_clear_message(fev, monkeypatch):
    moved = fev.copy()
    rows = moved.index[(moved["USUBJID"] == "PT2") & moved["FEV1"].notna()]
    moved.loc[rows[0], "RACE"] = "Asian" if moved.loc[rows[0], "RACE"] != "Asian" else "White"
    formula = "FEV1 ~ ARMCD * AVISIT + (1 | RACE) + ar1(AVISIT | USUBJID)"
    with pytest.raises(DataError, match="one subject in two levels of `RACE`"):
        lmm_core.fit_lmm(formula, moved)
    with pytest.raises(DataError, match="USUBJID` PT2 is one subject in two levels of `RACE`"):
        fit_lmm_stream(formula, moved, batch_size=50)
    with pytest.raises(ModelError, match=r"needs about .* GiB .* cells"):
        fit_lmm_stream(formula, fev, max_memory_gib=1e-6)
    monkeypatch.setattr(mmrm_random, "MAX_DENSE_Q", 3)
    with pytest.raises(ModelError, match="too many"):
        fit_lmm_stream("FEV1 ~ AVISIT + (1 | RACE) + (1 | SEX) + ar1(AVISIT | USUBJID)", fev)


@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")
def test_spark_equals_duckdb_and_memory(spark, tmp_path):
    """Rows partitioned and sorted by subject on Spark, the partitions' cell sums merged on
    the driver: the same fit as DuckDB and in memory."""
    df = hospitals(seed=3)
    folder = tmp_path / "parts"
    folder.mkdir()
    shuffled = df.sample(frac=1.0, random_state=1)
    for k, part in enumerate(np.array_split(np.arange(len(shuffled)), 3)):
        shuffled.iloc[part].to_parquet(folder / f"part-{k}.parquet")
    formula = "`FEV (mL)` ~ arm * visit + (1 | `hôpital`) + ar1(visit | `patient id`)"
    mem = lmm_core.fit_lmm(formula, df)
    want = fit_lmm_stream(formula, str(folder), engine="duckdb", batch_size=40)
    got = lmm_core.fit_lmm(formula, str(folder), engine="spark", spark=spark, batch_size=40)
    assert got.rows is not None  # the rows by patient on Spark, to stream again
    _same(mem, got)
    _same(want, got)


def test_the_fit_seen_on_a_sample_of_patients(fev):
    """The app's view: the whole fit's estimates and conditional modes, the sample's rows
    (predictions with the random effects of those rows as in memory)."""
    formula = "FEV1 ~ ARMCD * AVISIT + (1 | RACE) + ar1(AVISIT | USUBJID)"
    mem = lmm_core.fit_lmm(formula, fev)
    whole = fit_lmm_stream(formula, fev)
    picked = fev[fev["USUBJID"].isin(["PT3", "PT10", "PT77"])]
    view = whole.on_sample(picked)
    assert isinstance(view, StreamedMMRMRandomResult)
    assert view.is_sample_view and not whole.is_sample_view
    assert (view.nobs, view.n_subjects) == (mem.nobs, mem.n_subjects)
    assert view.design.residual.n_subjects == 3
    used = picked.dropna(subset=["FEV1"])
    np.testing.assert_allclose(view.predict(), mem.predict(used), rtol=1e-8)
    np.testing.assert_allclose(view.predict(include_re=False), mem.predict(used, False), rtol=1e-8)
    assert view.design.y.tolist() == used["FEV1"].tolist()
    np.testing.assert_allclose(view.beta, whole.beta)
    (term,) = view.criterion.terms  # the sample's rows (the app's diagnostics read them)
    assert term.codes.shape == (len(used),) and term.z.shape == (len(used), 1)
    assert view.criterion(view.theta) == pytest.approx(whole.objective, rel=1e-12)
    for a, b in zip(view.ranef.values(), mem.ranef.values(), strict=True):
        np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ModelError, match="Kenward-Roger needs each patient's rows"):
        view.fixef_table("kenward-roger")
    with pytest.raises(DataError, match="No row of the sample"):
        whole.on_sample(picked.assign(FEV1=np.nan))
    with pytest.raises(DataError, match="levels of `RACE` the fit has not seen"):
        whole.on_sample(picked.assign(RACE="Martian"))
