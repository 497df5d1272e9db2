"""Stage 2, specification and data to the model's matrices and random-effects terms.

- :mod:`~lmm_core.design.model_matrix`: formula variables evaluated on a table, R's
  treatment-contrast coding;
- :mod:`~lmm_core.design.build`: ``y``, ``X`` (aliased columns dropped) and the terms, as lme4's
  ``lFormula`` (:func:`~lmm_core.design.build.build_design`);
- :mod:`~lmm_core.design.reterms`: one ``(lhs | group)`` evaluated on the rows used;
- :mod:`~lmm_core.design.covariance`: covariance structures, ``theta`` to the relative
  covariance factor of a term (a new structure is a new class there).

Imports :mod:`lmm_core.formula`; numpy and pandas.
"""
