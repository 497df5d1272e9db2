"""What the Compare page's sections share: how their tables show numbers, the cached fit of a
formula, and keeping a section's fits as the session's fitted models."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from dashboard.analysis.compare_glmm import is_glmm
from dashboard.analysis.mmrm_models import is_mmrm
from dashboard.analysis.records import FitRecord
from dashboard.state import cached
from dashboard.state.fits import active_record, add_fit, next_name, set_active
from dashboard.state.jobs import Job
from dashboard.state.session import Keys
from dashboard.views.help import column
from lmm_core import LMMResult

__all__ = [
    "DELTA_COLUMNS",
    "DELTA_HELP",
    "LRT_COLUMNS",
    "CRITERIA_COLUMNS",
    "RULES",
    "cached_fit",
    "linear_only",
    "keep_fits",
    "show_kept_notice",
]

#: How the numbers of this page's tables are shown (dashboard.base.numbers.styled): criteria with
#: two decimals (read as differences), p-values by the p rule, statistics by 4 digits.
RULES: dict[str, int | str] = {
    **dict.fromkeys(["AIC", "BIC", "logLik", "deviance", "criterion"], "criterion"),
    **dict.fromkeys(["delta_AIC", "delta_BIC"], "criterion"),
    **dict.fromkeys(["Pr(>Chisq)", "p (chi-square)", "p (chi-bar-square)", "p"], "p"),
    **dict.fromkeys(["npar", "Df"], "int"),
    "Chisq": 4,
    "seconds": 2,
}
LRT_COLUMNS = {
    "npar": column("parameters", "npar"),
    "AIC": column("aic", "AIC"),
    "BIC": column("bic", "BIC"),
    "logLik": column("loglik", "logLik"),
    "deviance": column("deviance", "deviance"),
    "Chisq": column("lrt", "Chisq"),
    "Df": st.column_config.NumberColumn(
        "Df", help="Number of parameters the model adds to the row above."
    ),
    "Pr(>Chisq)": column("p_value", "Pr(>Chisq)"),
}
#: the columns of the criteria shared by the tables of fits: ``npar``, ``logLik``, AIC, BIC
CRITERIA_COLUMNS = {name: LRT_COLUMNS[name] for name in ("npar", "logLik", "AIC", "BIC")}
DELTA_HELP = (
    "How much higher this model's {0} is than the lowest {0} in the table: 0 is the "
    "preferred model; under 2 is a tie, above 10 a clear difference."
)
#: the columns ``delta_AIC`` and ``delta_BIC``: the distance from the lowest value
DELTA_COLUMNS = {
    f"delta_{name}": st.column_config.NumberColumn(f"delta {name}", help=DELTA_HELP.format(name))
    for name in ("AIC", "BIC")
}


def linear_only(section: str, record: FitRecord | None) -> str | None:
    """The one sentence of a section that refits linear random-effects models (the curve
    shapes, the ladder) when the active model is not one: a GLMM (binary or count outcome)
    or a model with a covariance of the visits, whose term the section would drop. ``None``
    when the active model is a linear random-effects model (or there is none)."""
    if record is None:
        return None
    if is_glmm(record.result):
        return (
            f"{section} refits linear mixed models of a continuous outcome; the active model "
            "is a GLMM of a binary or count outcome, so this section does not apply to it."
        )
    if is_mmrm(record.result):
        return (
            f"{section} works on random-effects models: the active model has a covariance of "
            "the visits (an MMRM term), which its refits would drop."
        )
    return None


def cached_fit(
    data_key: str, reml: bool, frame: pd.DataFrame, job: Job | None = None
) -> Callable[[str], LMMResult]:
    """A fit of one formula to ``frame`` by REML or ML, through the app's fit cache
    (:func:`dashboard.state.cached.fit_model`, keyed by ``data_key``; in ``job``'s child
    process when given)."""
    return lambda formula: cached.fit_model(data_key, formula, reml, frame, job)


def keep_fits(
    records_of: Callable[..., list[FitRecord]], data_key: str, notice_key: str, none_new: str
) -> None:
    """Store a section's fits as the session's fitted models, each with the next free name;
    the active model stays active.

    ``records_of(data_key=..., data_name=..., existing=...)`` gives the records not already
    among the fitted models (:func:`dashboard.analysis.curve_shape.curve_records`,
    :func:`dashboard.analysis.ladder.ladder_records` with their first argument bound).
    ``notice_key`` gets the sentence :func:`show_kept_notice` shows once (``none_new`` when
    every fit is already kept).
    """
    records = records_of(
        data_key=data_key,
        data_name=st.session_state[Keys.DATA_NAME],
        existing=st.session_state[Keys.FITS],
    )
    before = active_record()
    names = []
    for record in records:
        record = record.renamed(next_name(record.name))
        add_fit(record)
        names.append(record.name)
    if before is not None:
        set_active(before.name)
    st.session_state[notice_key] = (
        f"Added {', '.join(names)} to the fitted models (see the sidebar)." if names else none_new
    )


def show_kept_notice(notice_key: str) -> None:
    """The sentence :func:`keep_fits` left in ``notice_key``, shown once."""
    notice = st.session_state.get(notice_key)
    if notice:
        st.success(notice)
        st.session_state[notice_key] = None
