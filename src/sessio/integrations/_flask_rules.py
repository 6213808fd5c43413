"""What the Flask and Quart drop-ins share: their settings, Flask's rule of when a session
cookie goes out, and how the exchange's verdict lands on a Werkzeug-style response.

Both drop-ins commit through a manager (sync for Flask, async for Quart), then call
:func:`flask_commit` and :func:`finish`, so the two cannot drift apart. No I/O, no framework
import: a response is anything with Werkzeug's ``status_code``, ``headers`` and ``set_data``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Protocol

from ..codec import Codec, default_codec
from ..errors import ConfigurationError
from ..events import Events
from ..exchange import Answer, Exchange
from ..manager import Commit, CommitAction
from ..policy import Policy
from ..stores.base import Clock, Store
from ..stores.client import ClientSideStore
from ..transports.base import Transport
from ._flask_session import MARKUP_TAG
from .csrf import CSRFOptions

__all__ = ["DropInSettings", "finish", "flask_commit", "reply"]


class DropInSettings:
    """The arguments of the Flask and Quart drop-ins, validated once (a base of both)."""

    store: Store | ClientSideStore
    policy: Policy
    codec: Codec
    csrf: CSRFOptions | None
    events: Events
    clock: Clock

    def __init__(
        self,
        store: Store | ClientSideStore | None = None,
        *,
        policy: Policy | None = None,
        codec: Codec | None = None,
        csrf: CSRFOptions | None = None,
        events: Events | None = None,
        clock: Clock = time.time,
    ) -> None:
        if store is None:
            from ..stores.sqlite import SQLiteStore

            store = SQLiteStore("sessio.db")
        if not isinstance(store, (Store, ClientSideStore)):
            raise TypeError(
                f"store must be a sessio Store or ClientSideStore, got {type(store).__name__}"
            )
        if csrf is not None and not isinstance(csrf, CSRFOptions):
            raise ConfigurationError("csrf must be a CSRFOptions or None")
        self.store = store
        self.policy = policy if policy is not None else Policy(ttl=None)
        base = codec if codec is not None else default_codec
        try:
            self.codec = base.with_tags(MARKUP_TAG)
        except ValueError:  # the codec already names a "markup" tag of its own
            self.codec = base
        self.csrf = csrf if self.policy.csrf else None
        self.events = events if events is not None else Events()
        self.clock = clock


class Response(Protocol):
    """What :func:`finish` needs of a response (Werkzeug's, Flask's and Quart's have it)."""

    status_code: int
    headers: Any

    @property
    def mimetype(self) -> str | None: ...
    @mimetype.setter
    def mimetype(self, value: str) -> None: ...
    def set_data(self, value: bytes) -> None: ...


def reply(answer: Answer[Any], response: Response) -> None:
    """``response`` made to give the exchange's ``answer`` (status, JSON body, no-store)."""
    response.status_code = answer.status
    response.set_data(answer.body)
    response.mimetype = "application/json"
    response.headers["Cache-Control"] = "no-store"


def finish(
    exchange: Exchange[Any], response: Response, commit: Commit | None, transport: Transport
) -> None:
    """Put the exchange's verdict on ``response``: the session headers, Vary, Cache-Control,
    or the answer that replaces it (a client-side session grown past what a cookie holds)."""
    headers = response.headers
    result = exchange.respond(
        response.status_code,
        vary=headers.get("Vary"),
        cache_control=headers.get("Cache-Control"),
        commit=commit,
        transport=transport,
    )
    if isinstance(result, Answer):
        reply(result, response)
        return
    for name, value in result.add:
        headers.add("Set-Cookie" if name == "set-cookie" else name, value)
    if result.vary is not None:
        headers["Vary"] = result.vary
    if result.cache_control is not None:
        headers["Cache-Control"] = result.cache_control


def flask_commit(
    commit: Commit,
    *,
    session_id: str,
    created_at: float,
    expires_at: float,
    is_new: bool,
    touch_only: bool,
    modified: bool,
    refresh: bool,
    sealed: bool,
    policy: Policy,
    now: float,
) -> Commit:
    """What to send after ``commit``, by Flask's ``should_set_cookie()``.

    A modified session, or a permanent one that refreshes on each request, sends its cookie;
    a server-side touch alone does not (Flask's would not go out). A client-side token is the
    session itself: every new one goes out as the manager said. The cookie lives exactly
    Flask's lifetime (``PERMANENT_SESSION_LIFETIME`` from now, the policy's idle timeout), as
    Flask's own ``Expires`` says; the server keeps the record at least as long.
    """
    if sealed:
        return commit
    if commit.action is CommitAction.SET and touch_only and not refresh:
        return Commit(CommitAction.NONE)
    if commit.action is CommitAction.NONE and refresh and not is_new:
        end = policy.cookie_expires_at(created_at, expires_at)
        commit = Commit(CommitAction.SET, session_id, expires_at, commit.wrote, end)
    if commit.action is CommitAction.SET and commit.cookie_expires_at is not None:
        idle = policy.idle_seconds
        if policy.ttl_seconds is None and idle is not None:
            flask_end = min(commit.cookie_expires_at, now + idle)
            if flask_end != commit.cookie_expires_at:
                return dataclasses.replace(commit, cookie_expires_at=flask_end)
    return commit
