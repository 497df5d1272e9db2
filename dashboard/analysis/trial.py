"""The Trial page's logic: a randomized study with scheduled visits analysed by an MMRM.

Pure logic, no Streamlit. A mixed model for repeated measures (MMRM) has no random effects;
the visits of a patient share a structured covariance ``Sigma`` (visits x visits):

    y_i = X_i beta + e_i,   e_i ~ N(0, Sigma restricted to the visits patient i has),

with fixed part ``outcome ~ covariates + arm * visit`` (visit a factor: one mean per arm and
visit, no shape imposed). :func:`plan_trial` checks the roles and prepares the rows;
:func:`fit_structures` fits the same fixed part with every structure of :data:`STRUCTURES`
by REML (the fixed effects are equal, so REML AIC ``= -2 l + 2 k`` and BIC
``= -2 l + k log(patients)``, ``k`` covariance parameters, compare the structures);
:func:`primary_structure` applies the pre-specified fallback of statistical analysis plans
(:data:`FALLBACK`: the first that converges is the primary analysis); :func:`verdict` says it
in words. :func:`dropout_summary` counts who is seen at which visit and
:func:`observed_correlation` gives the pairwise-complete correlation between visits of the
residuals of an ordinary least-squares fit of the fixed part.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.analysis.records import timed_fit
from dashboard.io.roles import Roles
from lmm_core import DataError, fit_lmm, lsmeans, lsmeans_contrasts
from lmm_core.design.build import build_design
from lmm_core.formula.quoting import quote_name

__all__ = [
    "FALLBACK",
    "MAX_VISITS",
    "STRUCTURES",
    "StructureFit",
    "TrialPlan",
    "arm_candidates",
    "arm_lsmeans",
    "comparison_table",
    "dropout_sentences",
    "dropout_summary",
    "fit_structures",
    "guess_arm",
    "observed_correlation",
    "pattern_sentence",
    "plan_trial",
    "primary_structure",
    "treatment_differences",
    "verdict",
    "visit_patterns",
]

#: formula name -> plain name, in the order of the comparison table
STRUCTURES: dict[str, str] = {
    "us": "unstructured",
    "toeph": "Toeplitz, variance per visit",
    "ar1h": "AR(1), variance per visit",
    "csh": "compound symmetry, variance per visit",
    "toep": "Toeplitz",
    "ar1": "AR(1)",
    "cs": "compound symmetry",
    "ad": "ante-dependence",
}
#: the pre-specified order of statistical analysis plans: the first that converges is primary
FALLBACK: tuple[str, ...] = ("us", "toeph", "ar1h", "cs")
#: more scheduled visits than this is not a visit factor (unstructured would need 120+ terms)
MAX_VISITS = 15
_ARM_NAME = re.compile(r"arm|treat|trt|group|random|allocat", re.IGNORECASE)


@dataclass(frozen=True)
class TrialPlan:
    """The checked roles of a trial and the rows its models use.

    Attributes
    ----------
    subject, visit, outcome, arm
        Column names.
    covariates
        Other fixed-effect columns (baseline covariates), in the roles' order.
    frame
        The rows used: no missing value in a used column; ``visit`` an ordered categorical
        (numbers sort as numbers), ``arm`` a categorical with two levels (the first is the
        reference).
    dropped
        Rows left out for a missing value.
    """

    subject: str
    visit: str
    outcome: str
    arm: str
    covariates: tuple[str, ...]
    frame: pd.DataFrame
    dropped: int

    @property
    def visits(self) -> list:
        """Visit levels in visit order."""
        return list(self.frame[self.visit].cat.categories)

    @property
    def arms(self) -> list:
        """The two arms; the first is the reference (control)."""
        return list(self.frame[self.arm].cat.categories)

    def formula(self, structure: str) -> str:
        """``outcome ~ covariates + arm * visit + structure(visit | subject)``."""
        q = quote_name
        fixed = [q(c) for c in self.covariates] + [f"{q(self.arm)} * {q(self.visit)}"]
        return (
            f"{q(self.outcome)} ~ {' + '.join(fixed)} + "
            f"{structure}({q(self.visit)} | {q(self.subject)})"
        )


def arm_candidates(data: pd.DataFrame, roles: Roles) -> list[str]:
    """Columns with exactly two distinct values (not the subject, visit or outcome), those
    named like an arm first, then the covariates, then the others."""
    skip = {roles.subject, roles.time, roles.outcome, roles.cluster}
    two = [c for c in data.columns if c not in skip and data[c].dropna().nunique() == 2]
    return sorted(
        two,
        key=lambda c: (not _ARM_NAME.search(str(c)), c not in roles.covariates, str(c)),
    )


def guess_arm(data: pd.DataFrame, roles: Roles) -> str | None:
    """The default arm column: the first of :func:`arm_candidates`, or ``None``."""
    found = arm_candidates(data, roles)
    return found[0] if found else None


def _check_roles(data: pd.DataFrame, roles: Roles, arm: str | None) -> None:
    needed = {"subject": roles.subject, "visit (time)": roles.time, "outcome": roles.outcome}
    missing = [k for k, v in needed.items() if not v or v not in data.columns]
    if missing:
        raise DataError(
            f"The Trial page needs a {', a '.join(missing)} column: set the column roles on "
            "the Data page."
        )
    if not arm or arm not in data.columns:
        raise DataError(
            "The Trial page needs an arm column with two levels (treatment and control); "
            "none was found or chosen."
        )
    if arm in needed.values():
        raise DataError(f"The arm column {arm!r} is also the subject, visit or outcome.")
    if not pd.api.types.is_numeric_dtype(data[roles.outcome]):
        raise DataError(f"The outcome {roles.outcome!r} must be numeric.")


def _visit_factor(values: pd.Series, name: str) -> pd.Categorical:
    levels = values.dropna().unique()
    if len(levels) < 2:
        raise DataError(f"The visit column {name!r} has one value: an MMRM needs visits.")
    if len(levels) > MAX_VISITS:
        raise DataError(
            f"The visit column {name!r} has {len(levels):,} distinct values: the Trial page "
            f"needs scheduled visits (at most {MAX_VISITS}), such as a visit number. Choose "
            "a visit column as the time role on the Data page."
        )
    if isinstance(values.dtype, pd.CategoricalDtype):
        order = [c for c in values.cat.categories if c in set(levels)]
    else:
        order = sorted(levels)
    return pd.Categorical(values, categories=order, ordered=True)


def plan_trial(data: pd.DataFrame, roles: Roles, arm: str | None) -> TrialPlan:
    """Check the roles for an MMRM and prepare its rows.

    Raises
    ------
    DataError
        A missing role, an arm without exactly two levels or changing within a patient, a
        visit column with one value or more than :data:`MAX_VISITS`, a patient seen twice
        at one visit, no rows left.
    """
    _check_roles(data, roles, arm)
    used = {roles.subject: None, roles.time: None, roles.outcome: None, arm: None}
    covariates = tuple(c for c in roles.covariates if c not in used and c in data.columns)
    columns = list(dict.fromkeys([*used, *covariates]))
    frame = data[columns].dropna().copy()
    if frame.empty:
        raise DataError("No rows have a value in every column the model uses.")
    arms = frame[arm].unique()
    if len(arms) != 2:
        raise DataError(
            f"The arm column {arm!r} has {len(arms)} levels; the Trial page compares two "
            "arms. Choose a column with two levels (treatment and control)."
        )
    if frame.groupby(roles.subject, sort=False)[arm].nunique().gt(1).any():
        raise DataError(f"Some patients change {arm!r} between visits: the arm must be fixed.")
    frame[roles.time] = _visit_factor(frame[roles.time], roles.time)
    if frame.duplicated([roles.subject, roles.time]).any():
        raise DataError(
            f"Some patients have the same {roles.time!r} twice: each patient can be seen at "
            "each visit once. Choose a visit-number column as the time role."
        )
    if isinstance(frame[arm].dtype, pd.CategoricalDtype):
        frame[arm] = frame[arm].cat.remove_unused_categories()
    else:
        frame[arm] = pd.Categorical(frame[arm], categories=sorted(arms))
    return TrialPlan(
        roles.subject, roles.time, roles.outcome, arm, covariates, frame, len(data) - len(frame)
    )


# --------------------------------------------------------------------------- fitting
@dataclass(frozen=True)
class StructureFit:
    """One covariance structure fitted (``result``) or failed (``error``)."""

    structure: str
    formula: str
    result: object | None
    error: str
    seconds: float

    @property
    def ok(self) -> bool:
        """Fitted and converged."""
        return self.result is not None and bool(self.result.converged)


def fit_structures(
    plan: TrialPlan,
    structures: Sequence[str] = tuple(STRUCTURES),
    on_step: Callable[[int, str], None] | None = None,
    fit: Callable[[str], object] | None = None,
) -> list[StructureFit]:
    """Fit ``plan.formula(s)`` by REML for every structure (``on_step(i, s)`` before each);
    a failure is kept as its message. ``fit(formula)`` defaults to
    :func:`lmm_core.fit_lmm` on ``plan.frame``."""
    fit = fit or (lambda formula: fit_lmm(formula, plan.frame, reml=True))
    out = []
    for i, s in enumerate(structures):
        if on_step is not None:
            on_step(i, s)
        formula = plan.formula(s)
        result, error, seconds = timed_fit(fit, formula)
        out.append(StructureFit(s, formula, result, error, seconds))
    return out


def comparison_table(fits: Sequence[StructureFit]) -> pd.DataFrame:
    """One row per structure: ``structure`` (plain name), ``term`` (formula name),
    ``parameters`` (covariance parameters), ``logLik``, ``AIC``, ``BIC`` (REML; NaN when
    the fit failed), ``converged`` ("yes", "no" or the failure) and ``seconds``."""
    rows = []
    for f in fits:
        res = f.result
        rows.append(
            {
                "structure": STRUCTURES.get(f.structure, f.structure),
                "term": f.structure,
                "parameters": res.npar if res is not None else np.nan,
                "logLik": res.loglik if res is not None else np.nan,
                "AIC": res.aic if res is not None else np.nan,
                "BIC": res.bic if res is not None else np.nan,
                "converged": ("yes" if f.ok else "no") if res is not None else "failed",
                "seconds": f.seconds,
            }
        )
    return pd.DataFrame(rows)


def primary_structure(fits: Sequence[StructureFit]) -> StructureFit | None:
    """The plan's primary analysis: the first structure of :data:`FALLBACK` that converged."""
    by_name = {f.structure: f for f in fits}
    for s in FALLBACK:
        if s in by_name and by_name[s].ok:
            return by_name[s]
    return None


