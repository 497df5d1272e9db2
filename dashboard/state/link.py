"""The address bar holds the view: restore it at a session's start, keep it up to date.

:func:`restore_once` (the first run of a session) reads ``st.query_params`` through
:func:`dashboard.analysis.link_codec.decode` and rebuilds the view: the example dataset, or an
upload still held by this server for this browser (:mod:`dashboard.state.uploads`), then the
models, fitted again from their formulas (by the app as a job of the runner,
:mod:`dashboard.views.link_restore`; :func:`restore_models` in the run), the active model and
the REML choice. The page comes from the link's path.
:func:`sync` (every run, after the page) writes the current view back, so a reload, a
bookmark or a shared link shows the same view. What cannot be restored is said once, in
words, above the page (:func:`show_notice`); a broken link never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import streamlit as st

from dashboard.analysis import link_codec as codec
from dashboard.analysis.records import GAUSSIAN, FitRecord, label_of
from dashboard.base.markup import escape_message
from dashboard.io.roles import Roles
from dashboard.state import cached, uploads
from dashboard.state.fits import (
    active_record,
    add_fit,
    find_fit,
    next_name,
    records_for_active_data,
    set_active,
)
from dashboard.state.session import Keys, activate_dataset, activate_example, current_data
from lmm_core import LMMError

__all__ = [
    "current_view",
    "fit_outcome",
    "hold_upload",
    "missing_models",
    "place_models",
    "restore_models",
    "restore_once",
    "set_notice",
    "show_notice",
    "sync",
    "upload_not_available",
]

UPLOAD_GONE = (
    "The uploaded table of this link is not available. Uploads are held only in this server's "
    "memory, only for the browser that uploaded them and only while its session lasts; a "
    "link never contains the data. Upload the file again on the Data page."
)


def upload_not_available(models: int) -> str:
    """The notice when a link's upload is not held for this browser (Markdown)."""
    dropped = f" Its {models} model(s) were not restored." if models else ""
    return UPLOAD_GONE + dropped + " The default example is shown."


def hold_upload() -> str | None:
    """The token of the active upload in the server's store (held now if it is not yet),
    ``None`` when the active data is not an upload or this browser cannot be told apart."""
    state = st.session_state
    if state[Keys.DATA_SOURCE] != "upload":
        return None
    meta = {
        "name": state[Keys.DATA_NAME],
        "title": state[Keys.DATA_TITLE],
        "note": state[Keys.DATA_NOTE],
        "units": dict(state[Keys.UNITS]),
        "roles": dict(state[Keys.ROLES]),
        "key": state[Keys.DATA_KEY],
    }
    held = state.get(Keys.UPLOAD_TOKEN)
    session = uploads.session_id()
    if held and held[1] == state[Keys.DATA_KEY]:
        entry = uploads.store().get(held[0], uploads.browser_id(), session)
        if entry is not None:
            entry.meta = meta  # roles or units may have changed
            return held[0]
    browser = uploads.browser_id()
    if not browser:
        return None
    token = uploads.store().put(current_data(), meta, browser, session)
    state[Keys.UPLOAD_TOKEN] = (token, state[Keys.DATA_KEY])
    return token


def current_view() -> codec.LinkView:
    """The view of this session, as a link holds it (no user data)."""
    state = st.session_state
    dataset = state[Keys.EXAMPLE_NAME] if state[Keys.DATA_SOURCE] == "example" else None
    upload = hold_upload()
    if dataset is None and upload is None:  # an upload this server cannot hold for a link
        return codec.LinkView()
    records = records_for_active_data()
    models = tuple(
        codec.LinkModel(r.formula, label_of(r.name), bool(r.reml), r.family, r.link, r.nagq)
        for r in records
    )
    active = active_record()
    index = next((i for i, r in enumerate(records) if active and r.name == active.name), None)
    return codec.LinkView(dataset, upload, models, index, bool(state[Keys.MODEL_REML]))


#: what fitting a model of a link gave: its fit, or why it could not be fitted (a sentence)
Outcome = object


