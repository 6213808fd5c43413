"""The demo's pages: Jinja2 templates (autoescaped) and the filters they use."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import jinja2

from ..ids import short_hash
from .users import MAX_PASSWORD, MIN_PASSWORD

__all__ = ["STATIC", "ago", "describe_agent", "duration", "render"]

HERE = Path(__file__).parent
#: The static files (name -> (media type, bytes)), read once; served from ``/static/`` so the
#: pages' CSP can forbid inline styles.
STATIC = {
    "demo.css": ("text/css", (HERE / "static" / "demo.css").read_bytes()),
    "favicon.svg": ("image/svg+xml", (HERE / "static" / "favicon.svg").read_bytes()),
}


def duration(seconds: float) -> str:
    """``seconds`` as a short human duration: "45 s", "12 min", "3 h 5 min", "6 days"."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    days = s // 86400
    return f"{days} day" if days == 1 else f"{days} days"


def ago(timestamp: float, now: float | None = None) -> str:
    """How long ago an epoch ``timestamp`` was: "just now", "4 min ago"."""
    elapsed = (time.time() if now is None else now) - timestamp
    if elapsed < 10:
        return "just now"
    return f"{duration(elapsed)} ago"


_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("HeadlessChrome/", "Headless Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("python-httpx/", "httpx"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)
_PRINTABLE = re.compile(r"[^\x20-\x7e]")


def describe_agent(user_agent: str | None) -> str:
    """A short name for a device from its User-Agent: "Chrome on Linux", "httpx"."""
    if not user_agent:
        return "Unknown device"
    browser = next((name for token, name in _BROWSERS if token in user_agent), None)
    system = next((name for token, name in _SYSTEMS if token in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system or ""
    # Unknown clients show their own words, trimmed; autoescaping handles the rest.
    return _PRINTABLE.sub("", user_agent)[:40] or "Unknown device"


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(duration=duration, ago=ago, device=describe_agent, short=short_hash)
_env.globals.update(min_password=MIN_PASSWORD, max_password=MAX_PASSWORD)


def render(name: str, **context: Any) -> str:
    """Render template ``name`` with ``context``."""
    return _env.get_template(name).render(context)
