"""What the browser tests share: Debian's chromium, its flags, and one device per browser context."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"


class Device:
    """One browser context (cookies of its own) with one page, recording console errors."""

    def __init__(
        self,
        browser: Any,
        base_url: str,
        shots: Path,
        name: str,
        *,
        viewport: tuple[int, int] = (1100, 720),
        **options: Any,
    ) -> None:
        width, height = viewport
        self.context = browser.new_context(
            base_url=base_url, viewport={"width": width, "height": height}, **options
        )
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.shots = shots
        self.name = name

    def shot(self, step: str) -> Path:
        path = self.shots / f"{self.name}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def flashes(self) -> list[str]:
        return [t.strip() for t in self.page.locator(".flash").all_inner_texts()]

    def user(self) -> str | None:
        who = self.page.locator("#whoami")
        return who.inner_text() if who.count() else None

    def register(self, username: str) -> None:
        self.page.goto("/register")
        self.page.fill("#username", username)
        self.page.fill("#password", PASSWORD)
        self.page.click("button:has-text('Register')")
        self.page.wait_for_url(re.compile(r"/login\?username="))

    def log_in(self, username: str) -> None:
        self.page.goto("/login")
        self.page.fill("#username", username)
        self.page.fill("#password", PASSWORD)
        self.page.click("button:has-text('Log in')")
        self.page.wait_for_url(re.compile(r"/$"))

    def log_out(self) -> None:
        self.page.goto("/")
        self.page.click("nav button:has-text('Log out')")
        self.page.wait_for_url(re.compile(r"/$"))

    def close(self) -> None:
        self.context.close()
