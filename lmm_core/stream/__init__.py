"""Fits from tables that need not fit in memory: streamed cross-products (DuckDB, Spark).

:func:`fit_lmm_stream` takes a Parquet file or folder, a CSV file, a DuckDB table
(:class:`Source`) or an Arrow table or dataset;
``lmm_core.fit_lmm`` sends anything that is not a pandas DataFrame here.
:func:`fit_glmm_stream` fits a GLMM on DuckDB, one pass per iteration of penalized IRLS
(:mod:`lmm_core.stream.glmm`); :func:`glmm_on_sample` evaluates such a fit on a sample of
its patients' rows (:mod:`lmm_core.stream.glmm_sample`). A formula with a covariance
structure of the visits (``us(visit | patient)``, an MMRM) is fitted from each pattern of
visits' summed products (:mod:`lmm_core.stream.mmrm`), returning a
:class:`StreamedMMRMResult`. See
:mod:`lmm_core.stream.fit` for the passes; ``engine="spark"`` runs them as Spark jobs
(:mod:`lmm_core.stream.spark`).
"""

from lmm_core.stream.fit import Progress, fit_blocks, fit_lmm_stream
from lmm_core.stream.glmm import StreamedGLMMResult, fit_glmm_stream
from lmm_core.stream.glmm_sample import SampledGLMMResult, glmm_on_sample
from lmm_core.stream.mmrm_results import StreamedMMRMResult
from lmm_core.stream.plan import StreamPlan, block_memory, plan_stream
from lmm_core.stream.results import StreamedLMMResult
from lmm_core.stream.sources import DuckDBEngine, DuckDBTable, Source, as_source

__all__ = [
    "DuckDBEngine",
    "DuckDBTable",
    "Progress",
    "SampledGLMMResult",
    "Source",
    "StreamPlan",
    "StreamedGLMMResult",
    "StreamedLMMResult",
    "StreamedMMRMResult",
    "as_source",
    "block_memory",
    "fit_blocks",
    "fit_glmm_stream",
    "fit_lmm_stream",
    "glmm_on_sample",
    "plan_stream",
]
