"""Stage 4b, what a fitted model says about data: predictions and covariances.

- :mod:`~lmm_core.predict.prediction`: population curves with bands, partial predictions;
- :mod:`~lmm_core.predict.forecast`: prediction intervals, forecasts for a new subject;
- :mod:`~lmm_core.predict.implied`: the covariance between repeated measurements a fit implies;
- :mod:`~lmm_core.predict.per_group`: each subject's own fit next to the mixed model's
  (shrinkage).

Imports :mod:`lmm_core.model` and the stages below it; never :mod:`lmm_core.inference`.
"""
