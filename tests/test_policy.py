"""Policy, CookieOptions and ConcurrencyPolicy: presets, variants, validation at construction."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from sessio import ConcurrencyPolicy, ConfigurationError, CookieOptions, Policy

# -- defaults and presets -----------------------------------------------------------------------------


def test_the_default_policy_is_the_web_preset() -> None:
    policy = Policy()
    assert policy == Policy.web()
    assert policy.ttl == timedelta(days=7)
    assert policy.idle_timeout == timedelta(minutes=30)
    assert policy.refresh_interval == timedelta(seconds=60)
    assert (policy.rolling, policy.resave, policy.save_uninitialized) == (False, False, False)
    assert policy.rotate_on_login
    assert policy.csrf
    assert policy.transports == ("cookie",)
    assert policy.concurrency == ConcurrencyPolicy()
    assert policy.concurrency.max_sessions_per_principal is None


def test_the_default_cookie_follows_owasp() -> None:
    cookie = CookieOptions()
    assert cookie.name == "__Host-sessio"  # ASVS 5.0 3.3.1/3.3.3: the strongest prefix that fits
    assert cookie.path == "/"
    assert cookie.domain is None
    assert cookie.secure
    assert cookie.httponly
    assert cookie.samesite == "lax"
    assert cookie.max_age is None
    assert not cookie.partitioned


def test_the_api_preset() -> None:
    api = Policy.api()
    assert api.ttl == timedelta(hours=1)
    assert api.idle_timeout == timedelta(minutes=15)
    assert api.transports == ("bearer", "header")
    assert api.header_name == "X-Session-ID"
    assert not api.csrf
    assert Policy.api(ttl=timedelta(hours=2)).ttl == timedelta(hours=2)


def test_the_ephemeral_preset() -> None:
    ephemeral = Policy.ephemeral()
    assert ephemeral.ttl == timedelta(minutes=15)
    assert ephemeral.idle_timeout is None
    assert ephemeral.cookie.max_age == "session"
    assert Policy.ephemeral(rolling=True).rolling


def test_presets_take_changes_and_validate_them() -> None:
    assert Policy.web(rolling=True).rolling
    with pytest.raises(ConfigurationError):
        Policy.web(ttl=timedelta(0))
    with pytest.raises(ConfigurationError):
        Policy.api(transports=())
    with pytest.raises(ConfigurationError):
        Policy.ephemeral(ttl=None)  # and no idle timeout either: no end at all


def test_production_hardens_the_cookie() -> None:
    loose = Policy.web(
        rolling=True,
        cookie=CookieOptions(name="app", secure=False, domain="example.com", path="/x"),
    )
    prod = loose.production()
    assert prod.cookie.name == "__Host-app"
    assert prod.cookie.secure
    assert prod.cookie.domain is None
    assert prod.cookie.path == "/"
    assert prod.rolling  # everything else is kept
    assert prod.production() == prod
    secure_prefixed = Policy(cookie=CookieOptions(name="__Secure-app", domain="example.com"))
    assert secure_prefixed.production().cookie.name == "__Secure-app"
    assert loose.cookie.name == "app"  # the original is untouched


def test_development_works_over_plain_http() -> None:
    prod = Policy(
        cookie=CookieOptions(name="__Host-app", samesite="none", partitioned=True)
    ).production()
    dev = prod.development()
    assert dev.cookie.name == "app"
    assert not dev.cookie.secure
    assert dev.cookie.samesite == "lax"  # SameSite=None needs Secure
    assert not dev.cookie.partitioned
    assert Policy().development().cookie.samesite == "lax"
    assert Policy(cookie=CookieOptions(samesite="strict")).development().cookie.samesite == "strict"
    assert Policy().development().production().cookie.name == "__Host-sessio"


# -- variants -------------------------------------------------------------------------------------------


def test_replace_returns_a_validated_copy() -> None:
    base = Policy()
    shorter = base.replace(idle_timeout=timedelta(minutes=5))
    assert shorter.idle_timeout == timedelta(minutes=5)
    assert base.idle_timeout == timedelta(minutes=30)
    assert shorter.replace(cookie={"name": "other"}).cookie.name == "other"
    assert shorter.replace(cookie={"name": "other"}).cookie.httponly
    limited = base.replace(concurrency={"max_sessions_per_principal": 3})
    assert limited.concurrency == ConcurrencyPolicy(max_sessions_per_principal=3)
    with pytest.raises(ConfigurationError):
        base.replace(refresh_interval=timedelta(hours=1))
    with pytest.raises(ConfigurationError):
        base.replace(cookie={"samesite": "none", "secure": False})
    with pytest.raises(TypeError):
        base.replace(no_such_setting=1)
    assert CookieOptions().replace(name="x").name == "x"


def test_configuration_is_frozen_and_keyword_only() -> None:
    policy = Policy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.ttl = None  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.cookie.secure = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        Policy(timedelta(days=1))  # type: ignore[misc]
    with pytest.raises(TypeError):
        CookieOptions("name")  # type: ignore[misc]
    assert hash(policy) == hash(Policy())


def test_durations_may_be_given_in_seconds() -> None:
    policy = Policy(ttl=3600, idle_timeout=600.5, refresh_interval=30)  # type: ignore[arg-type]
    assert policy.ttl == timedelta(hours=1)
    assert policy.idle_timeout == timedelta(seconds=600.5)
    assert policy.refresh_interval == timedelta(seconds=30)
    assert policy.ttl_seconds == 3600.0
    assert policy.idle_seconds == 600.5
    assert policy.refresh_seconds == 30.0
    assert policy.expires_at(1000.0, 1000.0) == 1630.5  # idle + the refresh slack
    assert Policy(transports=["cookie", "header"]).transports == ("cookie", "header")  # type: ignore[arg-type]


def test_expiry_is_the_earlier_of_idle_and_absolute() -> None:
    policy = Policy(ttl=timedelta(hours=1), idle_timeout=timedelta(minutes=10))
    # The idle part carries one refresh_interval (60 s) of slack: never early.
    assert policy.expires_at(0.0, 0.0) == 660.0
    assert policy.expires_at(0.0, 3000.0) == 3600.0  # busy, but the hour is over
    assert policy.cookie_expires_at(0.0, 660.0) == 3600.0  # the client keeps it to the end
    idle_only = Policy(ttl=None, idle_timeout=timedelta(minutes=10))
    assert idle_only.ttl_seconds is None
    assert idle_only.expires_at(0.0, 10_000.0) == 10_660.0
    assert idle_only.cookie_expires_at(0.0, 10_660.0) == 10_660.0
    absolute_only = Policy(ttl=timedelta(hours=1), idle_timeout=None)
    assert absolute_only.idle_seconds is None
    assert absolute_only.expires_at(0.0, 3000.0) == 3600.0


# -- every invalid setting fails at construction --------------------------------------------------------

INVALID: list[tuple[str, Callable[[], Any]]] = [
    ("ttl zero", lambda: Policy(ttl=timedelta(0))),
    ("ttl negative", lambda: Policy(ttl=timedelta(seconds=-1))),
    ("ttl text", lambda: Policy(ttl="7 days")),
    ("ttl bool", lambda: Policy(ttl=True)),
    ("ttl infinite", lambda: Policy(ttl=float("inf"))),
    ("ttl nan", lambda: Policy(ttl=float("nan"))),
    ("ttl huge", lambda: Policy(ttl=10**20)),
    ("idle zero", lambda: Policy(idle_timeout=timedelta(0))),
    ("idle negative seconds", lambda: Policy(idle_timeout=-5)),
    ("no end at all", lambda: Policy(ttl=None, idle_timeout=None)),
    ("refresh zero", lambda: Policy(refresh_interval=timedelta(0))),
    ("refresh None", lambda: Policy(refresh_interval=None)),
    ("refresh as long as idle", lambda: Policy(refresh_interval=timedelta(minutes=30))),
    ("refresh longer than ttl", lambda: Policy(ttl=timedelta(seconds=30), idle_timeout=None)),
    ("no transports", lambda: Policy(transports=())),
    ("unknown transport", lambda: Policy(transports=("cookie", "carrier-pigeon"))),
    ("transports as a string", lambda: Policy(transports="cookie")),
    ("repeated transport", lambda: Policy(transports=("cookie", "cookie"))),
    ("header without a name", lambda: Policy(transports=("header",), header_name=None)),
    ("header name with space", lambda: Policy(header_name="X Session")),
    ("header name with colon", lambda: Policy(header_name="X-Session:")),
    ("header name empty", lambda: Policy(header_name="")),
    ("header name not text", lambda: Policy(header_name=5)),
    ("cookie not options", lambda: Policy(cookie={"name": "x"})),
    ("concurrency not a policy", lambda: Policy(concurrency=5)),
    ("cookie name with space", lambda: CookieOptions(name="my session")),
    ("cookie name with semicolon", lambda: CookieOptions(name="a;b")),
    ("cookie name with equals", lambda: CookieOptions(name="a=b")),
    ("cookie name not text", lambda: CookieOptions(name=None)),
    ("samesite unknown", lambda: CookieOptions(samesite="Lax")),
    ("samesite none without secure", lambda: CookieOptions(samesite="none", secure=False)),
    ("partitioned without secure", lambda: CookieOptions(partitioned=True, secure=False)),
    ("path relative", lambda: CookieOptions(path="app")),
    ("path injection", lambda: CookieOptions(path="/; Domain=evil.example")),
    ("path newline", lambda: CookieOptions(path="/\r\nSet-Cookie: x=1")),
    ("domain empty", lambda: CookieOptions(domain="")),
    ("domain injection", lambda: CookieOptions(domain="example.com; Secure")),
    ("domain with space", lambda: CookieOptions(domain="exa mple.com")),
    ("max_age zero", lambda: CookieOptions(max_age=0)),
    ("max_age negative", lambda: CookieOptions(max_age=-1)),
    ("max_age bool", lambda: CookieOptions(max_age=True)),
    ("max_age float", lambda: CookieOptions(max_age=1.5)),
    ("max_age text", lambda: CookieOptions(max_age="forever")),
    ("__Host- not secure", lambda: CookieOptions(name="__Host-s", secure=False)),
    ("__Host- with a path", lambda: CookieOptions(name="__Host-s", path="/app")),
    ("__Host- with a domain", lambda: CookieOptions(name="__Host-s", domain="example.com")),
    ("__Secure- not secure", lambda: CookieOptions(name="__Secure-s", secure=False)),
    ("limit zero", lambda: ConcurrencyPolicy(max_sessions_per_principal=0)),
    ("limit negative", lambda: ConcurrencyPolicy(max_sessions_per_principal=-3)),
    ("limit bool", lambda: ConcurrencyPolicy(max_sessions_per_principal=True)),
    ("limit float", lambda: ConcurrencyPolicy(max_sessions_per_principal=2.0)),
    ("on_limit unknown", lambda: ConcurrencyPolicy(on_limit="evict_newest")),
]


@pytest.mark.parametrize("build", [b for _, b in INVALID], ids=[name for name, _ in INVALID])
def test_every_invalid_setting_fails_at_construction(build: Callable[[], Any]) -> None:
    with pytest.raises(ConfigurationError) as info:
        build()
    assert info.value.code == "CONFIGURATION_ERROR"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "options",
    [
        {"name": "__Host-sid"},
        {"name": "__Secure-sid", "domain": "example.com", "path": "/app"},
        {"samesite": "none"},
        {"samesite": "strict", "secure": False},
        {"partitioned": True, "samesite": "none"},
        {"max_age": 3600},
        {"max_age": "session"},
        {"domain": ".example.com"},
        {"name": "sid!#$%&'*+-.^_`|~"},
    ],
)
def test_valid_cookie_options(options: dict[str, Any]) -> None:
    cookie = CookieOptions(**options)
    assert Policy(cookie=cookie).cookie is cookie


def test_the_prefix_rules_name_the_fix() -> None:
    with pytest.raises(ConfigurationError, match="Secure, have path '/' and no domain"):
        CookieOptions(name="__Host-s", path="/app")
    with pytest.raises(ConfigurationError, match="must be Secure"):
        CookieOptions(samesite="none", secure=False)
    with pytest.raises(ConfigurationError, match="refresh_interval"):
        Policy(refresh_interval=timedelta(hours=1))


def test_rotation_grace_is_a_few_positive_seconds() -> None:
    assert Policy().rotation_grace == timedelta(seconds=10)
    assert Policy().grace_seconds == 10.0
    assert Policy(rotation_grace=2).rotation_grace == timedelta(seconds=2)  # type: ignore[arg-type]
    for bad in (0, -1, None, timedelta(minutes=2), "10"):
        with pytest.raises(ConfigurationError):
            Policy(rotation_grace=bad)  # type: ignore[arg-type]


def test_anonymous_sessions_have_a_shorter_idle_timeout() -> None:
    policy = Policy()
    assert policy.anonymous_idle_timeout == timedelta(minutes=15)
    assert policy.anonymous_idle_seconds == 15 * 60
    assert policy.expires_at(0.0, 0.0, anonymous=True) == 15 * 60 + 60
    assert policy.expires_at(0.0, 0.0) == 30 * 60 + 60
    # Never longer than everyone's idle timeout; None: the same as everyone's.
    assert Policy(anonymous_idle_timeout=timedelta(hours=2)).anonymous_idle_seconds == 30 * 60
    assert Policy(anonymous_idle_timeout=None).anonymous_idle_seconds == 30 * 60
    # An absolute-only policy still ends anonymous sessions that go quiet.
    ttl_only = Policy(ttl=timedelta(hours=1), idle_timeout=None)
    assert ttl_only.expires_at(0.0, 0.0, anonymous=True) == 15 * 60 + 60
    assert ttl_only.expires_at(0.0, 0.0) == 3600.0
    for bad in (0, -5, "x"):
        with pytest.raises(ConfigurationError):
            Policy(anonymous_idle_timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="refresh_interval"):
        Policy(anonymous_idle_timeout=timedelta(seconds=30))  # the touch could never keep up


def test_the_cookie_never_ends_before_the_session() -> None:
    for policy in (Policy(), Policy(ttl=None), Policy.ephemeral(), Policy.api()):
        for last_seen in (0.0, 100.0, 5000.0):
            for anonymous in (True, False):
                end = policy.expires_at(0.0, last_seen, anonymous=anonymous)
                assert policy.cookie_expires_at(0.0, end) >= end
    assert Policy(ttl=None).cookie_slides
    assert not Policy().cookie_slides
