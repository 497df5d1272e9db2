"""lmm_core: an exact REML/ML engine for linear mixed models (numpy, scipy, pandas).

lme4's model and profiled criterion, MixedModels.jl's blocked Cholesky, our own formula
grammar. Public API (see DESIGN.md)::

    from lmm_core import fit_lmm, lrt
    res = fit_lmm("Reaction ~ Days + (Days | Subject)", df, reml=True)
"""

from lmm_core.errors import (
    ComparisonError,
    DataError,
    FormulaError,
    LMMError,
    ModelError,
)
from lmm_core.inference.bootstrap import BootstrapResult, parametric_bootstrap
from lmm_core.inference.fixed_effects import (
    ContrastTest,
    anova_table,
    contrast_test,
    fixef_inference,
)
from lmm_core.inference.kenward_roger import KenwardRogerTooLarge
from lmm_core.inference.lrt import chibar_pvalue, lrt
from lmm_core.inference.profile import LikelihoodProfile, profile_confint
from lmm_core.inference.variance_explained import icc, icc_curve, r2_nakagawa
from lmm_core.model.fit import FitOptions, fit_design, fit_lmm
from lmm_core.model.optimize import OptimizerOptions, OptSummary
from lmm_core.model.results import LMMResult
from lmm_core.model.simulate import simulate, simulate_from_formula, theta_from_covariances

__all__ = [
    "BootstrapResult",
    "ComparisonError",
    "ContrastTest",
    "DataError",
    "FitOptions",
    "FormulaError",
    "KenwardRogerTooLarge",
    "LMMError",
    "LMMResult",
    "LikelihoodProfile",
    "ModelError",
    "OptSummary",
    "OptimizerOptions",
    "anova_table",
    "chibar_pvalue",
    "contrast_test",
    "fit_design",
    "fit_lmm",
    "fixef_inference",
    "icc",
    "icc_curve",
    "lrt",
    "parametric_bootstrap",
    "profile_confint",
    "r2_nakagawa",
    "simulate",
    "simulate_from_formula",
    "theta_from_covariances",
]
