"""Result tables of a fit, ready for CSV download. Pure functions, no Streamlit.

Each ``*_table`` returns a DataFrame with plain column names; :func:`to_csv_bytes` turns any
of them into UTF-8 CSV bytes (numbers at full precision, empty cells for missing values;
names with commas such as ``ns(Days, 3)1`` are quoted, so they read back whole).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.base.constants import CONFIDENCE_LEVEL
from dashboard.export.basis_code import basis_calls, basis_kind
from lmm_core import GLMMResult, LMMResult
from lmm_core.formula.quoting import r_number

__all__ = [
    "bases_table",
    "blup_table",
    "fixed_effects_table",
    "predictions_table",
    "to_csv_bytes",
    "variance_components_table",
]


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV without the index, ``\\n`` line ends and empty cells for missing values."""
    return frame.to_csv(index=False, lineterminator="\n", na_rep="").encode("utf-8")


def fixed_effects_table(
    result: LMMResult, df_method: str = "satterthwaite", level: float = CONFIDENCE_LEVEL
) -> pd.DataFrame:
    """One row per fixed effect: estimate, SE, df, t, p and the confidence interval.

    Parameters
    ----------
    result
        The fit.
    df_method
        ``"satterthwaite"``, ``"kenward-roger"`` or ``"wald"`` (see
        :func:`lmm_core.inference.fixed_effects.fixef_inference`).
    level
        Confidence level of ``ci_lower``/``ci_upper``.

    A GLMM has Wald ``z`` tests and intervals (``df_method`` is ``"wald z"``).
    """
    if isinstance(result, GLMMResult):
        table, df_method = result.fixef_table(level=level).copy(), "wald z"
    else:
        table = result.fixef_table(df_method=df_method, level=level).copy()
    table.insert(0, "term", table.index.astype(str))
    table["df_method"] = df_method
    table["ci_level"] = level
    return table.reset_index(drop=True)


def variance_components_table(result: LMMResult) -> pd.DataFrame:
    """lme4's ``as.data.frame(VarCorr(fit))`` with a plain-language ``kind`` column.

    Columns: ``group``, ``var1``, ``var2``, ``kind`` (``variance``, ``correlation`` or
    ``residual``), ``vcov`` (variance or covariance) and ``sdcor`` (SD or correlation).
    """
    vc = result.varcorr_table().copy()
    kind = np.where(vc["var2"].isna(), "variance", "correlation")
    kind = np.where(vc["group"] == "Residual", "residual", kind)
    vc.insert(3, "kind", kind)
    return vc


def blup_table(result: LMMResult) -> pd.DataFrame:
    """Conditional modes (BLUPs) of the random effects with their conditional SDs.

    Long format, one row per level and random effect: ``group``, ``level``, ``effect``,
    ``blup``, ``cond_sd`` and ``n_obs`` (observations of that level in the fit).
    """
    frames = []
    for term, b, cov in zip(result.reterms, result.b, result.cond_cov, strict=True):
        sd = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
        counts = np.bincount(term.codes, minlength=term.n_levels)
        n_levels, n_effects = b.shape
        frames.append(
            pd.DataFrame(
                {
                    "group": term.group,
                    "level": np.repeat(np.asarray(term.levels, dtype=object), n_effects),
                    "effect": np.tile(np.asarray(term.cnames, dtype=object), n_levels),
                    "blup": b.reshape(-1),
                    "cond_sd": sd.reshape(-1),
                    "n_obs": np.repeat(counts, n_effects),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def predictions_table(result: LMMResult, data: pd.DataFrame) -> pd.DataFrame:
    """One row per row of ``data``: observed, fitted, population prediction, residual.

    ``row`` is the 1-based row number in the data file (header not counted); ``used`` is
    False for rows left out of the fit (missing values), whose numbers are empty. The
    grouping columns of the model are repeated so the table can be joined or filtered.
    ``fitted`` includes every random effect (the patient's own curve); ``population`` is the
    fixed part only (``X beta``). A GLMM's are on the response scale (probabilities, rates
    times exposure), the residual ``observed - fitted``.
    """
    n = len(data)
    rows = np.asarray(result.design.rows)
    out = pd.DataFrame({"row": np.arange(1, n + 1), "used": np.zeros(n, dtype=bool)})
    group_cols = list(
        dict.fromkeys(v.name for r in result.design.spec.random for v in r.group_vars)
    )
    for col in group_cols:
        if col in data.columns:
            out[col] = data[col].to_numpy()
    out.loc[rows, "used"] = True
    for name, values in (
        ("observed", result.y),
        ("fitted", result.fitted),
        ("population", result.predict(include_re=False)),
        ("residual", _residuals(result)),
    ):
        column = np.full(n, np.nan)
        column[rows] = values
        out[name] = column
    return out


def _residuals(result: LMMResult) -> np.ndarray:
    if isinstance(result, GLMMResult):
        return np.asarray(result.y) - np.asarray(result.fitted)
    return result.residuals


def bases_table(result: LMMResult) -> pd.DataFrame:
    """The spline and polynomial bases of the fit, one row per term as written, in formula
    order.

    Columns: ``term`` (``ns(Time, 3)``), ``kind`` (``natural cubic spline``, ...),
    ``knots`` (interior knots the fit learned, ``6, 14``, or ``none``), ``boundary_knots``
    (``0, 21``; empty for polynomials) and ``df`` (number of columns). No rows when the model
    has none.
    """
    rows = []
    bases = result.design.bases
    for label in basis_calls(result.design.spec):  # in formula order
        state = bases[label]
        spline = state.func in ("ns", "bs")
        rows.append(
            {
                "term": label,
                "kind": basis_kind(state),
                "knots": (", ".join(r_number(k) for k in state.knots) or "none") if spline else "",
                "boundary_knots": ", ".join(r_number(b) for b in state.boundary) if spline else "",
                "df": state.n_columns,
            }
        )
    return pd.DataFrame(rows, columns=["term", "kind", "knots", "boundary_knots", "df"])
