"""The demo in a real browser: Debian's chromium, driven by Playwright, against ``sessio demo``.

Two browser contexts are two devices of one user: the second logs the first out from the
device list; the first, sending a form from the page it still shows, is told it was signed
out on another device, and its next page finds it a guest. Screenshots of each step go to
the test's temporary directory (``--basetemp`` to keep them somewhere known).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .browsing import PASSWORD, Device
from .conftest import sessio_demo

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_two_devices_one_logs_the_other_out(browser: Any, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sessio_demo(tmp_path, f"sqlite:///{tmp_path / 'shop.db'}") as demo:
        first = Device(browser, demo.url, shots, "1")
        second = Device(browser, demo.url, shots, "2")
        page = first.page

        # Register; the login form comes back with a flash and the name filled in.
        page.goto("/register")
        first.shot("register")
        page.fill("#username", "ada")
        page.fill("#password", PASSWORD)
        page.click("button:has-text('Register')")
        page.wait_for_url(re.compile(r"/login\?username=ada$"))
        assert first.flashes() == ["Account ada created. Log in to start."]
        assert page.input_value("#username") == "ada"
        first.shot("registered")

        # Log in: a success flash, and the nav knows who we are.
        page.fill("#password", PASSWORD)
        page.click("button:has-text('Log in')")
        page.wait_for_url(re.compile(r"/$"))
        assert first.flashes() == ["Welcome, ada! You are signed in, under a brand-new session ID."]
        assert first.user() == "ada"
        # The stylesheet loaded through the strict CSP (a success flash is green).
        color = page.eval_on_selector(".flash-success", "e => getComputedStyle(e).color")
        assert color == "rgb(43, 138, 62)"
        first.shot("logged-in")

        # Fill the cart.
        page.click("button:has-text('Add Croissant')")
        page.wait_for_url(re.compile(r"/$"))
        assert first.flashes() == ["Added Croissant to your cart."]
        assert page.locator("#cart li").all_inner_texts() == ["Croissant\n\u00d7 1"]
        first.shot("cart")

        # A second device signs in as the same user and sees both sessions.
        second.log_in("ada")
        assert second.user() == "ada"
        second.page.click("nav >> text=Devices")
        second.page.wait_for_url(re.compile(r"/devices$"))
        rows = second.page.locator("#devices tbody tr")
        assert rows.count() == 2
        assert second.page.locator("#devices tbody tr.current").count() == 1
        assert "this device" in second.page.locator("#devices tbody tr.current").inner_text()
        assert all("Headless Chrome on Linux" in text for text in rows.all_inner_texts())
        second.shot("devices")

        # "Log out everywhere else" from the second device...
        second.page.click("button:has-text('Log out everywhere else')")
        second.page.wait_for_url(re.compile(r"/devices$"))
        assert second.flashes() == ["Signed out 1 other session; only this device remains."]
        assert rows.count() == 1
        assert second.user() == "ada"
        second.shot("revoked-others")

        # ...and the first device, still showing its page, sends a form: it is told why not.
        with page.expect_navigation():
            page.click("button:has-text('Add Tea')")
        assert page.locator("h1").inner_text() == "You were signed out"
        assert "signed out on another device" in page.locator("#problem").inner_text()
        assert page.locator("#problem a:has-text('Log in again')").is_visible()
        first.shot("signed-out-page")

        # On its next page it has been thrown out: no user, no cart, and a word of why.
        page.goto("/")
        assert first.flashes() == [
            "You were signed out on another device, or your session expired."
        ]
        assert first.user() is None
        assert page.locator("nav >> text=Log in").is_visible()
        assert page.locator("#cart").inner_text() == "Empty, for now."
        first.shot("thrown-out")
        page.goto("/devices")
        assert page.url.endswith("/login")
        assert first.flashes() == ["Log in to see the devices signed in to your account."]

        # (The browser logs the 403 of the refused form; nothing else may appear.)
        assert first.errors == [
            "Failed to load resource: the server responded with a status of 403 (Forbidden)"
        ]
        assert second.errors == []
        first.context.close()
        second.context.close()
    assert len(list(shots.glob("*.png"))) == 8
