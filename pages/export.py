"""Export page: the active model as code (Python, R, SAS), result tables as CSV, figures as
PNG/SVG and a self-contained HTML report. Files are made in memory, only when a download
button is clicked (nothing is written to disk)."""

from __future__ import annotations

import hashlib

import streamlit as st

from dashboard.export import code as ec
from dashboard.export import figures as fx
from dashboard.export import results as er
from dashboard.export.programs import record_glmm, record_programs
from dashboard.export.report import build_report
from dashboard.state.fits import require_fit
from dashboard.state.session import Keys, current_data, current_roles, init_state, persistent_widget
from dashboard.views.inference import DF_METHODS
from dashboard.views.widgets import model_caption

W = Keys.INFER_W  # the df-method choice is shared with the Model page
CSV = "text/csv"


def df_choice() -> str:
    """The df method (shared with the Model page's choice); returns the engine's name."""
    labels = list(DF_METHODS)
    label = st.selectbox(
        "Degrees of freedom for p values and confidence intervals",
        labels,
        **persistent_widget(
            W + "export_df",
            st.session_state[Keys.INFER_SETTINGS],
            "df_method",
            labels[0],
            options=labels,
        ),
        help="Used by the fixed-effects CSV, the report and the R/SAS code. Satterthwaite is "
        "the usual choice (as lmerTest); the same setting as on the Model page.",
    )
    return DF_METHODS[label]


def code_section(record: dict, data, file_name: str, df_method: str) -> None:
    """The data download and the code in three languages."""
    st.subheader("Reproduce the fit")
    csv = ec.canonical_csv(data)
    st.markdown(
        f"Every program reads **{file_name}**: download it here and keep it next to the "
        f"code. SHA-256 of the file: `{hashlib.sha256(csv).hexdigest()}`."
    )
    st.download_button(
        f"Data ({file_name})",
        csv,
        file_name=file_name,
        mime=CSV,
        key="export_data_csv",
        on_click="ignore",
        help="The rows exactly as this app holds them, as a CSV file the code below reads.",
    )
    programs = record_programs(record, data, file_name, df_method)
    kinds = {"Python": ("python", "py"), "R": ("r", "R"), "SAS": ("sas", "sas")}
    codes = {lang: (programs[lang], *kinds[lang]) for lang in kinds}
    if record.result.design.bases:
        bases_note(record.result)
    helps = code_helps(record)
    tabs = st.tabs(list(codes))
    for tab, (lang, (code, highlight, ext)) in zip(tabs, codes.items(), strict=True):
        with tab:
            st.code(code, language=highlight)
            st.download_button(
                f"{lang} code (.{ext})",
                code,
                file_name=f"{file_name.removesuffix('.csv')}_model.{ext}",
                mime="text/plain",
                key=f"export_code_{ext}",
                on_click="ignore",
                help=helps[lang],
            )


def code_helps(record) -> dict[str, str]:
    """What each program does, for the download buttons' help."""
    glmm = record_glmm(record)
    spec = record.result.design.spec
    if glmm is not None:
        return {
            "Python": "Refits the GLMM with this app's engine (lmm_core.fit_glmm) and prints "
            "the estimates.",
            "R": f"The same model for lme4's glmer ({glmm.family}, {glmm.link} link, "
            f"nAGQ = {glmm.nagq}).",
            "SAS": "PROC IMPORT of the data file and PROC GLIMMIX by maximum likelihood "
            f"({glmm.method}).",
        }
    helps = {
        "Python": "Refits the model with this app's engine (lmm_core) and prints the summary.",
        "R": "The same model for lme4 with lmerTest (df and p values), as lme4 writes it.",
        "SAS": "PROC IMPORT of the data file and PROC MIXED with the same model.",
    }
    if spec.residual is not None:  # an MMRM: mmrm (nlme with random effects) and REPEATED
        helps["R"] = (
            "The same model for nlme's lme (random effects and the correlation of the visits)."
            if spec.random
            else "The same model for R's mmrm package (mixed models for repeated measures)."
        )
        helps["SAS"] = (
            "PROC IMPORT of the data file and PROC MIXED with the covariance of the visits as "
            "a REPEATED statement (TYPE= the structure)."
        )
    return helps


def bases_note(result) -> None:
    """The knots the fit learned, which every program below writes out."""
    st.markdown(
        "The model has spline or polynomial terms. Their knots (and polynomial coefficients) "
        "were learned from the data; every program below writes them out, so that it fits "
        "exactly this basis, even on other rows. SAS gets the basis columns from a DATA step "
        "(PROC MIXED has no spline effect)."
    )
    table = er.bases_table(result)
    table.columns = ["Term", "Kind", "Knots", "Boundary knots", "df"]
    st.dataframe(table, hide_index=True)


