"""The Flask drop-in keeps Flask's session contract, proven beside Flask's own interface.

Every test that takes ``backend`` runs three times: on sessio's ``SessionInterface`` over a
MemoryStore and over an SQLiteStore, and on Flask's stock ``SecureCookieSessionInterface``.
The app is the same small bakery each time, installed with the one line an existing app
changes (``app.session_interface = ...``). A test that passes on all three proves the drop-in
keeps what Flask apps rely on; where sessio differs on purpose, the test says why and asserts
each side's behaviour.

Time is a fake clock for every backend: sessio's interface and store read it, and so does
Flask's expiry check (itsdangerous's ``TimestampSigner.get_timestamp``).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import flask
import itsdangerous
import pytest
from flask.sessions import SecureCookieSessionInterface
from markupsafe import Markup

from sessio.integrations.flask import SessionInterface
from sessio.stores import MemoryStore, SQLiteStore

from ..conftest import FakeClock

KEY = secrets.token_urlsafe(32)
OLD_KEY = secrets.token_urlsafe(32)


class Backend:
    """Builds one of the three session interfaces, on the test's fake clock."""

    def __init__(self, name: str, clock: FakeClock, folder: Path) -> None:
        self.name = name
        self.clock = clock
        self.folder = folder
        self.stores: list[Any] = []

    def __repr__(self) -> str:
        return self.name

    @property
    def is_sessio(self) -> bool:
        return self.name.startswith("sessio")

    def interface(self) -> Any:
        if not self.is_sessio:
            return SecureCookieSessionInterface()
        if self.name == "sessio-memory":
            store: Any = MemoryStore(clock=self.clock)
        else:
            store = SQLiteStore(self.folder / f"bakery-{len(self.stores)}.db", clock=self.clock)
        self.stores.append(store)
        return SessionInterface(store=store, clock=self.clock)

    def close(self) -> None:
        for store in self.stores:
            store.close_sync()


@pytest.fixture(params=["sessio-memory", "sessio-sqlite", "flask"])
def backend(
    request: pytest.FixtureRequest,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Backend]:
    monkeypatch.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda _: int(clock()))
    built = Backend(request.param, clock, tmp_path)
    yield built
    built.close()


def flags() -> dict[str, bool]:
    """What ``flask.session`` says about itself right now."""
    session = flask.session
    return {
        "new": session.new,
        "modified": session.modified,
        "permanent": session.permanent,
    }


def bakery(backend: Backend, **config: Any) -> flask.Flask:
    """A bakery whose order lives in ``flask.session``."""
    app = flask.Flask(__name__)
    app.config.update(TESTING=True, SECRET_KEY=KEY, **config)
    app.session_interface = backend.interface()  # the drop-in's one line

    @app.get("/order")
    def order() -> dict[str, Any]:
        return {"loaves": flask.session.get("loaves", [])}

    @app.post("/order/<loaf>")
    def add(loaf: str) -> dict[str, Any]:
        flask.session["loaves"] = [*flask.session.get("loaves", []), loaf]
        return flags()

    @app.post("/order/<loaf>/in-place")
    def add_in_place(loaf: str) -> dict[str, Any]:
        flask.session["loaves"].append(loaf)  # changes a value without assigning a key
        return flags()

    @app.post("/regular")
    def regular() -> dict[str, Any]:
        flask.session.permanent = True
        flask.session["regular"] = True
        return flags()

    @app.get("/flags")
    def current_flags() -> dict[str, Any]:
        return flags()

    @app.post("/cancel")
    def cancel() -> str:
        flask.session.clear()
        return "cancelled"

    @app.get("/opening-hours")
    def opening_hours() -> str:
        return "7 to 19"  # never touches the session

    return app


def cookie_of(response: Any) -> dict[str, str]:
    """The one ``Set-Cookie`` of ``response`` as ``{"": name, "=": value, attribute: value}``
    with attribute names lower-cased (a bare flag maps to ``""``)."""
    (header,) = response.headers.getlist("Set-Cookie")
    head, *attributes = [part.strip() for part in header.split(";")]
    name, _, value = head.partition("=")
    parsed = {"": name, "=": value}
    for attribute in attributes:
        key, _, text = attribute.partition("=")
        parsed[key.lower()] = text
    return parsed


# -- the session's flags ----------------------------------------------------------------------------


def test_accessed_modified_new_and_permanent_follow_the_view(backend: Backend) -> None:
    client = bakery(backend).test_client()

    untouched = client.get("/opening-hours")
    assert "Vary" not in untouched.headers  # not accessed: the page is the same for everyone
    assert "Set-Cookie" not in untouched.headers

    first = client.post("/order/rye")
    assert first.json == {"new": backend.is_sessio, "modified": True, "permanent": False}
    # Intentional difference: Flask's cookie session cannot know it is new and always says
    # False; sessio's is new until it is first stored.
    read = client.get("/flags")
    assert read.json == {"new": False, "modified": False, "permanent": False}
    assert read.headers["Vary"] == "Cookie"  # accessed
    assert "Set-Cookie" not in read.headers  # not modified, not permanent

    assert client.post("/regular").json["permanent"] is True
    assert client.get("/flags").json == {"new": False, "modified": False, "permanent": True}


