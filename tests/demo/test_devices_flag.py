"""The device list shows a session used from another browser as suspect (policy ``bind``)."""

from __future__ import annotations

from .conftest import Demo
from .forms import login, register

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0"


def test_a_session_replayed_from_another_browser_is_flagged_on_devices(demo: Demo) -> None:
    owner = demo.client(headers={"User-Agent": FIREFOX})
    register(owner, "ada")
    login(owner, "ada")
    assert "used elsewhere" not in owner.get("/devices").text
    copy = demo.client(headers={"User-Agent": CHROME})
    copy.cookies.set("sessio", owner.cookies["sessio"])
    copy.get("/")  # the request that notices the move stores the flag
    page = copy.get("/devices").text
    assert 'class="badge warn"' in page
    assert "another browser" in page
    # The flag is stored: the rightful owner sees it too.
    assert "used elsewhere" in owner.get("/devices").text
