"""Who may use the app when sign-in is on: the settings and the decision. Pure (no Streamlit).

Sign-in is optional and off by default. It is on when the server's ``.streamlit/secrets.toml``
has an ``[auth]`` section (Streamlit's own OpenID Connect settings, read by ``st.login``); then
an allow-list decides who, among the people the provider signs in, may use the app::

    [auth]
    redirect_uri = "https://lmm.example.org/oauth2callback"
    cookie_secret = "<64 random hex characters>"
    client_id = "..."
    client_secret = "..."
    server_metadata_url = "https://login.example.org/.well-known/openid-configuration"

    [lmm_explorer.access]
    allowed_emails = ["ada@example.org"]
    allowed_email_domains = ["biostat.example.org"]
    allowed_groups = ["lmm-users"]
    groups_claim = "groups"              # where the ID token lists the groups (a.b for nested)
    email_claim = "email"
    contact = "the research IT desk (it-help@example.org)"

A signed-in user is let in (:func:`decide`) when

    allow_any_signed_in_user  or  e in E  or  domain(e) in D  or  G(user) & A != {}

with ``e`` the user's e-mail address (the ``email_claim`` of the ID token, lower-cased and
stripped; not counted when the token says ``email_verified = false``), ``E`` the allowed
e-mails (lower-cased), ``D`` the allowed domains, ``G(user)`` the groups listed under
``groups_claim`` (a list of names, or one name) and ``A`` the allowed groups (compared exactly,
as the provider writes them). Anything missing counts as no match.

The settings fail closed (:func:`read_policy`): settings that cannot be trusted (an allow-list
without ``[auth]``, an ``[auth]`` section without a provider, a short cookie secret, an empty
allow-list, an unknown setting, an unreadable secrets file) make :attr:`AccessPolicy.problems`
non-empty, and then nobody is let in, and the page says to the operator what to fix. A
problem names the setting, never an allowed address or group (the page is shown to anyone).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ACCESS_SECTION",
    "APP_SECTION",
    "DEFAULT_CONTACT",
    "MIN_COOKIE_SECRET",
    "PROVIDER_KEYS",
    "SETTINGS",
    "AccessPolicy",
    "Decision",
    "claim_at",
    "decide",
    "identity_of",
    "read_policy",
]

#: ``[lmm_explorer.access]`` in ``.streamlit/secrets.toml``
APP_SECTION, ACCESS_SECTION = "lmm_explorer", "access"
#: the settings of ``[lmm_explorer.access]``
SETTINGS = (
    "allowed_emails",
    "allowed_email_domains",
    "allowed_groups",
    "allow_any_signed_in_user",
    "groups_claim",
    "email_claim",
    "contact",
)
#: who a refused user is told to ask when ``contact`` is not set
DEFAULT_CONTACT = "the person who runs this server"
#: characters a cookie secret needs at least: it signs the identity cookie, so whoever can
#: guess it can sign in as anyone (``secrets.token_hex(32)`` gives 64)
MIN_COOKIE_SECRET = 32
#: what an OpenID Connect provider's settings need (in ``[auth]`` or ``[auth.<name>]``)
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
_SHARED_AUTH_KEYS = ("redirect_uri", "cookie_secret", "expose_tokens", "client_kwargs")
_WHERE = f"[{APP_SECTION}.{ACCESS_SECTION}] in .streamlit/secrets.toml"


@dataclass(frozen=True)
class AccessPolicy:
    """The sign-in and allow-list settings of this server (see the module docstring).

    Attributes
    ----------
    sign_in
        False: sign-in is off and the app is open to whoever reaches it (no ``[auth]`` and
        no ``[lmm_explorer.access]``, the default).
    providers
        The provider names to offer, ``None`` standing for the ``[auth]`` section's own.
    problems
        What is wrong with the settings, for the operator; while there is any, nobody is let in.
    """

    sign_in: bool = False
    providers: tuple[str | None, ...] = ()
    allowed_emails: frozenset[str] = frozenset()
    allowed_domains: frozenset[str] = frozenset()
    allowed_groups: frozenset[str] = frozenset()
    allow_any: bool = False
    groups_claim: str = "groups"
    email_claim: str = "email"
    contact: str = DEFAULT_CONTACT
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """Whether a signed-in user may use the app.

    Attributes
    ----------
    allowed
        Let in or not.
    identity
        Who the user is, as shown to them (e-mail, else name, else subject id).
    reason
        Why, in one sentence for the user (never the allow-list itself).
    """

    allowed: bool
    identity: str
    reason: str


def _strings(value: Any, name: str, problems: list[str]) -> list[str]:
    """A list of non-empty strings from a setting (one string counts as a list of one)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        problems.append(f'{name} must be a list of texts, e.g. {name} = ["..."] ({_WHERE}).')
        return []
    items = []
    for number, item in enumerate(value, start=1):
        if not isinstance(item, str) or not item.strip():
            problems.append(f"{name}: entry {number} is not a non-empty text ({_WHERE}).")
        else:
            items.append(item.strip())
    return items