def results_section(result, data, stem: str, df_method: str) -> None:
    """CSV downloads of the result tables (made when clicked)."""
    st.subheader("Results as CSV")
    tables = [
        ("Fixed effects", "fixed_effects",
         lambda: er.fixed_effects_table(result, df_method),
         "Estimate, standard error, df, t, p value and 95% confidence interval of each "
         "fixed effect."),
        ("Variance components", "variance_components",
         lambda: er.variance_components_table(result),
         "Variance and SD of each random effect, their correlations and the residual."),
        ("BLUPs", "blups",
         lambda: er.blup_table(result),
         "Each group's estimated deviation from the population (BLUP) with its conditional "
         "SD, one row per group and effect."),
        ("Fitted values", "predictions",
         lambda: er.predictions_table(result, data),
         "One row per data row: observed value, the model's fitted value (with the group's "
         "own effects), the population prediction and the residual."),
    ]  # fmt: skip
    cols = st.columns(len(tables))
    for col, (label, name, make, help_text) in zip(cols, tables, strict=True):
        col.download_button(
            label,
            lambda make=make: er.to_csv_bytes(make()),
            file_name=f"{stem}_{name}.csv",
            mime=CSV,
            key=f"export_csv_{name}",
            on_click="ignore",
            help=help_text,
        )


def figures_section(result, data, roles, units: dict, stem: str) -> None:
    """PNG and SVG downloads of the main figures (rendered by kaleido when clicked)."""
    st.subheader("Figures as images")
    reason = fx.unavailable_reason()
    if reason:
        st.info(reason)
        return
    st.caption(
        "Rendered on the server when you click (the first image takes a few seconds). The "
        "figures are those of the Trajectories, Shrinkage and Diagnostics pages with their "
        "default settings."
    )
    names = {
        "trajectories": "Trajectories",
        "caterpillar": "Caterpillar plot",
        "residuals": "Residuals vs fitted",
        "qq": "QQ plot of residuals",
        "ranef_qq": "QQ plots of random effects",
    }
    for key, label in names.items():
        if key == "trajectories" and not (roles.subject and roles.time):
            continue
        left, png, svg = st.columns([4, 1, 1])
        left.markdown(label)
        for col, fmt in ((png, "png"), (svg, "svg")):

            def make(key=key, fmt=fmt) -> bytes:
                figs = fx.model_figures(result, data, roles, units=units, keys=(key,))
                return fx.render_image(figs[key][1], fmt)

            col.download_button(
                fmt.upper(),
                make,
                file_name=f"{stem}_{key}.{fmt}",
                mime=fx.FORMATS[fmt],
                key=f"export_fig_{key}_{fmt}",
                on_click="ignore",
                help="PNG: a picture for slides and documents. SVG: a vector drawing that "
                "stays sharp at any size (for journals).",
            )


def report_section(record, data, roles, units: dict, stem: str, df_method: str) -> None:
    """The self-contained HTML report."""
    st.subheader("Report")
    st.caption(
        "One HTML file with the data fingerprint, formula, estimation settings, every "
        "warning, the tables, the figures and the R and Python code. It opens in any "
        "browser and loads nothing from the internet."
    )
    static_ok = fx.unavailable_reason() is None
    options = ["Interactive (about 5 MB)"] + (["Static images (smaller)"] if static_ok else [])
    mode = st.radio(
        "Charts in the report",
        options,
        horizontal=True,
        key="export_report_mode",
        help="Interactive charts can be zoomed and hovered; the file then carries the "
        "charting library (about 5 MB). Static images make a much smaller file.",
    )
    static = mode.startswith("Static")

    def make() -> str:
        figs = fx.model_figures(record.result, data, roles, units=units)
        return build_report(
            record,
            data,
            df_method=df_method,
            figures=list(figs.values()),
            svg_renderer=(lambda f: fx.render_image(f, "svg")) if static else None,
        )

    st.download_button(
        "HTML report",
        make,
        file_name=f"{stem}_report.html",
        mime="text/html",
        key="export_report",
        on_click="ignore",
        type="primary",
        help="Download the report; it is made when you click (a few seconds).",
    )


def main() -> None:
    """Render the Export page."""
    init_state()
    st.title("Export")
    st.caption(
        "Take the active model out of the app: code that refits it in Python, R or SAS, the "
        "result tables as CSV, the figures as images and a report to archive or share."
    )
    record = require_fit("The Export page")
    data, roles = current_data(), current_roles()
    units = dict(st.session_state[Keys.UNITS])
    result = record.result
    st.markdown(f"{model_caption(record)} ({record.method}, {result.nobs:,} observations).")
    if record_glmm(record) is None:
        df_method = df_choice()
    else:  # a GLMM's tests are Wald z tests: no df to choose
        df_method = "wald"
        st.caption("A GLMM's fixed effects are tested with Wald z tests (as glmer's summary).")
    file_name = ec.data_file_name(record.data_name)
    stem = file_name.removesuffix(".csv")
    code_section(record, data, file_name, df_method)
    results_section(result, data, stem, df_method)
    if record_glmm(record) is not None:
        st.info(
            "Figures and the HTML report are made for linear mixed models; a GLMM's figures "
            "are on the Diagnostics and Trajectories pages."
        )
        return
    figures_section(result, data, roles, units, stem)
    report_section(record, data, roles, units, stem, df_method)


main()
