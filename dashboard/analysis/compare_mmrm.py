"""Compare MMRMs (covariance structures of the visits) and random-effects models of the same
data. Pure (no Streamlit).

One table of every model as fitted (no ML refits): parameters, log-likelihood, AIC, BIC,
method and convergence. The parameters are counted as lme4 counts them for every model (the
fixed effects, the covariance parameters and, for a random-effects model, the residual
variance), so that ``AIC = -2 logLik + 2 npar`` and ``BIC = -2 logLik + npar log(n)``
(``n`` observations) mean the same for both kinds; mmrm itself counts only the covariance
parameters and uses the number of subjects in BIC (the Model page shows mmrm's numbers).

AIC compares models fitted to the same rows; under REML only with the same fixed effects
(REML likelihoods of different fixed effects are of different data). The likelihood-ratio
test is valid only between nested models: here between two MMRMs with the same fixed
effects and method whose structures are nested (:data:`NESTED_IN`), ``2 (l_large -
l_small) ~ chi2(npar_large - npar_small)``. An MMRM and a random-effects model are not
nested in general (a random intercept is compound symmetry with a positive correlation, on
the boundary), so they are judged by AIC.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from dashboard.analysis.mmrm_models import is_mmrm, structure_label
from dashboard.analysis.records import FitRecord

__all__ = [
    "NESTED_IN",
    "comparison_notes",
    "criteria_table",
    "structure_tests",
    "structures_nested",
]

#: structure -> the structures that contain it as a special case (same visits)
NESTED_IN: dict[str, frozenset[str]] = {
    "cs": frozenset({"csh", "toep", "toeph", "us"}),
    "csh": frozenset({"toeph", "us"}),
    "ar1": frozenset({"ar1h", "toep", "toeph", "ad", "adh", "us"}),
    "ar1h": frozenset({"toeph", "adh", "us"}),
    "toep": frozenset({"toeph", "us"}),
    "toeph": frozenset({"us"}),
    "ad": frozenset({"adh", "us"}),
    "adh": frozenset({"us"}),
    "us": frozenset(),
}


def structures_nested(small: str, large: str) -> bool:
    """Whether structure ``small`` is a special case of ``large`` (e.g. cs in us)."""
    return large in NESTED_IN.get(small, frozenset())


def _structure(record: FitRecord) -> str | None:
    residual = record.result.design.spec.residual if is_mmrm(record.result) else None
    return None if residual is None else residual.structure


def _npar(result) -> int:
    """Parameters as lme4 counts them: fixed effects plus covariance parameters.

    An MMRM's ``npar`` (and that of random effects plus a covariance of the visits,
    :class:`~lmm_core.model.mmrm_random_results.MMRMRandomResult`) follows mmrm: its
    covariance parameters only (the structure's, which include the visits' variances, and
    the random effects' variances and correlations), so the fixed effects are added; a
    random-effects model's ``npar`` is lme4's already (fixed effects, ``theta`` and the
    residual variance).
    """
    return int(result.npar + len(result.x_names)) if is_mmrm(result) else int(result.npar)


def _random_key(record: FitRecord) -> tuple:
    """The random-effects terms (group, columns) of a fit: none for an MMRM alone."""
    return tuple(sorted((t.group, tuple(t.cnames)) for t in getattr(record.result, "reterms", ())))


def _kind(record: FitRecord) -> str:
    structure = _structure(record)
    if structure is None:
        return "random effects"
    label = structure_label(structure)
    return f"random effects + {label}" if _random_key(record) else f"MMRM: {label}"


def criteria_table(records: Sequence[FitRecord]) -> pd.DataFrame:
    """One row per model (index: its name): ``kind``, ``fitted by``, ``npar``, ``logLik``,
    ``AIC``, ``BIC``, ``delta_AIC``, ``converged``, ``formula`` (see the module docstring for
    the counting)."""
    rows = []
    for record in records:
        result = record.result
        npar = _npar(result)
        loglik = float(result.loglik)
        rows.append(
            {
                "model": record.name,
                "kind": _kind(record),
                "fitted by": record.method,
                "npar": npar,
                "logLik": loglik,
                "AIC": -2.0 * loglik + 2.0 * npar,
                "BIC": -2.0 * loglik + npar * float(np.log(result.nobs)),
                "converged": "yes" if bool(getattr(result, "converged", True)) else "no",
                "formula": record.formula,
            }
        )
    table = pd.DataFrame(rows).set_index("model")
    table.insert(table.columns.get_loc("BIC") + 1, "delta_AIC", table["AIC"] - table["AIC"].min())
    return table


def _fixed_key(record: FitRecord) -> tuple:
    return tuple(record.result.x_names)


def _same_rows(a: FitRecord, b: FitRecord) -> bool:
    ra, rb = a.result, b.result
    return ra.nobs == rb.nobs and ra.response == rb.response


def _short(name: str) -> str:
    """``"M2"`` of ``"M2: unstructured visits"`` (the full names are in the table above)."""
    head = name.split(":", 1)[0].strip()
    return head if head and head != name else name


def structure_tests(records: Sequence[FitRecord]) -> pd.DataFrame:
    """Likelihood-ratio tests between pairs of MMRMs with nested structures, the same fixed
    effects, random effects (none, or the same terms above the patient), rows and method:
    ``test``, ``Chisq`` (``2 (l_large - l_small)``, at least 0), ``Df`` (added covariance
    parameters), ``p`` (chi-square) and ``verdict``. Empty when no pair qualifies."""
    mmrms = [r for r in records if _structure(r) is not None]
    rows = []
    for a, b in combinations(mmrms, 2):
        sa, sb = _structure(a), _structure(b)
        small, large = (a, b) if structures_nested(sa, sb) else (b, a)
        if not structures_nested(_structure(small), _structure(large)):
            continue
        if _fixed_key(a) != _fixed_key(b) or not _same_rows(a, b) or bool(a.reml) != bool(b.reml):
            continue
        if _random_key(a) != _random_key(b):  # the random effects must be the same too
            continue
        df = float(large.result.npar - small.result.npar)
        chisq = max(0.0, 2.0 * (large.result.loglik - small.result.loglik))
        p = float(stats.chi2.sf(chisq, df)) if df > 0 else float("nan")
        better = np.isfinite(p) and p < 0.05
        rows.append(
            {
                "test": f"{_short(small.name)} in {_short(large.name)}",
                "Chisq": chisq,
                "Df": df,
                "p": p,
                "verdict": (
                    f"{_short(large.name)} fits significantly better (5%)"
                    if better
                    else f"no significant improvement over {_short(small.name)} (5%)"
                ),
            }
        )
    return pd.DataFrame(rows, columns=["test", "Chisq", "Df", "p", "verdict"])


def comparison_notes(records: Sequence[FitRecord]) -> list[str]:
    """What the table can and cannot say about these models, in plain words (Markdown)."""
    notes = []
    if len({(r.result.nobs, r.result.response) for r in records}) > 1:
        notes.append(
            "The models were not all fitted to the same rows (or outcome): their AIC and "
            "BIC are not comparable."
        )
    methods = {bool(r.reml) for r in records}
    if len(methods) > 1:
        notes.append(
            "Some models were fitted by REML and some by ML: compare AIC only between fits "
            "of the same method."
        )
    if True in methods and len({_fixed_key(r) for r in records if r.reml}) > 1:
        notes.append(
            "Under REML, AIC compares models only with the same fixed effects (the REML "
            "likelihood depends on them): refit by ML to compare different fixed effects."
        )
    kinds = {_structure(r) is None for r in records}
    if len(kinds) > 1:
        notes.append(
            "An MMRM and a random-effects model describe the patient's correlation in "
            "different ways and are not nested in general, so no likelihood-ratio test "
            "between them: compare them by AIC (with the same fixed effects under REML)."
        )
    if any(_structure(r) is not None for r in records):
        notes.append(
            "npar counts the fixed effects and the covariance parameters of every model, as "
            "lme4 does (for a model with random effects and a covariance of the visits: the "
            "structure's parameters and the random effects' variances and correlations); "
            "mmrm's own AIC counts only the covariance parameters (2 p lower) and its BIC uses "
            "the number of patients, so the Model page shows other values."
        )
    return notes