def _label(s: str) -> str:
    return f"{STRUCTURES.get(s, s)} ({s})"


def _best(fits: Sequence[StructureFit], crit: str) -> tuple[StructureFit, float | None]:
    """The fit with the lowest criterion and its margin over the next best."""
    ranked = sorted((f for f in fits if f.ok), key=lambda f: getattr(f.result, crit))
    margin = None
    if len(ranked) > 1:
        margin = getattr(ranked[1].result, crit) - getattr(ranked[0].result, crit)
    return ranked[0], margin


def _fallback_sentence(fits: Sequence[StructureFit], primary: StructureFit) -> str:
    by_name = {f.structure: f for f in fits}
    failed = [s for s in FALLBACK[: FALLBACK.index(primary.structure)] if s in by_name]
    head = f"The analysis plan's primary model uses the {_label(primary.structure)} covariance"
    if not failed:
        return head + ", the first choice of the plan, which converged."
    return (
        head
        + f": {', '.join(_label(s) for s in failed)} did not converge, so the plan "
        + (f"fell back along {' > '.join(FALLBACK)}.")
    )


def verdict(fits: Sequence[StructureFit]) -> list[str]:
    """Sentences: which structure the plan picks and why, which AIC and BIC prefer."""
    primary = primary_structure(fits)
    if primary is None:
        return [
            f"None of {', '.join(FALLBACK)} converged, so the plan has no primary model. Check "
            "the visits (are there enough patients at every visit?) and the outcome."
        ]
    out = [_fallback_sentence(fits, primary)]
    for crit in ("AIC", "BIC"):
        best, margin = _best(fits, crit.lower())
        by = f" by {margin:.1f} over the next best" if margin is not None else ""  # fixed: AIC gap
        out.append(f"{crit} prefers {_label(best.structure)}{by}.")
    best_aic, _ = _best(fits, "aic")
    if best_aic.structure != primary.structure:
        gap = primary.result.aic - best_aic.result.aic
        out.append(
            f"The plan keeps the {STRUCTURES[primary.structure]} covariance although its AIC "
            f"is {gap:.1f} higher: the structure is fixed before the data are seen, "  # fixed: AIC
            "because "
            "choosing it after looking at the results would make the tests too optimistic."
        )
    return out


