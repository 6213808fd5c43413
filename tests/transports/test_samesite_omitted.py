"""``CookieOptions(samesite=None)`` leaves SameSite out in both renderer dialects.

Writing ``SameSite=None`` instead would be a different, weaker setting (cross-site sends).
"""

from __future__ import annotations

import pytest

from sessio import CookieOptions
from sessio.transports.cookies import CookieStyle, render_delete_cookie, render_set_cookie


@pytest.mark.parametrize("style", ["sessio", "starlette", "werkzeug"])
def test_samesite_none_omits_the_attribute(style: CookieStyle) -> None:
    options = CookieOptions(secure=False, samesite=None)
    assert "samesite" not in render_set_cookie(options, "v", max_age=60, style=style).lower()
    assert "samesite" not in render_delete_cookie(options, style=style).lower()


@pytest.mark.parametrize("style", ["sessio", "starlette", "werkzeug"])
def test_an_explicit_samesite_is_still_written(style: CookieStyle) -> None:
    options = CookieOptions(secure=False, samesite="strict")
    assert "samesite=strict" in render_set_cookie(options, "v", max_age=60, style=style).lower()
