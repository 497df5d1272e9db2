"""A streamed GLMM seen on a sample of its patients.

A GLMM fitted by streaming (:class:`lmm_core.stream.glmm.StreamedGLMMResult`) keeps no rows:
its ``eta``, ``y`` and the design's arrays are empty, so the pages that draw patients
(trajectories, shrinkage, residual plots, the forecast) have nothing to draw. The app holds a
sample of whole patients of the same file (:mod:`dashboard.state.server_data`);
:func:`glmm_on_sample` evaluates the fitted model on those rows, as
:meth:`lmm_core.stream.results.StreamedLMMResult.on_sample` does for a linear mixed model:

* the estimates stay those of the whole file (``theta``, ``beta``, ``vcov``, log-likelihood,
  AIC, BIC, ``nobs``, ``ngroups``, passes and timings);
* the response ``y`` (a 0/1 outcome, a count, or ``s / (s + f)`` of ``cbind(s, f)`` with
  weight ``s + f``), the offset, ``X`` and each random-effects term are evaluated on the
  sample's rows with the fit's recipes (factor levels, centring), rows with a missing value
  left out as the fit left them out;
* each term keeps only the levels present in the sample, with the whole fit's conditional
  modes ``b`` and covariances, so that ``eta = offset + X beta + sum_k z_k' b_k`` and
  ``fitted = g^-1(eta)`` on the sample are the whole fit's values for those rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np
import pandas as pd

from lmm_core.design.build import term_matrix
from lmm_core.design.model_matrix import Evaluator
from lmm_core.glmm.results import GLMMResult
from lmm_core.stream.glmm import StreamedGLMMResult
from lmm_core.stream.results import sample_rows

__all__ = ["SampledGLMMResult", "glmm_on_sample"]


@dataclass(frozen=True)
class SampledGLMMResult(StreamedGLMMResult):
    """A streamed GLMM seen on a sample of its groups (:func:`glmm_on_sample`).

    Attributes
    ----------
    whole
        The streamed fit of every row.
    sample
        The sampled rows (whole groups); ``design.rows`` are positions in it.
    """

    whole: StreamedGLMMResult | None = field(default=None, repr=False, compare=False)
    sample: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def is_sample_view(self) -> bool:
        """Always True: the rows held are a sample's (as ``StreamedLMMResult``'s flag)."""
        return True

    @property
    def ngroups(self) -> dict[str, int]:
        """Levels of each grouping factor in the whole fit."""
        assert self.whole is not None
        return self.whole.ngroups

    @property
    def fitted(self) -> np.ndarray:
        """Fitted means ``g^-1(eta)`` on the sample's rows used."""
        return self.family.link.linkinv(self.eta)

    def predict(self, newdata=None, include_re: bool = True, scale: str = "response"):
        """As :meth:`GLMMResult.predict`; without ``newdata``, on the sample's rows used."""
        return GLMMResult.predict(self, newdata, include_re=include_re, scale=scale)


def _response(result: StreamedGLMMResult, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(y, prior weights)`` of the sample's rows (NaN where an input is missing)."""
    design = result.design
    spec = design.spec
    if spec.cbind is None:
        y = np.asarray(design.response_values(frame), dtype=float)
        return y, np.ones(y.size)
    ev = Evaluator(frame, design.stats, new_data=True)
    s, f = (np.asarray(ev.variable(node).values, dtype=float) for node in spec.cbind)
    w = s + f
    y = np.divide(s, w, out=np.zeros_like(s), where=w > 0)
    return np.where(np.isfinite(w), y, np.nan), w


def glmm_on_sample(result: StreamedGLMMResult, sample: pd.DataFrame) -> SampledGLMMResult:
    """The streamed GLMM ``result`` seen on ``sample`` (whole groups of the fitted table).

    Parameters
    ----------
    result
        A streamed GLMM (or a view on another sample: its whole fit is used).
    sample
        Some groups' rows of the table that was fitted.

    Returns
    -------
    SampledGLMMResult
        The whole fit's estimates with the sample's rows (see the module docstring).

    Raises
    ------
    DataError
        When no row of ``sample`` is used by the model, or a row has a level the fit has not
        seen (the table changed since the fit).
    """
    base = result.whole if isinstance(result, SampledGLMMResult) else result
    assert base is not None
    design = base.design
    frame = sample.reset_index(drop=True)
    y, w = _response(base, frame)
    offset = base.data.offset_values(frame) if design.has_offset else np.zeros(len(frame))
    X = design.fixed_matrix(frame)
    evaluated = [term_matrix(t, frame) for t in base.reterms]
    finite = np.isfinite(y) & np.isfinite(w) & np.isfinite(offset) & np.isfinite(X).all(axis=1)
    rows = sample_rows(finite, evaluated)
    terms, modes, covs = [], [], []
    for t, (codes, z), b, cov in zip(base.reterms, evaluated, base.b, base.cond_cov, strict=True):
        present = np.unique(codes[rows])
        kept = tuple(t.levels[i] for i in present.tolist())
        recipe = replace(t.rebuild, levels=kept) if t.rebuild is not None else None
        new_codes = np.searchsorted(present, codes[rows])
        terms.append(replace(t, levels=kept, codes=new_codes, z=z[rows], rebuild=recipe))
        modes.append(b[present])
        covs.append(cov[present])
    eta = offset[rows] + X[rows] @ base.beta
    for t, b in zip(terms, modes, strict=True):
        eta = eta + np.einsum("ij,ij->i", t.z, b[t.codes])
    view_design = replace(
        design,
        y=y[rows],
        X=X[rows],
        reterms=tuple(terms),
        rows=rows,
        n_dropped=len(frame) - rows.size,
        offset=offset[rows],
    )
    data = replace(base.data, design=view_design, y=y[rows], weights=w[rows], offset=offset[rows])
    data = replace(data, rows=rows)
    kept_fields = {f.name: getattr(base, f.name) for f in fields(StreamedGLMMResult)}
    kept_fields.update(b=tuple(modes), cond_cov=tuple(covs), eta=eta, data=data)
    return SampledGLMMResult(**kept_fields, whole=base, sample=frame)
