"""RedisStore's operations as sans-I/O flows: which scripts run, in what order, on which keys.

Each flow is a generator (see :mod:`sessio.stores._redis_driver`) written once and driven by
the sync and the async twin alike. :class:`Flows` knows the key layout and the two protocols:
*atomic* (one server, or every key in one slot under a hash-tagged prefix: each operation one
script) and *cluster* (a record, its principal's index and a rotation's other records in
different slots: ordered steps, each idempotent). :mod:`sessio.stores.redis` says what each
protocol guarantees.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import RecordCorrupt, ValueNotSerializable
from . import _redis_lua as lua
from ._redis_driver import Cmd, Driver, Flow, script
from .base import (
    APPLIED,
    MISSING,
    Create,
    Record,
    Rewrite,
    Rotate,
    Saved,
    SaveOutcome,
    Update,
    Write,
)

__all__ = ["Flows", "decode_record", "text"]

#: Cluster mode: passes over a principal's index to delete its sessions.
_CLUSTER_PASSES = 3

_OUTCOMES = {
    "missing": Saved(SaveOutcome.MISSING),
    "exists": Saved(SaveOutcome.EXISTS),
    "rejected": Saved(SaveOutcome.REJECTED),
}


def text(value: Any) -> str:
    """A reply item as text."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _stored(name: str) -> str:
    # A record field whose name starts with "#" is stored with one more "#": "#e" is ours.
    return "#" + name if name[:1] == "#" else name


def _checked(value: object, what: str) -> str:
    """``value`` if Redis can hold it as text (UTF-8), else ValueNotSerializable."""
    if type(value) is not str:
        raise ValueNotSerializable(f"a session {what} must be text, not {type(value).__name__}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueNotSerializable(
                f"a session {what} holds text that cannot be UTF-8 (a lone surrogate)"
            ) from None
    return value


def _pairs(fields: Mapping[str, str]) -> list[str]:
    out: list[str] = []
    for name, value in fields.items():
        out += (_stored(_checked(name, "field name")), _checked(value, "value"))
    return out


def decode_record(key: str, raw: Any) -> Record | None:
    """The record in an ``HGETALL`` reply (a list or a dict), or ``None`` when empty."""
    if not raw:
        return None
    if isinstance(raw, dict):  # through a client: its reply callback made a dict
        raw = [item for pair in raw.items() for item in pair]
    try:
        items = [item.decode() if type(item) is bytes else str(item) for item in raw]
    except UnicodeDecodeError:
        raise RecordCorrupt("a stored session holds bytes that are not UTF-8") from None
    fields = dict(zip(items[::2], items[1::2], strict=True))
    expires = fields.pop("#e", None)
    principal = fields.pop("#p", None)
    for name in [name for name in fields if name[:1] == "#"]:
        value = fields.pop(name)
        if name[:2] == "##":
            fields[name[1:]] = value
    try:
        expires_at = float(expires)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RecordCorrupt("a stored session has no valid expiry") from None
    if not math.isfinite(expires_at):
        raise RecordCorrupt("a stored session has no valid expiry")
    return Record(key, fields, expires_at, principal)


