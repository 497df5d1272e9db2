"""Session-state keys, defaults and the functions that change the active dataset.

Every page calls :func:`init_state` first. Pages read and write ``st.session_state`` only
through the names in :class:`Keys`. Values that must survive a page switch are stored under
non-widget keys (widgets are re-seeded from them), because Streamlit forgets the state of a
widget that is not rendered.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.io.roles import Roles
from dashboard.state import cached
from dashboard.state.access import guard_page

__all__ = [
    "DEFAULTS",
    "DEFAULT_EXAMPLE",
    "Keys",
    "activate_dataset",
    "activate_example",
    "current_data",
    "current_roles",
    "init_state",
    "persistent_widget",
    "set_roles",
]

DEFAULT_EXAMPLE = "sleepstudy"


class Keys:
    """Names of everything kept in ``st.session_state``."""

    # active dataset (non-widget keys)
    DATASET = "dataset"  # pandas.DataFrame, long format
    DATA_KEY = "data_key"  # content id of the active data (used by caches and fit records)
    DATA_NAME = "data_name"  # short display name
    DATA_TITLE = "data_title"  # one-line title
    DATA_NOTE = "data_note"  # description or how the file was read
    DATA_SOURCE = "data_source"  # "example" or "upload"
    EXAMPLE_NAME = "example_name"  # manifest name when the source is an example
    UNITS = "units"  # column -> unit text
    ROLES = "roles"  # Roles.to_dict()
    # uploads
    PENDING_UPLOAD = "pending_upload"  # parsed upload waiting for a decision (dict)
    UPLOAD_MESSAGE = "upload_message"  # (level, text) of the last upload
    LAST_UPLOAD_ID = "last_upload_id"  # id of the upload already processed
    # models (filled by the Model page)
    FITS = "fits"  # list of fit records (see dashboard.state.fits)
    ACTIVE_FIT = "active_fit"  # name of the fit record the result pages show
    COMPARE_SELECTION = "compare_selection"
    MODEL_CHOICES = "model_choices"  # data key -> Model page builder choices + typed formula
    MODEL_REML = "model_reml"  # True: REML, False: ML
    MODEL_NOTICE = "model_notice"  # (level, text) shown once after a fit
    # long work (dashboard.views.jobs): fits, ladder, bootstrap, profile, Teach repeats
    JOB_OWNER = "job_owner"  # this session's token in the job runner (set on first use)
    JOBS = "jobs"  # work key -> dashboard.state.jobs.Job started and not yet collected
    JOB_NOTICES = "job_notices"  # job kind -> (level, text) of the last failed/cancelled job
    MODEL_W = "model_w_"  # prefix of the Model page's widget keys (model_w_outcome, ...)
    TRAJ_SETTINGS = "traj_settings"  # Trajectories page choices (dict), kept across pages
    TRAJ_W = "traj_w_"  # prefix of the Trajectories page's widget keys
    SHRINK_SETTINGS = "shrink_settings"  # Shrinkage page choices (dict)
    SHRINK_W = "shrink_w_"  # prefix of the Shrinkage page's widget keys
    PRED_SETTINGS = "pred_settings"  # Prediction page choices (dict), kept across pages
    PRED_W = "pred_w_"  # prefix of the Prediction page's widget keys
    INFER_SETTINGS = "infer_settings"  # Model page inference choices (df method, bootstrap)
    INFER_W = "infer_w_"  # prefix of the Model page's inference widget keys
    INFER_RESULTS = "infer_results"  # (data key, formula, reml, what, ...) -> computed on request
    COMPARE_KNOWN = "compare_known"  # fit names that existed when the selection was stored
    W_COMPARE_PICK = "compare_pick"  # widget: the multiselect of models to compare
    LADDER = "ladder"  # data key -> (settings, dashboard.analysis.ladder.Ladder) fitted on request
    LADDER_NOTICE = "ladder_notice"  # text shown once after adding the ladder's fits
    W_LADDER_REML = "ladder_reml"  # widget: fit the ladder by REML or ML
    W_LADDER_RUN = "ladder_run"  # widget: the button that fits the ladder
    W_LADDER_ADD = "ladder_add"  # widget: add the ladder's fits to the fitted models
    DIAG_CORR = "diag_corr"  # Diagnostics correlation choices (dict: source, bins)
    W_DIAG_CORR_SOURCE = "diag_corr_source"  # widget: observed outcome or residuals
    W_DIAG_CORR_BINS = "diag_corr_bins"  # widget: number of time bins (irregular times)
    DIAG_GROUP = "diag_group_value"  # grouping factor shown on the Diagnostics page
    W_DIAG_MODEL = "diag_model"  # widget: model shown on the Diagnostics page
    W_DIAG_GROUP = "diag_group"  # widget: grouping factor
    TRIAL_SETTINGS = "trial_settings"  # Trial page choices (dict: arm, shown structure)
    TRIAL_RESULTS = "trial_results"  # data key -> StoredTrial fitted on request
    W_TRIAL_ARM = "trial_arm"  # widget: the arm column
    W_TRIAL_RUN = "trial_run"  # widget: the button that fits the structures
    W_TRIAL_SHOWN = "trial_shown"  # widget: the structure whose covariance is shown
    TEACH_SETTINGS = "teach_settings"  # Teach page: the truth, seed and choices (dict)
    TEACH_W = "teach_w_"  # prefix of the Teach page's widget keys
    TEACH_REPLICATES = "teach_replicates"  # last repeated-study run: {"key", "summary"} or None
    # Teach page, binary outcome, and the Laplace vs quadrature section (issue 15)
    TEACH_BINARY_SETTINGS = "teach_binary_settings"  # binary lab: outcome kind, truth, seed
    TEACH_BINARY_W = "teach_binary_w_"  # prefix of the binary lab's widget keys
    W_TEACH_OUTCOME = "teach_outcome"  # widget: continuous or binary section of the Teach page
    QUADRATURE_RESULTS = "quadrature_results"  # fit id -> QuadratureLadder (refits on request)
    # Diagnostics of GLMMs (issue 15)
    DIAG_QRES_SEED = "diag_qres_seed"  # seed of the randomized quantile residuals (int)
    W_DIAG_QRES_SEED = "diag_qres_seed_input"  # widget: that seed
    W_DIAG_QRES_AGAIN = "diag_qres_again"  # widget: "Draw again" (the next seed)
    # page settings kept across page switches
    EXPLORE_COLOR = "explore_color_value"
    EXPLORE_MAX_SUBJECTS = "explore_max_subjects_value"
    # sessions that last (issue 16): the link, the held upload, session files
    LINK_RESTORED = "link_restored"  # True once the address bar's view was restored
    LINK_NOTICE = "link_notice"  # (level, text) about the last restore, shown once
    UPLOAD_TOKEN = "upload_token"  # (token, data key) of the upload held for a reload
    CURRENT_PAGE = "current_page"  # url path of the page shown ("trajectories"; "" the first)
    SESSION_FILE_ID = "session_file_id"  # id of the session file already opened
    W_SESSION_DATA = "session_with_data"  # widget: put the data into the saved file
    W_SESSION_OPEN = "session_open"  # widget: the uploader of a session file
    # guided tour (issue 16): the step shown per dataset and the presenter view
    TOUR_STEP = "tour_step"  # data key -> index of the step shown (among the plan's steps)
    TOUR_PRESENT = "tour_present"  # True: the presenter view (large type, controls hidden)
    TOUR_URL_SEEN = "tour_url_seen"  # the address's ?present=1 has been read (once a session)
    W_TOUR_PRESENT = "tour_present_toggle"  # widget: the presenter view on/off
    W_TOUR_NEXT = "tour_next"  # widget: Next (shortcut: right arrow)
    W_TOUR_BACK = "tour_back"  # widget: Back (shortcut: left arrow)
    W_TOUR_LEAVE = "tour_leave"  # widget: leave the tour, open the step's page
    W_TOUR_END_PRESENT = "tour_end_present"  # widget: leave the presenter view (shortcut: Esc)
    W_TOUR_RESTART = "tour_restart"  # widget: back to the first step
    # server data folder (issue 18): the sampled server file that is the active dataset
    SERVER_DATA = "server_data"  # dict (dashboard.state.server_data.activate_sample) or None
    W_SERVER_FILE = "server_file"  # widget: the file of the data folder
    W_SERVER_GROUP = "server_group"  # widget: the patient column
    W_SERVER_N = "server_n"  # widget: how many patients to sample
    W_SERVER_SEED = "server_seed"  # widget: the seed of the sample
    W_SERVER_SAMPLE = "server_sample"  # widget: the button that samples and activates

    # widget keys (also used by tests to find widgets)
    W_EXAMPLE = "example_choice"
    W_UPLOAD = "upload_file"
    W_SHEET = "upload_sheet"
    W_ROLE = "role_"  # prefix: role_subject, role_cluster, ... (+ data key suffix)
    W_CONVERT_WIDE = "convert_wide"
    W_LOAD_AS_IS = "load_as_is"
    W_REPAIR = "load_repaired"
    W_DISCARD = "discard_upload"
    W_DATES = "dates_"  # prefix: dates_column, dates_origin, dates_unit, dates_apply (+ data key)
    W_EXPLORE_COLOR = "explore_color"
    W_EXPLORE_MAX = "explore_max_subjects"


DEFAULTS: dict[str, Any] = {
    Keys.DATASET: None,
    Keys.DATA_KEY: None,
    Keys.DATA_NAME: None,
    Keys.DATA_TITLE: "",
    Keys.DATA_NOTE: "",
    Keys.DATA_SOURCE: None,
    Keys.EXAMPLE_NAME: None,
    Keys.UNITS: {},
    Keys.ROLES: Roles().to_dict(),
    Keys.PENDING_UPLOAD: None,
    Keys.UPLOAD_MESSAGE: None,
    Keys.LAST_UPLOAD_ID: None,
    Keys.FITS: [],
    Keys.ACTIVE_FIT: None,
    Keys.COMPARE_SELECTION: [],
    Keys.MODEL_CHOICES: {},
    Keys.MODEL_REML: True,
    Keys.MODEL_NOTICE: None,
    Keys.JOBS: {},
    Keys.JOB_NOTICES: {},
    Keys.TRAJ_SETTINGS: {},
    Keys.SHRINK_SETTINGS: {},
    Keys.PRED_SETTINGS: {},
    Keys.INFER_SETTINGS: {},
    Keys.INFER_RESULTS: {},
    Keys.COMPARE_KNOWN: [],
    Keys.LADDER: {},
    Keys.LADDER_NOTICE: None,
    Keys.DIAG_CORR: {},
    Keys.DIAG_GROUP: None,
    Keys.TRIAL_SETTINGS: {},
    Keys.TRIAL_RESULTS: {},
    Keys.TEACH_SETTINGS: {},
    Keys.TEACH_REPLICATES: None,
    Keys.TEACH_BINARY_SETTINGS: {},
    Keys.QUADRATURE_RESULTS: {},
    Keys.DIAG_QRES_SEED: 1,
    Keys.EXPLORE_COLOR: None,
    Keys.EXPLORE_MAX_SUBJECTS: 400,
    Keys.LINK_NOTICE: None,
    Keys.UPLOAD_TOKEN: None,
    Keys.SESSION_FILE_ID: None,
    Keys.TOUR_STEP: {},
    Keys.TOUR_PRESENT: False,
    Keys.TOUR_URL_SEEN: False,
    Keys.SERVER_DATA: None,
}


def init_state() -> None:
    """Fill missing keys with their defaults and load the default example once.

    Idempotent: calling it again changes nothing that is already set. With sign-in on, a
    session that is not let in stops here (:func:`dashboard.state.access.guard_page`).
    """
    guard_page(set_up=Keys.CURRENT_PAGE in st.session_state)  # app.py sets it, every run
    state = st.session_state
    for key, value in DEFAULTS.items():
        if key not in state:
            state[key] = copy.deepcopy(value)
    if state[Keys.DATASET] is None:
        activate_example(DEFAULT_EXAMPLE)


def frame_key(data: pd.DataFrame) -> str:
    """Short content hash of a DataFrame (values, index and column names)."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(data, index=True).to_numpy().tobytes())
    digest.update("\x1f".join(map(str, data.columns)).encode())
    return digest.hexdigest()[:16]


