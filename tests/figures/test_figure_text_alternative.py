"""Issue 16: every chart's text alternative (``dashboard.views.widgets``).

:func:`figure_table` reads the plotted values of any plotly figure (lines, bars, heatmaps)
into one table with a row cap, and :func:`figure_sentence` describes a figure in one sentence
from its title, axis titles and series names.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from dashboard.figures.explore import prepare_spaghetti, spaghetti_figure
from dashboard.figures.style import style_figure
from dashboard.views.widgets import figure_sentence, figure_table
from lmm_core.datasets import load_example


def _lines() -> go.Figure:
    fig = go.Figure(
        [
            go.Scatter(x=[0, 1, 2], y=[250.0, None, 270.5], name="308"),
            go.Scatter(x=[0, 1], y=[240.0, 255.0], name="<b>mean</b>"),
        ]
    )
    return style_figure(fig, "Reaction<br>over days", "Days", "Reaction (ms)")


def test_table_has_every_point_under_the_axis_titles():
    table, total = figure_table(_lines())
    assert total == 5
    assert list(table.columns) == ["series", "Days", "Reaction (ms)"]
    assert table["series"].tolist() == ["308"] * 3 + ["mean"] * 2
    assert table["Days"].tolist() == [0, 1, 2, 0, 1]
    values = table["Reaction (ms)"].to_numpy(dtype=float)
    np.testing.assert_allclose(values[[0, 2, 3, 4]], [250.0, 270.5, 240.0, 255.0])
    assert np.isnan(values[1])  # a gap in a line stays a gap


def test_row_cap_keeps_the_first_rows_and_counts_all():
    fig = go.Figure(
        [go.Scatter(x=np.arange(700), y=np.arange(700.0), name=f"s{k}") for k in range(3)]
    )
    table, total = figure_table(fig, max_rows=1000)
    assert total == 2100 and len(table) == 1000
    assert table["series"].value_counts().to_dict() == {"s0": 700, "s1": 300}


def test_heatmap_in_long_form_and_generic_names():
    z = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.4]])
    fig = go.Figure(go.Heatmap(z=z, x=["w1", "w2", "w3"], y=["w1", "w2"]))
    table, total = figure_table(fig)
    assert total == 6 and list(table.columns) == ["series", "x", "y", "z"]
    assert table.loc[4, ["x", "y", "z"]].tolist() == ["w2", "w2", 1.0]
    assert set(table["series"]) == {"series 1"}


def test_subplots_keep_generic_axis_names():
    fig = go.Figure([go.Scatter(x=[1], y=[2], name="a"), go.Scatter(x=[1], y=[3], xaxis="x2")])
    fig.update_layout(xaxis_title="left", yaxis_title="value")
    table, _ = figure_table(fig)
    assert list(table.columns) == ["series", "x", "y"]


def test_figure_without_data_has_no_table():
    table, total = figure_table(go.Figure())
    assert table.empty and total == 0


def test_sentence_names_title_axes_and_series():
    sentence = figure_sentence(_lines())
    assert sentence == (
        "Chart: Reaction over days, Days on the horizontal axis and Reaction (ms) on the "
        "vertical axis, 2 series (308, mean)."
    )
    assert figure_sentence(go.Figure()) == "Chart: a chart."


def test_sentence_and_table_of_a_real_figure():
    data, _ = load_example("sleepstudy")
    prep = prepare_spaghetti(data, "Subject", "Days", "Reaction")
    fig = spaghetti_figure(prep, subject_label="Subject", time_label="Days")
    assert figure_sentence(fig).startswith("Chart: ")
    table, total = figure_table(fig)
    reaction = table.iloc[:, 2].dropna().astype(float)  # lines of subjects split by gaps
    assert len(reaction) == len(data) and total >= len(data)
    np.testing.assert_allclose(sorted(reaction), sorted(data["Reaction"].astype(float)))


def _chart_page():
    import plotly.graph_objects as go

    from dashboard.views.widgets import show_figure

    fig = go.Figure([go.Scatter(x=[0, 1, 2], y=[3.0, 4.0, 5.0], name="mean")])
    fig.update_layout(title="Mean", xaxis_title="week", yaxis_title="score")
    show_figure(fig, key="chart")
    show_figure(fig, key="chart_b", description="The mean score rises by 1 a week.")
    show_figure(fig, key="chart_c", data_switch=False)


def test_show_figure_gives_a_sentence_and_the_data_on_request():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_chart_page).run()
    assert not at.exception and not at.dataframe  # no table until asked for
    assert any("Chart: Mean, week on the horizontal axis" in m.value for m in at.markdown)
    assert [c.value for c in at.caption] == ["The mean score rises by 1 a week."]
    assert [t.key for t in at.toggle] == ["chart__data", "chart_b__data"]
    at.toggle(key="chart__data").set_value(True).run()
    (table,) = [d.value for d in at.dataframe]
    assert table.to_dict("list") == {
        "series": ["mean"] * 3,
        "week": [0, 1, 2],
        "score": [3.0, 4.0, 5.0],
    }
