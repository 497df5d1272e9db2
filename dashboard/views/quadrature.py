"""The "Laplace vs quadrature" section: refit a GLMM with 1 to 25 points and judge Laplace.

Self-contained: any page calls :func:`quadrature_section` with a fitted
:class:`lmm_core.GLMMResult`. The refits run as a job of the app's runner (progress, Cancel,
they go on across page switches); the finished ladder is kept in the session under the fit's
id (:func:`fit_id`), so it is shown again whenever the same fit is.
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from dashboard.analysis.quadrature import (
    NAGQ_STEPS,
    display_table,
    quadrature_ladder,
    quadrature_refusal,
    verdict,
)
from dashboard.base.numbers import MISSING, styled
from dashboard.figures.quadrature import quadrature_figure
from dashboard.help.texts import help_text
from dashboard.state.isolation import in_child
from dashboard.state.session import Keys
from dashboard.views import jobs as jobs_view
from dashboard.views.widgets import show_figure
from lmm_core import GLMMResult

__all__ = ["KIND", "fit_id", "quadrature_section"]

KIND = "quadrature"  # job kind
KEEP = 8  # ladders kept per session
LEVEL_BOX = {"good": st.success, "loglik": st.info, "caution": st.warning, "poor": st.error}


def fit_id(result: GLMMResult) -> str:
    """A content id of the fitted model: formula, family, link and the evaluated data."""
    h = hashlib.sha256()
    h.update(f"{result.formula}|{result.family.name}|{result.link}|{result.nagq}".encode())
    d = result.data
    for part in (d.y, d.weights, d.offset, result.design.X, *(t.codes for t in result.reterms)):
        h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()[:20]


def _start(result: GLMMResult, fid: str) -> None:
    def store(ladder) -> str:
        kept = st.session_state[Keys.QUADRATURE_RESULTS]
        kept[fid] = ladder
        while len(kept) > KEEP:
            kept.pop(next(iter(kept)))
        return "Laplace vs quadrature: the refits are done."

    jobs_view.launch(
        (KIND, fid),
        in_child(quadrature_ladder, result),
        kind=KIND,
        label=f"Refitting with {len(NAGQ_STEPS)} numbers of quadrature points",
        store=store,
    )


def quadrature_section(result: GLMMResult, key: str = "quadrature") -> None:
    """Explain, offer the refits, and show the ladder, its figure and the verdict.

    ``key`` prefixes the widget keys (two sections on one page need different ones).
    """
    st.markdown(
        "The GLMM's likelihood integrates over each subject's random effect. The **Laplace "
        "approximation** (nagq = 1, the default of glmer and of this app) replaces that "
        "integral by a Gaussian guess; **adaptive Gauss-Hermite quadrature** with more points "
        "computes it ever more exactly. Refitting with more points shows whether the Laplace "
        "numbers can be trusted for these data.",
        help=help_text("laplace_quadrature"),
    )
    refusal = quadrature_refusal(result)
    if refusal is not None:
        st.info(refusal)
        return
    fid = fit_id(result)
    jobs_view.show_notice(KIND)
    steps = ", ".join(str(q) for q in NAGQ_STEPS)
    if st.button(
        f"Refit with nagq = {steps}",
        key=f"{key}_run",
        help="Six fits of the same model; they take from under a second to a minute.",
    ):
        _start(result, fid)
    if jobs_view.show_progress((KIND, fid)):
        return
    ladder = st.session_state[Keys.QUADRATURE_RESULTS].get(fid)
    if ladder is None:
        st.info("Press the button to refit this model with more quadrature points.")
        return
    show_ladder(ladder, key)


def show_ladder(ladder, key: str = "quadrature") -> None:
    """The verdict, the figure and the table of a finished ladder."""
    v = verdict(ladder)
    LEVEL_BOX[v.level](f"**{v.headline}** {v.text}")
    show_figure(
        quadrature_figure(ladder.table, ladder.estimates(), ladder.std_errors(), ladder.group),
        key=f"{key}_figure",
    )
    st.caption(
        "Left: each fixed effect's distance from its value with the most points, in its "
        "standard errors (0 on the right by construction). Middle and right: the SD of the "
        "random effect and the log-likelihood. When the lines are flat from nagq = 1 on, "
        "Laplace was enough; when they move and then settle, trust the settled values."
    )
    rules = {"nagq": "int", "log-likelihood": "criterion"}
    st.dataframe(styled(display_table(ladder), rules), hide_index=True, placeholder=MISSING)
