"""Optional sign-in: the gate every run passes, the sign-in and refusal pages, sign-out.

Off by default: without ``[auth]`` (and without ``[lmm_explorer.access]``) in the server's
``.streamlit/secrets.toml``, :func:`gate` lets every run through and the app is as it always
was. With them, sign-in goes through Streamlit's own ``st.login`` (OpenID Connect, Authlib)
and the allow-list of :mod:`dashboard.analysis.access` decides who may use the app.

``app.py`` calls :func:`gate` before it draws anything of the app (menu, sidebar, state,
pages; :func:`dashboard.state.access.guard_page` checks again at the start of every page): a
visitor who is not signed in sees only :func:`sign_in_page`, a signed-in user who is
not on the list only :func:`refusal_page`, and settings that cannot be trusted only
:func:`problems_page` (for the operator). Nothing is put into the session's state before the
user is let in.

Sign-out (:func:`sign_out`, the sidebar's button of :func:`account_box` and the refusal page's)
drops the session's data at once, in the same run: its jobs are cancelled and forgotten, the
uploads held for a reload (:mod:`dashboard.state.uploads`) of this session and this browser
are dropped, the shared result caches are emptied when the session held data other than the
shipped examples, and the session's state is cleared; then ``st.logout()`` deletes the
identity cookie and sends the browser through the provider's sign-out back to the sign-in page.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit import cache_data  # for cache_data.clear() (tests scan "st.cache_data" uses)

from dashboard.analysis.access import AccessPolicy, Decision, decide, identity_of
from dashboard.state.access import claims as _claims
from dashboard.state.access import policy

__all__ = [
    "APP_NAME",
    "SIGN_IN_KEY",
    "SIGN_OUT_KEY",
    "account_box",
    "drop_session_data",
    "gate",
    "problems_page",
    "refusal_page",
    "sign_in_page",
    "sign_out",
]

APP_NAME = "LMM Explorer"
#: keys of the buttons (their CSS classes are ``st-key-<key>``; browser tests use them)
SIGN_IN_KEY, SIGN_OUT_KEY = "signin_button", "signout_button"
_EXAMPLE_PREFIX = "example:"  # data keys of the shipped examples (dashboard.state.session)


def escape_text(text: str) -> str:
    """:func:`dashboard.base.markup.escape_text`, imported on use: that module loads pandas
    and the engine (about 1.5 s in a fresh server), and this one runs before the menu."""
    from dashboard.base.markup import escape_text as escape

    return escape(text)


def gate() -> bool:
    """True when this run may draw the app; otherwise the page drawn instead was the sign-in,
    refusal or settings page, and the caller must draw nothing more."""
    current = policy()
    if not current.sign_in:
        return True
    if current.problems:
        problems_page(current)
        return False
    claims = _claims()
    if claims.get("is_logged_in") is not True:
        sign_in_page(current)
        return False
    decision = decide(current, claims)
    if not decision.allowed:
        refusal_page(current, decision)
        return False
    return True


def _provider_label(name: str | None) -> str:
    return "Sign in" if name is None else f"Sign in with {name.replace('-', ' ').title()}"


def sign_in_page(current: AccessPolicy) -> None:
    """The app's name, one sentence and a "Sign in" button per provider; nothing else."""
    st.title(APP_NAME)
    st.markdown("Sign in with your organisation's account to use this app.")
    for number, name in enumerate(current.providers):
        key = SIGN_IN_KEY if number == 0 else f"{SIGN_IN_KEY}_{number}"
        if st.button(_provider_label(name), key=key, type="primary"):
            st.login(name)
    st.caption(
        "Signing in keeps signed cookies in this browser with what your provider says about "
        "you (name, e-mail address, groups) until you sign out (30 days at most). Your data "
        "stay in this server's memory and are dropped when you sign out."
    )


def refusal_page(current: AccessPolicy, decision: Decision) -> None:
    """Who the user is signed in as, that they may not use the app, whom to ask; sign-out."""
    st.title(APP_NAME)
    st.error(
        f"You are signed in as **{escape_text(decision.identity)}**, but not allowed to use "
        f"this app. {escape_text(decision.reason)}\n\nAsk {escape_text(current.contact)} to "
        "let you in, or sign out and sign in with another account."
    )
    _sign_out_button()


def problems_page(current: AccessPolicy) -> None:
    """The settings problems, for the operator (no one is let in until they are fixed)."""
    st.title(APP_NAME)
    st.error(
        "This server's sign-in is not set up correctly, so nobody is let in. Ask "
        f"{escape_text(current.contact)}. For the operator:\n\n"
        + "\n".join(f"- {escape_text(problem)}" for problem in current.problems)
    )
    if _claims().get("is_logged_in") is True:
        _sign_out_button()


def account_box(current: AccessPolicy | None = None) -> None:
    """In the sidebar, for a signed-in user: who is signed in, and the "Sign out" button."""
    current = policy() if current is None else current
    if not current.sign_in:
        return
    with st.sidebar:
        st.caption(f"Signed in as {escape_text(identity_of(_claims(), current.email_claim))}")
        _sign_out_button()


def _sign_out_button() -> None:
    if st.button(
        "Sign out",
        key=SIGN_OUT_KEY,
        help="Drops this session's data (uploads, models, running work) at once and signs out.",
    ):
        sign_out()


def sign_out() -> None:
    """Drop the session's data at once, then sign out (ends the run)."""
    drop_session_data()
    st.logout()
    st.stop()


def _holds_private_data(state: Any) -> bool:
    """Whether the session held data other than the shipped examples (an upload, a session
    file, a conversion, simulated data): then shared caches may hold results of it."""
    from dashboard.state.session import Keys

    keys = [state.get(Keys.DATA_KEY)]
    keys += [getattr(record, "data_key", None) for record in state.get(Keys.FITS) or []]
    held = state.get(Keys.PENDING_UPLOAD) or state.get(Keys.UPLOAD_TOKEN)
    return bool(held) or any(k and not str(k).startswith(_EXAMPLE_PREFIX) for k in keys)


def drop_session_data() -> None:
    """Forget everything this session holds, at once (see the module docstring)."""
    from dashboard.state import uploads
    from dashboard.state.session import Keys
    from dashboard.views import jobs as jobs_view

    state = st.session_state
    owner = state.get(Keys.JOB_OWNER)
    if owner:
        runner = jobs_view.runner()
        for job in runner.jobs(owner):
            job.cancel()
            runner.pop(owner, job.key)
    uploads.store().drop_for(uploads.session_id(), uploads.browser_id())
    if _holds_private_data(state):
        # Streamlit's caches are shared and keyed by content, with no per-session entries
        # to drop: they are emptied (other sessions keep their own results in their state
        # and only recompute what they draw next).
        cache_data.clear()
    state.clear()
