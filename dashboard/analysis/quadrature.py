"""Laplace vs adaptive quadrature: refit a GLMM with more points and judge the Laplace fit.

The Laplace approximation (``nagq = 1``) replaces each subject's integral over its random
effect by the value of a Gaussian matched at the mode. It is exact when the integrand is
Gaussian and poor when each subject contributes little information (binary outcomes, few
visits per subject, a large random-effect SD). Adaptive Gauss-Hermite quadrature with ``K``
points integrates exactly polynomials of degree ``2K - 1`` times that Gaussian; as ``K``
grows the log-likelihood and the estimates settle at the exact maximum-likelihood values.
lme4's vignette asks users to check this by hand; :func:`quadrature_ladder` refits the model
with ``nagq`` in :data:`NAGQ_STEPS` and :func:`verdict` reads the result:

* the largest shift of a fixed effect, ``max_j |beta_j(1) - beta_j(K)| / se_j(K)``;
* the relative change of the random-effect SD, ``|tau(1) - tau(K)| / tau(K)``;
* the change of the log-likelihood, ``|l(K) - l(1)|`` in log-likelihood units (the scale of
  likelihood-ratio tests, where 1.92 is the 5% cut-off of one degree of freedom; a relative
  change ``|l(K) - l(1)| / |l(K)|`` would shrink with the sample size and hide the error).

Only one scalar random effect can be integrated by quadrature (as in glmer):
:func:`quadrature_refusal` says why not otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.base.numbers import fmt
from lmm_core import LMMError
from lmm_core.glmm import GLMMResult
from lmm_core.glmm.fit import refit_quadrature

__all__ = [
    "LL_GOOD",
    "NAGQ_STEPS",
    "SD_GOOD",
    "SD_POOR",
    "SHIFT_GOOD",
    "SHIFT_POOR",
    "QuadratureLadder",
    "Verdict",
    "display_table",
    "quadrature_ladder",
    "quadrature_refusal",
    "refit",
    "verdict",
]

NAGQ_STEPS = (1, 3, 5, 9, 15, 25)
#: thresholds of the verdict: fine below every GOOD, poor above any POOR
SHIFT_GOOD, SHIFT_POOR = 0.1, 0.5  # fixed effects, in standard errors
SD_GOOD, SD_POOR = 0.05, 0.1  # random-effect SD, relative
LL_GOOD = 1.0  # log-likelihood units
#: between the two largest nagq, the ladder has settled when shifts are below these
SETTLED_SHIFT, SETTLED_LL = 0.02, 0.05

Report = Callable[[float | None, str], None]


def quadrature_refusal(result: GLMMResult) -> str | None:
    """Why quadrature cannot be used for this fit (a sentence), or ``None`` when it can."""
    if getattr(result, "is_sample_view", False):
        return (
            "This GLMM was fitted by streaming the whole file, by the Laplace approximation "
            "only (quadrature would need the rows of every patient in memory); a refit with "
            "quadrature on the sampled patients would not be comparable with it."
        )
    terms = result.reterms
    if len(terms) == 1 and terms[0].n_columns == 1:
        return None
    what = ", ".join(
        f"({' + '.join('1' if c == '(Intercept)' else c for c in t.cnames)} | {t.group})"
        for t in terms
    )
    return (
        "Adaptive quadrature integrates over one random effect per subject only: it needs a "
        f"single random intercept such as (1 | {terms[0].group}), and this model has {what}. "
        "With several random effects the integral has several dimensions and the number of "
        "points grows as their power, so glmer (and this app) offer only the Laplace "
        "approximation; to check it, fit the model with a random intercept alone and compare."
    )


def refit(result: GLMMResult, nagq: int) -> GLMMResult:
    """The same model (rows, weights, offset, family) fitted with ``nagq`` points."""
    if nagq == result.nagq:
        return result
    refusal = quadrature_refusal(result)
    if nagq > 1 and refusal is not None:
        raise LMMError(refusal)
    return refit_quadrature(result, int(nagq))


@dataclass(frozen=True)
class QuadratureLadder:
    """The refits, one row per ``nagq``.

    ``table`` has columns ``nagq``, ``loglik``, ``sd`` (of the random effect), ``converged``,
    ``seconds`` and, per fixed effect ``name``, ``("estimate", name)`` and ``("se", name)``
    flattened as ``"estimate:name"`` and ``"se:name"``.
    """

    group: str
    names: tuple[str, ...]
    table: pd.DataFrame

    def estimates(self) -> pd.DataFrame:
        """Fixed-effect estimates, one row per ``nagq`` (index) and column per term."""
        return self._block("estimate")

    def std_errors(self) -> pd.DataFrame:
        """Their standard errors, shaped as :meth:`estimates`."""
        return self._block("se")

    def _block(self, what: str) -> pd.DataFrame:
        cols = [f"{what}:{n}" for n in self.names]
        out = self.table.set_index("nagq")[cols]
        out.columns = list(self.names)
        return out


def _row(fit: GLMMResult) -> dict:
    row = {
        "nagq": fit.nagq,
        "loglik": fit.loglik,
        "sd": float(np.sqrt(fit.covariance_matrices()[0][0, 0])),
        "converged": bool(fit.converged),
        "seconds": fit.seconds,
    }
    for name, est, se in zip(fit.x_names, fit.beta, fit.std_errors, strict=True):
        row[f"estimate:{name}"] = est
        row[f"se:{name}"] = se
    return row


def quadrature_ladder(
    result: GLMMResult, report: Report | None = None, steps: tuple[int, ...] = NAGQ_STEPS
) -> QuadratureLadder:
    """Refit ``result`` with every ``nagq`` in ``steps`` (a report before each refit).

    Raises
    ------
    lmm_core.LMMError
        When the model has more than one random effect (:func:`quadrature_refusal`).
    """
    refusal = quadrature_refusal(result)
    if refusal is not None:
        raise LMMError(refusal)
    rows = []
    for i, q in enumerate(steps):
        if report is not None:
            report(i / len(steps), f"Fitting with nagq = {q} ({i + 1} of {len(steps)})")
        rows.append(_row(refit(result, q)))
    if report is not None:
        report(1.0, f"{len(steps)} fits done")
    return QuadratureLadder(result.reterms[0].group, tuple(result.x_names), pd.DataFrame(rows))


@dataclass(frozen=True)
class Verdict:
    """Whether the Laplace fit can be trusted, with the numbers behind it.

    Attributes
    ----------
    level
        ``"good"``, ``"loglik"`` (estimates fine, log-likelihood off), ``"caution"`` or
        ``"poor"``.
    headline, text
        One sentence, then the explanation (Markdown).
    shift_se
        Largest ``|beta(1) - beta(K)| / se(K)`` over the fixed effects; ``worst`` names it.
    sd_change
        ``(tau(1) - tau(K)) / tau(K)`` (``nan`` when ``tau(K)`` is 0).
    loglik_change
        ``l(1) - l(K)``.
    settled
        Whether the two largest ``nagq`` agree (the quadrature has converged).
    """

    level: str
    headline: str
    text: str
    shift_se: float
    worst: str
    sd_change: float
    loglik_change: float
    settled: bool


def _changes(ladder: QuadratureLadder, a: int, b: int) -> tuple[pd.Series, float, float]:
    """Shifts of the estimates in SE units, relative SD change, log-lik change: row a vs b."""
    est, se = ladder.estimates(), ladder.std_errors()
    shift = ((est.iloc[a] - est.iloc[b]) / se.iloc[b]).abs()
    sd = ladder.table["sd"].to_numpy()
    sd_change = (sd[a] - sd[b]) / sd[b] if sd[b] > 0 else float("nan")
    ll = ladder.table["loglik"].to_numpy()
    return shift, float(sd_change), float(ll[a] - ll[b])


def _level(shift: float, sd_change: float, ll_change: float) -> str:
    """``poor`` when the estimates move (the fixed effects or the SD), ``caution`` when they
    move a little or only the log-likelihood is off, else ``good``."""
    sd_abs = 0.0 if np.isnan(sd_change) else abs(sd_change)
    if shift > SHIFT_POOR or sd_abs > SD_POOR:
        return "poor"
    if shift > SHIFT_GOOD or sd_abs > SD_GOOD:
        return "caution"
    return "loglik" if abs(ll_change) > LL_GOOD else "good"


HEADLINES = {
    "good": "The Laplace fit can be trusted for these data.",
    "loglik": "The Laplace estimates can be trusted, but not its log-likelihood.",
    "caution": "The Laplace fit is close, but not exact: prefer the quadrature fit.",
    "poor": "The Laplace fit cannot be trusted for these data: use adaptive quadrature.",
}
#: what each level adds to the numbers
EXPLAIN = {
    "good": "",
    "loglik": (
        " The log-likelihood is off by more than {ll} unit: compare this model with others "
        "(likelihood-ratio test, AIC) only through fits with the same number of points, "
        "preferably quadrature fits."
    ),
    "caution": (
        " The Laplace approximation loses accuracy when each subject tells little about its "
        "own effect: a binary outcome, few visits per subject, a large SD between subjects."
    ),
    "poor": (
        " The Laplace approximation fails when each subject tells little about its own "
        "effect: a binary outcome, few visits per subject, a large SD between subjects. It "
        "then underestimates the SD between subjects (and the effects that depend on it)."
    ),
}


def verdict(ladder: QuadratureLadder) -> Verdict:
    """Compare ``nagq = 1`` with the largest ``nagq`` of the ladder (module docstring)."""
    table = ladder.table
    if len(table) < 2 or int(table["nagq"].iloc[0]) != 1:
        raise LMMError("The verdict needs the Laplace fit (nagq = 1) and at least one more.")
    k = int(table["nagq"].iloc[-1])
    shift, sd_change, ll_change = _changes(ladder, 0, -1)
    last, _, last_ll = _changes(ladder, -2, -1)
    settled = bool(last.max() < SETTLED_SHIFT and abs(last_ll) < SETTLED_LL)
    level = _level(float(shift.max()), sd_change, ll_change)
    sd_text = "—" if np.isnan(sd_change) else f"{sd_change:+.1%}"
    text = (
        f"From Laplace (nagq = 1) to {k} quadrature points the fixed effects move by at most "
        f"**{fmt(shift.max(), 2)} standard errors** (for {shift.idxmax()}), the SD of the "
        f"{ladder.group} effects by **{sd_text}** and the log-likelihood by "
        f"**{fmt(-ll_change, 3, sign=True)}**. Shifts below {SHIFT_GOOD} SE and "
        f"{SD_GOOD:.0%} do not "
        f"matter; above {SHIFT_POOR} SE or {SD_POOR:.0%} they can change conclusions. A "
        f"log-likelihood off by more than {LL_GOOD:g} unit moves likelihood-ratio tests and "
        "AIC (they use twice the log-likelihood)."
    )
    text += EXPLAIN[level].format(ll=f"{LL_GOOD:g}")
    if not settled:
        text += (
            f" The fits with {int(table['nagq'].iloc[-2])} and {k} points still differ: the "
            "quadrature itself has not settled, so even its estimates are approximate."
        )
    return Verdict(
        level,
        HEADLINES[level],
        text,
        float(shift.max()),
        str(shift.idxmax()),
        sd_change,
        ll_change,
        settled,
    )


def display_table(ladder: QuadratureLadder) -> pd.DataFrame:
    """The ladder as shown: one row per ``nagq``; estimate and SE per term, SD, log-lik."""
    t = ladder.table
    out = pd.DataFrame({"nagq": t["nagq"].astype(int)})
    for name in ladder.names:
        out[name] = t[f"estimate:{name}"]
        out[f"SE {name}"] = t[f"se:{name}"]
    out[f"SD ({ladder.group})"] = t["sd"]
    out["log-likelihood"] = t["loglik"]
    out["converged"] = ["yes" if c else "no" for c in t["converged"]]
    return out