def arm_lsmeans(plan: TrialPlan, result) -> pd.DataFrame:
    """LS-means per arm and visit (:func:`lmm_core.lsmeans`, Satterthwaite df): the model's
    mean of each cell with covariates at their means and equal weights over other factors'
    levels (emmeans' default). Columns: visit, arm, ``estimate``, ``std_error``, ``df``,
    ``ci_lower``, ``ci_upper``."""
    return lsmeans(result, plan.arm, by=plan.visit, df_method="satterthwaite")


def treatment_differences(plan: TrialPlan, result) -> pd.DataFrame:
    """The treatment difference at each visit: the second arm's LS-mean minus the first's
    (:func:`lmm_core.lsmeans_contrasts`, ``trt.vs.ctrl``), with Satterthwaite df, t, p
    (unadjusted) and the 95% interval."""
    return lsmeans_contrasts(
        result, plan.arm, by=plan.visit, method="trt.vs.ctrl", df_method="satterthwaite"
    )


# --------------------------------------------------------------------------- the data
def _seen_matrix(plan: TrialPlan) -> pd.DataFrame:
    """Patients x visits, True where the patient has a row at that visit."""
    f = plan.frame
    seen = pd.crosstab(f[plan.subject], f[plan.visit], dropna=False).gt(0)
    return seen.reindex(columns=plan.visits, fill_value=False)


