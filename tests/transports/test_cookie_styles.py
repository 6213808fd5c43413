"""The cookie renderer's dialects: sessio's RFC 6265 spelling, Starlette's and Werkzeug's exact text."""

from __future__ import annotations

import pytest
from werkzeug.http import dump_cookie

from sessio import CookieOptions
from sessio.transports.cookies import render_delete_cookie, render_set_cookie

FULL = CookieOptions(
    name="sid", path="/app", domain="example.com", samesite="none", partitioned=True
)


@pytest.mark.parametrize(
    ("options", "max_age", "expected"),
    [
        (
            CookieOptions(secure=False),
            1209600,
            "sessio=v; path=/; Max-Age=1209600; httponly; samesite=lax",
        ),
        (CookieOptions(secure=False), None, "sessio=v; path=/; httponly; samesite=lax"),
        (CookieOptions(secure=False), -1, "sessio=v; path=/; Max-Age=-1; httponly; samesite=lax"),
        (
            FULL,
            60,
            "sid=v; path=/app; Max-Age=60; httponly; samesite=none; secure; domain=example.com; partitioned",
        ),
    ],
)
def test_starlette_style(options: CookieOptions, max_age: int | None, expected: str) -> None:
    assert render_set_cookie(options, "v", max_age=max_age, style="starlette") == expected


def test_starlette_style_deletion() -> None:
    assert render_delete_cookie(FULL, style="starlette") == (
        "sid=null; path=/app; expires=Thu, 01 Jan 1970 00:00:00 GMT; "
        "httponly; samesite=none; secure; domain=example.com; partitioned"
    )


def test_the_default_style_is_unchanged() -> None:
    text = render_set_cookie(FULL, "v", max_age=60, now=0)
    assert text == (
        "sid=v; Path=/app; Max-Age=60; Expires=Thu, 01 Jan 1970 00:01:00 GMT; "
        "Domain=example.com; Secure; HttpOnly; SameSite=None; Partitioned"
    )
    assert render_delete_cookie(FULL).startswith('sid=""; Path=/app; Max-Age=0;')


_WERKZEUG_OPTIONS = [
    CookieOptions(secure=False),
    CookieOptions(secure=False, httponly=False, samesite=None, path="/shop"),
    FULL,
    CookieOptions(name="session", domain="example.com", samesite="strict"),
]


@pytest.mark.parametrize("options", _WERKZEUG_OPTIONS)
@pytest.mark.parametrize("max_age", [None, 3600, 0])
def test_werkzeug_style_is_werkzeugs_own_text(options: CookieOptions, max_age: int | None) -> None:
    expected = dump_cookie(
        options.name,
        "v",
        max_age=max_age,
        expires=None if max_age is None else 1_000_000 + max_age,
        path=options.path,
        domain=options.domain,
        secure=options.secure,
        httponly=options.httponly,
        samesite=options.samesite,
        partitioned=options.partitioned,
    )
    text = render_set_cookie(options, "v", max_age=max_age, now=1_000_000, style="werkzeug")
    assert text == expected


@pytest.mark.parametrize("options", _WERKZEUG_OPTIONS)
def test_werkzeug_style_deletion_is_flasks_delete_cookie(options: CookieOptions) -> None:
    expected = dump_cookie(
        options.name,
        expires=0,
        max_age=0,
        path=options.path,
        domain=options.domain,
        secure=options.secure,
        httponly=options.httponly,
        samesite=options.samesite,
        partitioned=options.partitioned,
    )
    assert render_delete_cookie(options, style="werkzeug") == expected