def test_changing_a_value_in_place(backend: Backend) -> None:
    client = bakery(backend).test_client()
    client.post("/order/rye")
    changed = client.post("/order/spelt/in-place")
    kept = client.get("/order").json["loaves"]
    # Intentional difference: Flask tracks only assignments to the session's own keys, so an
    # in-place change goes unnoticed and is lost unless the view sets `session.modified`;
    # sessio notices it, saves it, and says so.
    if backend.is_sessio:
        assert changed.json["modified"] is True
        assert kept == ["rye", "spelt"]
    else:
        assert changed.json["modified"] is False
        assert kept == ["rye"]


def test_a_write_made_after_the_view_is_saved_too(backend: Backend) -> None:
    app = bakery(backend)

    @app.after_request
    def count_visits(response: flask.Response) -> flask.Response:
        flask.session["visits"] = flask.session.get("visits", 0) + 1
        return response

    @app.get("/visits")
    def visits() -> str:
        return str(flask.session.get("visits", 0))

    client = app.test_client()
    assert [client.get("/visits").text for _ in range(3)] == ["0", "1", "2"]


# -- flashing -----------------------------------------------------------------------------------------


def test_flashed_messages_with_categories_and_filters(backend: Backend) -> None:
    app = bakery(backend)

    @app.post("/bake")
    def bake() -> dict[str, Any]:
        flask.flash("Your sourdough is in the oven")
        flask.session.modified = False  # whatever the view does, a later flash is a change
        flask.flash("We are out of rye", "error")
        flask.flash(Markup("<em>Warm</em> croissants at 8"), "notice")
        return flags()

    @app.get("/board")
    def board() -> dict[str, Any]:
        everything = flask.get_flashed_messages()  # the first call takes them from the session
        return {
            "everything": everything,
            "markup": [type(m).__name__ for m in everything],
            "categorised": flask.get_flashed_messages(with_categories=True),
            "errors": flask.get_flashed_messages(category_filter=["error"]),
            "errors_and_notices": flask.get_flashed_messages(
                with_categories=True, category_filter=["notice", "error"]
            ),
        }

    client = app.test_client()
    assert client.post("/bake").json["modified"] is True
    shown = client.get("/board").json
    assert shown == {
        "everything": [
            "Your sourdough is in the oven",
            "We are out of rye",
            "<em>Warm</em> croissants at 8",
        ],
        "markup": ["str", "str", "Markup"],
        "categorised": [
            ["message", "Your sourdough is in the oven"],
            ["error", "We are out of rye"],
            ["notice", "<em>Warm</em> croissants at 8"],
        ],
        "errors": ["We are out of rye"],
        "errors_and_notices": [
            ["error", "We are out of rye"],
            ["notice", "<em>Warm</em> croissants at 8"],
        ],
    }
    again = client.get("/board").json  # shown once, then gone
    assert again["everything"] == again["categorised"] == []


# -- cookie settings ----------------------------------------------------------------------------------


def test_cookie_settings_are_read_on_every_request(backend: Backend) -> None:
    app = bakery(backend)
    client = app.test_client()

    plain = cookie_of(client.post("/order/rye"))
    assert plain[""] == "session"
    assert plain["path"] == "/"
    assert "httponly" in plain
    assert not {"secure", "domain", "samesite", "partitioned"} & plain.keys()

    app.config.update(
        SESSION_COOKIE_NAME="bakery",
        SESSION_COOKIE_DOMAIN="bakery.test",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PARTITIONED=True,
    )
    https = app.test_client()
    tuned = cookie_of(https.post("/order/rye", base_url="https://www.bakery.test"))
    assert tuned[""] == "bakery"
    assert tuned["domain"] == "bakery.test"
    assert tuned["samesite"].lower() == "strict"
    assert {"secure", "partitioned"} <= tuned.keys()
    assert "httponly" not in tuned
    cancelled = cookie_of(https.post("/cancel", base_url="https://www.bakery.test"))
    # Deleting the cookie names the same cookie, or the browser would keep it.
    assert (cancelled[""], cancelled["domain"], cancelled["path"]) == ("bakery", "bakery.test", "/")
    assert cancelled["max-age"] == "0"

    app.config.update(SESSION_COOKIE_DOMAIN=None, SESSION_COOKIE_SECURE=False)
    app.config.update(SESSION_COOKIE_PARTITIONED=False, APPLICATION_ROOT="/shop")
    assert cookie_of(app.test_client().post("/order/rye"))["path"] == "/shop"

    app.config.update(SESSION_COOKIE_SAMESITE="sometimes")
    with pytest.raises(ValueError, match=r"(?i)samesite"):
        app.test_client().post("/order/rye")


