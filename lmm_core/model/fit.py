"""``fit_lmm``: formula and data in, :class:`LMMResult` out, in lme4's stages.

1. :func:`lmm_core.design.build.build_design` parses the formula with our own grammar and builds
   ``y``, ``X`` (aliased columns dropped) and the random-effects terms (lme4's ``lFormula``);
2. :class:`lmm_core.model.deviance.ProfiledDeviance` forms the cross-products once
   (``mkLmerDevfun``);
3. :func:`lmm_core.model.optimize.optimize_theta` minimises it over ``theta`` and checks the optimum
   (``optimizeLmer`` + ``checkConv``);
4. the solution at the optimum is packed into an immutable :class:`LMMResult` (``mkMerMod``).

Each stage can be called on its own; :func:`fit_design` starts at stage 2.

An ``offset(o)`` term is a known part of the mean, ``y = X beta + Z b + o + e``: the Gaussian
model of ``y`` is then exactly the model of ``y - o`` without offset (lme4's ``lmer(...,
offset = o)``), which is what is fitted (:func:`fold_offset`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from lmm_core.design.build import build_design
from lmm_core.errors import DataError, ModelError
from lmm_core.formula.quoting import deparse
from lmm_core.model.deviance import ProfiledDeviance
from lmm_core.model.linalg import single_threaded_blas
from lmm_core.model.mmrm import MMRMCriterion, optimize_mmrm
from lmm_core.model.mmrm_random import RandomMMRMCriterion
from lmm_core.model.mmrm_random_optimize import optimize_random_mmrm
from lmm_core.model.mmrm_random_results import MMRMRandomResult
from lmm_core.model.mmrm_results import MMRMResult
from lmm_core.model.optimize import OptimizerOptions, OptSummary, optimize_theta
from lmm_core.model.results import LMMResult, is_singular_fit
from lmm_core.model.starts import moment_start


@dataclass(frozen=True)
class FitOptions:
    """Settings of a fit.

    Attributes
    ----------
    optimizer
        Tolerances of the optimizer and of the checks after it.
    singular_tol
        A diagonal element of ``theta`` below this marks a singular fit (lme4: 1e-4).
    """

    optimizer: OptimizerOptions = field(default_factory=OptimizerOptions)
    singular_tol: float = 1e-4


def fit_lmm(
    formula: str,
    data: pd.DataFrame,
    *,
    reml: bool = True,
    options: FitOptions | None = None,
    start: np.ndarray | None = None,
) -> LMMResult:
    """Fit a linear mixed model by REML (default) or maximum likelihood.

    Parameters
    ----------
    formula
        lme4-style formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data
        One row per observation. Rows with a missing value in a used column are left out and
        counted in ``result.messages``.
    reml
        REML if true, maximum likelihood otherwise.
    options
        Optimizer tolerances and checks.
    start
        Starting ``theta`` (lme4's default if omitted).

    Returns
    -------
    LMMResult

    Raises
    ------
    lmm_core.errors.LMMError
        With a message saying what to change, for any formula or data problem.
    """
    design = build_design(formula, data)
    return fit_design(design, reml=reml, options=options, start=start)


def fit_mmrm_design(design, *, reml: bool = True):
    """Fit a model with a covariance structure of the visits (:mod:`lmm_core.model.mmrm`),
    with random effects above the subject if any (:mod:`lmm_core.model.mmrm_random`)."""
    if design.reterms:
        with single_threaded_blas():
            rcrit = RandomMMRMCriterion(design, reml)
            ropt = optimize_random_mmrm(rcrit)
        messages = tuple(design.messages) + tuple(ropt.messages)
        return MMRMRandomResult(design.formula, design, reml, ropt, rcrit, messages)
    crit = MMRMCriterion(design, reml)
    opt = optimize_mmrm(crit)
    return MMRMResult(
        design.formula, design, reml, opt, crit, tuple(design.messages) + tuple(opt.messages)
    )


def fit_design(
    design,
    *,
    reml: bool = True,
    options: FitOptions | None = None,
    start: np.ndarray | None = None,
) -> LMMResult:
    """Fit a model whose design (``X``, ``y``, random-effects terms) is already built."""
    design = fold_offset(design)
    if design.residual is not None:
        return fit_mmrm_design(design, reml=reml)
    options = options or FitOptions()
    _check_magnitudes(design)
    _check_residual_variation(design)
    with single_threaded_blas():
        dev = ProfiledDeviance(design.X, design.y, design.reterms, reml)
        opt = optimize_theta(
            dev, start, options.optimizer, lambda: moment_start(design.X, design.y, design.reterms)
        )
        result = result_at_theta(design, opt.final, reml=reml, opt=opt, options=options, dev=dev)
    if result.sigma <= 1e-6 * max(float(np.std(design.y)), 1e-300):
        groups = ", ".join(dict.fromkeys(t.group for t in design.reterms))
        raise DataError(
            f"The outcome `{design.response}` hardly varies within {groups} once the fixed "
            "effects are accounted for (residual SD about zero): the model cannot separate "
            "residual variation from the random effects. Check the outcome column, or model "
            "the group means directly."
        )
    return result


OFFSET_MESSAGE = (
    "the offset {terms} is subtracted from the response: fitted values and residuals are "
    "those of `{response}` minus the offset; predict() adds the offset back, as lme4's"
)


def fold_offset(design):
    """The design of ``y - o`` without offset, for a design with ``offset(o)`` terms.

    Under ``y = X beta + Z b + o + e`` the likelihood of ``y`` equals that of ``y - o`` in the
    model without offset, so every estimate is unchanged; the returned design has
    ``y - o``, a zero offset, ``o`` as its ``folded_offset`` (folding twice changes nothing)
    and a note in its messages.

    Raises
    ------
    ModelError
        For a ``cbind(successes, failures)`` response (binomial, not Gaussian).
    """
    if design.trials is not None:
        raise ModelError(
            f"The response `{design.response}` has two columns (successes, failures): a "
            "two-column response is for binomial GLMMs: use fit_glmm (lmm_core.fit_glmm)."
        )
    if design.folded_offset is not None or not np.any(design.offset):
        return design
    terms = " + ".join(f"`{deparse(c)}`" for c in design.spec.offsets)
    note = OFFSET_MESSAGE.format(terms=terms, response=design.response)
    return replace(
        design,
        y=design.y - design.offset,
        offset=np.zeros_like(design.offset),
        folded_offset=design.offset,
        messages=tuple(design.messages) + (note,),
    )


def result_at_theta(
    design,
    theta: np.ndarray,
    *,
    reml: bool = True,
    opt: OptSummary | None = None,
    options: FitOptions | None = None,
    dev: ProfiledDeviance | None = None,
) -> LMMResult:
    """The model evaluated at a given ``theta`` (no optimization): beta, sigma, BLUPs...

    Used after optimizing, and to evaluate a model at parameters found elsewhere (for
    example lme4's estimates, or points of a likelihood profile).
    """
    options = options or FitOptions()
    design = fold_offset(design)
    dev = dev or ProfiledDeviance(design.X, design.y, design.reterms, reml)
    sol = dev.solve(np.asarray(theta, float))
    if opt is None:
        opt = OptSummary(
            initial=sol.theta,
            finitial=sol.objective,
            final=sol.theta,
            fmin=sol.objective,
            method="none (evaluated at a given theta)",
            converged=True,
        )
    cond_cov = dev.conditional_covariances(sol.factor, sol.sigma)
    fitted = design.X @ sol.beta
    for term, b in zip(design.reterms, sol.b, strict=True):
        fitted = fitted + np.einsum("ij,ij->i", term.z, b[term.codes])
    messages = list(design.messages) + list(opt.messages)
    if is_singular_fit(sol.theta, design.reterms, options.singular_tol):
        messages.append(SINGULAR_MESSAGE)
    return LMMResult(
        formula=design.formula,
        reml=bool(reml),
        **solution_fields(sol, cond_cov),
        fitted=fitted,
        residuals=design.y - fitted,
        design=design,
        opt=opt,
        messages=tuple(messages),
        singular_tol=options.singular_tol,
    )


def solution_fields(sol, cond_cov) -> dict:
    """The fields of an :class:`LMMResult` that come from the penalized least-squares
    solution at the optimum (``sol``, a :class:`~lmm_core.model.deviance.PLSSolution`) and
    the conditional covariances of the random effects."""
    return {
        "theta": sol.theta,
        "beta": sol.beta,
        "vcov_beta": sol.vcov_beta,
        "sigma": sol.sigma,
        "objective": sol.objective,
        "ldl2": sol.ldl2,
        "ldrx2": sol.ldrx2,
        "pwrss": sol.pwrss,
        "b": sol.b,
        "cond_cov": cond_cov,
    }


SINGULAR_MESSAGE = (
    "Singular fit: some variance or correlation of the random effects is estimated at its "
    "boundary (a variance of zero or a correlation of +/-1). The data show no evidence for "
    "that part of the random effects; consider a simpler model."
)


#: Largest absolute value allowed in y, X and Z: cross-products of larger values overflow.
MAX_MAGNITUDE = 1e150


def _check_magnitudes(design) -> None:
    """Refuse values whose squares overflow double precision (sums of squares become inf)."""
    columns = [(design.response, design.y)]
    columns += list(zip(design.x_names, design.X.T, strict=True))
    columns += [
        (f"{t.group}: {c}", t.z[:, j]) for t in design.reterms for j, c in enumerate(t.cnames)
    ]
    for name, values in columns:
        largest = float(np.max(np.abs(values))) if values.size else 0.0
        if largest > MAX_MAGNITUDE:
            raise DataError(
                f"`{name}` has values as large as {largest:.3g}: too large to compute with "
                "(their squares overflow). Rescale the column (e.g. change its unit) or "
                "remove the impossible values."
            )


def _check_residual_variation(design) -> None:
    """Refuse an outcome that the fixed effects explain exactly (nothing left to model)."""
    scale = float(np.max(np.abs(design.y))) if design.y.size else 0.0
    y = design.y / scale if np.isfinite(scale) and scale > 0 else design.y  # no overflow
    if design.p:
        beta, *_ = np.linalg.lstsq(design.X, y, rcond=None)
        resid = y - design.X @ beta
    else:
        resid = y
    if float(resid @ resid) <= 1e-20 * max(float(y @ y), 1e-300):
        what = "constant" if np.ptp(y) == 0 else "an exact function of the fixed effects"
        raise DataError(
            f"The outcome `{design.response}` is {what} in the rows used: there is no "
            "variation left for random effects or residuals to describe. Check that the "
            "right column is chosen as the outcome."
        )
