"""Stage 3, estimation: the profiled criterion, its minimisation and the fitted model.

- :mod:`~lmm_core.model.linalg`: batched kernels for stacks of small blocks;
- :mod:`~lmm_core.model.deviance`: the profiled REML/ML criterion over a blocked Cholesky;
- :mod:`~lmm_core.model.optimize` (with :mod:`~lmm_core.model.starts` and the NLopt wrapper
  :mod:`~lmm_core.model.bobyqa`): minimising it over ``theta`` and checking the optimum;
- :mod:`~lmm_core.model.fit`: :func:`~lmm_core.model.fit.fit_lmm`, the stages in lme4's order;
- :mod:`~lmm_core.model.results`: the fitted model, :class:`~lmm_core.model.results.LMMResult`
  (printed by :mod:`~lmm_core.model.summary`);
- :mod:`~lmm_core.model.simulate`: responses drawn from a fit or from given parameters;
- :mod:`~lmm_core.model.ols`: the fixed effects by least squares (rows taken as independent).

Imports :mod:`lmm_core.design` and :mod:`lmm_core.formula`.
"""
