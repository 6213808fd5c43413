"""The cookie renderer's two dialects: sessio's RFC 6265 spelling and Starlette's exact text."""

from __future__ import annotations

import pytest

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
