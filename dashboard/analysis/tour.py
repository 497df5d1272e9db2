"""The guided tour: its steps as data, and the models they need. Pure (no Streamlit).

The tour tells the story of a mixed model in up to eight steps on the active data, built from
three column roles only: the subject ``s``, the time ``t`` and the outcome ``y``:

1. the raw spaghetti (one line per subject);
2. one line for everyone: ordinary least squares, whose standard errors treat the ``N`` rows
   as independent;
3. a random intercept ``y ~ t + (1 | s)``;
4. a random slope ``y ~ t + (t | s)``;
5. shrinkage (each subject's own estimate against the mixed model's);
6. a new patient's forecast from their first visits;
7. the model comparison (AIC, BIC, likelihood-ratio test);
8. what to report.

A step that the data cannot support is skipped with its reason (:func:`plan_tour`): without
a time role there is no spaghetti, random slope, forecast or comparison, and the models become
``y ~ 1`` and ``y ~ 1 + (1 | s)``. The sentences of each step are computed from the fitted
numbers by :mod:`dashboard.analysis.tour_texts`.

On a yes/no or count outcome (:func:`dashboard.io.outcome_kind.outcome_kind`) the tour's
models are GLMMs, as the Model page's "Kind of outcome" fits them: ``g(E[y | b]) = x'beta +
z'b`` with the binomial family and logit link, or the Poisson family and log link (plus
``offset(log(exposure))`` when a column is the time at risk). "One line for everyone" is
then the GLM of the same family without random effects (:func:`naive_fit`): Fisher scoring
to the maximum-likelihood ``beta``, standard errors ``sqrt(diag((X'WX)^-1))`` with the
working weights ``W = w (dmu/deta)^2 / V(mu)``, which treat the rows as independent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.analysis.glmm_shrinkage import own_fit
from lmm_core.errors import ModelError
from lmm_core.formula.quoting import quote_name
from lmm_core.model.ols import ols_fit

__all__ = [
    "INTERCEPT",
    "SLOPE",
    "STEPS",
    "StepSpec",
    "TourColumns",
    "TourPlan",
    "naive_fit",
    "plan_tour",
    "step_by_key",
]

#: model names of the tour (keys of :meth:`TourColumns.formulas`)
INTERCEPT = "intercept"
SLOPE = "slope"


@dataclass(frozen=True)
class StepSpec:
    """One step of the tour.

    Attributes
    ----------
    key
        Short id (``"spaghetti"``, ``"ols"``...).
    title
        The heading shown on the step.
    page
        The app page where the step's subject is explored further (``pages/<name>.py``):
        leaving the tour at this step opens it.
    models
        Names of the tour's models the step needs fitted (:data:`INTERCEPT`, :data:`SLOPE`).
    needs_time
        True when the step cannot be made without a time role.
    """

    key: str
    title: str
    page: str
    models: tuple[str, ...] = ()
    needs_time: bool = False


STEPS: tuple[StepSpec, ...] = (
    StepSpec("spaghetti", "The raw data: one line per subject", "pages/explore.py", (), True),
    StepSpec(
        "ols", "One line for everyone, and why its standard errors are wrong", "pages/model.py",
        (INTERCEPT, SLOPE),
    ),
    StepSpec("intercept", "A random intercept: each subject's own level", "pages/trajectories.py",
             (INTERCEPT,)),
    StepSpec("slope", "A random slope: each subject's own rate of change",
             "pages/trajectories.py", (INTERCEPT, SLOPE), True),
    StepSpec("shrinkage", "Shrinkage: borrowing strength from the others", "pages/shrinkage.py",
             (INTERCEPT, SLOPE)),
    StepSpec("forecast", "A new patient's forecast", "pages/prediction.py", (INTERCEPT, SLOPE),
             True),
    StepSpec("compare", "Which model? The comparison", "pages/compare.py", (INTERCEPT, SLOPE),
             True),
    StepSpec("report", "What to report", "pages/export.py", (INTERCEPT, SLOPE)),
)  # fmt: skip


def step_by_key(key: str) -> StepSpec:
    """The step called ``key`` (``KeyError`` for an unknown key)."""
    for step in STEPS:
        if step.key == key:
            return step
    raise KeyError(key)


#: GLMM family -> its canonical link (the Model page's default)
LINK_OF_FAMILY = {"binomial": "logit", "poisson": "log"}


@dataclass(frozen=True)
class TourColumns:
    """The roles the tour is built from (``time`` None when the data have none).

    ``family`` is ``"gaussian"`` (linear mixed models), ``"binomial"`` (a yes/no outcome,
    logit link) or ``"poisson"`` (counts, log link; ``exposure`` the time at risk, if any).
    """

    subject: str
    outcome: str
    time: str | None = None
    family: str = "gaussian"
    exposure: str | None = None

    @property
    def is_glmm(self) -> bool:
        """Whether the tour fits GLMMs (a yes/no or count outcome)."""
        return self.family != "gaussian"

    @property
    def link(self) -> str | None:
        """The GLMM's link (canonical: logit, log), ``None`` for linear mixed models."""
        return LINK_OF_FAMILY.get(self.family)

    def formulas(self) -> dict[str, str]:
        """The tour's models, in formula syntax (names quoted as R would):
        ``{"intercept": "y ~ t + (1 | s)", "slope": "y ~ t + (t | s)"}``; without time only
        ``{"intercept": "y ~ 1 + (1 | s)"}``; counts with an exposure add
        ``offset(log(exposure))``."""
        y, s = quote_name(self.outcome), quote_name(self.subject)
        offset = (
            f" + offset(log({quote_name(self.exposure)}))"
            if self.exposure and self.family == "poisson"
            else ""
        )
        if self.time is None:
            return {INTERCEPT: f"{y} ~ 1{offset} + (1 | {s})"}
        t = quote_name(self.time)
        return {
            INTERCEPT: f"{y} ~ {t}{offset} + (1 | {s})",
            SLOPE: f"{y} ~ {t}{offset} + ({t} | {s})",
        }

    @property
    def slope_term(self) -> str | None:
        """The name of the time coefficient in a fit (``None`` without time)."""
        return None if self.time is None else quote_name(self.time)


