"""The request exchange: every decision one request makes about its session, with no I/O.

An integration (ASGI, WSGI, Flask, and Django, aiohttp, Litestar or Quart tomorrow) is plumbing:
it moves bytes, awaits or calls the manager, and asks an :class:`Exchange` what to do at each
step, in the style of h11. A :class:`Lifecycle` holds what never changes between requests
(the manager, transports, CSRF options, excluded paths, the ``on_error`` hook); its
:meth:`~Lifecycle.begin` opens one exchange per request. The plumbing's whole duty (as
:mod:`sessio.integrations.wsgi` carries it out)::

    lifecycle = Lifecycle.configure(SyncSessionManager, store=store, secret_key=KEY)

    # 1. Excluded paths get no session at all.
    if lifecycle.excludes(path):
        return app(request)
    # 2. Load what the exchange names; a load failure is answered.
    exchange = lifecycle.begin(Request(method, path, headers, scheme=..., host=..., client=...))
    try:
        session = manager.load(exchange.token, ip=exchange.ip, user_agent=exchange.user_agent)
    except SessionError as exc:
        return reply(exchange.answer(exc))
    exchange.loaded(session)          # and expose exchange.transport_name as "sessio.transport"
    # 3. CSRF: PROCEED, ReadForm (read at most .limit bytes and put them back for the app;
    #    None when over it), or an Answer. Frameworks that parse forms call form_field().
    verdict = exchange.csrf()
    if isinstance(verdict, ReadForm):
        verdict = exchange.form(read_at_most(verdict.limit))
    if isinstance(verdict, Answer):
        return reply(verdict)
    # 4. When the app's response starts: commit if the exchange says so, then edit the
    #    response (Edit.apply on name-value pairs) or replace it with an Answer.
    commit = manager.commit(session) if exchange.start(status) else None  # SessionError: answer
    result = exchange.respond(status, vary=vary, cache_control=cache_control, commit=commit)
    # 5. A SessionError escaping the app before its response started: exchange.escaped(exc)
    #    is the Answer, or None (re-raise: a programming error is no answer).

``reply(answer)`` calls ``answer.hook`` (``on_error``, whatever callable the integration
takes) when there is one, else sends ``answer.status``, ``answer.headers``, ``answer.body``.

The rules it applies, the same on every integration:

* **Token.** The transports are tried in order; the answer goes through the transport the
  client used (even with a stale token), else through the first alone.
* **CSRF.** Unsafe methods of cookie-borne sessions (or of requests with no token while a
  cookie transport is in play: login CSRF) need a good ``Origin``/``Referer`` and a token from
  the header or, for form posts, the form field. WebSocket handshakes get the origin check.
* **5xx.** A response with a status of 500 or more commits nothing and sends no session
  header: a failed handler's half-made changes (a login, a logout, a write) are not kept.
* **Vary.** A response varies on the transports' request headers (``Cookie``...) when the
  request read its session (:attr:`~sessio.Session.is_accessed`, as it was when the response
  started) or the response carries a session header.
* **Cache-Control.** A response carrying a session header and a ``Cache-Control`` that lets
  shared caches store it (no ``private``, no ``no-store``) is made ``private``: ``public`` and
  ``s-maxage`` are dropped, so no proxy hands one visitor's cookie to another.
* **Errors.** A :class:`~sessio.errors.SessionError` at load, at commit or while rendering the
  token (``SessionTooLarge``) is answered with its ``status_code`` and JSON ``to_dict()``
  (``no-store``), or by the ``on_error`` hook; one escaping the app before its response
  started is answered so when it is a client error (4xx) or ``StoreUnavailable``.
"""

from __future__ import annotations

from ._exchange import Exchange
from ._exchange_events import (
    PROCEED,
    UNTOUCHED,
    Answer,
    Edit,
    Proceed,
    ReadForm,
    Request,
    answer_for,
)
from ._lifecycle import DEFAULT_CSRF, Lifecycle

__all__ = [
    "DEFAULT_CSRF",
    "PROCEED",
    "UNTOUCHED",
    "Answer",
    "Edit",
    "Exchange",
    "Lifecycle",
    "Proceed",
    "ReadForm",
    "Request",
    "answer_for",
]