def fit_outcome(number: int, model: codec.LinkModel, key: str, data, job=None) -> Outcome:
    """Fit ``model`` (the link's model ``number``, from 1) on the active data (``key``, ``data``)
    through the cached fit functions (in ``job``'s child process when given); the fit, or a
    sentence saying why it could not be fitted."""
    try:
        if model.family == GAUSSIAN:
            return cached.fit_model(key, model.formula, model.reml, data, job)
        return cached.fit_glmm_model(
            key, model.formula, model.family, model.link, model.nagq, data, job
        )
    except LMMError as exc:
        return f"Model {number} ({model.formula[:80]}) could not be fitted: {exc}"
    except (ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:
        return f"Model {number} failed numerically ({type(exc).__name__})."


def _record(model: codec.LinkModel, result) -> FitRecord:
    state = st.session_state
    return FitRecord(
        name=next_name(model.label),
        formula=result.formula,
        reml=model.reml and model.family == GAUSSIAN,
        data_key=state[Keys.DATA_KEY],
        data_name=state[Keys.DATA_NAME],
        result=result,
        seconds=0.0,
        family=model.family,
        link=getattr(result, "link", None) if model.family != GAUSSIAN else None,
        nagq=model.nagq,
    )


def missing_models(models: Sequence[codec.LinkModel]) -> list[int]:
    """Indices of ``models`` not fitted yet on the active data (the others are reused)."""
    return [
        i
        for i, m in enumerate(models)
        if find_fit(m.formula, m.reml, None, m.family, m.link, m.nagq) is None
    ]


def place_models(
    models: Sequence[codec.LinkModel], outcomes: dict[int, Outcome], active: int | None
) -> list[str]:
    """Store the fits of ``outcomes`` (by index of ``models``; a model without an outcome is
    one already fitted) as records, in the link's order, and make ``models[active]`` the
    active one; returns the sentences of the models that could not be fitted."""
    problems, names = [], []
    for i, model in enumerate(models):
        found = find_fit(model.formula, model.reml, None, model.family, model.link, model.nagq)
        if found is not None:
            names.append(found.name)
            continue
        outcome = outcomes.get(i)
        if outcome is None:
            continue
        if isinstance(outcome, str):
            problems.append(outcome)
            continue
        record = _record(model, outcome)
        add_fit(record)
        names.append(record.name)
    if names:
        set_active(names[-1])
    if active is not None and 0 <= active < len(models) and active < len(names):
        set_active(names[active])
    return problems


def restore_models(models: Sequence[codec.LinkModel], active: int | None) -> list[str]:
    """Fit ``models`` again on the active data, in this run (one record each, as the Model
    page would; a model already fitted is reused) and make ``models[active]`` the active one.

    Returns
    -------
    list of str
        A sentence for each model that could not be fitted (the others are kept).
    """
    data, key = current_data(), st.session_state[Keys.DATA_KEY]
    outcomes = {i: fit_outcome(i + 1, models[i], key, data) for i in missing_models(models)}
    return place_models(models, outcomes, active)


def _source(view: codec.LinkView) -> list[str]:
    if view.upload is not None:
        entry = uploads.store().get(view.upload, uploads.browser_id(), uploads.session_id())
        if entry is None:
            return [upload_not_available(len(view.models))]
        meta = entry.meta
        activate_dataset(
            entry.data, name=meta["name"], source="upload", roles=Roles.from_dict(meta["roles"]),
            key=meta["key"], title=meta["title"], note=meta["note"], units=meta["units"],
        )  # fmt: skip
        st.session_state[Keys.UPLOAD_TOKEN] = (view.upload, meta["key"])
    elif view.dataset is not None and view.dataset != st.session_state[Keys.EXAMPLE_NAME]:
        activate_example(view.dataset)
    return []


#: ``fit_models(models, active, problems)``: fits the link's models and stores them (with
#: :func:`place_models`), then says what could not be restored (:func:`set_notice`)
FitModels = Callable[[Sequence[codec.LinkModel], int | None, list[str]], None]


def restore_once(fit_models: FitModels | None = None) -> None:
    """At a session's first run, rebuild the view of the address bar (if it holds one).

    The models are fitted by ``fit_models`` (the app: as a job, :mod:`dashboard.views.link_restore`,
    so that the page shows at once), or in this run when it is ``None``.
    """
    state = st.session_state
    if state.get(Keys.LINK_RESTORED):
        return
    state[Keys.LINK_RESTORED] = True
    params = {k: st.query_params.get_all(k) for k in codec.KEYS if k in st.query_params}
    if not params:
        return
    view = codec.decode(params, [name for name, _ in cached.example_names()])
    problems = list(view.problems)
    gone = _source(view)
    problems += gone
    if view.reml is not None:
        state[Keys.MODEL_REML] = view.reml
    if view.models and not gone:
        if fit_models is not None:
            fit_models(view.models, view.active, problems)
            return
        with st.spinner(f"Restoring the link's view: fitting {len(view.models)} model(s)..."):
            problems += restore_models(view.models, view.active)
    set_notice(problems)


def set_notice(problems: list[str]) -> None:
    """Say, once above the page, what of a link could not be restored (nothing if all was)."""
    if problems:
        text = "Restored what the link holds, except:\n\n" + "\n\n".join(
            f"- {escape_message(p)}" for p in problems
        )
        st.session_state[Keys.LINK_NOTICE] = ("warning", text)


def show_notice() -> None:
    """The message about the last restore (link or session file), shown once."""
    notice = st.session_state.get(Keys.LINK_NOTICE)
    if notice:
        st.session_state[Keys.LINK_NOTICE] = None
        level, text = notice
        getattr(st, level)(text)


def sync() -> None:
    """Write the current view into the address bar (only when it changed)."""
    wanted = {
        k: (v if isinstance(v, list) else [v]) for k, v in codec.encode(current_view()).items()
    }
    now = {k: st.query_params.get_all(k) for k in st.query_params}
    if {k: v for k, v in now.items() if k in codec.KEYS} == wanted:
        return
    others = {k: v for k, v in now.items() if k not in codec.KEYS}
    st.query_params.from_dict({**others, **wanted})
