"""Data page: choose an example or upload a table, set column roles, read the report."""

from __future__ import annotations

import streamlit as st

from dashboard.base.constants import NONE_CHOICE
from dashboard.base.markup import code_span, escape_text
from dashboard.figures import explore as figures
from dashboard.help.texts import help_text
from dashboard.io.dates import FIRST_VISIT, UNITS, date_columns, suggest_unit, time_column_name
from dashboard.io.roles import Roles
from dashboard.io.validation import validate
from dashboard.state import cached
from dashboard.state.server_data import data_folder
from dashboard.state.session import Keys, activate_example, current_data, current_roles, init_state
from dashboard.state.session import set_roles as store_roles
from dashboard.views.help import column, how_to_read
from dashboard.views.server_data import server_section
from dashboard.views.time_from_dates import apply_dates_as_time, date_choices
from dashboard.views.upload import accept_pending, convert_pending, receive_upload
from dashboard.views.widgets import EXPLORE_PAGE, render_findings, render_message, show_figure

PREVIEW_ROWS = 200


def _on_example() -> None:
    choice = st.session_state.get(Keys.W_EXAMPLE)
    if choice:
        activate_example(choice)
        st.session_state[Keys.UPLOAD_MESSAGE] = None


def choose_example() -> None:
    """Example picker; choosing one makes it active at once."""
    names = cached.example_names()
    titles = dict(names)
    current = st.session_state[Keys.EXAMPLE_NAME]
    options = [n for n, _ in names]
    # The picker shows the active example, or nothing when the data came from elsewhere
    # (an upload, the Teach page, a conversion), so that picking any example loads it. Its
    # value is set on every run: Streamlit drops the state of a widget another page hid.
    if Keys.W_EXAMPLE not in st.session_state or st.session_state[Keys.W_EXAMPLE] != current:
        st.session_state[Keys.W_EXAMPLE] = current
    st.selectbox(
        "Example dataset",
        options,
        format_func=lambda n: f"{n}: {titles[n]}",
        key=Keys.W_EXAMPLE,
        on_change=_on_example,
        placeholder="Pick an example to replace the active data",
        help="Real studies (sleepstudy, Orthodont) and simulated trials with known truth.",
    )


def upload_section() -> None:
    """File uploader (+ sheet choice for workbooks); hands new files to ``receive_upload``."""
    limit = int(st.get_option("server.maxUploadSize"))
    file = st.file_uploader(
        "Upload your own data",
        type=["csv", "tsv", "txt", "xlsx", "xls", "parquet"],  # .xls: to say how to convert it
        key=Keys.W_UPLOAD,
        help=f"CSV/TSV (any delimiter, decimal comma, UTF-8/UTF-16/Latin-1), Excel .xlsx or "
        f"Parquet, up to {limit} MB. One row per visit; one column per visit is converted.",
    )
    st.caption(
        f"Up to {limit} MB. A file marked red was refused by the uploader (hover over it to "
        "see why); the active dataset then stays as it is."
    )
    if file is None:
        st.session_state[Keys.LAST_UPLOAD_ID] = None
        return
    data_bytes = file.getvalue()
    sheet = None
    if data_bytes.startswith(b"PK"):
        try:
            sheets = cached.sheet_names(data_bytes)
        except ValueError:
            sheets = []
        if len(sheets) > 1:
            sheet = st.selectbox(
                f"This workbook has {len(sheets)} sheets: choose the one with the data",
                sheets,
                key=Keys.W_SHEET,
            )
    upload_id = f"{file.file_id}:{sheet}"
    if st.session_state[Keys.LAST_UPLOAD_ID] != upload_id:
        st.session_state[Keys.LAST_UPLOAD_ID] = upload_id
        receive_upload(data_bytes, file.name, sheet)
        st.rerun()  # redraw the sidebar and the example picker for the new state


