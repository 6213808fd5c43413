"""The Starlette drop-in behaves like Starlette's own SessionMiddleware, proven side by side.

Every test that takes ``side`` runs twice: on sessio's drop-in and on Starlette's stock
middleware, built from the same arguments, serving the same little shop. A test that passes on
both proves the drop-in changes nothing an app or a browser can see. Where sessio differs on
purpose, the test says why and asserts each side's behaviour.

Time is a fake clock shared by both sides: sessio's store and manager read it, and so does
Starlette's expiry check (itsdangerous's ``TimestampSigner.get_timestamp``).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import itsdangerous
import pytest
from starlette.applications import Starlette
from starlette.middleware.sessions import Session as StockSession
from starlette.middleware.sessions import SessionMiddleware as StockSessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from sessio.integrations.starlette import Session as DropInSession
from sessio.integrations.starlette import SessionMiddleware as DropIn
from sessio.stores import SQLiteStore

from ..conftest import FakeClock

KEY = secrets.token_urlsafe(32)
TWO_WEEKS = 14 * 24 * 60 * 60


# -- the shop every test runs ------------------------------------------------------------------------


async def basket(request: Request) -> Response:
    return JSONResponse(
        {"items": request.session.get("items", []), "keys": sorted(request.session)}
    )


async def add(request: Request) -> Response:
    items = request.session.get("items", [])
    request.session["items"] = [*items, request.path_params["item"]]
    return JSONResponse({"count": len(request.session["items"])})


async def settle(request: Request) -> Response:
    request.session.clear()
    return PlainTextResponse("paid")


async def as_json(request: Request) -> Response:
    # The stdlib's C encoder reads a dict's storage directly: the session must be filled by now.
    return Response(json.dumps(request.session), media_type="application/json")


async def idle(request: Request) -> Response:
    return PlainTextResponse("no session touched")


SHOP = [
    Route("/basket", basket),
    Route("/basket/{item}", add, methods=["POST"]),
    Route("/settle", settle, methods=["POST"]),
    Route("/as-json", as_json),
    Route("/idle", idle),
]


class Side:
    """Wraps apps in one of the two middlewares, both on the test's fake clock.

    On sessio's side every app of a test shares one store (the drop-in's default kind, SQLite),
    as the processes of one site do; Starlette's side has no store to share.
    """

    def __init__(self, name: str, clock: FakeClock, folder: Path) -> None:
        self.name = name
        self.clock = clock
        self.store = SQLiteStore(folder / "shop.db", clock=clock)

    def __repr__(self) -> str:
        return self.name

    @property
    def is_sessio(self) -> bool:
        return self.name == "sessio"

    def wrap(self, app: Any, **options: Any) -> Any:
        options.setdefault("secret_key", KEY)
        if not self.is_sessio:
            return StockSessionMiddleware(app, **options)
        middleware = DropIn(app, store=self.store, **options)
        middleware.manager.clock = self.clock
        return middleware

    def client(self, base_url: str = "http://testserver", **options: Any) -> TestClient:
        """A TestClient on the shop, the middleware built from ``options``."""
        return TestClient(self.wrap(Starlette(routes=SHOP), **options), base_url=base_url)

    def close(self) -> None:
        self.store.close_sync()


@pytest.fixture(params=["sessio", "starlette"])
def side(
    request: pytest.FixtureRequest,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Side]:
    monkeypatch.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda _: int(clock()))
    built = Side(request.param, clock, tmp_path)
    yield built
    built.close()


def cookie_parts(set_cookie: str) -> tuple[str, str, list[str]]:
    """``(name, value, attributes)`` of a ``Set-Cookie`` value, attributes in their order."""
    head, *attributes = [part.strip() for part in set_cookie.split(";")]
    name, _, value = head.partition("=")
    return name, value, attributes


def attribute_names(set_cookie: str) -> set[str]:
    return {a.split("=", 1)[0].lower() for a in cookie_parts(set_cookie)[2]}


# -- round trip ---------------------------------------------------------------------------------------


def test_what_one_request_puts_in_the_basket_the_next_one_finds(side: Side) -> None:
    client = side.client()
    empty = client.get("/basket")
    assert empty.json() == {"items": [], "keys": []}
    assert "set-cookie" not in empty.headers  # nothing written, nothing sent

    first = client.post("/basket/pear")
    assert re.search(rf"; Max-Age={TWO_WEEKS};", first.headers["set-cookie"])
    client.post("/basket/fig")
    found = client.get("/basket")
    assert found.json() == {"items": ["pear", "fig"], "keys": ["items"]}
    assert found.headers["vary"] == "Cookie"  # the answer depends on the cookie
    assert "vary" not in client.get("/idle").headers  # this one does not


def test_a_forged_or_foreign_cookie_is_an_empty_basket_not_an_error(side: Side) -> None:
    owner = side.client()
    owner.post("/basket/plum")
    (value,) = owner.cookies.values()

    for cookie in ("session=mQ4tZ.forged", f"session={value[:-3]}abc"):
        stranger = side.client()
        response = stranger.get("/basket", headers={"Cookie": cookie})
        assert (response.status_code, response.json()["items"]) == (200, [])
    rekeyed = side.client(secret_key=secrets.token_urlsafe(32))
    assert rekeyed.get("/basket", headers={"Cookie": f"session={value}"}).json()["items"] == []


# -- clearing --------------------------------------------------------------------------------------


def test_settling_the_bill_makes_the_browser_drop_the_cookie(side: Side) -> None:
    client = side.client()
    client.post("/basket/kiwi")
    assert "session" in client.cookies

    settled = client.post("/settle")
    name, _, attributes = cookie_parts(settled.headers["set-cookie"])
    assert name == "session"
    assert "expires=Thu, 01 Jan 1970 00:00:00 GMT" in attributes
    assert "session" not in client.cookies
    assert client.get("/basket").json()["items"] == []

    # A visitor who never had a basket has no cookie to delete.
    assert "set-cookie" not in side.client().post("/settle").headers


def test_a_settled_basket_is_gone_from_the_server_too(side: Side) -> None:
    client = side.client()
    client.post("/basket/kiwi")
    (kept,) = client.cookies.values()
    client.post("/settle")
    replay = side.client().get("/basket", headers={"Cookie": f"session={kept}"})
    # Both refuse the old cookie's basket: Starlette's cookie held the basket itself, and only
    # the browser forgets it; sessio's held an ID whose record is deleted on the server too.
    if side.is_sessio:
        assert replay.json()["items"] == []
        assert side.store.count_sync() == 0
    else:
        # Intentional difference: a stock cookie replayed after settling still carries the
        # basket (the data lives in the cookie until it expires).
        assert replay.json()["items"] == ["kiwi"]


# -- expiry ------------------------------------------------------------------------------------------


def test_an_old_cookie_replayed_after_max_age_is_refused_by_the_server(side: Side) -> None:
    app = side.wrap(Starlette(routes=SHOP), max_age=300)
    early, late = TestClient(app), TestClient(app)
    early.post("/basket/date")
    late.post("/basket/date")
    (value,) = late.cookies.values()
    side.clock.advance(299)
    assert early.get("/basket").json()["items"] == ["date"]
    # 361 s after the cookie was issued: past the browser's Max-Age, and past the one
    # refresh_interval (60 s) by which sessio's idle expiry may be late (never early).
    side.clock.advance(62)
    # A client that ignores Max-Age (a script, a stolen cookie) gets nothing either way.
    assert late.get("/basket", headers={"Cookie": f"session={value}"}).json()["items"] == []


def test_max_age_counts_from_the_last_visit_in_sessio_and_from_the_last_write_in_starlette(
    side: Side,
) -> None:
    client = side.client(max_age=300)
    client.post("/basket/lime")
    replay = {"Cookie": f"session={next(iter(client.cookies.values()))}"}
    side.clock.advance(200)
    assert client.get("/basket", headers=replay).json()["items"] == ["lime"]  # a visit, no write
    side.clock.advance(200)  # 400 s after the write, 200 s after the visit
    items = client.get("/basket", headers=replay).json()["items"]
    # Intentional difference: sessio's max_age is an idle timeout kept on the server, so a
    # shopper who keeps browsing is not logged out mid-visit; Starlette's signature ages from
    # the last write.
    assert items == (["lime"] if side.is_sessio else [])


@pytest.mark.parametrize("max_age", [0, -60])
def test_a_max_age_of_zero_or_less_gives_cookies_that_never_come_back_valid(
    side: Side, max_age: int
) -> None:
    client = side.client(max_age=max_age)
    issued = client.post("/basket/olive").headers["set-cookie"]
    assert f"Max-Age={max_age};" in issued
    value = cookie_parts(issued)[1]
    side.clock.advance(1)
    # Browsers drop such a cookie at once; a client that sends it back anyway finds nothing.
    replay = client.get("/basket", headers={"Cookie": f"session={value}"})
    assert replay.json()["items"] == []


def test_max_age_none_issues_a_cookie_that_ends_with_the_browser(side: Side) -> None:
    client = side.client(max_age=None)
    written = client.post("/basket/melon").headers["set-cookie"]
    assert not attribute_names(written) & {"max-age", "expires"}
    assert client.get("/basket").json()["items"] == ["melon"]
    client.cookies.clear()  # the browser was closed
    assert client.get("/basket").json()["items"] == []


# -- cookie attributes -----------------------------------------------------------------------------


def test_https_only_keeps_the_cookie_off_plain_http(side: Side) -> None:
    app = side.wrap(Starlette(routes=SHOP), https_only=True)
    secure = TestClient(app, base_url="https://shop.test")
    plain = TestClient(app, base_url="http://shop.test")

    written = secure.post("/basket/quince").headers["set-cookie"]
    assert "secure" in attribute_names(written)
    assert secure.get("/basket").json()["items"] == ["quince"]

    plain.post("/basket/quince")  # issued over http, so the client will not send it back
    assert plain.get("/basket").json()["items"] == []


def test_a_cookie_with_a_path_is_sent_only_under_that_path(side: Side) -> None:
    async def echo_cookie(request: Request) -> Response:
        return PlainTextResponse(request.headers.get("cookie", "-"))

    shop = side.wrap(Starlette(routes=SHOP), path="/shop")
    site = Starlette(routes=[Mount("/shop", app=shop), Route("/help", echo_cookie)])
    client = TestClient(site)

    written = client.post("/shop/basket/apricot").headers["set-cookie"]
    assert "path=/shop" in cookie_parts(written)[2]
    assert client.get("/shop/basket").json()["items"] == ["apricot"]
    assert client.get("/help").text == "-"  # outside /shop the browser keeps it to itself


@pytest.mark.parametrize("same_site", ["strict", "lax", "none"])
def test_same_site_is_written_as_given(side: Side, same_site: str) -> None:
    # SameSite=None is only accepted by browsers on Secure cookies, so every case is https here.
    client = side.client("https://shop.test", same_site=same_site, https_only=True)
    written = client.post("/basket/grape").headers["set-cookie"]
    assert f"samesite={same_site}" in cookie_parts(written)[2]
    assert client.get("/basket").json()["items"] == ["grape"]


def test_a_domain_cookie_follows_the_shopper_to_other_subdomains(side: Side) -> None:
    client = side.client("http://www.shop.test", domain="shop.test")
    written = client.post("/basket/cherry").headers["set-cookie"]
    assert "domain=shop.test" in cookie_parts(written)[2]
    assert client.get("http://checkout.shop.test/basket").json()["items"] == ["cherry"]
    assert client.get("http://elsewhere.test/basket").json()["items"] == []


def test_partitioned_cookies_say_so(side: Side) -> None:
    client = side.client("https://embed.shop.test", https_only=True, partitioned=True)
    written = client.post("/basket/lychee").headers["set-cookie"]
    assert {"partitioned", "secure"} <= attribute_names(written)
    assert client.get("/basket").json()["items"] == ["lychee"]


SETTINGS = [
    {"session_cookie": "cart", "path": "/", "max_age": 90},
    {"same_site": "strict", "https_only": True},
    {"max_age": None, "same_site": "strict", "domain": "shop.test"},
    {"https_only": True, "same_site": "none", "partitioned": True, "domain": "shop.test"},
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_cookie_attributes_are_written_in_starlettes_exact_words(
    settings: dict[str, Any], tmp_path: Path
) -> None:
    """Not a ``side`` test: it builds both and compares their text, attribute by attribute."""

    def words(app: Any) -> tuple[list[str], str]:
        client = TestClient(app, base_url="https://www.shop.test")
        name = settings.get("session_cookie", "session")
        issued = client.post("/basket/fig").headers["set-cookie"]
        value = cookie_parts(issued)[1]
        deleted = client.post("/settle", headers={"Cookie": f"{name}={value}"})
        return cookie_parts(issued)[2], deleted.headers["set-cookie"]

    store = SQLiteStore(tmp_path / "words.db")
    try:
        ours = words(DropIn(Starlette(routes=SHOP), KEY, store=store, **settings))
    finally:
        store.close_sync()
    theirs = words(StockSessionMiddleware(Starlette(routes=SHOP), KEY, **settings))
    assert ours == theirs


# -- the session object ----------------------------------------------------------------------------


def test_request_session_serialises_like_the_dict_it_is(side: Side) -> None:
    client = side.client()
    client.post("/basket/pear")
    client.post("/basket/pear")
    assert client.get("/as-json").json() == {"items": ["pear", "pear"]}
    assert side.client().get("/as-json").json() == {}


def test_a_short_secret_still_signs_and_verifies(
    side: Side, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        client = side.client(secret_key="pw")
    client.post("/basket/nectarine")
    assert client.get("/basket").json()["items"] == ["nectarine"]
    (value,) = client.cookies.values()
    other = side.client(secret_key="pv")
    assert other.get("/basket", headers={"Cookie": f"session={value}"}).json()["items"] == []
    # Intentional difference: both accept the key, as Starlette always has; sessio also warns
    # that it is weak (the stretched key protects only the signature of a random ID).
    warned = "shorter than 32 bytes" in caplog.text
    assert warned is side.is_sessio


# -- the Session class, beside Starlette's ----------------------------------------------------------

#: Operations on a session holding ``{"a": 1}``, each applied to a fresh one on both sides.
OPERATIONS: dict[str, Any] = {
    "set": lambda s: s.__setitem__("b", 2),
    "set the same value": lambda s: s.__setitem__("a", 1),
    "delete": lambda s: s.__delitem__("a"),
    "clear": lambda s: s.clear(),
    "pop present": lambda s: s.pop("a"),
    "pop missing": lambda s: s.pop("zz", None),
    "popitem": lambda s: s.popitem(),
    "setdefault missing": lambda s: s.setdefault("b", 3),
    "setdefault present": lambda s: s.setdefault("a", 3),
    "update": lambda s: s.update({"c": 4}),
    "update nothing": lambda s: s.update({}),
    "or-assign": lambda s: s.__ior__({"d": 5}),
    "read": lambda s: s.get("a"),
    "mark_modified": lambda s: s.mark_modified(),
    "mark_accessed": lambda s: s.mark_accessed(),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_session_tracks_modified_as_starlettes_does(operation: str) -> None:
    theirs, ours = StockSession({"a": 1}), DropInSession({"a": 1})
    assert (ours.modified, dict(ours)) == (theirs.modified, dict(theirs)) == (False, {"a": 1})
    assert OPERATIONS[operation](ours) == OPERATIONS[operation](theirs)
    assert (ours.modified, dict(ours)) == (theirs.modified, dict(theirs))
    if theirs.accessed:  # ours also counts a plain read as an access (the answer varies)
        assert ours.accessed


def test_session_is_built_like_starlettes() -> None:
    assert DropInSession() == StockSession() == {}
    assert DropInSession(a=1, b=[2]) == StockSession(a=1, b=[2])
    built = DropInSession({"cart": ["apple"]})
    assert isinstance(built, dict)
    assert built.is_new
    assert not built.is_accessed
    built.modified = True
    assert built.modified
    built["cart"].append("pear")  # changed in place: Starlette cannot see it, sessio does
    built.modified = False
    assert built.modified


async def kind(request: Request) -> Response:
    return JSONResponse({"ours": isinstance(request.session, DropInSession)})


async def touch(request: Request) -> Response:
    request.session.mark_modified()  # nothing changed, yet the app asks for the cookie again
    return PlainTextResponse("touched")


def test_request_session_is_the_exported_session_and_mark_modified_resends_the_cookie(
    side: Side,
) -> None:
    app = Starlette(routes=[*SHOP, Route("/kind", kind), Route("/touch", touch)])
    client = TestClient(side.wrap(app), base_url="http://testserver")
    assert client.get("/kind").json() == {"ours": side.is_sessio}
    assert client.get("/kind").headers["vary"] == "Cookie"  # request.session marks it accessed
    client.post("/basket/apple")
    side.clock.advance(5)
    touched = client.get("/touch")
    assert len(touched.headers.get_list("set-cookie")) == 1
    assert client.get("/basket").json()["items"] == ["apple"]
