"""SAS's PROC GLIMMIX for a generalized linear mixed model (GLMM). Pure (no Streamlit).

The model ``g(E[y | b]) = X beta + Z b + offset``, ``b ~ N(0, Sigma)``, fitted by maximum
likelihood as glmer and LMM Explorer fit it:

- ``METHOD=LAPLACE`` (``nagq = 1``) or ``METHOD=QUAD(QPOINTS=k)`` (adaptive Gauss-Hermite
  quadrature with ``k`` points); GLIMMIX's default (pseudo-likelihood) is another estimator;
- the response: a 0/1 (or two-valued) column with ``DIST=BINARY`` and ``(EVENT='1')`` (GLIMMIX
  would otherwise model the first ordered value, the non-event); ``cbind(s, f)`` as
  ``events/trials`` (``trials = s + f`` from a DATA step) and a proportion with weights
  ``n`` as ``events/trials`` with ``events = y * n`` (``DIST=BINOMIAL``); counts with
  ``DIST=POISSON``;
- ``OFFSET=`` a variable, the sum of the formula's ``offset()`` arguments computed in a DATA
  step (``log(exposure)``);
- ``RANDOM ... / SUBJECT= TYPE=UN`` as PROC MIXED's, ``SOLUTION CL`` and ``DDFM=NONE`` (Wald
  ``z`` tests, as glmer's summary), ``ODDSRATIO`` for the logit link.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from dashboard.export.glmm_code import GLMMSettings, binary_levels
from dashboard.export.sas_text import sas_name
from lmm_core.formula.grammar import Name, strip_parens
from lmm_core.formula.quoting import deparse
from lmm_core.formula.spec import ModelSpec

#: sas_code's builder of derived variables (``variable``, ``expr``, ``new_name``,
#: ``derived``) and its model parts (``class_vars``, ``fixed``, ``randoms``); sas_code imports
#: this module, so they are not imported here.
_SasBuilder = Any
_SasModel = Any
__all__ = ["SAS_LINKS", "glimmix_method", "glimmix_response", "proc_glimmix"]

#: engine link -> GLIMMIX LINK=
SAS_LINKS = {"logit": "LOGIT", "probit": "PROBIT", "cloglog": "CLOGLOG", "log": "LOG"}


def glimmix_method(glmm: GLMMSettings) -> str:
    """``METHOD=LAPLACE`` or ``METHOD=QUAD(QPOINTS=k)``."""
    return "METHOD=LAPLACE" if glmm.nagq == 1 else f"METHOD=QUAD(QPOINTS={glmm.nagq})"


def _quote(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def glimmix_response(
    spec: ModelSpec, data: pd.DataFrame, glmm: GLMMSettings, sb: _SasBuilder
) -> tuple[str, str]:
    """The left of MODEL's ``=`` and the distribution: ``('infection(EVENT=''1'')',
    'BINARY')``, ``('events/trials', 'BINOMIAL')`` or ``('seizures', 'POISSON')``."""
    if glmm.family == "poisson":
        return sb.variable(spec.response_label, spec.response), "POISSON"
    pair = spec.cbind
    if pair is not None:
        events = sb.variable(deparse(pair[0]), pair[0])
        trials = sb.new_name("trials")
        sb.derived["\0trials"] = (trials, f"{sb.expr(pair[0])} + ({sb.expr(pair[1])})")
        return f"{events}/{trials}", "BINOMIAL"
    if glmm.weights is not None:
        events = sb.new_name("events")
        n = sas_name(glmm.weights)
        y = sb.expr(spec.response)
        sb.derived["\0events"] = (events, f"ROUND(({y}) * {n}, 1E-8)")
        return f"{events}/{n}", "BINOMIAL"
    response = sb.variable(spec.response_label, spec.response)
    levels = binary_levels(spec, data)
    event = levels[1] if levels is not None else "1"
    if levels is not None and pd.api.types.is_bool_dtype(data[_name(spec)].dtype):
        event = event.title()  # PROC IMPORT reads the file's True/False as text
    return f"{response}(EVENT={_quote(event)})", "BINARY"


def _name(spec: ModelSpec) -> str:
    node = strip_parens(spec.response)
    assert isinstance(node, Name)
    return node.name


def glimmix_offset(spec: ModelSpec, sb: _SasBuilder) -> str:
    """The SAS variable of the offset (``""`` without one): a column, or a DATA-step sum of
    the ``offset()`` arguments (``LOG(exposure)``)."""
    if not spec.offsets:
        return ""
    args = [call.arg for call in spec.offsets]
    if len(args) == 1:
        return sb.variable(deparse(args[0]), args[0])
    name = sb.new_name("offset_" + "_".join(deparse(a) for a in args))
    sb.derived["\0offset"] = (name, " + ".join(f"({sb.expr(a)})" for a in args))
    return name


def proc_glimmix(
    spec: ModelSpec, data: pd.DataFrame, glmm: GLMMSettings, sb: _SasBuilder, model: _SasModel
) -> list[str]:
    """The PROC GLIMMIX step (its DATA-step variables registered in ``sb``)."""
    lhs, dist = glimmix_response(spec, data, glmm, sb)
    offset = glimmix_offset(spec, sb)
    opts: list[Any] = [f"DIST={dist}", f"LINK={SAS_LINKS[glmm.link]}"]
    if offset:
        opts.append(f"OFFSET={offset}")
    opts += ["SOLUTION", "CL", "DDFM=NONE"]
    if glmm.link == "logit":
        opts.append("ODDSRATIO")
    if not spec.fixed.intercept:
        opts.insert(0, "NOINT")
    lines = [
        "",
        f"/* {glmm.family.title()} GLMM by maximum likelihood ({glmm.method}), as glmer;",
        "   DDFM=NONE: Wald z tests. */",
        f"PROC GLIMMIX DATA=work.lmm {glimmix_method(glmm)};",
    ]
    if model.class_vars:
        lines.append(f"  CLASS {' '.join(model.class_vars)};")
    lines.append(
        f"  MODEL {lhs} = {' '.join(model.fixed)} / {' '.join(opts)};".replace("=  /", "= /")
    )
    for effects, subject, cov_type, _ in model.randoms:
        lines.append(f"  RANDOM {' '.join(effects)} / SUBJECT={subject} TYPE={cov_type};")
    lines.append("RUN;")
    return lines