class Flows:
    """The flows of one store: its ``prefix``, and whether it runs the ``atomic`` protocol."""

    def __init__(self, io: Driver, prefix: str, *, atomic: bool) -> None:
        self.io = io
        self.prefix = prefix
        self.atomic = atomic
        self.rhead, self.rtail = self.rec("\0").split("\0")
        self.ihead, self.itail = self.idx("\0").split("\0")

    # -- key names ----------------------------------------------------------------------------------

    def rec(self, key: str) -> str:
        """The hash of the record under ``key``."""
        return f"{self.prefix}s:{{{key}}}"

    def idx(self, principal: str) -> str:
        """The sorted set indexing ``principal``'s records."""
        return f"{self.prefix}p:{{{principal}}}"

    def marker(self, key: str) -> str:
        """Replies remembered by request id for writes to ``key`` (its record's slot)."""
        return f"{self.prefix}q:{{{key}}}"

    def notes(self, principal: str) -> str:
        """The index's working notes: recent filings, evictions under way, and replies by
        request id (its slot; see :data:`~sessio.stores._redis_lua.REGISTER`)."""
        return f"{self.prefix}v:{{{principal}}}"

    # -- load ---------------------------------------------------------------------------------------

    def load(self, key: str) -> Flow[Record | None]:
        """The record under ``key``."""
        (raw,) = yield [Cmd(("HGETALL", self.rec(key)))]
        if self.io.wrong_type(raw):
            raise RecordCorrupt("a stored session is not a Redis hash")
        return decode_record(key, self.io.ok(raw))

    # -- save ---------------------------------------------------------------------------------------

    def save(self, key: str, write: Write) -> Flow[Saved]:
        """Apply ``write`` to ``key``; see :class:`~sessio.stores.base.Store`."""
        exp = float(write.expires_at)
        exp_ms = math.floor(exp * 1000)
        pairs = _pairs(write.fields)
        removed = (
            [_stored(_checked(n, "field name")) for n in write.removed]
            if isinstance(write, Update)
            else []
        )
        if write.principal is not None:
            _checked(write.principal, "principal")
        if isinstance(write, Update) and write.principal is None and write.limit is None:
            # The common write (an anonymous session's changes or touch): the lean script.
            argv: list[Any] = [repr(exp), exp_ms, len(write.fields), *pairs, *removed]
            (result,) = yield [script(lua.DELTA, [self.rec(key)], argv)]
            return APPLIED if self.io.ok(result) else MISSING
        mode = _mode(write)
        # A request id for the scripts whose second run would differ from the first.
        rid = secrets.token_hex(8) if mode in ("create", "rotate") or write.limit else ""
        if self.atomic:
            return (yield from self._atomic(key, write, mode, rid, exp, exp_ms, pairs, removed))
        return (yield from self._cluster(key, write, mode, rid, exp, exp_ms, pairs, removed))

    def _atomic(
        self,
        key: str,
        write: Write,
        mode: str,
        rid: str,
        exp: float,
        exp_ms: int,
        pairs: list[str],
        removed: list[str],
    ) -> Flow[Saved]:
        rec, principal, limit = self.rec(key), write.principal, write.limit
        old = write.supersedes if isinstance(write, Rotate) else ""
        tomb = write.tombstone if isinstance(write, Rotate) else None
        tomb_pairs = _pairs(tomb.fields) if tomb is not None else []
        keys = [
            rec,
            self.marker(key),
            self.idx(principal) if principal is not None else rec,
            self.rec(old) if old else rec,
            self.rec(tomb.key) if tomb is not None else rec,
        ]
        argv: list[Any] = [
            mode,
            rid,
            principal or "",
            "0" if principal is None else "1",
            key,
            repr(exp),
            exp_ms,
            "" if limit is None else int(limit.max_sessions),
            limit.on_limit if limit is not None else "",
            old,
            self.rhead,
            self.rtail,
            self.ihead,
            self.itail,
            "" if tomb is None else repr(float(tomb.expires_at)),
            "" if tomb is None else math.floor(tomb.expires_at * 1000),
            len(pairs) // 2,
            len(tomb_pairs) // 2,
            *pairs,
            *tomb_pairs,
            *removed,
        ]
        (reply,) = yield [script(lua.WRITE, keys, argv)]
        return _saved(self.io.ok(reply))

    def _cluster(
        self,
        key: str,
        write: Write,
        mode: str,
        rid: str,
        exp: float,
        exp_ms: int,
        pairs: list[str],
        removed: list[str],
    ) -> Flow[Saved]:
        principal, limit = write.principal, write.limit
        old = write.supersedes if isinstance(write, Rotate) else ""
        tomb = write.tombstone if isinstance(write, Rotate) else None
        idx = self.idx(principal) if principal is not None else ""
        victims: list[str] = []
        score = ""
        # 1. A new record, or one under a limit, is filed (and the limit enforced) first.
        filed = mode in ("create", "rotate") or limit is not None
        if principal is not None and filed and exp > time.time():
            score = self._score(exp)
            argv: list[Any] = [key, score, old, "", "", rid, ""]
            if limit is not None:
                argv[3:5] = [str(int(limit.max_sessions)), limit.on_limit]
            notes = [idx, self.notes(principal)]
            (reply,) = yield [script(lua.REGISTER, notes, argv)]
            reply = [text(r) for r in self.io.ok(reply)]
            if reply[0] == "check":
                dead, live = yield from self._check(principal, reply[1:])
                argv[6:] = [len(dead), *dead, *live]
                (reply,) = yield [script(lua.REGISTER, notes, argv)]
                reply = [text(r) for r in self.io.ok(reply)]
            if reply[0] == "rejected":
                return _OUTCOMES["rejected"]
            victims = reply[1:]
        # 2. The record (and a rotation's tombstone), before the superseded record goes.
        flag = "0" if principal is None else "1"
        save_mode = "put" if mode == "rotate" else mode
        # A rotation's new record lives one marker window until the takeover succeeded: a
        # rotation that fails half-way leaves no record behind for longer than that.
        ttl_ms = min(exp_ms, math.floor(time.time() * 1000) + lua.MARKER_MS) if old else exp_ms
        head = [save_mode, rid, principal or "", flag, repr(exp), ttl_ms]
        tail = [len(pairs) // 2, *pairs, *removed]
        batch = [script(lua.SAVE, [self.rec(key)], [*head, score, *tail])]
        if tomb is not None:
            targv = [repr(float(tomb.expires_at)), math.floor(tomb.expires_at * 1000)]
            batch.append(script(lua.PUT, [self.rec(tomb.key)], [*targv, *_pairs(tomb.fields)]))
        replies = yield batch
        reply = [text(r) for r in self.io.ok(replies[0])]
        if reply[0] == "register":  # an update/rewrite past its filed score: file it, again
            score = self._score(exp)
            argv = [key, score, "", "", "", "", ""]
            (done,) = yield [script(lua.REGISTER, [idx, self.notes(principal or "")], argv)]
            self.io.ok(done)
            (again,) = yield [script(lua.SAVE, [self.rec(key)], [*head, score, *tail])]
            reply = [text(r) for r in self.io.ok(again)]
        if reply[0] != "applied":
            return _OUTCOMES[reply[0]]
        # 3. A rotation takes over its superseded record; if it is gone, undo steps 1-2.
        last: list[Cmd] = []
        if old:
            (claimed,) = yield [script(lua.CLAIM, [self.rec(old), self.marker(old)], [rid])]
            claimed = self.io.ok(claimed)
            if not int(claimed[0]):
                undo = [Cmd(("DEL", self.rec(key)))]
                if tomb is not None:
                    undo.append(Cmd(("DEL", self.rec(tomb.key))))
                if principal is not None:
                    undo.append(Cmd(("ZREM", idx, key)))
                for result in (yield undo):
                    self.io.ok(result)
                return MISSING
            last.append(Cmd(("PEXPIREAT", self.rec(key), exp_ms)))
            owner = text(claimed[1])
            if owner:
                last.append(Cmd(("ZREM", self.idx(owner), old)))
        # 4. Evictions: the victims' records go, then their index entries.
        if principal is not None:
            last += [
                script(lua.DELETE_IF_OWNED, [self.rec(v), self.marker(v)], [principal, rid])
                for v in victims
            ]
        if last:
            for result in (yield last):
                self.io.ok(result)
        if victims:
            (result,) = yield [Cmd(("ZREM", idx, *victims))]
            self.io.ok(result)
        return Saved(SaveOutcome.APPLIED, tuple(victims))

    def _check(self, principal: str, others: list[str]) -> Flow[tuple[list[str], list[str]]]:
        """Of the members an index names, those whose record is not live under ``principal``,
        and the live ones, earliest expiry first (cluster: the records are on other nodes)."""
        if not others:  # every other one was filed within the minute: counted, not read
            return [], []
        rows = yield [Cmd(("HMGET", self.rec(m), "#e", "#p")) for m in others]
        dead: list[str] = []
        live: list[tuple[float, str]] = []
        for member, row in zip(others, rows, strict=True):
            if isinstance(row, Exception) or row[0] is None or row[1] is None:
                dead.append(member)  # gone, expired, or garbage under its key
            elif text(row[1]) != principal:
                dead.append(member)  # changed hands: not this principal's any more
            else:
                try:
                    live.append((float(text(row[0])), member))
                except ValueError:
                    dead.append(member)
        return dead, [member for _, member in sorted(live)]

    def _score(self, expires_at: float) -> str:
        # Headroom: a session extended by each request is refiled once per lifetime or so.
        return repr(expires_at + max(expires_at - time.time(), 60.0))

    # -- delete, principals ---------------------------------------------------------------------------

    def delete(self, key: str) -> Flow[bool]:
        """Delete ``key`` and its index entry."""
        argv = [key, self.ihead, self.itail, "1" if self.atomic else "0"]
        (reply,) = yield [script(lua.DELETE, [self.rec(key)], argv)]
        deleted, owner = self.io.ok(reply)
        owner = text(owner)
        if owner and not self.atomic:
            (result,) = yield [Cmd(("ZREM", self.idx(owner), key))]
            self.io.ok(result)
        return bool(int(deleted))

    def exists(self, key: str) -> Flow[bool]:
        """Whether ``key`` holds a record."""
        (n,) = yield [Cmd(("EXISTS", self.rec(key)))]
        return bool(self.io.ok(n))

    def principal_records(self, principal: str) -> Flow[list[Record]]:
        """The live records filed under ``principal``."""
        idx = self.idx(principal)
        (members,) = yield [script(lua.LIST, [idx], [])]
        keys = [text(m) for m in self.io.ok(members)]
        if not keys:
            return []
        if self.atomic:
            recs = [self.rec(k) for k in keys]
            (found,) = yield [script(lua.VERIFY, [idx, *recs], [principal, *keys])]
            found = self.io.ok(found)
            pairs = list(zip(found[::2], found[1::2], strict=True))
        else:
            rows = yield [Cmd(("HGETALL", self.rec(k))) for k in keys]
            pairs = list(zip(keys, rows, strict=True))
        return list(self._owned(principal, pairs))

    def _owned(self, principal: str, pairs: Iterable[tuple[Any, Any]]) -> Iterable[Record]:
        for member, raw in pairs:
            if isinstance(raw, Exception):
                continue  # garbage under a member's key: listing skips it, loading reports it
            try:
                record = decode_record(text(member), raw)
            except RecordCorrupt:
                continue
            if record is not None and record.principal == principal:
                yield record

    def delete_principal_records(self, principal: str, keep: str | None) -> Flow[list[str]]:
        """Delete every record of ``principal`` but ``keep``; the keys deleted."""
        rid = secrets.token_hex(8)
        idx = self.idx(principal)
        if self.atomic:
            keys = [idx, self.notes(principal)]
            argv = [principal, keep or "", self.rhead, self.rtail, rid]
            (deleted,) = yield [script(lua.DELETE_PRINCIPAL_RECORDS, keys, argv)]
            return [text(m) for m in self.io.ok(deleted)]
        removed: list[str] = []
        for _ in range(_CLUSTER_PASSES):
            (members,) = yield [script(lua.LIST, [idx], [])]
            targets = [k for k in map(text, self.io.ok(members)) if k != keep]
            if not targets:
                break
            replies = yield [
                script(lua.DELETE_IF_OWNED, [self.rec(k), self.marker(k)], [principal, rid])
                for k in targets
            ]
            gone = [k for k, n in zip(targets, replies, strict=True) if self.io.ok(n)]
            (result,) = yield [Cmd(("ZREM", idx, *targets))]
            self.io.ok(result)
            removed += gone
            if not gone:
                break
        return removed


def _mode(write: Write) -> str:
    match write:
        case Create():
            return "create"
        case Update():
            return "update"
        case Rotate():
            return "rotate"
        case Rewrite():
            return "rewrite"
    raise TypeError(f"not a store write: {type(write).__name__}")  # pragma: no cover


def _saved(reply: list[Any]) -> Saved:
    outcome = text(reply[0])
    if outcome == "applied":
        return (
            Saved(SaveOutcome.APPLIED, tuple(text(k) for k in reply[1:])) if reply[1:] else APPLIED
        )
    return _OUTCOMES[outcome]