def _text(value: Any, name: str, default: str, problems: list[str]) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{name} must be a non-empty text ({_WHERE}).")
        return default
    return value.strip()


def _shared_auth_problems(auth: Mapping[str, Any]) -> list[str]:
    """What is wrong with the settings every provider shares: redirect URI, cookie secret."""
    problems = []
    redirect = auth.get("redirect_uri")
    if not isinstance(redirect, str) or not redirect.startswith(("https://", "http://")):
        problems.append(
            "[auth] needs redirect_uri: the app's full address ending in /oauth2callback "
            "(e.g. https://lmm.example.org/oauth2callback), registered at the provider."
        )
    elif not redirect.rstrip("/").endswith("/oauth2callback"):
        problems.append("[auth] redirect_uri must end in /oauth2callback.")
    secret = auth.get("cookie_secret")
    if not isinstance(secret, str) or len(secret) < MIN_COOKIE_SECRET:
        problems.append(
            f"[auth] needs cookie_secret: a random text of at least {MIN_COOKIE_SECRET} "
            'characters (python3 -c "import secrets; print(secrets.token_hex(32))"); it signs '
            "the identity cookie, so whoever knows it can sign in as anyone."
        )
    return problems


def _auth_problems(auth: Any) -> tuple[tuple[str | None, ...], list[str]]:
    """The providers of an ``[auth]`` section, and what is wrong with it."""
    if not isinstance(auth, Mapping):
        return (), ["[auth] in .streamlit/secrets.toml must be a section of settings."]
    problems = _shared_auth_problems(auth)
    sections = {None: auth} if any(key in auth for key in PROVIDER_KEYS) else {}
    sections.update(
        (name, value)
        for name, value in auth.items()
        if name not in _SHARED_AUTH_KEYS and isinstance(value, Mapping)
    )
    if not sections:
        problems.append(
            "[auth] names no provider: add client_id, client_secret and server_metadata_url "
            "to [auth] (or to an [auth.<name>] section per provider)."
        )
    providers: list[str | None] = []
    for name, section in sections.items():
        where = "[auth]" if name is None else f"[auth.{name}]"
        missing = [key for key in PROVIDER_KEYS if not section.get(key)]
        if missing:
            problems.append(f"{where} is missing {', '.join(missing)}.")
        elif name is not None and "_" in name:
            problems.append(f"{where}: Streamlit does not accept '_' in a provider's name.")
        else:
            providers.append(name)
    return tuple(providers), problems


