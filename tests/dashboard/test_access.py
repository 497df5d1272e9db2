"""Sign-in settings and the allow-list (dashboard.analysis.access), and the gate of app.py.

The decision rule is checked claim by claim (case of e-mails, domains, nested group claims,
missing and odd-typed claims, unverified e-mails); the settings fail closed; and the app,
run by AppTest with secrets and a user, shows only the sign-in or refusal page until the
user is let in, and drops the session's data on sign-out.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.analysis.access import (
    DEFAULT_CONTACT,
    AccessPolicy,
    claim_at,
    decide,
    identity_of,
    read_policy,
)

APP = str(Path(__file__).resolve().parents[2] / "app.py")
SECRET = "c" * 64
AUTH = {
    "redirect_uri": "https://lmm.example.org/oauth2callback",
    "cookie_secret": SECRET,
    "client_id": "lmm",
    "client_secret": "s",
    "server_metadata_url": "https://idp.example.org/.well-known/openid-configuration",
}


def secrets(**access) -> dict:
    return {"auth": dict(AUTH), "lmm_explorer": {"access": access}}


def user(**claims) -> dict:
    return {"is_logged_in": True, **claims}


# ------------------------------------------------------------------ the settings


def test_no_auth_and_no_allow_list_is_the_open_app():
    policy = read_policy({})
    assert policy == AccessPolicy() and not policy.sign_in and not policy.problems
    assert decide(policy, {}).allowed
    assert read_policy({"other": {"x": 1}}).sign_in is False


def test_an_allow_list_without_auth_closes_the_app():
    policy = read_policy({"lmm_explorer": {"access": {"allowed_emails": ["a@b.org"]}}})
    assert policy.sign_in and "sign-in is not configured" in policy.problems[0]
    assert not decide(policy, user(email="a@b.org")).allowed


def test_an_unreadable_secrets_file_closes_the_app():
    policy = read_policy({}, unreadable=True)
    assert policy.sign_in and "could not be read" in policy.problems[0]
    assert not decide(policy, user(email="a@b.org")).allowed


def test_empty_allow_list_refuses_everyone_and_tells_the_operator():
    policy = read_policy(secrets())
    assert len(policy.problems) == 1
    assert "allow-list is empty" in policy.problems[0]
    assert (
        "allowed_emails" in policy.problems[0] and "allow_any_signed_in_user" in policy.problems[0]
    )
    assert not decide(policy, user(email="ada@example.org", groups=["x"])).allowed
    assert read_policy({"auth": dict(AUTH)}).problems == policy.problems  # no access section


def test_allow_any_signed_in_user_is_explicit():
    policy = read_policy(secrets(allow_any_signed_in_user=True))
    assert not policy.problems
    assert decide(policy, user(sub="x")).allowed
    assert not decide(policy, {"is_logged_in": False}).allowed
    bad = read_policy(secrets(allow_any_signed_in_user="yes"))
    assert any("true or false" in p for p in bad.problems)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"cookie_secret": "short"}, "cookie_secret"),
        ({"cookie_secret": None}, "cookie_secret"),
        ({"redirect_uri": "/oauth2callback"}, "redirect_uri"),
        ({"redirect_uri": "https://lmm.example.org/callback"}, "end in /oauth2callback"),
        ({"client_secret": None}, "missing client_secret"),
    ],
)
def test_auth_section_problems_are_named(change, words):
    auth = {k: v for k, v in {**AUTH, **change}.items() if v is not None}
    policy = read_policy({"auth": auth, "lmm_explorer": {"access": {"allowed_groups": ["g"]}}})
    assert any(words in p for p in policy.problems), policy.problems
    assert not decide(policy, user(groups=["g"])).allowed


def test_named_providers_are_offered_each():
    auth = {
        "redirect_uri": AUTH["redirect_uri"],
        "cookie_secret": SECRET,
        "keycloak": {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")},
        "google": {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")},
        "client_kwargs": {"prompt": "login"},
    }
    policy = read_policy({"auth": auth, "lmm_explorer": {"access": {"allowed_groups": ["g"]}}})
    assert not policy.problems and policy.providers == ("keycloak", "google")
    assert read_policy(secrets(allowed_groups=["g"])).providers == (None,)
    no_provider = {"redirect_uri": AUTH["redirect_uri"], "cookie_secret": SECRET}
    policy = read_policy(
        {"auth": no_provider, "lmm_explorer": {"access": {"allowed_groups": ["g"]}}}
    )
    assert any("names no provider" in p for p in policy.problems)


def test_unknown_and_mistyped_settings_are_problems_that_never_echo_the_list():
    policy = read_policy(secrets(allowed_email=["secret.person@example.org"]))
    assert any("'allowed_email'" in p for p in policy.problems)
    policy = read_policy(secrets(allowed_emails=["secret.person", "ok@example.org"]))
    assert any("not an e-mail address" in p for p in policy.problems)
    policy = read_policy(secrets(allowed_groups=[3, "g"], allowed_emails={"a": 1}, contact=5))
    assert len(policy.problems) == 3
    for p in policy.problems:
        assert "secret.person" not in p
    assert not decide(policy, user(groups=["g"])).allowed


def test_settings_are_normalised():
    policy = read_policy(
        secrets(
            allowed_emails=["  Ada@Example.ORG "],
            allowed_email_domains=["@Biostat.Example.org"],
            allowed_groups="lmm-users",
            contact=" IT desk ",
        )
    )
    assert not policy.problems
    assert policy.allowed_emails == {"ada@example.org"}
    assert policy.allowed_domains == {"biostat.example.org"}
    assert policy.allowed_groups == {"lmm-users"}
    assert policy.contact == "IT desk"
    assert read_policy(secrets(allowed_groups=["g"])).contact == DEFAULT_CONTACT


# ------------------------------------------------------------------ the decision


def test_emails_match_whatever_their_case():
    policy = read_policy(secrets(allowed_emails=["Ada@Example.org"]))
    assert decide(policy, user(email="ADA@example.ORG ")).allowed
    assert decide(policy, user(email="ada@example.org", email_verified=True)).allowed
    refused = decide(policy, user(email="bob@example.org"))
    assert not refused.allowed and refused.identity == "bob@example.org"
    assert "not on this app's list" in refused.reason
    assert not decide(policy, user(email="ada@example.org.evil.com")).allowed


def test_an_unverified_email_does_not_count():
    policy = read_policy(
        secrets(allowed_emails=["ada@example.org"], allowed_email_domains=["x.org"])
    )
    for flag in (False, "false", "False"):
        refused = decide(policy, user(email="ada@example.org", email_verified=flag))
        assert not refused.allowed and "not verified" in refused.reason
    assert not decide(policy, user(email="eve@x.org", email_verified=False)).allowed


def test_email_domains_match_the_whole_domain_only():
    policy = read_policy(secrets(allowed_email_domains=["example.org"]))
    assert decide(policy, user(email="Someone@EXAMPLE.org")).allowed
    assert not decide(policy, user(email="someone@notexample.org")).allowed
    assert not decide(policy, user(email="someone@sub.example.org")).allowed
    assert not decide(policy, user(email="example.org")).allowed  # no @: not an address


def test_groups_match_exactly_from_a_list_a_text_or_a_nested_claim():
    policy = read_policy(secrets(allowed_groups=["lmm-users", "/biostat"]))
    assert decide(policy, user(groups=["other", "lmm-users"])).allowed
    assert decide(policy, user(groups="/biostat")).allowed
    assert not decide(policy, user(groups=["LMM-Users"])).allowed  # exact, as the provider writes
    assert not decide(policy, user(groups=[None, 3, {"a": 1}])).allowed
    assert not decide(policy, user(groups={"lmm-users": True})).allowed
    nested = read_policy(secrets(allowed_groups=["lmm"], groups_claim="realm_access.roles"))
    assert decide(nested, user(realm_access={"roles": ["lmm"]})).allowed
    assert not decide(nested, user(realm_access=["lmm"])).allowed
    assert not decide(nested, user(groups=["lmm"])).allowed


def test_missing_claims_refuse_with_a_reason():
    policy = read_policy(secrets(allowed_emails=["a@b.org"], allowed_groups=["g"]))
    refused = decide(policy, user(sub="12345"))
    assert not refused.allowed and refused.identity == "12345"
    assert "'email'" in refused.reason and "'groups'" in refused.reason
    assert not decide(policy, {"email": "a@b.org"}).allowed  # not signed in
    assert not decide(policy, {"is_logged_in": "true", "email": "a@b.org"}).allowed


def test_another_email_claim():
    policy = read_policy(secrets(allowed_emails=["ada@example.org"], email_claim="upn"))
    assert decide(policy, user(upn="Ada@example.org")).allowed
    assert not decide(policy, user(email="ada@example.org")).allowed


def test_identity_and_claim_lookup():
    assert identity_of({"email": "a@b.org", "name": "A"}) == "a@b.org"
    assert identity_of({"name": " Ada "}) == "Ada"
    assert identity_of({"preferred_username": "ada"}) == "ada"
    assert identity_of({}) == "an account without a name"
    assert claim_at({"a": {"b": [1]}}, "a.b") == [1]
    assert claim_at({"a": 1}, "a.b") is None and claim_at({}, "x") is None


# ------------------------------------------------------------------ the gate of app.py


def _app(**access) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = dict(AUTH)
    at.secrets["lmm_explorer"] = {"access": access}
    return at


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [t.value for t in at.title]
    parts += [e.value for e in at.error] + [e.value for e in at.info] + [b.label for b in at.button]
    return "\n".join(map(str, parts))


def test_app_without_sign_in_settings_is_unchanged():
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Data"
    assert "Sign out" not in [b.label for b in at.button]


def test_signed_out_user_sees_only_the_sign_in_page():
    at = _app(allowed_emails=["ada@example.org"])
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["LMM Explorer"]
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.sidebar.children and "dataset" not in at.session_state
    assert "sleepstudy" not in _texts(at)


def test_refused_user_sees_only_the_refusal_page():
    at = _app(allowed_emails=["ada@example.org"], contact="the IT desk")
    at.user = {"is_logged_in": True, "email": "bob@example.org", "name": "Bob"}
    at.run()
    assert not at.exception
    text = _texts(at)
    assert "bob@example.org" in text and "the IT desk" in text and "not allowed" in text
    assert "ada@example.org" not in text
    assert [b.label for b in at.button] == ["Sign out"]
    assert not at.sidebar.children and "dataset" not in at.session_state


def test_operator_problems_are_shown_to_everyone_and_nothing_else():
    at = _app()  # empty allow-list
    at.user = {"is_logged_in": True, "email": "ada@example.org"}
    at.run()
    assert not at.exception
    assert "allow-list is empty" in _texts(at)
    assert not at.sidebar.children and "dataset" not in at.session_state


def test_allowed_user_gets_the_app_with_a_sign_out_button():
    at = _app(allowed_groups=["lmm-users"])
    at.user = {"is_logged_in": True, "email": "ada@example.org", "groups": ["lmm-users"]}
    at.run()
    assert not at.exception
    assert at.title[0].value == "Data" and "dataset" in at.session_state
    assert [b.label for b in at.sidebar.button] == ["Sign out"]
    assert "Signed in as ada@example.org" in [c.value for c in at.sidebar.caption]


def test_a_page_run_without_the_gate_of_app_py_goes_through_it():
    """AppTest reruns a page's script directly, as Streamlit does for the first requests
    after a server start (its old multipage mode): the page's guard sends the run through
    app.py, which draws the refusal page."""
    at = _app(allowed_emails=["ada@example.org"])
    at.user = {"is_logged_in": True, "email": "ada@example.org"}
    at.run()
    assert at.title[0].value == "Data"
    at.user = {"is_logged_in": True, "email": "eve@example.org"}
    at.run()  # runs pages/data.py directly
    assert not at.exception
    assert [t.value for t in at.title] == ["LMM Explorer"]
    assert "eve@example.org" in _texts(at) and [b.label for b in at.button] == ["Sign out"]
    assert not at.sidebar.children


def _drop_script() -> None:
    import threading

    import streamlit as st

    from dashboard.state import uploads
    from dashboard.state.session import Keys, init_state
    from dashboard.views import jobs as jobs_view
    from dashboard.views.signin import drop_session_data

    init_state()
    state = st.session_state
    store, session = uploads.store(), uploads.session_id()
    mine = store.put("table", {}, "this-browser", session)
    other = store.put("table", {}, "other-browser", "other-session")
    state[Keys.UPLOAD_TOKEN] = (mine, "upload-key")
    runner, owner = jobs_view.runner(), jobs_view.owner()
    release = threading.Event()
    job = runner.submit(owner, ("wait",), lambda j: release.wait(30), kind="fit", label="wait")
    drop_session_data()
    release.set()
    st.write(
        {
            "state": len(list(state.keys())),
            "mine": store.get(mine, "this-browser", session) is None,
            "other": store.get(other, "other-browser", "other-session") is not None,
            "jobs": len(runner.jobs(owner)),
            "cancelled": job.cancel_requested,
        }
    )


def test_sign_out_drops_the_session_data_at_once():
    at = AppTest.from_function(_drop_script, default_timeout=60).run()
    assert not at.exception
    assert at.json[0].value == (
        '{"state": 0, "mine": true, "other": true, "jobs": 0, "cancelled": true}'
    )


def test_upload_store_drops_what_a_session_or_a_browser_holds():
    from dashboard.state.uploads import UploadStore

    store = UploadStore(alive=lambda _s: True)
    a = store.put("t", {}, "browser-a", "s1")
    b = store.put("t", {}, "browser-a", "s2")  # a reload of the same browser
    c = store.put("t", {}, "browser-c", "s3")
    assert store.get(c, "browser-c", "s1") is not None  # s1 also used c (same person)
    assert store.drop_for("s1", "browser-a") == 3
    assert len(store) == 0 and store.get(a, "browser-a", "s1") is None
    assert store.get(b, "browser-a", "s2") is None
    keep = store.put("t", {}, "browser-k", "s9")
    assert store.drop_for("", "") == 0 and store.get(keep, "browser-k", "s9") is not None
