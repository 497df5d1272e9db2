"""lmm_core: an exact REML/ML engine for linear mixed models (numpy, scipy, pandas).

lme4's model and profiled criterion, MixedModels.jl's blocked Cholesky, our own formula
grammar. The public API is what this package exports (``__all__``)::

    from lmm_core import fit_lmm, lrt

    res = fit_lmm("Reaction ~ Days + (Days | Subject)", df, reml=True)
    res.fixef, res.vcov, res.fixef_table()      # lme4 names; df, t, p, intervals
    res.sigma, res.theta, res.varcorr_table()   # variance components as VarCorr()
    res.ranef, res.ranef_sd                     # conditional modes and their SDs
    res.objective, res.loglik, res.aic, res.bic
    res.predict(newdata, include_re=True)
    lrt(res_a, res_b)                           # lme4's anova(): ML refits of REML fits

with tests and intervals (``anova_table``, ``contrast_test``, ``profile_confint``,
``parametric_bootstrap``), ICC and R-squared (``icc``, ``icc_curve``, ``r2_nakagawa``),
simulation (``simulate``, ``simulate_from_formula``) and the typed errors (``LMMError`` and
its subclasses), whose messages are written for the user. The README describes the model
and how the engine is checked against lme4.

The engine is organised by stage, each subpackage importing only the ones before it
(``.importlinter`` holds the contracts): :mod:`~lmm_core.formula` (text to a model
specification), :mod:`~lmm_core.design` (data to matrices, random-effects terms and their
covariance structures), :mod:`~lmm_core.model` (profiled deviance, optimizer, fit, results),
then :mod:`~lmm_core.inference` and :mod:`~lmm_core.predict` side by side, and
:mod:`~lmm_core.simulation` (trial simulator, teaching lab) on top; :mod:`~lmm_core.errors`
and :mod:`~lmm_core.datasets` (the example data) stand alone.
"""

from lmm_core.errors import (
    ComparisonError,
    DataError,
    FormulaError,
    LMMError,
    ModelError,
)
from lmm_core.glmm import GLMMResult
from lmm_core.glmm.simulate import simulate_glmm
from lmm_core.inference import (
    mmrm_fixef,  # noqa: F401  (installs MMRM fixef_table methods)
    mmrm_random_fixef,  # noqa: F401  (and those of MMRM + random)
)
from lmm_core.inference.bootstrap import BootstrapResult, parametric_bootstrap
from lmm_core.inference.estimable import type3_tests
from lmm_core.inference.fixed_effects import (
    ContrastTest,
    anova_table,
    contrast_test,
    fixef_inference,
)
from lmm_core.inference.glmm_bootstrap import pb_lrt
from lmm_core.inference.glmm_lrt import glmm_lrt
from lmm_core.inference.glmm_profile import GLMMProfile, glmm_profile_confint
from lmm_core.inference.kenward_roger import KenwardRogerTooLarge
from lmm_core.inference.lrt import lrt
from lmm_core.inference.lrt_table import chibar_pvalue
from lmm_core.inference.lsmeans import lsmeans, lsmeans_contrasts
from lmm_core.inference.profile import LikelihoodProfile, profile_confint
from lmm_core.inference.variance_explained import icc, icc_curve, r2_nakagawa
from lmm_core.model.fit import FitOptions, fit_design
from lmm_core.model.optimize import OptimizerOptions, OptSummary
from lmm_core.model.results import LMMResult
from lmm_core.model.simulate import simulate, simulate_from_formula, theta_from_covariances
from lmm_core.stream import Source, StreamedLMMResult, fit_lmm_stream
from lmm_core.stream.api import fit_glmm, fit_lmm

__all__ = [
    "BootstrapResult",
    "ComparisonError",
    "ContrastTest",
    "DataError",
    "FitOptions",
    "FormulaError",
    "GLMMProfile",
    "GLMMResult",
    "KenwardRogerTooLarge",
    "LMMError",
    "LMMResult",
    "LikelihoodProfile",
    "ModelError",
    "OptSummary",
    "OptimizerOptions",
    "Source",
    "StreamedLMMResult",
    "anova_table",
    "chibar_pvalue",
    "contrast_test",
    "fit_design",
    "fit_glmm",
    "fit_lmm",
    "fit_lmm_stream",
    "fixef_inference",
    "glmm_lrt",
    "glmm_profile_confint",
    "icc",
    "icc_curve",
    "lrt",
    "lsmeans",
    "lsmeans_contrasts",
    "parametric_bootstrap",
    "pb_lrt",
    "profile_confint",
    "r2_nakagawa",
    "simulate",
    "simulate_from_formula",
    "simulate_glmm",
    "theta_from_covariances",
    "type3_tests",
]
