"""How a session lies in a store record's fields, and how a record is read back into session state.

A record is a flat map of field names to JSON texts: each data key ``k`` is the field ``"d:k"``
(so no user key can collide with a system field), beside the system fields ``s:meta`` (a
:class:`SessionMeta`), ``s:principal``, ``s:csrf-salt`` (the salt of a rotated CSRF secret;
without one the secret is derived from the session ID), ``s:csrf`` (a secret carried over
explicitly) and one ``s:flash:<time><random>`` field per flash message (older records keep
them all in ``s:flash``). :func:`decode` reads all of them in one pass when a session is
loaded.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from . import csrf, flash
from ._memo import Memo
from .codec import Codec, dumps_plain, storable_key
from .errors import RecordCorrupt
from .principal import Principal

__all__ = [
    "CSRF",
    "CSRF_SALT",
    "DATA_PREFIX",
    "FLASH",
    "META",
    "PRINCIPAL",
    "Loaded",
    "SessionMeta",
    "decode",
]

T = TypeVar("T")

#: Store field names: data keys get a prefix, so no user key can collide with a system field.
DATA_PREFIX = "d:"
META, PRINCIPAL, CSRF, FLASH = "s:meta", "s:principal", "s:csrf", flash.LEGACY_FLASH
CSRF_SALT = "s:csrf-salt"
_SYSTEM = frozenset({META, PRINCIPAL, CSRF, CSRF_SALT, FLASH})
_quote: Callable[[str], str] = json.encoder.encode_basestring


def data_field(key: str) -> str:
    """The store field of data key ``key``, interned: an app has few keys and many sessions,
    so a MemoryStore then holds one ``"d:cart"`` for all of them instead of one per session."""
    return sys.intern(DATA_PREFIX + key)


class SessionMeta:
    """Facts about a session kept beside its data (OWASP: let users see their sessions).

    Times are epoch seconds. ``ip`` and ``user_agent`` are recorded by integrations when the
    policy asks (``capture_ip``, ``capture_user_agent``). ``ends_at`` is the session's own end
    (``login(remember=...)``, ``set_expiry()``), ``persistent`` whether its cookie outlives the
    browser (``None``: as the policy's cookie says), ``flagged`` the client changes the policy
    flags (``"network"``, ``"user_agent"``, comma-separated).
    """

    __slots__ = (
        "authenticated_at",
        "created_at",
        "ends_at",
        "flagged",
        "ip",
        "last_seen",
        "persistent",
        "user_agent",
    )

    def __init__(
        self,
        created_at: float,
        last_seen: float,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
        authenticated_at: float | None = None,
        ends_at: float | None = None,
        persistent: bool | None = None,
        flagged: str | None = None,
    ) -> None:
        self.created_at = created_at
        self.last_seen = last_seen
        self.ip = ip
        self.user_agent = user_agent
        self.authenticated_at = authenticated_at
        self.ends_at = ends_at
        self.persistent = persistent
        self.flagged = flagged

    def to_data(self) -> dict[str, Any]:
        """Plain data for the codec (short names: this is written on every touch)."""
        data: dict[str, Any] = {"c": self.created_at, "s": self.last_seen}
        if self.ip is not None:
            data["ip"] = self.ip
        if self.user_agent is not None:
            data["ua"] = self.user_agent
        if self.authenticated_at is not None:
            data["a"] = self.authenticated_at
        if self.ends_at is not None:
            data["e"] = self.ends_at
        if self.persistent is not None:
            data["p"] = self.persistent
        if self.flagged is not None:
            data["f"] = self.flagged
        return data

    def dumps(self) -> str:
        """:meth:`to_data` as compact JSON text, spelled out here: every commit writes it."""
        text = '{"c":' + _fixed_time(self.created_at) + ',"s":' + _json(self.last_seen)
        if self.ip is not None:
            text += ',"ip":' + _json(self.ip)
        if self.user_agent is not None:
            text += ',"ua":' + _json(self.user_agent)
        if self.authenticated_at is not None:
            text += ',"a":' + _fixed_time(self.authenticated_at)
        if self.ends_at is not None:
            text += ',"e":' + _fixed_time(self.ends_at)
        if self.persistent is not None:
            text += ',"p":' + ("true" if self.persistent else "false")
        if self.flagged is not None:
            text += ',"f":' + _json(self.flagged)
        return text + "}"

    def copy(self) -> SessionMeta:
        """An independent copy (the manager changes ``last_seen``, ``ip`` and ``user_agent``)."""
        twin = SessionMeta.__new__(SessionMeta)
        twin.created_at = self.created_at
        twin.last_seen = self.last_seen
        twin.ip = self.ip
        twin.user_agent = self.user_agent
        twin.authenticated_at = self.authenticated_at
        twin.ends_at = self.ends_at
        twin.persistent = self.persistent
        twin.flagged = self.flagged
        return twin

    @classmethod
    def from_data(cls, data: Any) -> SessionMeta:
        """The inverse of :meth:`to_data`; raises :class:`RecordCorrupt` on anything else.

        Times must be finite JSON numbers (not ``true``, text, NaN or infinity: a NaN
        ``last_seen`` compares false with every clock and would make the session immortal);
        ``ip`` and ``user_agent`` text or absent.
        """
        if type(data) is not dict:
            raise RecordCorrupt("malformed session metadata")
        created_at, last_seen = _time(data.get("c")), _time(data.get("s"))
        authenticated_at, ends_at = data.get("a"), data.get("e")
        ip, user_agent = data.get("ip"), data.get("ua")
        persistent, flagged = data.get("p"), data.get("f")
        if (
            created_at is None
            or last_seen is None
            or (authenticated_at is not None and _time(authenticated_at) is None)
            or (ends_at is not None and _time(ends_at) is None)
            or not (ip is None or type(ip) is str)
            or not (user_agent is None or type(user_agent) is str)
            or not (persistent is None or type(persistent) is bool)
            or not (flagged is None or type(flagged) is str)
        ):
            raise RecordCorrupt("malformed session metadata")
        return cls(
            created_at,
            last_seen,
            ip=ip,
            user_agent=user_agent,
            authenticated_at=None if authenticated_at is None else float(authenticated_at),
            ends_at=None if ends_at is None else float(ends_at),
            persistent=persistent,
            flagged=flagged,
        )

    def __repr__(self) -> str:
        return f"SessionMeta({self.to_data()!r})"


def _time(value: Any) -> float | None:
    """``value`` as epoch seconds if it is a finite JSON number (never a bool), else ``None``."""
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return float(value)
    return None


def _json(value: Any) -> str:
    """``value`` exactly as :func:`~sessio.codec.dumps_plain` writes it, floats and strings
    without the encoder's set-up (a stored record may hold anything: that goes the long way)."""
    cls = type(value)
    if cls is float and math.isfinite(value):
        return float.__repr__(value)
    if cls is str:
        return _quote(value)
    return dumps_plain(value)


#: How many metadata texts :func:`decode` remembers, decoded.
META_MEMO_SIZE = 4096
# Text -> its SessionMeta (handed out as copies). A session read again before its next touch
# carries the same text, and parsing JSON floats costs more than the rest of a small record.
_meta_memo: Memo[str, SessionMeta] = Memo(META_MEMO_SIZE)


def _meta(codec: Codec, text: str) -> SessionMeta:
    known = _meta_memo.get(text)
    if known is not None:
        return known.copy()
    meta = SessionMeta.from_data(codec.loads(text))
    if type(text) is str:  # never remember a str subclass's object under its text
        _meta_memo.put(text, meta.copy())
    return meta


# A session's creation (and login) time is written again with every commit of its life; its
# shortest float text costs more to compute than the rest of the metadata.
_time_texts: Memo[float, str] = Memo(META_MEMO_SIZE)


def _fixed_time(value: Any) -> str:
    """:func:`_json` of a time that stays the same over a session's commits, remembered."""
    if type(value) is not float or not value:  # (1, 1.0 and True are one key, not one text,
        return _json(value)  # and so are 0.0 and -0.0; a record may hold anything: the long way)
    text = _time_texts.get(value)
    if text is None:
        text = _json(value)
        _time_texts.put(value, text)
    return text


class Loaded:
    """A stored record's fields, decoded: the state a loaded :class:`~sessio.Session` starts from.

    ``values`` are the data, by key; ``fields`` the texts they were decoded from; ``corrupt``
    names the data keys whose text would not decode (left out, so the rest of the session
    lives; the manager reports them).
    """

    __slots__ = (
        "corrupt",
        "csrf_salt",
        "csrf_secret",
        "fields",
        "flash_broken",
        "flash_fields",
        "flashes",
        "meta",
        "principal",
        "values",
    )

    def __init__(self, meta: SessionMeta, fields: Mapping[str, str]) -> None:
        self.meta = meta
        self.fields = fields
        self.values: dict[str, Any] = {}
        self.principal: Principal | None = None
        self.csrf_secret: str | None = None
        self.csrf_salt: str | None = None
        self.flashes: list[tuple[str, Any]] = []  # the old single field's messages
        #: One ``(field, kind, message)`` per message field; ``flash_broken``: the message
        #: fields that would not decode (dropped like a lost data key, removed at the next write).
        self.flash_fields: list[tuple[str, str, Any]] = []
        self.flash_broken: list[str] = []
        self.corrupt: list[str] = []


def decode(codec: Codec, fields: Mapping[str, str]) -> Loaded:
    """The session state in a record's ``fields``, each text parsed once.

    Raises :class:`RecordCorrupt`, and nothing else whatever ``fields`` holds, when the
    metadata is missing or any system field will not decode or has the wrong shape: the
    record is then unusable as a whole. A data value that will not decode is only left out.
    """
    try:
        if type(fields) is not dict and not isinstance(fields, Mapping):
            raise RecordCorrupt("a record is a map of fields")
        names = "".join(fields)  # (a TypeError for a name that is no text)
        lost: list[str] = []
        if not names.isascii() or "\0" in names:  # the rare case: look name by name
            lost = [name for name in fields if not storable_key(name)]  # no session set these
            if lost:
                fields = {name: text for name, text in fields.items() if name not in lost}
        text = fields.get(META)
        if text is None:
            raise RecordCorrupt("the record has no session metadata")
        meta = _meta(codec, text)  # first: without it the record is unusable
        decoded, failed = codec.loads_each(fields, skip=META)
        if failed:
            loaded = _decode_strictly(codec, fields, decoded, meta)
        else:
            loaded = Loaded(meta, fields)
            values = loaded.values
            for name, value in decoded.items():
                if name.startswith(DATA_PREFIX):
                    values[name[2:]] = value
                elif name in _SYSTEM:
                    _adopt_system(loaded, name, value)
                elif name.startswith(flash.FLASH_PREFIX):
                    _adopt_flash(loaded, name, value)
        if lost:
            loaded.corrupt.extend(name[2:] for name in lost if name.startswith(DATA_PREFIX))
        return loaded
    except RecordCorrupt:
        raise
    except (TypeError, ValueError, LookupError, AttributeError, RecursionError) as exc:
        # A store driver's surprise (a BLOB column, a number where text belongs, a name that
        # is bytes): corrupt.
        raise RecordCorrupt(f"undecodable record: {exc.__class__.__name__}") from None


def _adopt_flash(loaded: Loaded, name: str, data: Any) -> None:
    try:
        kind, message = flash.parse(data)
    except ValueError:
        loaded.flash_broken.append(name)
    else:
        loaded.flash_fields.append((name, kind, message))


def _decode_strictly(
    codec: Codec, fields: Mapping[str, str], decoded: dict[str, Any], meta: SessionMeta
) -> Loaded:
    # Some text is malformed: decide field by field, in the record's order, which failure
    # condemns the whole record (system fields) and which is one lost key.
    loaded = Loaded(meta, fields)
    for name, text in fields.items():
        if name.startswith(DATA_PREFIX):
            if name in decoded:
                loaded.values[name[2:]] = decoded[name]
            else:
                loaded.corrupt.append(name[2:])
        elif name in _SYSTEM and name != META:
            _adopt_system(loaded, name, codec.loads(text))  # raises this field's own error
        elif name.startswith(flash.FLASH_PREFIX):
            if name in decoded:
                _adopt_flash(loaded, name, decoded[name])
            else:
                loaded.flash_broken.append(name)
    return loaded


def _adopt_system(loaded: Loaded, name: str, data: Any) -> None:
    if name == PRINCIPAL:
        loaded.principal = _shaped(data, Principal.from_data)
    elif name == CSRF:
        loaded.csrf_secret = _shaped(data, _csrf_secret)
    elif name == CSRF_SALT:
        loaded.csrf_salt = _shaped(data, _csrf_secret)
    elif name == FLASH:
        loaded.flashes = _shaped(data, _flashes)


def _shaped(data: Any, build: Callable[[Any], T]) -> T:
    # Decodable JSON of the wrong shape is as corrupt as garbage: the manager discards the
    # record instead of letting a TypeError out of load().
    try:
        return build(data)
    except (TypeError, ValueError, LookupError, AttributeError, RecursionError) as exc:
        raise RecordCorrupt(f"malformed system field: {exc.__class__.__name__}") from None


def _csrf_secret(data: Any) -> str:
    if not csrf.is_secret(data):
        raise ValueError("not a CSRF secret")
    return str(data)


def _flashes(data: Any) -> list[tuple[str, Any]]:
    return [(str(kind), message) for kind, message in data]
