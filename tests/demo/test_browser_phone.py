"""The demo on a phone: at 320 and 390 px wide nothing scrolls sideways and every button shows.

Each page is loaded in a mobile-emulating context of that width; the screenshots (full page)
are saved in the test's temporary directory for a person to look at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .browsing import Device
from .conftest import sessio_demo

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = ("/", "/login", "/register", "/devices", "/no/such/page")


def fits(device: Device, width: int) -> None:
    """Nothing wider than the screen, and every button and link inside it, fully."""
    page = device.page
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for control in page.locator("button:visible, a:visible, input:visible").all():
        box = control.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= width + 0.5, control.evaluate("e => e.outerHTML")


@pytest.mark.parametrize("width", [320, 390])
def test_every_page_fits_a_phone(browser: Any, tmp_path: Path, width: int) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sessio_demo(tmp_path, f"sqlite:///{tmp_path / 'shop.db'}") as demo:
        laptop = Device(browser, demo.url, shots, "laptop")
        laptop.register("ada-lovelace")
        laptop.log_in("ada-lovelace")
        with laptop.page.expect_navigation():
            laptop.page.click("button:has-text('Add Croissant')")
        phone = Device(
            browser,
            demo.url,
            shots,
            f"phone-{width}",
            viewport=(width, 700),
            is_mobile=True,
            has_touch=True,
            device_scale_factor=2,
            user_agent=(
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
                "(KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"
            ),
        )
        for path in ("/", "/login", "/register"):
            phone.page.goto(path)
            fits(phone, width)
            phone.shot(f"guest{path.replace('/', '-')}")
        phone.log_in("ada-lovelace")
        with phone.page.expect_navigation():
            phone.page.click("button:has-text('Add Coffee')")
        for path in PAGES:
            phone.page.goto(path)
            fits(phone, width)
            phone.shot(f"signed-in{path.replace('/', '-')}")
        # The browser reports the 404 it was shown as a console error: expected, that one only.
        assert phone.errors == [
            "Failed to load resource: the server responded with a status of 404 (Not Found)"
        ]
        phone.errors.clear()
        phone.page.goto("/devices")
        # The laptop's row: its Log out button is there, on screen, and works with a tap.
        buttons = phone.page.locator("#devices button:has-text('Log out')")
        assert buttons.count() == 1
        assert buttons.first.is_visible()
        assert phone.page.locator("button:has-text('Log out everywhere else')").is_visible()
        with phone.page.expect_navigation():
            buttons.first.tap()
        assert phone.flashes() == ["That device is signed out."]
        fits(phone, width)
        phone.shot("signed-in-devices-after")
        assert phone.errors == []
        assert laptop.errors == []
        phone.close()
        laptop.close()
    assert len(list(shots.glob(f"phone-{width}-*.png"))) == 3 + len(PAGES) + 1
