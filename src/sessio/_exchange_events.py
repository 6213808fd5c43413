"""What the request exchange and its plumbing hand each other (the events of h11's ``_events.py``).

In: a :class:`Request`. Out: :data:`PROCEED`, :class:`ReadForm`, an :class:`Answer` to a
session error, or an :class:`Edit` of the app's response. All are frozen; none does I/O.
"""

from __future__ import annotations

import dataclasses
import http
import logging
from collections.abc import Sequence
from typing import Final, Generic, NamedTuple, TypeVar

from .errors import SessionError, StoreUnavailable
from .integrations._common import error_json
from .transports.base import Headers

__all__ = [
    "PROCEED",
    "UNTOUCHED",
    "Answer",
    "Edit",
    "Proceed",
    "ReadForm",
    "Request",
    "answer_for",
]

logger = logging.getLogger("sessio.exchange")

H = TypeVar("H")  # the on_error hook's type, whatever the integration makes of it


class Request(NamedTuple):
    """What the exchange needs to know of a request, gathered by the plumbing.

    ``scheme`` and ``host`` are what the server saw (the exchange applies ``trust_forwarded``);
    ``client`` is the peer's address. (A named tuple: one is built per request, and a tuple is
    the cheapest immutable record Python has.)
    """

    method: str
    path: str
    headers: Headers
    scheme: str = "http"
    host: str = ""
    client: str | None = None
    websocket: bool = False


class Proceed:
    """The verdict that lets the request through to the app (see :data:`PROCEED`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "PROCEED"


#: The one :class:`Proceed`.
PROCEED: Final = Proceed()


@dataclasses.dataclass(frozen=True, slots=True)
class ReadForm:
    """The CSRF token may be in the form body: read at most ``limit`` bytes of it, then call
    :meth:`Exchange.form` (or :meth:`Exchange.form_field` if the framework parses forms)."""

    limit: int


@dataclasses.dataclass(frozen=True, slots=True)
class Answer(Generic[H]):
    """The response that answers ``error`` instead of the app's: by ``hook`` when one is
    configured (the integration calls it), else ``status``, ``headers`` and the JSON ``body``."""

    error: SessionError
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    hook: H | None = None

    @property
    def status_line(self) -> str:
        """``"403 Forbidden"``, as WSGI's ``start_response`` wants it."""
        return f"{self.status} {http.HTTPStatus(self.status).phrase}"


class Edit(NamedTuple):
    """What the exchange does to a response: ``add`` these headers (``Set-Cookie``...), and
    where not ``None`` set ``Vary`` and ``Cache-Control`` to the values given (a named tuple,
    as :class:`Request`)."""

    add: tuple[tuple[str, str], ...] = ()
    vary: str | None = None
    cache_control: str | None = None

    def apply(self, headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """``headers`` (name-value pairs) with this edit made; the first ``Vary`` and
        ``Cache-Control`` lines are replaced, or the values appended."""
        out = list(headers)
        for name, value in (("vary", self.vary), ("cache-control", self.cache_control)):
            if value is None:
                continue
            for i, (key, _) in enumerate(out):
                if key.lower() == name:
                    out[i] = (key, value)
                    break
            else:
                out.append((name, value))
        out.extend(self.add)
        return out


#: The edit of most responses: nothing to add, nothing to change.
UNTOUCHED: Final = Edit()


def answer_for(error: SessionError, hook: H | None = None) -> Answer[H]:
    """The :class:`Answer` to ``error``: its status and JSON body, never cached (it describes
    one request), or ``hook``. Outages and server-side errors are logged here, once."""
    if isinstance(error, StoreUnavailable):
        logger.warning("session store unavailable: %s", error)
    elif error.status_code >= 500:
        logger.warning("session error: %s", error)
    body = error_json(error)
    headers = (
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
    )
    return Answer(error, error.status_code, headers, body, hook)
