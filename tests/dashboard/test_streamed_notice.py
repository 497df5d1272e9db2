"""The "sampled patients" notice of the pages that draw patients when the fit was streamed
(dashboard.views.streamed_notice): its sentence, when it shows, and that every such page
calls the one helper (no copies of the sentence)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.views.streamed_notice import is_streamed, sample_notice
from lmm_core import fit_glmm, fit_lmm
from lmm_core.stream.glmm_sample import glmm_on_sample

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("trajectories", "shrinkage", "diagnostics", "prediction")


def _visits(n_pat: int = 12, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pat = np.repeat(np.arange(n_pat), 5)
    time = np.tile(np.arange(5.0), n_pat)
    y = 1 + 0.4 * time + rng.normal(0, 1, n_pat)[pat] + rng.normal(0, 0.5, pat.size)
    return pd.DataFrame({"patient": [f"p{i}" for i in pat], "time": time, "y": y})


def test_the_sentence_has_the_numbers_of_the_fit_and_of_the_sample():
    assert sample_notice(10_000_000, "trial.parquet", 300, 1_600_000) == (
        "Estimates from all 10,000,000 rows of trial.parquet (streamed); this chart shows "
        "the 300 sampled patients (of 1,600,000)."
    )
    assert sample_notice(50, "a.csv", 7, 7, "the residual plots show") == (
        "Estimates from all 50 rows of a.csv (streamed); the residual plots show the 7 "
        "sampled patients."  # every patient of the file: no "(of 7)"
    )
    assert sample_notice(50, "a.csv", 7, None).endswith("this chart shows the 7 sampled patients.")


def test_only_a_fit_seen_on_a_sample_is_streamed():
    df = _visits()
    memory = fit_lmm("y ~ time + (1 | patient)", df)
    streamed = fit_lmm("y ~ time + (1 | patient)", pa.Table.from_pandas(df), batch_size=20)
    assert not is_streamed(memory) and not is_streamed(streamed)  # no sample: nothing drawn
    assert is_streamed(streamed.on_sample(df.iloc[:10]))
    df["event"] = (df["y"] > df["y"].median()).astype(int)
    glmm = fit_glmm("event ~ time + (1 | patient)", df, family="binomial", batch_size=100)
    assert not is_streamed(glmm) and is_streamed(glmm_on_sample(glmm, df.iloc[:10]))
    assert not is_streamed(fit_glmm("event ~ time + (1 | patient)", df, family="binomial"))


def _page(kind: str) -> None:
    """Renders the notice of a record fitted in the script (no server sample active: the
    numbers come from the result)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from dashboard.analysis.records import FitRecord
    from dashboard.views.streamed_notice import show_sample_notice
    from lmm_core import fit_lmm

    n = np.repeat(np.arange(12), 5)
    df = pd.DataFrame({"patient": [f"p{i}" for i in n], "time": np.tile(np.arange(5.0), 12)})
    df["y"] = 1 + 0.4 * df["time"] + np.sin(n) + np.cos(7 * np.arange(n.size)) / 2
    result = fit_lmm("y ~ time + (1 | patient)", pa.Table.from_pandas(df), batch_size=20)
    if kind == "sample":
        result = result.on_sample(df.iloc[:15])
    record = FitRecord("M1: x", result.formula, True, "k", "visits.parquet", result, 1.0)
    show_sample_notice(record, "the plots show")


@pytest.mark.parametrize("kind", ["sample", "whole"])
def test_the_helper_shows_the_notice_for_a_sample_view_only(kind):
    at = AppTest.from_function(_page, args=(kind,), default_timeout=30).run()
    assert not at.exception
    shown = "\n".join(i.value for i in at.info).replace("\\", "")
    if kind == "whole":
        assert not shown
        return
    assert shown == (
        "Estimates from all 60 rows of visits.parquet (streamed); the plots show the 3 "
        "sampled patients (of 12)."
    )


def test_every_page_that_draws_patients_calls_the_one_helper():
    for page in PAGES:
        source = (ROOT / "pages" / f"{page}.py").read_text(encoding="utf-8")
        assert source.count("show_sample_notice(record") == 1, page
    copies = [
        p.relative_to(ROOT).as_posix()
        for p in [*ROOT.joinpath("pages").glob("*.py"), *ROOT.joinpath("dashboard").rglob("*.py")]
        if "(streamed);" in p.read_text(encoding="utf-8")
    ]
    assert copies == ["dashboard/views/streamed_notice.py"]
