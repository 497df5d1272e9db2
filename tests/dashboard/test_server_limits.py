"""The server's limits file (dashboard.state.limits): defaults, parsing, errors, wiring."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dashboard.state import limits
from dashboard.state.jobs import worker_count

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_file_holds_the_defaults():
    assert limits.load(ROOT / "deploy" / "limits.toml") == limits.DEFAULTS


def test_the_defaults_are_todays_behaviour():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert limits.DEFAULTS.upload_mb == config["server"]["maxUploadSize"]
    assert limits.DEFAULTS.idle_timeout_seconds == 120  # Streamlit's disconnectedSessionTTL
    assert limits.DEFAULTS.jobs_per_session == 0  # no cap beyond one job of each kind
    assert limits.DEFAULTS.job_workers == 0  # worker_count(): the cores, capped


def test_missing_keys_take_their_defaults():
    got = limits.parse("[lmm_explorer]\nupload_mb = 50\n")
    assert got == limits.Limits(upload_mb=50)
    assert limits.parse("") == limits.DEFAULTS


def test_every_key_is_read():
    text = (
        "[lmm_explorer]\nupload_mb = 20\njobs_per_session = 2\n"
        "idle_timeout_seconds = 600\njob_workers = 3\n"
    )
    assert limits.parse(text) == limits.Limits(20, 2, 600, 3)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[lmm_explorer]\nupload_mbs = 20\n", "unknown limit upload_mbs"),
        ("[lmm_explorer]\nupload_mb = 0\n", "upload_mb must be a whole number from 1"),
        ("[lmm_explorer]\nupload_mb = 2.5\n", "not 2.5"),
        ("[lmm_explorer]\njob_workers = true\n", "job_workers must be"),
        ("[lmm_explorer]\nidle_timeout_seconds = '60'\n", "idle_timeout_seconds must be"),
        ("lmm_explorer = 3\n", "must be a table"),
        ("[lmm_explorer\n", "not valid TOML"),
    ],
)
def test_bad_files_are_clear_errors(text, words):
    with pytest.raises(limits.LimitsError, match=words):
        limits.parse(text, source="limits.toml")


def test_the_file_named_by_the_environment_is_read(tmp_path, monkeypatch):
    path = tmp_path / "limits.toml"
    path.write_text("[lmm_explorer]\njobs_per_session = 1\n")
    monkeypatch.setenv(limits.ENV_VAR, str(path))
    assert limits.limits_path() == path
    assert limits.load().jobs_per_session == 1


def test_a_named_file_must_exist_the_default_one_need_not(tmp_path, monkeypatch):
    monkeypatch.setenv(limits.ENV_VAR, str(tmp_path / "absent.toml"))
    with pytest.raises(limits.LimitsError, match="does not exist"):
        limits.load()
    monkeypatch.delenv(limits.ENV_VAR)
    monkeypatch.setattr(limits, "DEFAULT_PATH", tmp_path / "absent.toml")
    assert limits.load() == limits.DEFAULTS


def test_job_workers_zero_means_the_machines_count():
    chosen = limits.Limits(job_workers=0).job_workers or worker_count(cpus=8)
    assert chosen == worker_count(cpus=8) == 4
    assert (limits.Limits(job_workers=2).job_workers or worker_count(cpus=8)) == 2
