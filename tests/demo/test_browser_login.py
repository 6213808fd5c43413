"""Logging in from a real browser when it is done twice at once, or as someone else.

A double click on "Log in", and two ``fetch()`` POSTs of the login form sent together, ten
times each: the browser must end signed in every time, with exactly one live session of the
user, counted in the store itself and on /devices. And signing in as bob on a browser signed
in as ada must not hand ada's cart to bob.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from sessio import Principal, SQLiteStore, SyncSessionManager
from sessio.demo import DEMO_POLICY

from .browsing import PASSWORD, Device
from .conftest import DemoProcess, sessio_demo

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROUNDS = 10
# Two POSTs of the login form at once; a test-only script, hence the CSP bypass on its context.
_TWO_FETCHES = """async ([username, password]) => {
  const form = document.querySelector('form[action="/login"]');
  const body = () => {
    const data = new URLSearchParams(new FormData(form));
    data.set("username", username);
    data.set("password", password);
    return data;
  };
  const sent = [0, 1].map(() => fetch("/login", {method: "POST", body: body()}));
  return (await Promise.all(sent)).map(r => r.status);
}"""


class Shop:
    """A running ``sessio demo`` and a look into its SQLite store from outside."""

    def __init__(self, process: DemoProcess, db: Path) -> None:
        self.url = process.url
        self.process = process
        self.store = SQLiteStore(db)
        self.manager = SyncSessionManager(self.store, DEMO_POLICY)

    def live_sessions(self, username: str) -> int:
        return len(self.manager.sessions_of(Principal(username)))

    def close(self) -> None:
        self.store.close_sync()


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    db = tmp_path / "shop.db"
    with sessio_demo(tmp_path, f"sqlite:///{db}") as process:
        running = Shop(process, db)
        try:
            yield running
        finally:
            running.close()


def device_rows(device: Device) -> int:
    device.page.goto("/devices")
    return int(device.page.locator("#devices tbody tr").count())


def outcome(shop: Shop, device: Device) -> tuple[str | None, int, int]:
    """(who the browser is signed in as, live sessions in the store, rows on /devices)."""
    device.page.goto("/")
    user = device.user()
    rows = device_rows(device) if user else 0
    return user, shop.live_sessions("ada"), rows


def verdict(results: list[tuple[str | None, int, int]]) -> str:
    """How many rounds ended well, and how each ended: (user, sessions in store, rows shown)."""
    good = results.count(("ada", 1, 1))
    return f"{good}/{len(results)} rounds signed in with exactly one session: {results}"


def start_over(shop: Shop, device: Device) -> None:
    """Sign ada out everywhere, so that each round starts from no session at all."""
    shop.manager.revoke_all(Principal("ada"))
    device.context.clear_cookies()
    assert shop.live_sessions("ada") == 0


def test_a_double_click_on_log_in(browser: Any, shop: Shop, tmp_path: Path) -> None:
    device = Device(browser, shop.url, tmp_path, "double-click")
    device.register("ada")
    posts: list[str] = []
    device.page.on(
        "request", lambda r: r.method == "POST" and r.url.endswith("/login") and posts.append(r.url)
    )
    results = []
    for _ in range(ROUNDS):
        start_over(shop, device)
        device.page.goto("/login")
        device.page.fill("#username", "ada")
        device.page.fill("#password", PASSWORD)
        # Two clicks 50 ms apart, the second while the first is still hashing on the server.
        # (Playwright's dblclick is too fast: Chromium folds it into one submission.)
        box = device.page.locator("button:has-text('Log in')").bounding_box()
        assert box is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        device.page.mouse.click(x, y)
        device.page.wait_for_timeout(50)
        device.page.mouse.click(x, y)
        # (The first navigation is aborted by the second, so wait on the address, not on it.)
        expect(device.page).to_have_url(re.compile(r"/$"), timeout=30_000)
        device.page.wait_for_load_state()
        results.append(outcome(shop, device))
    device.shot("last")
    device.close()
    assert len(posts) == 2 * ROUNDS  # the browser really sent the form twice, every round
    assert results == [("ada", 1, 1)] * ROUNDS, verdict(results)


def test_two_parallel_fetches_of_the_login(browser: Any, shop: Shop, tmp_path: Path) -> None:
    device = Device(browser, shop.url, tmp_path, "fetch", bypass_csp=True)
    device.register("ada")
    results = []
    for _ in range(ROUNDS):
        start_over(shop, device)
        device.page.goto("/login")
        statuses = device.page.evaluate(_TWO_FETCHES, ["ada", PASSWORD])
        assert statuses == [200, 200]  # each followed its 303 to the home page
        results.append(outcome(shop, device))
    device.close()
    assert results == [("ada", 1, 1)] * ROUNDS, verdict(results)


def test_logging_in_as_someone_else_leaves_their_cart_behind(
    browser: Any, shop: Shop, tmp_path: Path
) -> None:
    device = Device(browser, shop.url, tmp_path, "switch")
    device.register("bob")
    device.register("ada")
    device.log_in("ada")
    with device.page.expect_navigation():
        device.page.click("button:has-text('Add Croissant')")
    assert device.page.locator("#cart li").all_inner_texts() == ["Croissant\n\u00d7 1"]
    device.log_in("bob")  # the login form, on a browser still signed in as ada
    assert device.user() == "bob"
    assert device.page.locator("#cart").inner_text() == "Empty, for now."
    device.shot("bob")
    assert shop.live_sessions("ada") == 0  # ada's session became bob's, under a new ID
    assert shop.live_sessions("bob") == 1
    assert device.errors == []
    device.close()
