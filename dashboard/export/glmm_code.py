"""Code for generalized linear mixed models (GLMMs): R's ``lme4::glmer`` and the Python call
of :func:`lmm_core.fit_glmm`; SAS's PROC GLIMMIX is in :mod:`dashboard.export.glimmix_code`.
Pure (no Streamlit).

A GLMM is ``g(E[y | b]) = X beta + Z b + offset`` with ``b ~ N(0, Sigma)`` and ``y | b`` binomial
or Poisson; what identifies the fit beyond the formula is :class:`GLMMSettings`: the family,
the link ``g``, the number of quadrature points (``nagq = 1``: Laplace approximation) and, for a
proportion response, the column of prior weights (the trials). The formula is written as
glmer reads it: ``cbind(successes, failures)`` responses and ``offset(log(exposure))`` terms
as written.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from dashboard.export.r_text import r_name, r_string
from lmm_core.formula.grammar import Name, strip_parens
from lmm_core.formula.spec import ModelSpec

__all__ = [
    "DEFAULT_LINKS",
    "GLMMSettings",
    "binary_levels",
    "glmm_settings",
    "python_fit_lines",
    "r_glmer_lines",
]

#: family -> its canonical link (glmer's default)
DEFAULT_LINKS = {"binomial": "logit", "poisson": "log"}
LINKS = {"binomial": ("logit", "probit", "cloglog"), "poisson": ("log",)}
R_LIBRARY = "library(lme4)  # glmer(): generalized linear mixed models"
#: glmer's optimizer run to a tight optimum (its default stops earlier, about 1e-5 away)
R_CONTROL = (
    'glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12, '
    "optCtrl = list(rhoend = 1e-10, maxfun = 1e5))"
)
#: glmer's logLik with nAGQ > 1 leaves out the saturated model's log-likelihood (a constant)
R_AGQ_LOGLIK = (
    "# With nAGQ > 1, lme4's logLik() leaves out the log-likelihood of the saturated model (a",
    "# constant); added back, it is the log-likelihood with all constants, as LMM Explorer's:",
    "r <- m@resp",
    "(ll <- as.numeric(logLik(m)) - family(m)$aic(r$y, r$n, r$y, r$weights, NULL) / 2)",
)


@dataclass(frozen=True)
class GLMMSettings:
    """What a GLMM fit is besides its formula.

    Attributes
    ----------
    family
        ``"binomial"`` or ``"poisson"``.
    link
        ``"logit"``, ``"probit"``, ``"cloglog"`` (binomial) or ``"log"`` (Poisson).
    nagq
        1: Laplace approximation; ``k > 1``: adaptive Gauss-Hermite quadrature with ``k``
        points (glmer's ``nAGQ``).
    weights
        Column of prior weights (the trials of a proportion response), or ``None``.
    """

    family: str
    link: str
    nagq: int = 1
    weights: str | None = None

    @property
    def method(self) -> str:
        """``"Laplace"`` or ``"adaptive quadrature, 7 points"``."""
        return "Laplace" if self.nagq == 1 else f"adaptive quadrature, {self.nagq} points"


def glmm_settings(
    family: str | None, link: str | None = None, nagq: int = 1, weights: str | None = None
) -> GLMMSettings | None:
    """The settings of a GLMM fit, or ``None`` for a linear mixed model (family ``None`` or
    ``"gaussian"``). The link defaults to the family's canonical one.

    Raises
    ------
    ValueError
        An unknown family or a link the family does not take.
    """
    if family in (None, "gaussian"):
        return None
    if family not in DEFAULT_LINKS:
        raise ValueError(f"No code for the family {family!r} (binomial or poisson).")
    link = link or DEFAULT_LINKS[family]
    if link not in LINKS[family]:
        raise ValueError(f"No code for the {family} family with the link {link!r}.")
    return GLMMSettings(family, link, int(nagq), weights)


def binary_levels(spec: ModelSpec, data: pd.DataFrame) -> tuple[str, str] | None:
    """``(non-event, event)`` of a two-valued text, factor or logical response column, as
    the engine codes it (the first present level is 0, the other 1;
    :func:`lmm_core.glmm.response.code_binary`); ``None`` for a numeric response or a
    ``cbind`` one."""
    node = strip_parens(spec.response)
    if not isinstance(node, Name) or node.name not in data.columns:
        return None
    col = data[node.name]
    if pd.api.types.is_bool_dtype(col.dtype):
        present = sorted({bool(v) for v in col.dropna()})
        shown = [str(v).upper() for v in present]
    elif isinstance(col.dtype, pd.CategoricalDtype):
        used = set(col.dropna().astype(str))
        shown = [str(c) for c in col.cat.categories if str(c) in used]
    elif pd.api.types.is_numeric_dtype(col.dtype):
        return None
    else:
        shown = sorted({str(v) for v in col.dropna()})
    if len(shown) != 2:
        return None
    return shown[0], shown[1]


def r_family(settings: GLMMSettings) -> str:
    """``binomial(link = "logit")``."""
    return f'{settings.family}(link = "{settings.link}")'


def r_glmer_lines(r_formula_lines: list[str], settings: GLMMSettings) -> list[str]:
    """The ``glmer()`` call and what the script prints, given the formula (one line, or the
    lines of a long formula ending with ``,``).

    The printed log-likelihood is the Laplace (or quadrature) one with all constants, the
    number LMM Explorer shows: with ``nAGQ > 1`` glmer's ``logLik()`` leaves out the saturated
    model's ``sum log f(y_i | mu_i = y_i)``, so the script adds it back
    (:data:`R_AGQ_LOGLIK`). glmer runs to a tight optimum (:data:`R_CONTROL`), as the engine.
    """
    args = [f"family = {r_family(settings)}", f"nAGQ = {settings.nagq}"]
    if settings.weights is not None:
        args.append(f"weights = {r_name(settings.weights)}")
    body = [f"  {ln}" for ln in r_formula_lines]
    body[-1] += ","
    return [
        "m <- glmer(",
        *body,
        f"  data = d, {', '.join(args)},",
        f"  control = {R_CONTROL}  # a tight optimum, as LMM Explorer",
        ")",
        "summary(m)  # Wald z tests, as LMM Explorer",
        "as.data.frame(VarCorr(m))  # random effects on the link scale (no residual)",
        *(("(ll <- logLik(m))",) if settings.nagq == 1 else R_AGQ_LOGLIK),
    ]


def r_binary_response(spec: ModelSpec, data: pd.DataFrame) -> list[str]:
    """A text or logical response as a factor whose first level is the non-event (glmer
    models the probability of any other level)."""
    levels = binary_levels(spec, data)
    if levels is None:
        return []
    name = strip_parens(spec.response).name  # type: ignore[union-attr]
    ref = f"d[[{r_string(name)}]]"
    if pd.api.types.is_bool_dtype(data[name].dtype):
        ref = f"toupper({ref})"
    listed = ", ".join(r_string(v) for v in levels)
    return [
        f"# The outcome: {levels[1]} is the event (1), {levels[0]} the non-event (0)",
        f"d[[{r_string(name)}]] <- factor({ref}, levels = c({listed}))",
    ]


def python_fit_lines(formula_expr: str, settings: GLMMSettings) -> list[str]:
    """``result = fit_glmm(...)`` and what the script prints (``formula_expr`` is the Python
    expression of the formula: a string literal or a variable)."""
    args = [
        formula_expr,
        "data",
        f"family={settings.family!r}",
        f"link={settings.link!r}",
        f"nagq={settings.nagq!r}",
    ]
    if settings.weights is not None:
        args.append(f"weights={settings.weights!r}")
    call = f"result = fit_glmm({', '.join(args)})"
    if len(call) > 88:
        call = "result = fit_glmm(\n" + "".join(f"    {a},\n" for a in args) + ")"
    return [
        call,
        "print(result.fixef_table())  # Wald z tests",
        "print(result.varcorr_table())  # random effects on the link scale",
        'print("log-likelihood", result.loglik)',
    ]
