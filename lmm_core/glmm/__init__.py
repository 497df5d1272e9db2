"""Generalized linear mixed models (binomial and Poisson), as lme4's ``glmer``.

:func:`~lmm_core.glmm.fit.fit_glmm` reads lme4's formula (:mod:`~lmm_core.glmm.response`:
``cbind()``, ``offset()``, binary coding, weights), fits by the Laplace approximation through
penalized IRLS on the blocked Cholesky factor (:mod:`~lmm_core.glmm.pirls`,
:mod:`~lmm_core.glmm.factor`) or by adaptive Gauss-Hermite quadrature
(:mod:`~lmm_core.glmm.agq`), and returns a :class:`~lmm_core.glmm.results.GLMMResult`.
Families and links live in :mod:`~lmm_core.glmm.family`.
"""

from lmm_core.glmm.fit import fit_glmm
from lmm_core.glmm.results import GLMMResult

__all__ = ["GLMMResult", "fit_glmm"]
