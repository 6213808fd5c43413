"""The demo's page helpers: durations, device names, and autoescaping."""

from __future__ import annotations

import pytest

from sessio.demo.templates import ago, describe_agent, duration, render

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.0.0 Safari/537.36"
)
FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:121.0) Gecko/20100101 Firefox/121.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "0 s"),
        (59, "59 s"),
        (60, "1 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (3900, "1 h 5 min"),
        (86400, "1 day"),
        (7 * 86400, "7 days"),
    ],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_ago() -> None:
    assert ago(1000.0, now=1005.0) == "just now"
    assert ago(1000.0, now=1000.0 + 300) == "5 min ago"


@pytest.mark.parametrize(
    ("agent", "name"),
    [
        (CHROME_LINUX, "Headless Chrome on Linux"),
        (FIREFOX_MAC, "Firefox on macOS"),
        (SAFARI_IPHONE, "Safari on iPhone"),
        ("python-httpx/0.28.1", "httpx"),
        (None, "Unknown device"),
        ("", "Unknown device"),
        ("my-bot\x00\x1b[31m/1.0", "my-bot[31m/1.0"),
    ],
)
def test_describe_agent(agent: str | None, name: str) -> None:
    assert describe_agent(agent) == name


def test_pages_escape_what_users_control() -> None:
    html = render(
        "auth.html",
        title="Log in",
        page="login",
        username='"><script>alert(1)</script>',
        user=None,
        authenticated=False,
        csrf_token="tok",
        flashes=[("error", "<b>bold</b>")],
        session_tag="abc",
        expires_in=60,
    )
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert 'class="flash flash-error"' in html
