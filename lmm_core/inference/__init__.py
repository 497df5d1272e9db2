"""Stage 4a, uncertainty and tests on a fitted model.

- :mod:`~lmm_core.inference.fixed_effects`: t and F tests, contrasts, type-III ANOVA, with
  :mod:`~lmm_core.inference.satterthwaite` or :mod:`~lmm_core.inference.kenward_roger`
  degrees of freedom (behind :meth:`LMMResult.fixef_table <lmm_core.model.results.LMMResult>`);
- :mod:`~lmm_core.inference.profile` and :mod:`~lmm_core.inference.bootstrap`: likelihood-profile
  and parametric-bootstrap intervals;
- :mod:`~lmm_core.inference.lrt` and :mod:`~lmm_core.inference.nesting`: likelihood-ratio tests
  between nested fits and whether they are nested;
- :mod:`~lmm_core.inference.variance_explained`: ICC and R-squared.

Imports :mod:`lmm_core.model` and the stages below it; never :mod:`lmm_core.predict`.
"""