def read_policy(secrets: Mapping[str, Any], *, unreadable: bool = False) -> AccessPolicy:
    """The :class:`AccessPolicy` of a server's secrets (``st.secrets`` as a plain dict).

    Parameters
    ----------
    secrets
        The parsed ``.streamlit/secrets.toml`` (empty when there is none).
    unreadable
        True when a secrets file exists but could not be parsed: sign-in may have been meant,
        so the app stays closed (fail closed) until the file is fixed.
    """
    if unreadable:
        return AccessPolicy(
            sign_in=True,
            problems=(
                "The server's .streamlit/secrets.toml exists but could not be read (check its "
                "TOML syntax). Until it is fixed nobody is let in, in case it sets up sign-in.",
            ),
        )
    auth = secrets.get("auth")
    app = secrets.get(APP_SECTION)
    access = app.get(ACCESS_SECTION) if isinstance(app, Mapping) else None
    if auth is None and access is None:
        return AccessPolicy()  # sign-in off: the app as it has always been
    problems: list[str] = []
    providers: tuple[str | None, ...] = ()
    if auth is None:
        problems.append(
            f"{_WHERE} sets an allow-list, but sign-in is not configured: add an [auth] "
            "section (see deploy/SIGN_IN.md). Without sign-in the allow-list cannot be "
            "enforced, so nobody is let in."
        )
    else:
        providers, auth_problems = _auth_problems(auth)
        problems += auth_problems
    if access is None:
        access = {}
    if not isinstance(access, Mapping):
        problems.append(f"{_WHERE} must be a section of settings.")
        access = {}
    unknown = sorted(set(access) - set(SETTINGS))
    if unknown:
        problems.append(
            f"Unknown setting(s) {', '.join(map(repr, unknown))} in {_WHERE}; the settings are "
            f"{', '.join(SETTINGS)}."
        )
    emails = {e.lower() for e in _strings(access.get("allowed_emails"), "allowed_emails", problems)}
    if any(e.count("@") != 1 or e.startswith("@") or e.endswith("@") for e in emails):
        problems.append(f"allowed_emails: an entry is not an e-mail address ({_WHERE}).")
    domains = {
        d.lower().lstrip("@")
        for d in _strings(access.get("allowed_email_domains"), "allowed_email_domains", problems)
    }
    groups = set(_strings(access.get("allowed_groups"), "allowed_groups", problems))
    allow_any = access.get("allow_any_signed_in_user", False)
    if not isinstance(allow_any, bool):
        problems.append(f"allow_any_signed_in_user must be true or false ({_WHERE}).")
        allow_any = False
    if not (emails or domains or groups or allow_any):
        problems.append(
            f"The allow-list is empty, so nobody is let in: list who may use the app in "
            f"{_WHERE} (allowed_emails, allowed_email_domains or allowed_groups), or set "
            "allow_any_signed_in_user = true to let in everyone the provider signs in."
        )
    return AccessPolicy(
        sign_in=True,
        providers=providers,
        allowed_emails=frozenset(emails),
        allowed_domains=frozenset(domains),
        allowed_groups=frozenset(groups),
        allow_any=allow_any,
        groups_claim=_text(access.get("groups_claim"), "groups_claim", "groups", problems),
        email_claim=_text(access.get("email_claim"), "email_claim", "email", problems),
        contact=_text(access.get("contact"), "contact", DEFAULT_CONTACT, problems),
        problems=tuple(problems),
    )


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The claim at ``path`` (``"groups"``, or ``"realm_access.roles"`` for a nested one),
    ``None`` when any step is missing."""
    value: Any = claims
    for step in path.split("."):
        if not isinstance(value, Mapping) or step not in value:
            return None
        value = value[step]
    return value


def identity_of(claims: Mapping[str, Any], email_claim: str = "email") -> str:
    """Who the user is, for the pages: e-mail, else name, else user name, else subject id."""
    for path in (email_claim, "email", "name", "preferred_username", "sub"):
        value = claim_at(claims, path)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return "an account without a name"


def _verified_email(policy: AccessPolicy, claims: Mapping[str, Any]) -> tuple[str | None, bool]:
    """The user's e-mail (lower-cased) and whether the token said it is not verified."""
    value = claim_at(claims, policy.email_claim)
    if not isinstance(value, str) or value.count("@") != 1:
        return None, False
    verified = claims.get("email_verified")
    if verified is False or (isinstance(verified, str) and verified.strip().lower() == "false"):
        return None, True
    return value.strip().lower(), False


def _groups(policy: AccessPolicy, claims: Mapping[str, Any]) -> set[str] | None:
    """The user's groups, ``None`` when the token lists none under ``groups_claim``."""
    value = claim_at(claims, policy.groups_claim)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return None
    return {g.strip() for g in value if isinstance(g, str) and g.strip()}


def decide(policy: AccessPolicy, claims: Mapping[str, Any]) -> Decision:
    """Whether the signed-in user of ``claims`` (``st.user`` as a dict) may use the app.

    Sign-in off: everyone. Settings with problems, or not signed in: nobody. Otherwise the
    rule of the module docstring.
    """
    identity = identity_of(claims, policy.email_claim)
    if not policy.sign_in:
        return Decision(True, identity, "Sign-in is off: the app is open.")
    if policy.problems:
        return Decision(False, identity, "The sign-in settings of this server are incomplete.")
    if claims.get("is_logged_in") is not True:
        return Decision(False, identity, "You are not signed in.")
    if policy.allow_any:
        return Decision(True, identity, "Everyone the provider signs in is let in.")
    email, unverified = _verified_email(policy, claims)
    groups = _groups(policy, claims)
    if email is not None and email in policy.allowed_emails:
        return Decision(True, identity, "Your e-mail address is on the list of users.")
    if email is not None and email.rsplit("@", 1)[1] in policy.allowed_domains:
        return Decision(True, identity, "Your e-mail domain is on the list of users.")
    if groups and groups & policy.allowed_groups:
        return Decision(True, identity, "One of your groups is on the list of users.")
    if unverified:
        reason = "Your provider says your e-mail address is not verified, so it cannot count."
    elif email is None and groups is None:
        reason = (
            f"Your sign-in did not tell this app your e-mail address ('{policy.email_claim}') "
            f"nor your groups ('{policy.groups_claim}'), so it cannot check the list of users."
        )
    else:
        reason = "Your account is not on this app's list of users."
    return Decision(False, identity, reason)
