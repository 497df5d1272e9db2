"""The public ``lmm_core.fit_lmm``: a pandas DataFrame is fitted in memory, any other
source (Parquet, CSV, DuckDB table, Arrow, Spark DataFrame) by streaming
(:mod:`lmm_core.stream.fit`; on Spark with ``engine="spark", spark=session``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmm_core.model.fit import FitOptions
from lmm_core.model.fit import fit_lmm as fit_lmm_frame
from lmm_core.model.results import LMMResult
from lmm_core.stream.fit import fit_lmm_stream


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


__all__ = ["fit_lmm"]
