"""The session file format (dashboard.analysis.session_file): round trip and hostile files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dashboard.analysis import session_file as fmt
from dashboard.analysis.link_codec import LinkModel
from lmm_core import datasets, fit_lmm

FORMULAS = ["Reaction ~ Days + (1 | Subject)", "Reaction ~ Days + (Days | Subject)"]


@pytest.fixture(scope="module")
def sleep():
    data, _ = datasets.load_example("sleepstudy")
    fits = [fit_lmm(f, data, reml=True) for f in FORMULAS]
    return data, fits


def _write(sleep, *, include_data: bool, source: str = "example") -> bytes:
    data, fits = sleep
    models = [
        (LinkModel(f, f"m{i}", True), r)
        for i, (f, r) in enumerate(zip(FORMULAS, fits, strict=True))
    ]
    return fmt.write(
        data=data, source=source, example="sleepstudy" if source == "example" else None,
        name="sleepstudy", roles={"subject": "Subject", "time": "Days", "outcome": "Reaction"},
        units={"Reaction": "ms"}, models=models, page="trajectories", reml=True, active=1,
        include_data=include_data,
    )  # fmt: skip


def _edit(raw: bytes, change) -> bytes:
    document = json.loads(raw)
    change(document)
    return json.dumps(document).encode()


def test_round_trip_without_data_keeps_settings_formulas_summaries(sleep):
    saved = fmt.read(_write(sleep, include_data=False))
    assert saved.data is None and saved.example == "sleepstudy" and saved.source == "example"
    assert [m.formula for m in saved.models] == FORMULAS
    assert saved.page == "trajectories" and saved.active == 1 and saved.reml is True
    assert saved.fingerprint == fmt.fingerprint(sleep[0])
    fit = sleep[1][1]
    summary = saved.summaries[1]
    assert summary["loglik"] == pytest.approx(fit.loglik, rel=1e-12)
    terms = [row[0] for row in summary["fixed_effects"]]
    assert terms == list(fit.fixef.index)
    np.testing.assert_allclose([row[1] for row in summary["fixed_effects"]], fit.fixef, rtol=1e-12)
    assert len(summary["variance_components"]) == len(fit.varcorr_table())
    assert fmt.summary_differences(saved.models, saved.summaries, sleep[1]) == []


def test_round_trip_with_data_gives_the_same_table(sleep):
    raw = _write(sleep, include_data=True, source="upload")
    saved = fmt.read(raw)
    data = sleep[0]
    assert saved.data.shape == data.shape and list(saved.data.columns) == list(data.columns)
    np.testing.assert_allclose(saved.data["Reaction"], data["Reaction"], rtol=1e-12)
    assert fmt.fingerprint(fmt.data_csv(saved.data)) == saved.fingerprint


def test_a_changed_loglik_is_reported(sleep):
    saved = fmt.read(_edit(_write(sleep, include_data=False), lambda d: d["models"][0]
                           ["summary"].update(loglik=-1.0)))  # fmt: skip
    notes = fmt.summary_differences(saved.models, saved.summaries, sleep[1])
    assert len(notes) == 1 and notes[0].startswith("m0")


def _set(path, value):
    def change(document):
        node = document
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (_set(["version"], 2), "newer version"),
        (_set(["version"], "1"), "no valid version"),
        (_set(["format"], "something else"), "not a session file"),
        (_set(["models", 0, "formula"], "y ~ __import__('os').system('rm')"), "refused"),
        (_set(["models", 0, "formula"], "y ~ exec(x)"), "refused"),
        (_set(["models", 0, "family"], "gamma"), "refused"),
        (_set(["models", 0, "nagq"], True), "invalid options"),
        (_set(["models"], [{}] * 50), "at most"),
        (_set(["data", "source"], "http"), "neither an example"),
        (_set(["data", "fingerprint"], "abc"), "not a SHA-256"),
        (_set(["data", "csv"], "Reaction,Days\n1,2\n"), "does not match its fingerprint"),
        (_set(["data", "csv"], 42), "not CSV text"),
        (_set(["settings", "page"], "../../secret"), "unknown page"),
        (_set(["settings", "active"], 9), "not one of its models"),
        (_set(["data", "roles"], {"subject": {"nested": 1}}), "other than names"),
    ],
)
def test_a_damaged_or_hostile_file_is_refused_in_words(sleep, change, words):
    raw = _edit(_write(sleep, include_data=False), change)
    with pytest.raises(fmt.SessionFileError, match=words):
        fmt.read(raw)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[1, 2, 3]", "format is not named"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply|not valid JSON"),
        (b"", "not valid JSON"),
    ],
)
def test_malformed_files_are_refused(raw, words):
    with pytest.raises(fmt.SessionFileError, match=words):
        fmt.read(raw)


def test_a_huge_file_is_refused_before_it_is_parsed():
    with pytest.raises(fmt.SessionFileError, match="over the limit"):
        fmt.read(b" " * (fmt.MAX_BYTES + 1))


def test_a_table_of_a_million_columns_is_refused_before_its_rows_are_read(sleep):
    header = ",".join(f"c{i}" for i in range(1_000_000))
    csv = header + "\n" + ",".join("1" * 1 for _ in range(3)) + "\n"

    def change(document):
        document["data"]["csv"] = csv
        document["data"]["fingerprint"] = fmt.fingerprint(csv)

    with pytest.raises(fmt.SessionFileError, match="1,000,000 columns"):
        fmt.read(_edit(_write(sleep, include_data=False), change))