# -- lifetime -----------------------------------------------------------------------------------------


def test_permanent_sessions_last_the_configured_lifetime(backend: Backend) -> None:
    lifetime = timedelta(minutes=10)
    app = bakery(backend, PERMANENT_SESSION_LIFETIME=lifetime)
    regular = app.test_client()
    issued = cookie_of(regular.post("/regular"))
    expires = parsedate_to_datetime(issued["expires"]).timestamp()
    # A cookie date, not a stopwatch: Flask stamps it from the wall clock, sessio from its own
    # (which starts at the wall clock), so a minute's leeway is plenty.
    assert abs(expires - (time.time() + lifetime.total_seconds())) < 60

    passing = app.test_client()
    assert not {"expires", "max-age"} & cookie_of(passing.post("/order/rye")).keys()


def test_the_lifetime_is_enforced_by_the_server(backend: Backend) -> None:
    app = bakery(backend, PERMANENT_SESSION_LIFETIME=timedelta(minutes=10))
    early, late = app.test_client(), app.test_client()
    early.post("/regular")
    late.post("/regular")
    stale = cookie_of(late.post("/order/rye"))["="]
    backend.clock.advance(9 * 60)
    assert early.get("/flags").json["permanent"] is True
    backend.clock.advance(2 * 60)
    # A client that kept the cookie past its Expires (a script, a stolen copy) gets nothing.
    forgetful = app.test_client()
    forgetful.set_cookie("session", stale)
    assert forgetful.get("/order").json == {"loaves": []}


@pytest.mark.parametrize(
    ("permanent", "refresh", "resent"),
    [(True, True, True), (True, False, False), (False, True, False), (False, False, False)],
)
def test_refresh_each_request_resends_only_permanent_cookies(
    backend: Backend, permanent: bool, refresh: bool, resent: bool
) -> None:
    app = bakery(backend, SESSION_REFRESH_EACH_REQUEST=refresh)
    client = app.test_client()
    client.post("/regular" if permanent else "/order/rye")
    backend.clock.advance(90)
    looked = client.get("/flags")
    assert looked.json["modified"] is False
    assert ("Set-Cookie" in looked.headers) is resent
    # A page that never reads the session still varies on the cookie it refreshes.
    elsewhere = client.get("/opening-hours").headers
    assert ("Set-Cookie" in elsewhere, "Vary" in elsewhere) == (resent, resent)


# -- keys ---------------------------------------------------------------------------------------------


def test_secret_key_fallbacks_let_a_key_be_rotated(backend: Backend) -> None:
    app = bakery(backend)
    app.secret_key = OLD_KEY
    client = app.test_client()
    client.post("/order/rye")

    app.secret_key = KEY  # rotated without a fallback: old cookies are unreadable
    assert client.get("/order").json == {"loaves": []}
    app.config["SECRET_KEY_FALLBACKS"] = [OLD_KEY]
    assert client.get("/order").json == {"loaves": ["rye"]}

    client.post("/order/oat")  # a write re-signs the cookie with the new key
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert client.get("/order").json == {"loaves": ["rye", "oat"]}


def test_without_a_secret_key_the_session_cannot_be_written(backend: Backend) -> None:
    app = bakery(backend)
    app.secret_key = None
    client = app.test_client()
    assert client.get("/order").json == {"loaves": []}  # reading an empty session is fine
    with pytest.raises(RuntimeError, match="no secret key"):
        client.post("/order/rye")
    with pytest.raises(RuntimeError, match="did not open a session"), client.session_transaction():
        pass


# -- values -------------------------------------------------------------------------------------------


def test_flasks_tagged_types_come_back_as_themselves(backend: Backend) -> None:
    label = uuid.UUID("6f1c2a8e-3b7d-4c55-9a0e-2d4b8f9e1c37")
    baked = datetime(2024, 3, 9, 6, 45, 10, tzinfo=timezone.utc)
    pantry = {
        "tray": (12, "baguette", (2, 3)),
        "scale": b"\x00\x7f\xff",
        "sign": Markup("<strong>Closed</strong> on Mondays"),
        "batch": label,
        "baked": baked,
    }
    app = bakery(backend)

    @app.post("/stock")
    def stock() -> str:
        flask.session.update(pantry)
        return "stocked"

    @app.get("/stock")
    def check() -> dict[str, Any]:
        return {
            key: [type(flask.session[key]).__name__, flask.session[key] == value]
            for key, value in pantry.items()
        }

    client = app.test_client()
    client.post("/stock")
    assert client.get("/stock").json == {
        "tray": ["tuple", True],
        "scale": ["bytes", True],
        "sign": ["Markup", True],
        "batch": ["UUID", True],
        "baked": ["datetime", True],
    }


