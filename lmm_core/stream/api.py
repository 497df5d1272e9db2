"""The public ``lmm_core.fit_lmm``: a pandas DataFrame is fitted in memory, any other
source (Parquet, CSV, DuckDB table, Arrow, Spark DataFrame) by streaming
(:mod:`lmm_core.stream.fit`; on Spark with ``engine="spark", spark=session``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmm_core.errors import ModelError
from lmm_core.glmm.fit import fit_glmm as fit_glmm_frame
from lmm_core.glmm.results import GLMMResult
from lmm_core.model.fit import FitOptions
from lmm_core.model.fit import fit_lmm as fit_lmm_frame
from lmm_core.model.results import LMMResult
from lmm_core.stream.fit import fit_lmm_stream
from lmm_core.stream.glmm import fit_glmm_stream


def fit_lmm(
    formula: str,
    data: object,
    *,
    reml: bool = True,
    options: FitOptions | None = None,
    start: np.ndarray | None = None,
    **stream_options: object,
) -> LMMResult:
    """Fit a linear mixed model by REML (default) or maximum likelihood.

    Parameters
    ----------
    formula
        lme4-style formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data
        A pandas DataFrame (fitted in memory: :func:`lmm_core.model.fit.fit_lmm`), or a
        table too large for memory: a Parquet file/folder, a CSV file, a DuckDB table
        (``lmm_core.stream.Source.duckdb(path, table)``), an Arrow table or dataset, or a
        Spark DataFrame (streamed: :func:`lmm_core.stream.fit.fit_lmm_stream`, which returns a
        :class:`~lmm_core.stream.results.StreamedLMMResult`).
    reml, options, start
        REML or ML, optimizer settings, starting ``theta``.
    **stream_options
        For a streamed fit: ``engine`` (``"duckdb"`` or ``"spark"``), ``spark`` (the
        SparkSession), ``batch_size``, ``max_memory_gib``, ``progress``, ``threads``. A pandas
        DataFrame given with any of them is streamed too (``engine="spark"``: sent to Spark).
    """
    if isinstance(data, pd.DataFrame) and not stream_options:
        return fit_lmm_frame(formula, data, reml=reml, options=options, start=start)
    return fit_lmm_stream(formula, data, reml=reml, options=options, start=start, **stream_options)


def fit_glmm(
    formula: str,
    data: object,
    family: str = "binomial",
    link: str | None = None,
    nagq: int = 1,
    weights: str | None = None,
    **stream_options: object,
) -> GLMMResult:
    """Fit a generalized linear mixed model (binomial, Poisson) as lme4's ``glmer``.

    A pandas DataFrame is fitted in memory (:func:`lmm_core.glmm.fit.fit_glmm`, every option);
    any other source (Parquet, CSV, DuckDB table, Arrow), or a DataFrame given with stream
    options (``batch_size``, ``progress``, ``threads``, ``max_memory_gib``, ``engine``), by
    streaming on DuckDB with the Laplace approximation
    (:func:`lmm_core.stream.glmm.fit_glmm_stream`: one pass over the rows per iteration of
    penalized IRLS, the cost said before fitting), returning a
    :class:`~lmm_core.stream.glmm.StreamedGLMMResult`.

    Raises
    ------
    ModelError
        For a streamed fit with ``nagq > 1`` or ``weights`` (use ``cbind(successes,
        failures)``), on Spark, and as the in-memory fit.
    """
    if isinstance(data, pd.DataFrame) and not stream_options:
        return fit_glmm_frame(formula, data, family, link, nagq, weights)
    if nagq != 1:
        raise ModelError(
            f"A streamed GLMM is fitted by the Laplace approximation (nagq = 1), not nagq = "
            f"{nagq!r}: quadrature is fitted on a DataFrame (a sample of patients)."
        )
    if weights is not None:
        raise ModelError(
            "A streamed binomial fit takes the trials through `cbind(successes, failures)`, "
            "not weights=; write the failures as a column (or an expression such as "
            "`cbind(events, n - events)`)."
        )
    return fit_glmm_stream(formula, data, family, link, **stream_options)


__all__ = ["fit_glmm", "fit_lmm"]
