"""The HTML report: tables, fingerprint, warnings, nothing external, every user string escaped."""

from __future__ import annotations

import datetime as dt
import hashlib
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from dashboard.analysis.records import FitRecord
from dashboard.export.code import canonical_csv
from dashboard.export.figures import model_figures
from dashboard.export.report import build_report, data_fingerprint
from dashboard.io.roles import Roles
from lmm_core import datasets, fit_lmm

WHEN = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)


class _Refs(HTMLParser):
    """Collects tags and their src/href attributes (script bodies are not parsed as tags)."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [v or "" for k, v in attrs if k in ("src", "href", "action", "data")]


def _record(result, name="M1: random slope", data_name="sleepstudy"):
    return FitRecord(name=name, formula=result.formula, reml=result.reml, data_key="k",
                     data_name=data_name, result=result, seconds=0.25)  # fmt: skip


@pytest.fixture(scope="module")
def sleep():
    data, info = datasets.load_example("sleepstudy")
    return fit_lmm("Reaction ~ Days + (Days | Subject)", data), data, Roles.from_dict(info.roles)


def test_report_tables_fingerprint_and_no_external_references(sleep):
    result, data, roles = sleep
    figs = list(model_figures(result, data, roles).values())
    html = build_report(_record(result), data, figures=figs, generated=WHEN)
    sha = hashlib.sha256(canonical_csv(data)).hexdigest()
    assert sha in html and data_fingerprint(data, result)["sha256"] == sha
    assert "180 rows, 3 columns" in html and "Subject: 18" in html
    assert "Reaction ~ Days + (Days | Subject)" in html
    for text in (
        "Fixed effects",
        "Variance components",
        "Model fit",
        "REML criterion",
        "BOBYQA",
        "p_value",
        "ci_lower",
        "Satterthwaite".lower(),
        "library(lmerTest)",
    ):
        assert text in html, text  # fmt: skip
    assert f"{result.fixef['Days']:.6g}" in html
    assert f"{result.aic:.8g}" in html
    parser = _Refs()
    parser.feed(html)
    assert all(not r.lower().startswith(("http:", "https:", "//")) for r in parser.refs)
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert html.count("<figure>") == len(figs) == 5
    # plotly.js is embedded once (its source mentions URLs only as defaults for map data)
    assert "<scriptsrc" not in html.replace(" ", "").lower() and html.count("plotly.js v") >= 1


def test_report_lists_warnings_and_dropped_rows():
    data, _ = datasets.load_example("sleepstudy")
    data = data.copy()
    data.loc[[0, 7], "Reaction"] = np.nan
    rng = np.random.default_rng(1)
    data["noise"] = rng.normal(size=len(data))
    data["noise2"] = 2 * data["noise"]  # aliased: dropped column
    result = fit_lmm("Reaction ~ Days + noise + noise2 + (1 | Subject) + (0 + noise | Subject)",
                     data)  # fmt: skip
    html = build_report(_record(result), data, generated=WHEN)
    assert "the model uses 178 of 180 rows" in html
    assert "could not be estimated" in html and "noise2" in html
    if result.is_singular:
        assert "singular fit" in html
    assert "Reaction: 2" not in html  # missing counts are a table, check the cell instead
    assert '<td class="t">Reaction</td><td>2</td>' in html


def test_singular_fit_warning_in_report():
    data, _ = datasets.load_example("sleepstudy")
    data = data.copy()
    data["batch"] = np.arange(len(data)) % 3  # a factor with no variance of its own
    result = fit_lmm("Reaction ~ Days + (1 | Subject) + (1 | batch)", data)
    assert result.is_singular
    html = build_report(_record(result), data, generated=WHEN)
    assert "singular fit" in html and 'class="warning"' in html


def test_user_strings_are_escaped():
    rng = np.random.default_rng(3)
    n_groups, per = 12, 5
    data = pd.DataFrame(
        {
            "<script>alert(1)</script>": np.repeat([f"<b>g{i}</b>" for i in range(n_groups)], per),
            "t": np.tile(np.arange(per, dtype=float), n_groups),
        }
    )
    data["y&<i>"] = (
        2 + 0.5 * data["t"] + rng.normal(size=len(data)) + np.repeat(rng.normal(size=n_groups), per)
    )
    formula = "`y&<i>` ~ t + (1 | `<script>alert(1)</script>`)"
    result = fit_lmm(formula, data)
    record = _record(result, name="<img src=x onerror=alert(2)>", data_name="<i>evil</i>.csv")
    html = build_report(record, data, generated=WHEN)
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<i>evil" not in html and "<b>g" not in html and "y&<i>" not in html
    parser = _Refs()
    parser.feed(html)
    assert set(parser.tags) <= {"html", "head", "meta", "title", "style", "body", "h1", "h2",
                                "p", "code", "table", "thead", "tbody", "tr", "th", "td",
                                "ul", "li", "pre", "strong"}  # fmt: skip


def test_static_svg_figures(sleep):
    result, data, roles = sleep
    figs = list(model_figures(result, data, roles, keys=("qq",)).values())
    fake_svg = b'<svg xmlns="http://www.w3.org/2000/svg"></svg>'
    html = build_report(_record(result), data, figures=figs, svg_renderer=lambda f: fake_svg,
                        generated=WHEN)  # fmt: skip
    assert 'src="data:image/svg+xml;base64,' in html
    assert "plotly" not in html.lower().split("<h2>reproduce")[0]  # no plotly.js needed
    assert len(html) < 100_000