def pending_section() -> None:
    """Problems of an upload that was held back, with the actions that fix them."""
    pending = st.session_state[Keys.PENDING_UPLOAD]
    if pending is None:
        return
    with st.container(border=True):
        st.markdown(f"**Held back: {pending['name']}** ({pending['note']})")
        cols = st.columns(3)
        if pending["wide"] is not None:
            spec = pending["wide"]
            st.caption(
                f"Each of {', '.join(spec.columns)} becomes one row per subject, with "
                f"'{spec.time_name}' = {', '.join(f'{t:g}' for t in spec.times)} and the value "
                f"in '{spec.outcome_name}'."
            )
            cols[0].button(
                "Convert to long format", key=Keys.W_CONVERT_WIDE, on_click=convert_pending
            )
        else:
            for message in pending["messages"]:
                st.error(message)
            if pending["repairs"]:
                what = {
                    "drop_empty": "drop the empty columns",
                    "outcome_text": "treat the text in the outcome as missing",
                    "nonfinite": "treat the infinite values as missing",
                }
                label = "Load and " + " and ".join(what[r] for r in pending["repairs"])
                cols[0].button(
                    label,
                    key=Keys.W_REPAIR,
                    on_click=accept_pending,
                    kwargs={"apply_repairs": True},
                )
        cols[1].button(
            "Load as it is and set the roles by hand",
            key=Keys.W_LOAD_AS_IS,
            on_click=accept_pending,
            kwargs={"apply_repairs": False},
            help="The problems stay; the Explore page needs them fixed first.",
        )
        cols[-1].button(
            "Discard this upload",
            key=Keys.W_DISCARD,
            on_click=lambda: st.session_state.update({Keys.PENDING_UPLOAD: None}),
        )


def _role_key(role: str) -> str:
    return f"{Keys.W_ROLE}{role}_{st.session_state[Keys.DATA_KEY]}"


def _store_role(role: str) -> None:
    roles = current_roles().to_dict()
    value = st.session_state[_role_key(role)]
    roles[role] = list(value) if role == "covariates" else (None if value == NONE_CHOICE else value)
    store_roles(Roles.from_dict(roles))


def role_editor() -> Roles:
    """Selectboxes for the column roles, seeded from (and written back to) session state."""
    data = current_data()
    roles = current_roles()
    columns = [str(c) for c in data.columns]
    spec = [
        ("subject", "Subject id", "Who is measured repeatedly (patient, child...)."),
        ("cluster", "Cluster id (optional)", "A level above the subject, e.g. the hospital."),
        (
            "time",
            "Time",
            "When each visit happened, as a number (days, weeks, months since baseline, or "
            "age at the visit) or as dates, which can be converted here in one click.",
        ),
        ("outcome", "Outcome", "The numeric measurement to model."),
    ]
    cols = st.columns(5)
    for col, (role, label, tip) in zip(cols, spec, strict=False):
        key = _role_key(role)
        if key not in st.session_state:
            st.session_state[key] = getattr(roles, role) or NONE_CHOICE
        col.selectbox(
            label, [NONE_CHOICE, *columns], key=key, help=tip, on_change=_store_role, args=(role,)
        )
    key = _role_key("covariates")
    if key not in st.session_state:
        st.session_state[key] = list(roles.covariates)
    cols[4].multiselect(
        "Covariates",
        columns,
        key=key,
        help="Other columns that may explain the outcome (arm, sex, age...).",
        on_change=_store_role,
        args=("covariates",),
    )
    return current_roles()


def _dates_key(what: str) -> str:
    return f"{Keys.W_DATES}{what}_{st.session_state[Keys.DATA_KEY]}"


def dates_section(roles: Roles) -> None:
    """One-click conversion of a date column into the time (shown when the time needs it)."""
    data = current_data()
    choices = date_choices(data, roles)
    if not choices:
        return
    with st.container(border=True):
        st.markdown(
            "**Use dates as the time**",
            help="A model needs time as a number. The new column holds, for every visit, the "
            "time elapsed since the start you choose, in the unit you choose (a month is "
            "30.4375 days, a year 365.25 days). The dates themselves stay in the table.",
        )
        left, right = st.columns(2)
        column = left.selectbox("Dates of the visits", choices, key=_dates_key("column"))
        others = [c for c in date_columns(data) if c != column]
        origin = right.selectbox(
            "Count the time from",
            [FIRST_VISIT, *others],
            key=_dates_key("origin"),
            format_func=lambda o: "each subject's first visit" if o == FIRST_VISIT else o,
            help="The first visit of each subject (time 0 at their own first visit), or a date "
            "column such as the randomisation date (visits before it get negative times).",
        )
        unit_key = _dates_key("unit")
        if unit_key not in st.session_state:
            st.session_state[unit_key] = suggest_unit(data, column, roles.subject)
        unit = st.radio(
            "Unit", list(UNITS), key=unit_key, horizontal=True,
            help="Pick the unit you want to read slopes in: the change of the outcome per "
            "day, week, month or year.",
        )  # fmt: skip
        name = time_column_name(column, unit, origin)
        st.button(
            f"Add '{escape_text(name)}' and use it as the time",
            key=_dates_key("apply"),
            type="primary",
            on_click=apply_dates_as_time,
            args=(column, unit, origin),
        )