@dataclass(frozen=True)
class TourPlan:
    """The steps the data allow, in order, and those skipped with the reason."""

    columns: TourColumns
    steps: tuple[StepSpec, ...]
    skipped: tuple[tuple[StepSpec, str], ...]

    @property
    def n(self) -> int:
        """Number of steps shown."""
        return len(self.steps)

    def clamp(self, index: int) -> int:
        """``index`` kept within ``0 .. n - 1``."""
        return max(0, min(int(index), self.n - 1))


def plan_tour(columns: TourColumns) -> TourPlan:
    """The steps the roles allow: without a time role the steps that need time are skipped
    (reason in words), and the others use the model without time."""
    steps: list[StepSpec] = []
    skipped: list[tuple[StepSpec, str]] = []
    for step in STEPS:
        if step.needs_time and columns.time is None:
            skipped.append((step, "it needs a time column (set the time role on the Data page)"))
        else:
            steps.append(step)
    return TourPlan(columns, tuple(steps), tuple(skipped))


def naive_fit(result) -> pd.DataFrame:
    """ "One line for everyone": the fixed effects of ``result`` fitted as if its rows were
    independent, with ``estimate`` and ``std_error`` per coefficient.

    A linear mixed model gives ordinary least squares (:func:`lmm_core.model.ols.ols_fit`);
    a GLMM the GLM of its family and link without random effects, fitted by Fisher scoring
    (:func:`dashboard.analysis.glmm_shrinkage.own_fit`, the GLMM's offset and prior
    weights kept), with ``se = sqrt(diag((X'WX)^-1))``, ``W = w (dmu/deta)^2 / V(mu)``.

    Raises
    ------
    ModelError
        When the GLM has no finite maximum (a separated yes/no outcome).
    """
    design = result.design
    names = list(result.x_names)
    family = getattr(result, "family", None)
    if family is None:
        return ols_fit(design.X, design.y, names)
    x = np.asarray(design.X, dtype=float)
    y = np.asarray(result.y, dtype=float)
    w = np.asarray(getattr(result.data, "weights", np.ones(len(y))), dtype=float)
    offset = np.asarray(result.data.offset, dtype=float)
    beta, ok = own_fit(family, x, y, w, offset)
    if not ok:
        raise ModelError(
            "The model without random effects has no finite estimate (the outcome is "
            "separated by the covariates)."
        )
    eta = offset + x @ beta
    mu = family.link.linkinv(eta)
    weight = w * family.link.mu_eta(eta) ** 2 / np.maximum(family.variance(mu), 1e-300)
    cov = np.linalg.inv(x.T @ (weight[:, None] * x))
    return pd.DataFrame(
        {"estimate": beta, "std_error": np.sqrt(np.diag(cov))}, index=pd.Index(names)
    )
