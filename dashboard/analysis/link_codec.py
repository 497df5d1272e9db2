"""What a link to the app holds, and how it is written and read back. Pure (no Streamlit).

A link names the view, never the user's data: the example dataset (``ds=<name>``) or the
token of an upload kept in the server's memory (``up=<token>``), the fitted models, the
active one and the Model page's REML choice. Its query string reads, for two models of
``sleepstudy`` with the second one active::

    ?ds=sleepstudy&m=reml;random intercept;Reaction ~ Days + (1 | Subject)
      &m=reml;random slope;Reaction ~ Days + (Days | Subject)&a=2

Each ``m`` is ``<options>;<label>;<formula>``: the options are ``reml`` or ``ml`` for a linear
mixed model and ``<family>-<link>-q<points>`` for a GLMM (``binomial-logit-q1``: Laplace).
The page is the link's path (``/trajectories``), set by Streamlit's navigation.

Reading is strict: every value is checked (its length, the example's name among the
shipped examples, the token's alphabet, the formula parsed by our own grammar, never
evaluated), and what fails is dropped with a sentence saying why; the rest of the view
is kept. Nothing in a link is run.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from dashboard.analysis.glmm_family import LINKS, MAX_NAGQ
from dashboard.analysis.records import GAUSSIAN
from lmm_core import LMMError
from lmm_core.formula.terms import parse_formula

__all__ = [
    "ACTIVE",
    "DATASET",
    "KEYS",
    "MAX_FORMULA",
    "MAX_LABEL",
    "MAX_MODELS",
    "MODEL",
    "REML",
    "UPLOAD",
    "LinkModel",
    "LinkView",
    "check_model",
    "decode",
    "encode",
    "model_from_text",
    "model_to_text",
]

DATASET, UPLOAD, MODEL, ACTIVE, REML = "ds", "up", "m", "a", "reml"
#: the query parameters a link of this app uses (others, e.g. Streamlit's ``embed``, are left)
KEYS = (DATASET, UPLOAD, MODEL, ACTIVE, REML)
MAX_MODELS = 12  # models restored from one link (each is fitted again)
MAX_FORMULA = 2000  # characters of one formula
MAX_LABEL = 80  # characters of one model label
MAX_VALUE = 4000  # characters of any one query value
#: an upload token: ``secrets.token_urlsafe(32)`` (43 characters of the URL-safe alphabet)
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")
NAME_RE = re.compile(r"[a-z0-9_]{1,40}")
_GLMM_RE = re.compile(r"(binomial|poisson)-([a-z]{1,10})-q(\d{1,2})")


@dataclass(frozen=True)
class LinkModel:
    """One fitted model of a link: its formula and fit options (see :class:`FitRecord`)."""

    formula: str
    label: str = "model"
    reml: bool = True
    family: str = GAUSSIAN
    link: str | None = None
    nagq: int = 1


@dataclass(frozen=True)
class LinkView:
    """The view a link describes; ``problems`` says in words what was dropped."""

    dataset: str | None = None  # example name
    upload: str | None = None  # token of an upload held in the server's memory
    models: tuple[LinkModel, ...] = ()
    active: int | None = None  # index into ``models`` (0-based)
    reml: bool | None = None  # the Model page's REML choice
    problems: tuple[str, ...] = field(default=(), compare=False)

    @property
    def empty(self) -> bool:
        """True when the link holds nothing to restore."""
        return self.dataset is None and self.upload is None and not self.models


def check_model(model: LinkModel) -> LinkModel:
    """``model`` if its options and formula are valid, else :class:`ValueError` (a sentence).

    The formula is parsed by :func:`lmm_core.formula.terms.parse_formula` (an allow-list of
    functions; nothing is evaluated); whether its columns exist is the fit's business.
    """
    if not isinstance(model.formula, str) or not model.formula.strip():
        raise ValueError("a model has no formula")
    if len(model.formula) > MAX_FORMULA:
        raise ValueError(f"a formula is longer than {MAX_FORMULA:,} characters")
    if model.family != GAUSSIAN:
        if model.family not in LINKS:
            raise ValueError(f"unknown family {model.family[:20]!r}")
        if model.link not in LINKS[model.family]:
            raise ValueError(f"the {model.family} family has no link {str(model.link)[:20]!r}")
        if not 1 <= int(model.nagq) <= MAX_NAGQ:
            raise ValueError(f"quadrature points must be 1 to {MAX_NAGQ}")
    try:
        parse_formula(model.formula)
    except LMMError as exc:
        raise ValueError(
            f"the formula {model.formula[:60]!r} does not parse: {str(exc).rstrip('.')}"
        ) from None
    except RecursionError:
        raise ValueError("a formula is nested too deeply") from None
    return model


def model_to_text(model: LinkModel) -> str:
    """``<options>;<label>;<formula>`` (see the module docstring)."""
    if model.family == GAUSSIAN:
        options = "reml" if model.reml else "ml"
    else:
        options = f"{model.family}-{model.link}-q{int(model.nagq)}"
    label = " ".join(model.label.replace(";", ",").split())[:MAX_LABEL] or "model"
    return f"{options};{label};{model.formula}"


def model_from_text(text: str) -> LinkModel:
    """The model written by :func:`model_to_text`, checked (:func:`check_model`)."""
    if len(text) > MAX_VALUE:
        raise ValueError(f"a model is longer than {MAX_VALUE:,} characters")
    parts = text.split(";", 2)
    if len(parts) != 3:
        raise ValueError("a model is not written as options;label;formula")
    options, label, formula = parts
    label = " ".join(label.split())[:MAX_LABEL] or "model"
    if options in ("reml", "ml"):
        return check_model(LinkModel(formula.strip(), label, reml=options == "reml"))
    found = _GLMM_RE.fullmatch(options)
    if found is None:
        raise ValueError(f"unknown model options {options[:20]!r}")
    family, link, nagq = found.group(1), found.group(2), int(found.group(3))
    return check_model(LinkModel(formula.strip(), label, False, family, link, nagq))


def encode(view: LinkView) -> dict[str, str | list[str]]:
    """The query parameters of ``view`` (keys of :data:`KEYS`; ``m`` repeated)."""
    params: dict[str, str | list[str]] = {}
    if view.upload is not None:
        params[UPLOAD] = view.upload
    elif view.dataset is not None:
        params[DATASET] = view.dataset
    models = list(view.models)[:MAX_MODELS]
    if models:
        params[MODEL] = [model_to_text(m) for m in models]
        if view.active is not None and 0 <= view.active < len(models):
            params[ACTIVE] = str(view.active + 1)
    if view.reml is not None:
        params[REML] = "1" if view.reml else "0"
    return params


def _one(params: Mapping[str, Sequence[str]], key: str, problems: list[str]) -> str | None:
    values = list(params.get(key) or [])
    if not values:
        return None
    if len(values) > 1:
        problems.append(f"The link repeats '{key}'; the first value is used.")
    value = str(values[0])
    if len(value) > MAX_VALUE:
        problems.append(f"The link's '{key}' is too long; it was ignored.")
        return None
    return value


def _source(
    params: Mapping[str, Sequence[str]], examples: Collection[str], problems: list[str]
) -> tuple[str | None, str | None]:
    dataset, upload = _one(params, DATASET, problems), _one(params, UPLOAD, problems)
    if upload is not None:
        if TOKEN_RE.fullmatch(upload):
            return None, upload
        problems.append("The link's upload token is not valid; the default example is shown.")
        return None, None
    if dataset is None:
        return None, None
    if NAME_RE.fullmatch(dataset) and dataset in examples:
        return dataset, None
    problems.append(
        f"The link names an unknown example dataset ({dataset[:40]!r}); the default example "
        "is shown."
    )
    return None, None


def _models(params: Mapping[str, Sequence[str]], problems: list[str]) -> list[LinkModel]:
    texts = [str(t) for t in list(params.get(MODEL) or [])]
    if len(texts) > MAX_MODELS:
        problems.append(f"The link holds {len(texts)} models; the first {MAX_MODELS} are used.")
    models = []
    for number, text in enumerate(texts[:MAX_MODELS], start=1):
        try:
            models.append(model_from_text(text))
        except ValueError as exc:
            problems.append(f"Model {number} of the link was not restored: {exc}.")
    return models


def _flag(params: Mapping[str, Sequence[str]], problems: list[str]) -> bool | None:
    value = _one(params, REML, problems)
    if value is None:
        return None
    if value in ("0", "1"):
        return value == "1"
    problems.append("The link's 'reml' is neither 0 nor 1; it was ignored.")
    return None


def decode(params: Mapping[str, Sequence[str]], examples: Collection[str]) -> LinkView:
    """The view of query parameters (``key -> values``, as ``st.query_params.get_all``).

    Parameters
    ----------
    params
        The link's parameters; keys outside :data:`KEYS` are ignored.
    examples
        Names of the shipped example datasets (a ``ds`` outside them is refused).

    Returns
    -------
    LinkView
        What was valid, and in ``problems`` a sentence for everything that was not (a
        hostile or broken link gives the default view and says why; it never raises).
    """
    problems: list[str] = []
    dataset, upload = _source(params, examples, problems)
    models = _models(params, problems)
    active = None
    raw = _one(params, ACTIVE, problems)
    if raw is not None:
        if raw.isdigit() and 1 <= int(raw) <= len(models):
            active = int(raw) - 1
        else:
            problems.append("The link's active model is not one of its models; the last is used.")
    return LinkView(
        dataset, upload, tuple(models), active, _flag(params, problems), tuple(problems)
    )
