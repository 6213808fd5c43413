"""Users of Flask's own cookie sessions keep their session across the switch to sessio."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid
from typing import Any

import flask
import itsdangerous
import pytest
from markupsafe import Markup

from sessio.integrations.flask import SessionInterface
from sessio.legacy import FlaskCookie
from sessio.stores.memory import MemoryStore

OLD_KEY = "the-flask-apps-old-secret-key-0123456789"
NEW_KEY = "the-flask-apps-new-secret-key-9876543210"


def _routes(app: flask.Flask) -> flask.Flask:
    @app.post("/write")
    def write() -> Any:
        for key, value in _VALUES.items():
            flask.session[key] = value
        return "ok"

    @app.get("/read")
    def read() -> Any:
        return {k: repr(v) for k, v in flask.session.items()}

    return app


# Every tag of Flask's TaggedJSONSerializer but the dict-key one, which the nested dict covers.
_VALUES: dict[str, Any] = {
    "n": 3,
    "pair": (1, 2),
    "raw": b"\x00\xff",
    "id": uuid.UUID(int=7),
    "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
    "safe": Markup("<b>hi</b>"),
    "nested": {" t": "looks like a tag", "deep": [(3,)]},
}


def flask_cookie(secret: str = OLD_KEY, **config: Any) -> str:
    """A cookie issued by Flask's own SecureCookieSessionInterface."""
    app = _routes(flask.Flask("old"))
    app.config.update(SECRET_KEY=secret, **config)
    response = app.test_client().post("/write")
    header = response.headers["Set-Cookie"]
    return header.split(";", 1)[0].split("=", 1)[1]


def sessio_flask(store: MemoryStore, **config: Any) -> flask.Flask:
    app = _routes(flask.Flask("new"))
    app.config.update({"SECRET_KEY": OLD_KEY, **config})
    SessionInterface(store, legacy="flask").init_app(app)
    return app


def _get(app: flask.Flask, cookie: str) -> Any:
    """One request carrying exactly ``cookie`` (a fresh client, its jar holding that alone)."""
    client = app.test_client()
    client.set_cookie("session", cookie)
    return client.get("/read")


def _sessions(store: MemoryStore) -> int:
    records = store.page_sync(limit=1000).records
    return sum(not r.key.startswith("sessio-legacy:") for r in records)


def test_a_flask_user_keeps_every_tagged_value() -> None:
    store = MemoryStore()
    app = sessio_flask(store)
    first = _get(app, flask_cookie())
    expected = {k: repr(v) for k, v in _VALUES.items()}
    expected["safe"] = repr("<b>hi</b>")  # Markup arrives as its text
    assert first.json == expected
    new = first.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]
    assert len(first.headers.getlist("Set-Cookie")) == 1  # the new cookie overwrites the old
    again = _get(app, new)
    assert again.json == expected
    assert _sessions(store) == 1


def test_a_cookie_signed_with_a_fallback_key_is_imported() -> None:
    store = MemoryStore()
    app = sessio_flask(store, SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY])
    assert _get(app, flask_cookie(OLD_KEY)).json["n"] == "3"


def test_replay_of_a_migrated_flask_cookie_imports_nothing() -> None:
    store = MemoryStore()
    app = sessio_flask(store)
    old = flask_cookie()
    assert _get(app, old).json["n"] == "3"
    replay = _get(app, old)
    assert replay.json == {}
    assert "Max-Age=0" in replay.headers["Set-Cookie"]
    assert _sessions(store) == 1


def test_an_expired_flask_cookie_imports_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    issued = int(time.time()) - 7200
    monkeypatch.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda self: issued)
    old = flask_cookie(PERMANENT_SESSION_LIFETIME=3600)
    monkeypatch.undo()
    store = MemoryStore()
    assert _get(sessio_flask(store, PERMANENT_SESSION_LIFETIME=3600), old).json == {}
    assert store.count_sync() == 0


@pytest.mark.parametrize("secret", [NEW_KEY, "x" * 40])
def test_a_cookie_of_another_key_imports_nothing(secret: str) -> None:
    store = MemoryStore()
    assert _get(sessio_flask(store), flask_cookie(secret)).json == {}
    assert store.count_sync() == 0


def test_a_tampered_flask_cookie_imports_nothing() -> None:
    old = flask_cookie()
    store = MemoryStore()
    forged = old[:-2] + ("AA" if not old.endswith("AA") else "BB")
    assert _get(sessio_flask(store), forged).json == {}
    assert store.count_sync() == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"x": {" b": "not base64!"}},
        {"x": {" t": 5}},
        {"x": {" di": "not a dict"}},
        {"x": {" u": "not-a-uuid"}},
        {"x": {" d": "not a date"}},
    ],
)
def test_malformed_tags_signed_with_the_right_key_import_nothing(payload: Any) -> None:
    # An attacker who cannot sign cannot get here; a buggy old app could. Nothing half-decoded.
    serializer = itsdangerous.URLSafeTimedSerializer(
        OLD_KEY,
        salt="cookie-session",
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
    )
    cookie = serializer.dumps(payload)
    store = MemoryStore()
    assert _get(sessio_flask(store), cookie).json == {}


def test_from_config_reads_flask_settings() -> None:
    config = {
        "SECRET_KEY": NEW_KEY,
        "SECRET_KEY_FALLBACKS": [OLD_KEY],
        "SESSION_COOKIE_NAME": "sid",
        "SESSION_COOKIE_PATH": "/app",
        "SESSION_COOKIE_DOMAIN": "example.com",
        "PERMANENT_SESSION_LIFETIME": dt.timedelta(hours=1),
    }
    reader = FlaskCookie.from_config(config)
    assert (reader.name, reader.path, reader.domain, reader.max_age) == (
        "sid",
        "/app",
        "example.com",
        3600.0,
    )
    cookie = flask_cookie(OLD_KEY)
    found = reader.read(lambda name: [f"sid={cookie}"] if name == "cookie" else [])
    assert found is not None
    assert found.data["pair"] == (1, 2)
