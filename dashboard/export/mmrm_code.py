"""Code for models with a covariance structure of the visits (MMRM): R's ``mmrm`` and SAS's
``PROC MIXED ... REPEATED``. Pure (no Streamlit).

- R: ``mmrm::mmrm(y ~ ... + us(visit | subject), data = d, reml = ..., method = ...)``; the
  visit column becomes a factor with its levels in visit order (as LMM Explorer orders them),
  text columns factors with LMM Explorer's first level as reference.
  A numeric visit that is also a fixed effect (a slope) stays a number: the factor is a copy
  (:func:`visit_copy_name`). ``sp_exp(time | subject)`` keeps the time a number.
- SAS: the ``REPEATED visit / SUBJECT=subject [GROUP=group] TYPE=...`` statement of PROC
  MIXED, mmrm's names mapped to SAS's (:data:`SAS_TYPES`); mmrm's homogeneous ante-dependence
  ``ad`` has no SAS type (SAS's ``ANTE(1)`` is the heterogeneous ``adh``): the code says so.
  A numeric visit that is also a fixed effect is copied for REPEATED (a CLASS variable), so
  that MODEL keeps it a number. ``sp_exp`` is ``REPEATED / TYPE=SP(EXP)(time)``: SAS writes
  ``sigma^2 exp(-d / theta)``, mmrm ``sigma^2 rho^d``, the same model with
  ``rho = exp(-1 / theta)``.
"""

from __future__ import annotations

import pandas as pd

from dashboard.export.r_text import r_name, r_plain, r_string
from lmm_core.formula.quoting import r_number
from lmm_core.formula.spec import ModelSpec, ResidualSpec

#: mmrm structure -> SAS PROC MIXED TYPE= (None: no SAS equivalent)
SAS_TYPES: dict[str, str | None] = {
    "us": "UN",
    "toep": "TOEP",
    "toeph": "TOEPH",
    "ar1": "AR(1)",
    "ar1h": "ARH(1)",
    "cs": "CS",
    "csh": "CSH",
    "ad": None,
    "adh": "ANTE(1)",
}
R_LIBRARY = "library(mmrm)  # mixed models for repeated measures"
R_METHODS = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger"}


def visit_levels(res: ResidualSpec, data: pd.DataFrame) -> list[str]:
    """The visit levels in visit order: a Categorical's order, numbers numerically (written as
    R's ``as.character`` writes them, ``4`` for 4.0), text by code point (as the engine
    orders them)."""
    s = data[res.visit.name].dropna()
    if isinstance(s.dtype, pd.CategoricalDtype):
        return [str(c) for c in s.cat.categories]
    if pd.api.types.is_bool_dtype(s.dtype):
        return [str(v).upper() for v in sorted(pd.unique(s))]
    if pd.api.types.is_numeric_dtype(s.dtype):
        return [r_number(float(v)) for v in sorted(pd.unique(s))]
    return sorted({str(v) for v in s})


def r_mmrm_lines(
    spec: ModelSpec,
    r_formula: str,
    reml: bool,
    df_method: str,
    data: pd.DataFrame,
    visit_done: bool = False,
    numeric_visit: bool = False,
) -> list[str]:
    """The visit factor (unless ``visit_done``: already made a factor with its levels in
    order) and the ``mmrm()`` call of an R script (after ``d`` is read).

    ``numeric_visit``: the visit column is also a numeric fixed effect (a slope), so the
    factor is a copy, :func:`visit_copy_name`, used in the covariance term only."""
    res = spec.residual
    assert res is not None
    if res.structure == "sp_exp":
        visit_done = True  # a numeric time: no factor
    levels = ", ".join(r_string(v) for v in visit_levels(res, data))
    visit = r_string(res.visit.name)
    target = r_string(visit_copy_name(res)) if numeric_visit else visit
    method = R_METHODS.get(df_method, "Satterthwaite")
    factor = [
        "# The visit is a factor whose level order is the order of the visits"
        + (
            f" (a copy: {res.visit.name} stays a number in the fixed effects)"
            if numeric_visit
            else ""
        ),
        f"d[[{target}]] <- factor(d[[{visit}]], levels = c({levels}))",
    ]
    term = r_residual(res, visit_copy_name(res) if numeric_visit else None)
    return [
        *([] if visit_done else factor),
        "m <- mmrm(",
        f"  {r_formula} + {term},",
        f'  data = d, reml = {"TRUE" if reml else "FALSE"}, method = "{method}"',
        ")",
        "summary(m)",
        "VarCorr(m)  # the covariance between visits",
    ]


def visit_copy_name(res: ResidualSpec) -> str:
    """The name of the visit factor's copy when the visit is also a numeric fixed effect: a
    plain R name (mmrm and nlme read no other), ``AVISIT_factor``."""
    return f"{r_plain(res.visit.name)}_factor"


def r_residual(res: ResidualSpec, visit: str | None = None) -> str:
    """``us(AVISIT | USUBJID)`` with R's quoting of the names (``visit``: another column for
    the visit factor); ``sp_exp(time | USUBJID)`` with its coordinates."""
    by = f"{r_name(res.group.name)} / " if res.group else ""
    if res.structure == "sp_exp":
        name = ", ".join(r_name(c.name) for c in res.coordinates)
    else:
        name = r_name(res.visit.name if visit is None else visit)
    return f"{res.structure}({name} | {by}{r_name(res.subject.name)})"


def sas_repeated(res: ResidualSpec, names: dict[str, str], visit: str | None = None) -> list[str]:
    """The REPEATED statement (and a note when SAS has no such structure); ``names`` maps
    data columns to their SAS names, ``visit`` is the SAS name of the repeated effect (a
    copy of the visit; default its own name)."""
    group = f" GROUP={names[res.group.name]}" if res.group else ""
    subject = f"SUBJECT={names[res.subject.name]}{group}"
    if res.structure == "sp_exp":
        coords = " ".join(names[c.name] for c in res.coordinates)
        return [
            "  /* SP(EXP): SAS writes sigma^2 exp(-d / theta), mmrm and LMM Explorer",
            "     sigma^2 rho^d: the same model, rho = exp(-1 / theta) per unit of time. */",
            f"  REPEATED / {subject} TYPE=SP(EXP)({coords});",
        ]
    sas_type = SAS_TYPES.get(res.structure)
    head = f"  REPEATED {visit or names[res.visit.name]} / {subject}"
    if sas_type is None:
        return [
            "  /* mmrm's ad (ante-dependence with one variance) has no SAS TYPE; ANTE(1) below",
            "     is the heterogeneous version (adh): another model, other estimates. */",
            f"{head} TYPE=ANTE(1);",
        ]
    return [f"{head} TYPE={sas_type};"]


def residual_columns(spec: ModelSpec) -> list[str]:
    """The visit, subject and group columns of the structure (SAS CLASS variables; not the
    numeric times of ``sp_exp``)."""
    res = spec.residual
    if res is None:
        return []
    visit = None if res.structure == "sp_exp" else res.visit
    return [nm.name for nm in (visit, res.subject, res.group) if nm is not None]