def report_section(roles: Roles) -> None:
    """Validation report: key numbers, findings, visits distribution, missing values."""
    data = current_data()
    report = validate(data, roles)
    st.subheader("Validation report")
    m = st.columns(5)
    m[0].metric("Observations", f"{report.n_observations:,}", help=help_text("observations"))
    m[1].metric(
        "Subjects",
        "—" if report.n_subjects is None else f"{report.n_subjects:,}",
        help=help_text("subjects"),
    )
    m[2].metric(
        "Clusters",
        "—" if report.n_clusters is None else f"{report.n_clusters:,}",
        help=help_text("clusters"),
    )
    vs = report.visits_summary
    m[3].metric(
        "Visits per subject",
        f"{vs['median']:g}" if vs else "—",
        help="Median; the range is in the caption below.\n\n" + help_text("visits_per_subject"),
    )
    tr = report.time_range
    m[4].metric(
        "Time range", f"{tr[0]:g} to {tr[1]:g}" if tr else "—", help=help_text("time_range")
    )
    if vs:
        st.caption(
            f"Visits per subject: median {vs['median']:g}, mean {vs['mean']:.2f}, range "
            f"{vs['min']:g}-{vs['max']:g}. Subjects with a single visit: "
            f"{len(report.single_visit_subjects):,}."
        )
    render_findings(report)
    left, right = st.columns([3, 2])
    with left:
        if roles.subject is not None and not report.visits_distribution.empty:
            fig = figures.visits_histogram(report.visits_distribution, subject_label=roles.subject)
            show_figure(fig, key="data_visits_hist")
    with right:
        st.markdown("**Missing values per column**", help=help_text("missing_values"))
        st.dataframe(
            report.missing,
            hide_index=True,
            height=250,
            column_config={
                "missing": column("missing_values", "missing (rows)"),
                "percent": column("missing_values", "percent of rows"),
            },
        )
        if report.single_visit_subjects:
            with st.expander(f"{len(report.single_visit_subjects):,} single-visit subject(s)"):
                st.write(", ".join(report.single_visit_subjects[:200]))
    how_to_read(
        "long_format", "column_roles", "visits_per_subject", "missing_values",
        label="How to read this report",
    )  # fmt: skip
    if report.ok:
        st.page_link(EXPLORE_PAGE, label="Explore these data")


def active_dataset_section():
    """Name, size, note and units of the active dataset; returns the table."""
    st.subheader("Active dataset")
    data = current_data()
    st.markdown(
        f"**{st.session_state[Keys.DATA_NAME]}**: {len(data):,} rows x {data.shape[1]} columns"
    )
    if st.session_state[Keys.DATA_NOTE]:
        st.caption(st.session_state[Keys.DATA_NOTE])
    units = st.session_state[Keys.UNITS]
    if units:
        st.caption(" · ".join(f"{code_span(c)}: {escape_text(u)}" for c, u in units.items()))
    return data


def preview_section(data) -> None:
    """The first rows of the active dataset."""
    st.subheader("Preview")
    st.caption(f"First {min(PREVIEW_ROWS, len(data)):,} of {len(data):,} rows.")
    st.dataframe(data.head(PREVIEW_ROWS), hide_index=True, height=300)


def main() -> None:
    """Render the Data page."""
    init_state()
    st.title("Data")
    st.caption(
        "Longitudinal data have one row per visit: who was measured (subject), when (time) "
        "and what was measured (outcome). Pick an example or upload your own table; every "
        "page uses the active dataset shown here."
    )
    left, right = st.columns(2)
    with right:  # uploads first: a new upload resets the example picker before it is drawn
        upload_section()
    with left:
        choose_example()
    folder = data_folder()
    if folder:  # the operator's data folder (limits file): files fitted by streaming
        server_section(folder)
    render_message()
    pending_section()

    data = active_dataset_section()
    st.subheader("Column roles")
    st.caption("Guessed from the column names and values; change any of them here.")
    roles = role_editor()
    dates_section(roles)
    report_section(roles)
    preview_section(data)


main()
