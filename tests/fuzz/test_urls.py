"""Fuzzing store_from_url: any URL builds a store or raises ConfigurationError, hiding secrets."""

from __future__ import annotations

import contextlib
import string

from hypothesis import given
from hypothesis import strategies as st

from sessio import ConfigurationError, MissingDependency, store_from_url
from sessio.stores.url import SCHEMES, redact_url

from .strategies import FUZZ, hostile_text

SECRET = "Zq7secretXk"  # marks the password: it must never show
# No file:// or sqlite:// with a fuzzed path: those create directories and files wherever the
# path points. Their parsing is covered by tests/stores/test_url.py.
SCHEME = st.sampled_from(
    [*sorted(set(SCHEMES) - {"file", "sqlite"}), "MEMORY", "Redis", "mysql", "", "redis+"]
)
NETLOC_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "[]:@.%-_ ", max_size=20)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(SCHEME)
    user = draw(NETLOC_TEXT)
    host = draw(st.one_of(NETLOC_TEXT, st.sampled_from(["[", "[::1", "h:99999", "h:x", "h:0"])))
    password = draw(st.sampled_from(["", f":{SECRET}"]))
    userinfo = f"{user}{password}@" if (user or password) else ""
    path = draw(st.sampled_from(["", "/", "/0", "/db", "/-1", "/%ff"]))
    names = ["prefix", "schema", "table", "max_sessions", "x", "socket_timeout"]
    query = draw(
        st.lists(st.tuples(st.sampled_from(names), hostile_text), max_size=3)
        | st.just([("password", SECRET)])
    )
    text = "&".join(f"{k}={v}" for k, v in query)
    return f"{scheme}://{userinfo}{host}{path}" + (f"?{text}" if text else "")


@FUZZ
@given(st.one_of(urls(), hostile_text))
def test_any_url_builds_a_store_or_raises_configuration_error(url: str) -> None:
    try:
        store = store_from_url(url)
    except MissingDependency:
        return
    except ConfigurationError as exc:
        error = exc
    else:
        with contextlib.suppress(Exception):  # a lazily built server store has little to close
            store.close_sync()
        return
    assert SECRET not in str(error)
    assert SECRET not in repr(error.evidence)


@FUZZ
@given(st.one_of(urls(), hostile_text))
def test_redact_url_never_raises_and_hides_the_password(url: str) -> None:
    shown = redact_url(url)
    assert isinstance(shown, str)
    assert f":{SECRET}@" not in shown
    assert f"password={SECRET}" not in shown
