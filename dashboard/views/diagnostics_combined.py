"""The Diagnostics page for random effects above the patient with a covariance of the visits
(``(1 | hospital) + ar1(visit | patient)``): residuals normalized with each cluster's marginal
covariance, the outliers, the random effects' QQ plots and the correlation between a
patient's visits beside the data's (numbers from :mod:`dashboard.analysis.mmrm_diagnostics`)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.analysis import mmrm_diagnostics as md
from dashboard.analysis.chart_text import qq_sentence, residual_sentence
from dashboard.analysis.mmrm_models import structure_label
from dashboard.analysis.records import FitRecord
from dashboard.base.markup import code_span, escape_message
from dashboard.base.numbers import fmt
from dashboard.figures import diagnostics as fd
from dashboard.figures import mmrm_diagnostics as fm
from dashboard.help.texts import help_text
from dashboard.views.help import how_to_read
from dashboard.views.mmrm import normalized_outliers
from dashboard.views.widgets import show_figure
from lmm_core import LMMError

__all__ = ["render_combined_diagnostics"]


def _residuals(frame: pd.DataFrame, outcome: str, cluster: str | None) -> None:
    left, right = st.columns(2)
    with left:
        show_figure(
            fm.residuals_vs_fitted_figure(frame, outcome),
            key="diag_comb_resid",
            description=residual_sentence(frame["fitted"], frame["residual"], "raw residuals"),
        )
        st.caption(
            "Raw residuals y - Xb against the population mean: no trend (the smoother flat at "
            "0) and a similar spread everywhere."
        )
    with right:
        show_figure(
            fm.normalized_qq_figure(frame),
            key="diag_comb_qq",
            description=qq_sentence(frame["normalized"].to_numpy(), "normalized residuals"),
        )
        where = f"each {escape_message(cluster)}" if cluster else "the data (one cluster)"
        st.caption(
            f"Normalized residuals L_h^-1 r_h: the residuals of {where} with the model's "
            "correlation taken out, both the shared random effects and the covariance of a "
            "patient's visits (V_h = Z G Z' + the patients' visit covariances, V_h = L_h "
            "L_h'). Standard normal when the model is right.",
            help=help_text("normalized_residual"),
        )


def _ranef(result) -> None:
    show_figure(fd.ranef_qq_figure(fd.ranef_qq_panels(result)), key="diag_comb_ranef")
    st.caption(
        "One panel per random effect above the patient: each point is one group's estimated "
        "deviation (its conditional mode). The model assumes these are normal: judge the "
        "shape (points near the line), not the scale (the modes are shrunk towards 0)."
    )


def _correlation(result, visit: str) -> None:
    st.subheader("Correlation between visits: model vs data")
    corr = md.visit_correlations(result)
    st.metric(
        "Largest gap, model vs data",
        fmt(corr.largest_gap(), 2),
        help="The largest difference between the model's and the residuals' observed "
        "correlation over all pairs of visits.",
    )
    show_figure(
        fm.visit_correlation_figure(corr.model, corr.observed, corr.pairs, visit),
        key="diag_comb_corr",
    )
    st.caption(
        "Left: the correlation of two visits of one patient that the model implies, from "
        "the patient's marginal covariance Z_i G Z_i' + Sigma_i (the random effects above "
        "the patient add to every pair). Right: the correlation across patients of the "
        f"residuals y - Xb, from the patients seen at both visits (fewer than {md.MIN_PAIRS}: "
        "blank)."
    )


def render_combined_diagnostics(record: FitRecord, data: pd.DataFrame) -> None:
    """The Diagnostics page for random effects with a covariance of the visits."""
    result = record.result
    spec = result.design.spec.residual
    groups = ", ".join(f"{n:,} levels of {escape_message(g)}" for g, n in result.ngroups.items())
    st.markdown(
        f"{code_span(record.formula)} ({record.method}), {result.nobs:,} observations of "
        f"{result.n_subjects:,} patients in {groups}: random effects with a "
        f"{escape_message(structure_label(spec.structure))} covariance of the visits."
    )
    try:
        frame = md.mmrm_residuals(result, data)
    except LMMError as err:
        st.info(escape_message(str(err)))
        return
    cluster, _ = md.cluster_codes(result)
    _residuals(frame, result.response, cluster)
    normalized_outliers(frame, "diag_comb_outliers")
    _ranef(result)
    _correlation(result, spec.visit.name)
    how_to_read("normalized_residual", "covariance_structure", "blup")