def test_vary_cookie_exactly_when_the_answer_depends_on_the_session(backend: Backend) -> None:
    app = bakery(backend)

    @app.get("/menu")
    def menu() -> flask.Response:
        response = flask.make_response("bread" if flask.session.get("loaves") else "menu")
        response.vary.add("Accept-Language")
        return response

    @app.post("/already-varies")
    def already_varies() -> flask.Response:
        response = flask.make_response("ok")
        response.vary.add("Cookie")
        flask.session["loaves"] = ["rye"]
        return response

    client = app.test_client()
    assert "Vary" not in client.get("/opening-hours").headers
    assert client.get("/order").headers.getlist("Vary") == ["Cookie"]
    assert client.post("/order/rye").headers.getlist("Vary") == ["Cookie"]
    assert client.get("/menu").headers.getlist("Vary") == ["Accept-Language, Cookie"]
    assert client.post("/already-varies").headers.getlist("Vary") == ["Cookie"]
    assert client.post("/cancel").headers.getlist("Vary") == ["Cookie"]


# -- the test client ----------------------------------------------------------------------------------


def test_session_transaction_reads_and_writes_what_requests_see(backend: Backend) -> None:
    client = bakery(backend).test_client()
    with client.session_transaction() as session:
        assert dict(session) == {}
        session["loaves"] = ["brioche"]
    assert client.get("/order").json == {"loaves": ["brioche"]}
    client.post("/order/bagel")
    with client.session_transaction() as session:
        assert session["loaves"] == ["brioche", "bagel"]
        session.permanent = True
    assert client.get("/flags").json["permanent"] is True


# -- cookie text, side by side with Flask's own ---------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"SESSION_COOKIE_SECURE": True, "SESSION_COOKIE_SAMESITE": "Lax"},
        {
            "SESSION_COOKIE_DOMAIN": "example.com",
            "SESSION_COOKIE_SECURE": True,
            "SESSION_COOKIE_PARTITIONED": True,
        },
        {"SESSION_COOKIE_HTTPONLY": False},
        {"SESSION_COOKIE_SAMESITE": "Strict", "SESSION_COOKIE_NAME": "bakery"},
    ],
)
def test_an_emptied_session_is_deleted_in_flasks_exact_words(
    clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: dict[str, Any]
) -> None:
    monkeypatch.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda _: int(clock()))
    deletions, permanent = [], []
    for name in ("flask", "sessio-memory"):
        backend = Backend(name, clock, tmp_path)
        app = bakery(backend, **config)

        @app.post("/remember")
        def remember() -> str:
            flask.session["loaves"] = ["rye"]
            flask.session.permanent = True
            return ""

        client = app.test_client()
        domain = config.get("SESSION_COOKIE_DOMAIN", "localhost")
        base = f"http{'s' if config.get('SESSION_COOKIE_SECURE') else ''}://{domain}"
        client.post(f"{base}/order/rye")
        (deleted,) = client.post(f"{base}/cancel").headers.getlist("Set-Cookie")
        deletions.append(deleted)
        (kept,) = client.post(f"{base}/remember").headers.getlist("Set-Cookie")
        # The value differs (a signed ID against signed data): the rest is Flask's text.
        permanent.append([part.strip() for part in kept.split(";")[1:]])
        backend.close()
    assert deletions[0] == deletions[1]
    assert deletions[0].split(";")[0].endswith("=")  # "session=", not 'session=""'
    flask_parts, sessio_parts = permanent

    # Flask writes Expires alone; sessio adds Max-Age (where Werkzeug puts it) so a browser
    # whose clock is off keeps the cookie as long, and its Expires may lie a refresh
    # interval later (the server's idle slack). Every other attribute is Flask's, in order.
    def timeless(parts: list[str]) -> list[str]:
        return [p for p in parts if not p.startswith(("Expires=", "Max-Age="))]

    assert timeless(sessio_parts) == timeless(flask_parts)
    at = next(i for i, p in enumerate(flask_parts) if p.startswith("Expires="))
    sessio_expires, max_age = sessio_parts[at], sessio_parts[at + 1]  # in Werkzeug's places
    assert sessio_expires.startswith("Expires=")
    assert max_age.startswith("Max-Age=")
    late = parsedate_to_datetime(sessio_expires[8:]) - parsedate_to_datetime(flask_parts[at][8:])
    # (Flask dates from the real clock, sessio from the test's, which started a moment before.)
    assert timedelta(seconds=-10) <= late <= timedelta(seconds=70)
