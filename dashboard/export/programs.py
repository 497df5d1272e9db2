"""The three programs of a fit record (Python, R, SAS): the Export page's and the report's
entry point. Pure (no Streamlit).

A record of a linear mixed model gives ``fit_lmm`` / ``lmer`` (or ``mmrm``, ``nlme::lme``) /
PROC MIXED; a GLMM record (its ``family`` not ``"gaussian"``) gives ``fit_glmm`` / ``glmer``
/ PROC GLIMMIX with its family, link, quadrature points and prior weights.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from dashboard.export.code import python_code, r_code
from dashboard.export.glmm_code import GLMMSettings, glmm_settings
from dashboard.export.sas_code import sas_code

__all__ = ["record_glmm", "record_programs"]


def record_glmm(record: Any) -> GLMMSettings | None:
    """The GLMM settings of a fit record (``None`` for a linear mixed model).

    Records that predate GLMMs have no ``family``: they are Gaussian. ``weights`` (the
    trials of a proportion response) is read when the record has it.
    """
    return glmm_settings(
        getattr(record, "family", "gaussian"),
        getattr(record, "link", None),
        getattr(record, "nagq", 1),
        getattr(record, "weights", None),
    )


def record_programs(
    record: Any, data: pd.DataFrame, file_name: str, df_method: str
) -> dict[str, str]:
    """``{"Python": ..., "R": ..., "SAS": ...}``: code that refits ``record`` on the data
    file ``file_name`` (the rows of ``data``)."""
    title = f"{record.name} (LMM Explorer, data {record.data_name})"
    args = (record.formula, record.reml, file_name, data)
    common: dict[str, Any] = {
        "title": title,
        "bases": record.result.design.bases,
        "glmm": record_glmm(record),
    }
    return {
        "Python": python_code(*args, **common),
        "R": r_code(*args, df_method=df_method, **common),
        "SAS": sas_code(*args, df_method=df_method, **common),
    }