def activate_dataset(
    data: pd.DataFrame,
    *,
    name: str,
    source: str,
    roles: Roles,
    key: str | None = None,
    title: str = "",
    note: str = "",
    units: dict[str, str] | None = None,
    example: str | None = None,
) -> None:
    """Make ``data`` the active dataset of this session and clear any pending upload."""
    state = st.session_state
    state[Keys.DATASET] = data
    state[Keys.DATA_KEY] = key or frame_key(data)
    state[Keys.DATA_NAME] = name
    state[Keys.DATA_TITLE] = title
    state[Keys.DATA_NOTE] = note
    state[Keys.DATA_SOURCE] = source
    state[Keys.EXAMPLE_NAME] = example
    state[Keys.UNITS] = dict(units or {})
    state[Keys.ROLES] = roles.restricted_to(data.columns).to_dict()
    state[Keys.PENDING_UPLOAD] = None
    state[Keys.UPLOAD_MESSAGE] = None  # a banner about earlier data would be out of step
    state[Keys.EXPLORE_COLOR] = None


def activate_example(name: str) -> None:
    """Load the example dataset ``name`` (manifest name) and make it active."""
    data, info = cached.load_example(name)
    activate_dataset(
        data,
        name=name,
        source="example",
        roles=Roles.from_dict(info["roles"]),
        key=f"example:{name}",
        title=info["title"],
        note=info["description"],
        units=info["units"],
        example=name,
    )


