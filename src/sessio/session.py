"""Session: one visitor's state as a mapping, with no I/O; it records what changed for the commit.

A :class:`Session` is handed out by a :class:`~sessio.SessionManager` (or an integration) and
behaves like a ``dict``::

    session["cart"] = ["apple"]
    session["cart"].append("pear")      # noticed at commit: the value is compared, not trusted
    session.flash("success", "Saved!")
    session.login(Principal("42", roles={"admin"}))

It is a real ``dict`` (so ``json.dumps(session)`` and code written for Starlette's or Flask's
session keep working) that tracks its writes (:class:`~sessio._tracked.TrackedDict`). Values
are encoded as they are set, so an unencodable value fails at once, naming its key; stored
values are decoded at load in one JSON parse, and a value that will not decode is dropped and
reported, not fatal. Every read a response may depend on -- data, principal, CSRF token, flash
messages, expiry -- marks the session accessed, so integrations can add ``Vary: Cookie``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Literal, overload

from . import csrf, ids
from ._session_flash import SessionFlashes
from ._session_time import SessionTime
from ._tracked import IMMUTABLE, TrackedDict
from .codec import Codec
from .fields import CSRF, CSRF_SALT, DATA_PREFIX, META, PRINCIPAL, Loaded, SessionMeta, data_field
from .flash import NO_FLASHES, Flashes
from .policy import Policy
from .principal import Principal

__all__ = ["DATA_PREFIX", "Session", "SessionMeta"]

#: (fields to write, fields to remove, replace the whole record)
_Changes = tuple[dict[str, str], set[str], bool]


class Session(SessionTime, SessionFlashes, TrackedDict):
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
        "_csrf_salt",
        "_csrf_secret",
        "_expires_at",
        "_flashes",
        "_id",
        "_key",
        "_lifetime_changed",
        "_policy",
        "_principal",
        "_replace",
        "_rotate_on_login",
        "_superseded",
        "_superseded_id",
        "_system_dirty",
        "auth_change",
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
        policy: Policy | None = None,
    ) -> None:
        super().__init__(codec, {} if loaded is None else loaded.fields, is_new=is_new)
        self._id = session_id
        self._key: str | None = None  # store_key(_id), computed once: it is read on every commit
        self._clock = clock
        self.meta = meta
        self._expires_at = expires_at
        self._rotate_on_login = rotate_on_login
        self._policy = policy if policy is not None else Policy()
        self._lifetime_changed = False
        self._system_dirty: set[str] = set()
        self._superseded: str | None = None  # store key of the record this one replaces
        self._superseded_id: str | None = None  # and its ID: the key of its tombstone
        self._replace = is_new
        self.auth_change: str | None = None  # "authenticated" / "logged_out", for the manager
        self._principal: Principal | None
        self._csrf_secret: str | None  # a secret carried over explicitly (see regenerate())
        self._csrf_salt: str | None  # set by rotate_csrf(): the secret is derived with it
        self._flashes: Flashes
        if loaded is None:
            self._principal = self._csrf_secret = self._csrf_salt = None
            self._flashes = NO_FLASHES
            return
        dict.update(self, loaded.values)
        self._principal = loaded.principal
        self._csrf_secret = loaded.csrf_secret
        self._csrf_salt = loaded.csrf_salt
        self._flashes = NO_FLASHES
        if loaded.flash_fields or loaded.flashes or loaded.flash_broken:
            self._flashes = Flashes(loaded.flash_fields, loaded.flashes, loaded.flash_broken)
        # Undecodable values were left out; the commit removes them from the store too.
        self._removed.update(loaded.corrupt)

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

    def __repr__(self) -> str:
        state = "new" if self.is_new else "stored"
        return f"<Session {ids.short_hash(self.key)} {state} keys={sorted(dict.keys(self))}>"

    # -- CSRF: derived from the ID, so parallel first requests agree; rotate_csrf() adds a salt --

    def _csrf(self) -> str:
        if self._csrf_salt is not None:
            return csrf.derive_secret(self._id, self._csrf_salt)
        if self._csrf_secret is not None:
            return self._csrf_secret
        return csrf.derive_secret(self._id)

    @property
    def csrf_token(self) -> str:
        """A CSRF token for a form or header, freshly masked on every read (BREACH-safe). A new
        session that hands one out is stored at commit, so the token verifies next time."""
        self._check_alive()
        self.is_accessed = True
        if self.is_new:
            self._system_dirty.add(META)
        return csrf.mask_token(self._csrf())

    def verify_csrf(self, token: object) -> bool:
        """Whether ``token`` is a valid CSRF token of this session (constant time)."""
        self.is_accessed = True
        return csrf.verify_token(self._csrf(), token)

    def rotate_csrf(self) -> None:
        """Invalidate every CSRF token handed out so far."""
        self._csrf_salt = csrf.new_secret()
        self._csrf_secret = None
        self._system_dirty.update((CSRF_SALT, CSRF))

    # -- principal -----------------------------------------------------------------------------------

    @property
    def principal(self) -> Principal | None:
        """Who is logged in, or ``None``."""
        self.is_accessed = True
        return self._principal

    @property
    def is_authenticated(self) -> bool:
        """Whether a principal is logged in."""
        self.is_accessed = True
        return self._principal is not None

    def login(
        self,
        principal: Principal,
        *,
        keep_data: bool | None = None,
        remember: bool | dt.timedelta | None = None,
    ) -> None:
        """Authenticate as ``principal``.

        Rotates the session ID (when the policy says, which it does by default) and the CSRF
        token, so a fixated or leaked pre-login ID is worthless. Every call is an authentication:
        logging in again as the same principal (re-entering a password, stepping up) rotates too,
        so a token copied before it dies with it (ASVS 5.0 7.2.4).

        ``keep_data`` left unset keeps the data (and flash messages) of an anonymous session
        or of the same principal -- the cart survives signing in -- and drops those of a
        *different* principal, so nothing of one user reaches the next on a shared browser
        (Django's rule, CVE-2014-0482). ``True`` or ``False`` decide explicitly.

        ``remember=True`` keeps the login ``remember_ttl`` (a timedelta: that long, at most
        ``ttl``) in a persistent cookie; ``False`` in a browser-session cookie; unset, as before.
        """
        self._check_alive()
        if not isinstance(principal, Principal):
            raise TypeError(f"login() takes a Principal, got {type(principal).__name__}")
        self._codec.dumps(principal.to_data(), key="principal")
        lifetime = self._remembered(remember)
        if keep_data is None:
            previous = self._principal
            keep_data = previous is None or previous.key == principal.key
        if self._rotate_on_login and not self.is_new:
            self.regenerate(keep_data=keep_data)
        elif not keep_data:
            self.clear()
            self._flashes.drop()
        self._principal = principal
        self._system_dirty.add(PRINCIPAL)
        self.meta.authenticated_at = self._clock()
        self._apply_lifetime(*lifetime)
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
            self._signed_out()
            self._system_dirty.discard(PRINCIPAL)
            self.auth_change = None
            return
        had_principal = self._principal is not None
        self.regenerate(keep_data=keep_data)
        self._principal = None
        self._signed_out()
        self._system_dirty.update((PRINCIPAL, META))
        self.rotate_csrf()
        if had_principal:
            self.auth_change = "logged_out"

    # -- lifecycle ---------------------------------------------------------------------------------

    def regenerate(self, *, keep_data: bool = True) -> None:
        """Issue a new ID (deleting the old record at commit); ``keep_data=False`` empties it.

        CSRF tokens handed out under the old ID keep working (the secret moves over with the
        data) until :meth:`rotate_csrf`, which :meth:`login` and :meth:`logout` call. Django
        calls these ``cycle_key()`` and ``flush()``.
        """
        self._check_alive()
        if not self.is_new and self._superseded is None:
            self._superseded = self.key
            self._superseded_id = self._id
        if self._csrf_secret is None:
            self._csrf_secret = self._csrf()  # derived from the ID about to change
            self._csrf_salt = None
        self._id = ids.new_session_id()
        self._key = None
        self._replace = True
        if not keep_data:
            self.clear()
            self._flashes.drop()
            self._dirty.clear()
            self._removed.clear()

    def destroy(self) -> None:
        """End the session: the record is deleted and the cookie cleared at commit."""
        self.is_destroyed = True
        self._raw.clear()
        dict.clear(self)
        self._flashes = NO_FLASHES
        self._principal = None

    # -- the change record the manager commits ---------------------------------------------------------

    @property
    def is_modified(self) -> bool:
        """Whether the commit must write (including values mutated in place)."""
        return bool(
            (self._replace and not self.is_new)
            or self._dirty
            or self._removed
            or self._system_dirty
            or self._flashes.changed
            or self._mutated()
        )

    def _system_fields(self, names: set[str] | frozenset[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in names:
            if name == META:
                out[META] = self.meta.dumps()
            elif name == PRINCIPAL and self._principal is not None:
                out[PRINCIPAL] = self._codec.dumps(self._principal.to_data())
            elif name == CSRF and self._csrf_secret is not None:
                out[CSRF] = self._codec.dumps(self._csrf_secret)
            elif name == CSRF_SALT and self._csrf_salt is not None:
                out[CSRF_SALT] = self._codec.dumps(self._csrf_salt)
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
        changed = self._dirty or self._removed or self._system_dirty or self._flashes.changed
        if not (changed or force or (self._replace and not self.is_new)):
            return None
        for key in self._dirty:
            value = dict.__getitem__(self, key)
            if type(value) not in IMMUTABLE:
                self._raw[key] = self._codec.dumps(value, key=key)
        if self._replace or force:
            fields = {data_field(k): self._encoding(k) for k in dict.keys(self)}
            fields.update(self._system_fields({PRINCIPAL, CSRF, CSRF_SALT}))
            if self._flashes:
                self._flashes.full(self._codec, fields)
            return fields, set(), True
        fields = {data_field(k): self._raw[k] for k in self._dirty}
        removed = {DATA_PREFIX + k for k in self._removed}
        if self._system_dirty:
            fields.update(self._system_fields(self._system_dirty))
            removed.update(n for n in self._system_dirty if n not in fields and n != META)
        if self._flashes.changed:
            self._flashes.delta(self._codec, fields, removed)
        return fields, removed, False

    def _own_changes(self) -> tuple[dict[str, str], set[str]]:
        """What this request itself changed (after :meth:`_pending`), not what a rotation
        copied: the delta a commit forwards to a parallel request's rotation of the session."""
        fields = {data_field(k): self._encoding(k) for k in self._dirty}
        removed = {DATA_PREFIX + k for k in self._removed}
        if PRINCIPAL in self._system_dirty:
            fields.update(self._system_fields({PRINCIPAL}))
        self._flashes.delta(self._codec, fields, removed)
        return fields, removed

    def _follow(self, successor_id: str, successor_key: str) -> None:
        """The store says a parallel request rotated this session: become its successor."""
        self._id, self._key = successor_id, successor_key
        self._csrf_secret = self._csrf_salt = None  # the successor's own CSRF state rules

    def _committed(self, expires_at: float, *, whole: bool = True) -> None:
        """Called by the manager once the store accepted the commit."""
        self._expires_at = expires_at
        self.is_new = False
        self._replace = False
        self._superseded = self._superseded_id = None
        self._dirty.clear()
        self._removed.clear()
        self._system_dirty.clear()
        self._lifetime_changed = False
        flashes = self._flashes
        if flashes.changed or flashes.legacy:
            flashes.committed(whole=whole)
        self.auth_change = None
