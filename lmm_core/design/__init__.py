"""Stage 2, specification and data to the model's matrices and random-effects terms.

- :mod:`~lmm_core.design.model_matrix`: formula variables evaluated on a table, R's
  treatment-contrast coding;
- :mod:`~lmm_core.design.build`: ``y``, ``X`` (aliased columns dropped) and the terms, as lme4's
  ``lFormula`` (:func:`~lmm_core.design.build.build_design`);
- :mod:`~lmm_core.design.reterms`: one ``(lhs | group)`` evaluated on the rows used, and its
  relative covariance factor.

Imports :mod:`lmm_core.formula`; numpy and pandas.
"""
