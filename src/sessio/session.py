"""Session: one visitor's state as a mapping, with no I/O; it records what changed for the commit.

A :class:`Session` is handed out by a :class:`~sessio.SessionManager` (or an integration) and
behaves like a ``dict``::

    session["cart"] = ["apple"]
    session["cart"].append("pear")      # noticed at commit: the value is compared, not trusted
    session.flash("success", "Saved!")
    session.login(Principal("42", roles={"admin"}))

It is a real ``dict`` (so ``json.dumps(session)`` and code written for Starlette's or Flask's
session keep working) that tracks its writes. Values are encoded as they are set, so an
unencodable value fails at once, naming its key; stored values are decoded at load in one
JSON parse, and a value that will not decode is dropped and reported, not fatal.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from decimal import Decimal
from typing import Any, Literal, TypeVar, overload

from . import csrf, ids
from .codec import Codec
from .errors import SessionInvalid
from .fields import CSRF, DATA_PREFIX, FLASH, META, PRINCIPAL, Loaded, SessionMeta, data_field
from .principal import Principal

__all__ = ["DATA_PREFIX", "Session", "SessionMeta"]

T = TypeVar("T")

# Values that cannot change in place: their encoding at set time is final.
_IMMUTABLE = frozenset(
    {str, int, float, bool, type(None), bytes, dt.datetime, dt.date, dt.time, uuid.UUID, Decimal}
)

_MISSING: Any = object()

#: (fields to write, fields to remove, replace the whole record)
_Changes = tuple[dict[str, str], set[str], bool]


class Session(dict[str, Any]):
    """The state of one session: data (a ``dict``), flash messages, CSRF token, principal.

    Flags: :attr:`is_new` (not stored yet), :attr:`is_modified`, :attr:`is_destroyed`,
    :attr:`is_accessed`. Lifecycle requests (:meth:`regenerate`, :meth:`destroy`,
    :meth:`login`, :meth:`logout`) take effect when the manager commits the session.
    """

    # Slots, because one Session is built per request and slot stores are several times
    # cheaper than filling an instance dict; ``__dict__`` and ``__weakref__`` keep what a
    # plain dict subclass allows (attributes of your own, weak references).
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_clock",
        "_codec",
        "_csrf_secret",
        "_dirty",
        "_expires_at",
        "_flashes",
        "_id",
        "_key",
        "_principal",
        "_raw",
        "_removed",
        "_replace",
        "_rotate_on_login",
        "_stored",
        "_superseded",
        "_system_dirty",
        "auth_change",
        "is_accessed",
        "is_destroyed",
        "is_new",
        "meta",
    )

    def __init__(
        self,
        session_id: str,
        *,
        codec: Codec,
        meta: SessionMeta,
        expires_at: float,
        loaded: Loaded | None = None,
        is_new: bool = True,
        rotate_on_login: bool = True,
        clock: Callable[[], float],
    ) -> None:
        self._id = session_id
        self._key: str | None = None  # store_key(_id), computed once: it is read on every commit
        self._codec = codec
        self._clock = clock
        self.meta = meta
        self._expires_at = expires_at
        self.is_new = is_new
        self._rotate_on_login = rotate_on_login
        # A value's encoding is what this session set (_raw), or else the text it was loaded
        # from (_stored, the record's fields as they came, not copied key by key).
        self._raw: dict[str, str] = {}
        self._dirty: set[str] = set()
        self._removed: set[str] = set()
        self._system_dirty: set[str] = set()
        self._superseded: str | None = None  # store key of the record this one replaces
        self._replace = is_new
        self.is_destroyed = False
        self.is_accessed = False
        self.auth_change: str | None = None  # "authenticated" / "logged_out", for the manager
        self._stored: Mapping[str, str]
        self._principal: Principal | None
        self._csrf_secret: str | None
        self._flashes: list[tuple[str, Any]]
        if loaded is None:
            self._stored, self._principal, self._csrf_secret, self._flashes = {}, None, None, []
            return
        dict.update(self, loaded.values)
        self._stored = loaded.fields
        self._principal = loaded.principal
        self._csrf_secret = loaded.csrf_secret
        self._flashes = loaded.flashes
        # Undecodable values were left out; the commit removes them from the store too.
        self._removed.update(loaded.corrupt)

    def _encoding(self, key: str) -> str:
        """The JSON text of data key ``key`` (present in the session) as last set or loaded."""
        text = self._raw.get(key)
        return self._stored[DATA_PREFIX + key] if text is None else text

    # -- identity and lifetime --------------------------------------------------------------------

    @property
    def id(self) -> str:
        """The session ID (secret: it is what the client presents; never log it)."""
        return self._id

    @property
    def key(self) -> str:
        """The store key: SHA-256 of :attr:`id`, safe to show (the device list uses it)."""
        if self._key is None:
            self._key = ids.store_key(self._id)
        return self._key

    @property
    def expires_at(self) -> dt.datetime:
        """When the session ends (UTC), the earlier of its idle and absolute timeouts."""
        return dt.datetime.fromtimestamp(self._expires_at, dt.timezone.utc)

    @property
    def remaining(self) -> dt.timedelta:
        """Time left before :attr:`expires_at` (zero once past)."""
        return dt.timedelta(seconds=max(0.0, self._expires_at - self._clock()))

    # -- the dict, with its writes recorded ---------------------------------------------------------
    # Reads mark the session accessed (for ``Vary: Cookie``); writes go through here to be
    # encoded and recorded. In-place changes to values (``s["cart"].append(x)``) are found at
    # commit by comparing encodings.

    def __getitem__(self, key: str) -> Any:
        self.is_accessed = True
        return dict.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """``session[key]``, or ``default`` when missing."""
        self.is_accessed = True
        return dict.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        self.is_accessed = True
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        self.is_accessed = True
        return dict.__iter__(self)

    def __len__(self) -> int:
        self.is_accessed = True
        return dict.__len__(self)

    def keys(self) -> KeysView[str]:  # type: ignore[override]
        """The data keys."""
        self.is_accessed = True
        return dict.keys(self)

    def values(self) -> ValuesView[Any]:  # type: ignore[override]
        """The data values."""
        self.is_accessed = True
        return dict.values(self)

    def items(self) -> ItemsView[str, Any]:  # type: ignore[override]
        """The data items."""
        self.is_accessed = True
        return dict.items(self)

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"session keys are strings, got {type(key).__name__}")
        self._check_alive()
        self.is_accessed = True
        self._raw[key] = self._codec.dumps(value, key=key)  # fails here, naming the key
        dict.__setitem__(self, key, value)
        self._dirty.add(key)
        self._removed.discard(key)

    def __delitem__(self, key: str) -> None:
        self._check_alive()
        self.is_accessed = True
        dict.__delitem__(self, key)
        self._raw.pop(key, None)
        self._dirty.discard(key)
        if not self.is_new:  # a never-stored session has nothing to remove from the store
            self._removed.add(key)

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value (or ``default``; ``KeyError`` without one)."""
        if dict.__contains__(self, key):
            value = dict.__getitem__(self, key)
            del self[key]
            return value
        self.is_accessed = True
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last inserted item (``KeyError`` when empty, as ``dict``)."""
        if not dict.__len__(self):
            raise KeyError("popitem(): session is empty")
        key = next(reversed(dict.keys(self)))
        return key, self.pop(key)

    def setdefault(self, key: str, default: Any = None) -> Any:
        """``session[key]``, first setting it to ``default`` when missing."""
        if not dict.__contains__(self, key):
            self[key] = default
        return self[key]

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Set many keys, like ``dict.update``."""
        items = other.keys() if hasattr(other, "keys") else None
        if items is not None:
            for key in items:
                self[key] = other[key]
        else:
            for key, value in other:
                self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def __ior__(self, other: Any) -> Session:  # type: ignore[override,misc]
        self.update(other)
        return self

    def clear(self) -> None:
        """Remove every data key (flash messages, CSRF secret and principal stay)."""
        for key in list(dict.keys(self)):
            del self[key]

    def copy(self) -> dict[str, Any]:
        """A plain ``dict`` of the data."""
        self.is_accessed = True
        return dict(dict.items(self))

    def __repr__(self) -> str:
        state = "new" if self.is_new else "stored"
        return f"<Session {ids.short_hash(self.key)} {state} keys={sorted(dict.keys(self))}>"

    def __eq__(self, other: object) -> bool:
        return dict.__eq__(self, other)

    __hash__ = None

    def __reduce__(self) -> Any:
        raise TypeError("sessions are not picklable; copy the data with dict(session)")

    def get_as(self, key: str, model: type[T], default: Any = None) -> T | Any:
        """``session[key]`` as an instance of ``model``: a dataclass, pydantic or msgspec model.

        Returns ``default`` when the key is missing; raises ``TypeError``/the model's own
        validation error when the stored value does not fit the model.
        """
        from .typed import convert

        value = self.get(key, _MISSING)
        if value is _MISSING:
            return default
        return convert(value, model)

    # -- flash messages -----------------------------------------------------------------------------

    def flash(self, kind: str, message: Any) -> None:
        """Queue a message for the next page that reads it (``kind``: "success", "error"...)."""
        self._check_alive()
        self._codec.dumps(message, key=f"flash:{kind}")
        self._flashes.append((kind, message))
        self._system_dirty.add(FLASH)

    def peek_flash(self, kind: str | None = None) -> list[Any]:
        """The queued messages (of ``kind``, or all), left in place."""
        return [m for k, m in self._flashes if kind is None or k == kind]

    def has_flash(self, kind: str | None = None) -> bool:
        """Whether a message (of ``kind``) is queued."""
        return any(kind is None or k == kind for k, _ in self._flashes)

    def pop_flash(self, kind: str) -> list[Any]:
        """The queued messages of ``kind``, consumed."""
        taken = [m for k, m in self._flashes if k == kind]
        if taken:
            self._flashes = [(k, m) for k, m in self._flashes if k != kind]
            self._system_dirty.add(FLASH)
        return taken

    def flashes(self) -> list[tuple[str, Any]]:
        """Every queued ``(kind, message)``, consumed."""
        taken, self._flashes = self._flashes, []
        if taken:
            self._system_dirty.add(FLASH)
        return taken

    def clear_flash(self) -> None:
        """Drop every queued message."""
        self.flashes()

    # -- CSRF -------------------------------------------------------------------------------------

    @property
    def csrf_token(self) -> str:
        """A CSRF token for a form or header, freshly masked on every read (BREACH-safe)."""
        if self._csrf_secret is None:
            self._check_alive()
            self._csrf_secret = csrf.new_secret()
            self._system_dirty.add(CSRF)
        return csrf.mask_token(self._csrf_secret)

    def verify_csrf(self, token: object) -> bool:
        """Whether ``token`` is a valid CSRF token of this session (constant time)."""
        return self._csrf_secret is not None and csrf.verify_token(self._csrf_secret, token)

    def rotate_csrf(self) -> None:
        """Invalidate every CSRF token handed out so far."""
        self._csrf_secret = csrf.new_secret()
        self._system_dirty.add(CSRF)

    # -- principal -----------------------------------------------------------------------------------

    @property
    def principal(self) -> Principal | None:
        """Who is logged in, or ``None``."""
        return self._principal

    @property
    def is_authenticated(self) -> bool:
        """Whether a principal is logged in."""
        return self._principal is not None

    def login(self, principal: Principal, *, keep_data: bool = True) -> None:
        """Authenticate as ``principal``.

        Rotates the session ID (when the policy says, which it does by default) and the CSRF
        token, so a fixated or leaked pre-login ID is worthless. Every call is an authentication:
        logging in again as the same principal (re-entering a password, stepping up) rotates too,
        so a token copied before it dies with it (ASVS 5.0 7.2.4). ``keep_data=False`` also drops
        the anonymous session's data.
        """
        self._check_alive()
        if not isinstance(principal, Principal):
            raise TypeError(f"login() takes a Principal, got {type(principal).__name__}")
        self._codec.dumps(principal.to_data(), key="principal")
        if self._rotate_on_login and not self.is_new:
            self.regenerate(keep_data=keep_data)
        elif not keep_data:
            self.clear()
        self._principal = principal
        self._system_dirty.add(PRINCIPAL)
        self.meta.authenticated_at = self._clock()
        self._system_dirty.add(META)
        self.rotate_csrf()
        self.auth_change = "authenticated"

    def logout(self, *, keep_data: bool = False) -> None:
        """End the authentication: the old session is deleted server-side and a new ID issued.

        By default the data goes too (OWASP: invalidate everything on logout); flash messages
        queued after ``logout()`` reach the next page.
        """
        self._check_alive()
        if self.is_new:
            # Never stored: there is nothing to invalidate server-side, nor anything to store.
            if not keep_data:
                self.clear()
            self._principal = None
            self.meta.authenticated_at = None
            self._system_dirty.discard(PRINCIPAL)
            self.auth_change = None
            return
        had_principal = self._principal is not None
        self.regenerate(keep_data=keep_data)
        self._principal = None
        self.meta.authenticated_at = None
        self._system_dirty.update((PRINCIPAL, META))
        self.rotate_csrf()
        if had_principal:
            self.auth_change = "logged_out"

    # -- lifecycle ---------------------------------------------------------------------------------

    def regenerate(self, *, keep_data: bool = True) -> None:
        """Issue a new ID (deleting the old record at commit); ``keep_data=False`` empties it.

        Django calls these ``cycle_key()`` and ``flush()``.
        """
        self._check_alive()
        if not self.is_new and self._superseded is None:
            self._superseded = self.key
        self._id = ids.new_session_id()
        self._key = None
        self._replace = True
        if not keep_data:
            self.clear()
            self._flashes = []
            self._dirty.clear()
            self._removed.clear()

    def destroy(self) -> None:
        """End the session: the record is deleted and the cookie cleared at commit."""
        self.is_destroyed = True
        self._raw.clear()
        dict.clear(self)
        self._flashes = []
        self._principal = None

    def _check_alive(self) -> None:
        if self.is_destroyed:
            raise SessionInvalid("the session was destroyed in this request")

    # -- the change record the manager commits ---------------------------------------------------------

    @property
    def is_modified(self) -> bool:
        """Whether the commit must write (including values mutated in place)."""
        return bool(
            (self._replace and not self.is_new)
            or self._dirty
            or self._removed
            or self._system_dirty
            or self._mutated()
        )

    def _mutated(self) -> list[tuple[str, str]]:
        """Stored values whose encoding changed in place since they were loaded."""
        out = []
        for key, value in dict.items(self):
            if type(value) in _IMMUTABLE or key in self._dirty:
                continue
            text = self._codec.dumps(value, key=key)
            if text != self._encoding(key):
                out.append((key, text))
        return out

    def _system_fields(self, names: set[str] | frozenset[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in names:
            if name == META:
                out[META] = self.meta.dumps()
            elif name == PRINCIPAL and self._principal is not None:
                out[PRINCIPAL] = self._codec.dumps(self._principal.to_data())
            elif name == CSRF and self._csrf_secret is not None:
                out[CSRF] = self._codec.dumps(self._csrf_secret)
            elif name == FLASH and self._flashes:
                out[FLASH] = self._codec.dumps([[k, m] for k, m in self._flashes])
        return out

    @overload
    def _pending(self, *, force: Literal[True]) -> _Changes: ...
    @overload
    def _pending(self, *, force: bool = False) -> _Changes | None: ...
    def _pending(self, *, force: bool = False) -> _Changes | None:
        """``(fields to write, fields to remove, replace all)``, or ``None`` if nothing changed.

        Values are re-encoded here, so in-place mutations are written; ``force`` asks for a
        full write even when nothing changed (``resave``, ``save_uninitialized``).
        """
        for key, text in self._mutated():
            self._raw[key] = text
            self._dirty.add(key)
        changed = self._dirty or self._removed or self._system_dirty
        if not (changed or force or (self._replace and not self.is_new)):
            return None
        for key in self._dirty:
            value = dict.__getitem__(self, key)
            if type(value) not in _IMMUTABLE:
                self._raw[key] = self._codec.dumps(value, key=key)
        if self._replace or force:
            fields = {data_field(k): self._encoding(k) for k in dict.keys(self)}
            fields.update(self._system_fields({PRINCIPAL, CSRF, FLASH}))
            return fields, set(), True
        fields = {data_field(k): self._raw[k] for k in self._dirty}
        removed = {DATA_PREFIX + k for k in self._removed}
        if self._system_dirty:
            fields.update(self._system_fields(self._system_dirty))
            removed.update(n for n in self._system_dirty if n not in fields and n != META)
        return fields, removed, False

    def _committed(self, expires_at: float) -> None:
        """Called by the manager once the store accepted the commit."""
        self._expires_at = expires_at
        self.is_new = False
        self._replace = False
        self._superseded = None
        self._dirty.clear()
        self._removed.clear()
        self._system_dirty.clear()
        self.auth_change = None
