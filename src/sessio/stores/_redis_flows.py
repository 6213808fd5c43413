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
from collections.abc import Iterable
from typing import Any

from ..errors import RecordCorrupt
from . import _redis_cluster as cluster
from . import _redis_lua as lua
from ._redis_driver import Cmd, Driver, Flow, script
from ._redis_records import OUTCOMES, decode_record, stored, text
from ._redis_records import pairs as encode_pairs
from ._storable import ensure_storable
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

__all__ = ["Flows"]


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
        ensure_storable(key, write)
        pairs = encode_pairs(write.fields)
        removed = [stored(n) for n in write.removed] if isinstance(write, Update) else []
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
        return (yield from cluster.save(self, key, write, mode, rid, exp, exp_ms, pairs, removed))

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
        tomb_pairs = encode_pairs(tomb.fields) if tomb is not None else []
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
        return (yield from cluster.revoke(self, principal, keep, rid))


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
    return OUTCOMES[outcome]