def dropout_summary(plan: TrialPlan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Who is seen at which visit.

    Returns
    -------
    per_visit
        ``arm``, ``visit``, ``seen`` (patients with a value), ``patients`` (in the arm) and
        ``share`` = seen / patients.
    per_arm
        ``arm``, ``patients``, ``completed`` (seen at the last visit), ``dropped_out`` (last
        seen before it), ``missed_visits`` (visits missed before a patient's last one).
    """
    seen = _seen_matrix(plan)
    arm_of = plan.frame.groupby(plan.subject, observed=True)[plan.arm].first()
    arm_of = arm_of.reindex(seen.index)
    values = seen.to_numpy()
    last = values.shape[1] - 1 - np.argmax(values[:, ::-1], axis=1)
    missed = (~values & (np.arange(values.shape[1]) < last[:, None])).sum(axis=1)
    per_visit, per_arm = [], []
    for a in plan.arms:
        mask = (arm_of == a).to_numpy()
        n = int(mask.sum())
        for j, v in enumerate(plan.visits):
            k = int(values[mask, j].sum())
            per_visit.append({"arm": a, "visit": v, "seen": k, "patients": n, "share": k / n})
        done = int(np.sum(last[mask] == values.shape[1] - 1))
        per_arm.append(
            {
                "arm": a,
                "patients": n,
                "completed": done,
                "dropped_out": n - done,
                "missed_visits": int(missed[mask].sum()),
            }
        )
    return pd.DataFrame(per_visit), pd.DataFrame(per_arm)


def visit_patterns(plan: TrialPlan, most: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The patterns of visits seen (as R's ``mice::md.pattern``), most frequent first.

    A pattern is the set of visits at which a patient has a value. Patients who leave for
    good have a *monotone* pattern (seen up to a visit, never after); intermittent patterns
    have a gap before the last visit seen.

    Parameters
    ----------
    plan
        The trial (:func:`plan_trial`).
    most
        Patterns shown one by one; the rarer ones are pooled into one last row whose cells
        hold the share of its patients seen at each visit.

    Returns
    -------
    cells
        Patterns x visits: 1 seen, 0 missed (a share in ``[0, 1]`` on a pooled row).
    counts
        One row per pattern, in the same order: ``pattern`` (its label), ``monotone`` (bool;
        None on a pooled row), ``patients`` (all arms) and ``by_arm`` (arm -> patients).
    """
    seen = _seen_matrix(plan)
    arms = plan.frame.groupby(plan.subject, observed=True)[plan.arm].first()
    keys = ["".join("1" if s else "0" for s in row) for row in seen.to_numpy()]
    table = pd.crosstab(np.array(keys), arms.reindex(seen.index).to_numpy())
    table = table.reindex(columns=list(plan.arms), fill_value=0)
    # most patients first; among equals, the pattern seen longest first ("110" before "101")
    table = table.sort_index(ascending=False)
    table = table.iloc[np.argsort(-table.sum(axis=1).to_numpy(), kind="stable")]
    by_arm = table.to_numpy()
    cells = pd.DataFrame([list(map(int, key)) for key in table.index], dtype=float)
    cells.columns = list(plan.visits)
    values = cells.to_numpy() > 0
    counts = pd.DataFrame(
        {
            "pattern": [_pattern_label(row, plan.visits) for row in values],
            "monotone": [_is_monotone(row) for row in values],
            "patients": by_arm.sum(axis=1),
            "by_arm": [dict(zip(plan.arms, map(int, row), strict=True)) for row in by_arm],
        }
    )
    if len(counts) <= most:
        return cells, counts
    keep, weights = most - 1, counts["patients"].to_numpy(float)[most - 1 :]
    pooled = weights @ cells.to_numpy()[keep:] / weights.sum()
    cells = pd.concat([cells.iloc[:keep], pd.DataFrame([pooled], columns=cells.columns)])
    rest = by_arm[keep:].sum(axis=0)
    summary = {
        "pattern": f"{len(weights)} rarer patterns",
        "monotone": None,
        "patients": int(rest.sum()),
        "by_arm": dict(zip(plan.arms, map(int, rest), strict=True)),
    }
    counts = pd.concat([counts.iloc[:keep], pd.DataFrame([summary])], ignore_index=True)
    return cells.reset_index(drop=True), counts


def pattern_sentence(counts: pd.DataFrame) -> str:
    """The patterns of :func:`visit_patterns` in one sentence: how many patients were seen at
    every visit, left for good (monotone drop-out) or missed a visit and came back."""
    total = int(counts["patients"].sum())
    full = int(counts.loc[counts["pattern"] == "all visits", "patients"].sum())
    gaps = int(counts.loc[counts["monotone"].eq(False), "patients"].sum())
    pooled = int(counts.loc[counts["monotone"].isna(), "patients"].sum())
    left = total - full - gaps - pooled
    text = (
        f"{len(counts)} patterns of visits: {full:,} of {total:,} patients seen at every "
        f"visit, {left:,} left for good (monotone drop-out), {gaps:,} missed a visit and came "
        "back"
    )
    return text + (f", {pooled:,} in rarer patterns." if pooled else ".")


def _is_monotone(seen: np.ndarray) -> bool:
    """Seen at every visit up to the last one seen."""
    last = len(seen) - 1 - int(np.argmax(seen[::-1]))
    return bool(seen[: last + 1].all())


def _pattern_label(seen: np.ndarray, visits: Sequence) -> str:
    """``all visits``, ``up to <visit>`` (monotone drop-out) or the visits missed."""
    if seen.all():
        return "all visits"
    if _is_monotone(seen):
        return f"up to {visits[len(seen) - 1 - int(np.argmax(seen[::-1]))]}"
    missed = [str(v) for v, s in zip(visits, seen, strict=True) if not s]
    return "missed " + ", ".join(missed)


def dropout_sentences(plan: TrialPlan, per_arm: pd.DataFrame) -> list[str]:
    """The drop-out in words, one sentence per arm."""
    last = plan.visits[-1]
    out = []
    for row in per_arm.itertuples(index=False):
        share = row.completed / row.patients if row.patients else 0.0
        missed = row.missed_visits
        out.append(
            f"{row.arm}: {row.completed:,} of {row.patients:,} patients ({share:.0%}) were "
            f"seen at the last visit ({plan.visit} {last}); {row.dropped_out:,} left earlier"
            + (f"; {row.missed_visits:,} visits were missed in between." if missed else ".")
        )
    return out


def observed_correlation(plan: TrialPlan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pairwise-complete correlation between visits of the residuals ``y - X b`` of an
    ordinary least-squares fit of the fixed part, and the number of patients seen at both
    visits of each pair (both visits x visits)."""
    design = build_design(plan.formula("us"), plan.frame)
    coef, *_ = np.linalg.lstsq(design.X, design.y, rcond=None)
    res = design.residual
    table = pd.DataFrame(
        {"s": res.subject_codes, "v": res.visit_codes, "r": design.y - design.X @ coef}
    ).pivot(index="s", columns="v", values="r")
    table = table.reindex(columns=range(len(res.visits)))
    table.columns = list(res.visits)
    seen = table.notna().astype(float)
    pairs = seen.T @ seen
    return table.corr(min_periods=3), pairs.astype(int)