def current_data() -> pd.DataFrame:
    """The active dataset."""
    return st.session_state[Keys.DATASET]


def current_roles() -> Roles:
    """The column roles of the active dataset."""
    return Roles.from_dict(st.session_state[Keys.ROLES])


def set_roles(roles: Roles) -> None:
    """Store new column roles for the active dataset."""
    st.session_state[Keys.ROLES] = roles.to_dict()


def _copy_back(key: str, store: MutableMapping[str, Any], name: str) -> None:
    store[name] = st.session_state[key]


def persistent_widget(
    key: str,
    store: MutableMapping[str, Any],
    name: str,
    default: Any,
    *,
    options: Sequence[Any] | None = None,
    fix: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """Keyword arguments that keep a widget's value across page switches.

    Streamlit forgets the value of a widget that is not drawn in a run (another page was
    shown), so the value lives in ``store[name]`` (a dict kept in the session state, or
    ``st.session_state`` itself) and the widget ``key`` is re-seeded from it on every run; the
    returned ``on_change`` copies the user's change back. Pass no ``value``/``index`` to the
    widget.

    Parameters
    ----------
    key
        The widget's key.
    store, name
        Where the value lasts.
    default
        The value when ``store`` has none, or when the stored one is not among ``options``.
    options
        The widget's options: a stored list keeps only its entries among them, another value
        not among them falls back to ``default`` (the stored value itself is left as it is,
        so it comes back when the option does).
    fix
        Applied to the value before seeding (e.g. clamp to the widget's range).

    Returns
    -------
    dict
        ``key``, ``on_change`` and ``args`` for the widget call.
    """
    value = store.get(name, default)
    if options is not None:
        if isinstance(value, list):
            value = [v for v in value if v in options]
        elif value not in options:
            value = default
    if fix is not None:
        value = fix(value)
    st.session_state[key] = value
    return {"key": key, "on_change": _copy_back, "args": (key, store, name)}
