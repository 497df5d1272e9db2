"""The data columns a fitted model reads, and the grouping factor of the subject column.

Pure functions of the fitted formula (no Streamlit, no numbers): the response, the covariates
of the fixed part and of the random terms' left-hand sides, and the grouping columns after
``|``, each in formula order. The Trajectories, Prediction and Shrinkage pages and their
figures ask these questions of a fit; they are answered here once.
"""

from __future__ import annotations

from lmm_core import LMMResult
from lmm_core.formula.grammar import names_in

__all__ = ["model_columns", "model_variables", "subject_group"]


def _names(result: LMMResult) -> tuple[list[str], list[str], list[str]]:
    """Columns of the response, every column the formula names, and the grouping columns,
    each without repeats in formula order."""
    spec = result.design.spec
    response = [nm.name for nm in names_in(spec.response)]
    named = list(dict.fromkeys(nm.name for nm in spec.column_refs()))
    groups = list(dict.fromkeys(g.name for r in spec.random for g in r.group_vars))
    return response, named, groups


def model_columns(result: LMMResult) -> tuple[str, list[str], list[str]]:
    """``(response column, covariate columns, grouping columns)`` of a fitted model.

    Covariates are the data columns of the fixed part and of the random terms' left-hand
    sides, in formula order; grouping columns are those after ``|``. The response column is
    the first column the response names (``weight`` in ``log(weight)``); any other column of
    the response is listed among the covariates.
    """
    response, named, groups = _names(result)
    covariates = [n for n in named if n != response[0] and n not in groups]
    return response[0], covariates, groups


def model_variables(result: LMMResult) -> list[str]:
    """Data columns of the fixed part and of the random terms' left-hand sides, without any
    column of the response or a grouping column, in formula order."""
    response, named, groups = _names(result)
    return [n for n in named if n not in groups and n not in response]


def subject_group(result: LMMResult, subject: str | None) -> str:
    """The grouping factor of the subject column: ``subject`` itself when the model groups
    by it, else the grouping factor with most levels (``result.ngroups``)."""
    groups = result.ngroups
    if subject is not None and subject in groups:
        return subject
    return max(groups, key=groups.get)
