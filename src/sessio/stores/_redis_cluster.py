"""RedisStore's cluster protocol: a write as ordered, idempotent steps over several slots.

On Redis Cluster without a hash-tagged prefix a record, its principal's index, a rotation's
superseded record and its tombstone live in different slots, so no script covers a write. The
steps here (scripts of :mod:`~sessio.stores._redis_lua_cluster`) keep the invariant revocation
needs, every live record naming a principal is filed in its index, and each is safe to run
twice. What is atomic and what is not is stated in :mod:`sessio.stores.redis`.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from . import _redis_lua as lua
from . import _redis_lua_cluster as steps
from ._redis_driver import Cmd, Flow, script
from ._redis_records import OUTCOMES, pairs, text
from .base import MISSING, Rotate, Saved, SaveOutcome, Write

if TYPE_CHECKING:
    from ._redis_flows import Flows

__all__ = ["revoke", "save"]

#: Passes over a principal's index to delete its sessions.
_PASSES = 3


def save(
    flows: Flows,
    key: str,
    write: Write,
    mode: str,
    rid: str,
    exp: float,
    exp_ms: int,
    encoded: list[str],
    removed: list[str],
) -> Flow[Saved]:
    """Apply ``write`` (not an anonymous update: that is one script anywhere) in steps; its
    fields come ``encoded`` as name/value pairs, ``rid`` is the request id of the call."""
    principal, limit = write.principal, write.limit
    old = write.supersedes if isinstance(write, Rotate) else ""
    tomb = write.tombstone if isinstance(write, Rotate) else None
    idx = flows.idx(principal) if principal is not None else ""
    victims: list[str] = []
    score = ""
    # 1. A new record, or one under a limit, is filed (and the limit enforced) first.
    filed = mode in ("create", "rotate") or limit is not None
    if principal is not None and filed and exp > time.time():
        score = _score(exp)
        argv: list[Any] = [key, score, old, "", "", rid, ""]
        if limit is not None:
            argv[3:5] = [str(int(limit.max_sessions)), limit.on_limit]
        notes = [idx, flows.notes(principal)]
        (reply,) = yield [script(steps.REGISTER, notes, argv)]
        reply = [text(r) for r in flows.io.ok(reply)]
        if reply[0] == "check":
            dead, live = yield from _check(flows, principal, reply[1:])
            argv[6:] = [len(dead), *dead, *live]
            (reply,) = yield [script(steps.REGISTER, notes, argv)]
            reply = [text(r) for r in flows.io.ok(reply)]
        if reply[0] == "rejected":
            return OUTCOMES["rejected"]
        victims = reply[1:]
    # 2. The record (and a rotation's tombstone), before the superseded record goes.
    flag = "0" if principal is None else "1"
    save_mode = "put" if mode == "rotate" else mode
    # A rotation's new record lives one marker window until the takeover succeeded: a
    # rotation that fails half-way leaves no record behind for longer than that.
    ttl_ms = min(exp_ms, math.floor(time.time() * 1000) + lua.MARKER_MS) if old else exp_ms
    head = [save_mode, rid, principal or "", flag, repr(exp), ttl_ms]
    tail = [len(encoded) // 2, *encoded, *removed]
    batch = [script(steps.SAVE, [flows.rec(key)], [*head, score, *tail])]
    stone: list[Any] = []
    if tomb is not None:
        stone = [rid, repr(float(tomb.expires_at)), math.floor(tomb.expires_at * 1000)]
        stone += pairs(tomb.fields)
        batch.append(script(steps.PUT, [flows.rec(tomb.key)], ["new", *stone]))
    replies = yield batch
    reply = [text(r) for r in flows.io.ok(replies[0])]
    if reply[0] == "register":  # an update/rewrite past its filed score: file it, again
        score = _score(exp)
        argv = [key, score, "", "", "", "", ""]
        (done,) = yield [script(steps.REGISTER, [idx, flows.notes(principal or "")], argv)]
        flows.io.ok(done)
        (again,) = yield [script(steps.SAVE, [flows.rec(key)], [*head, score, *tail])]
        reply = [text(r) for r in flows.io.ok(again)]
    if reply[0] != "applied":
        return OUTCOMES[reply[0]]
    # 3. A rotation takes over its superseded record; if it is gone, undo steps 1-2.
    last: list[Cmd] = []
    if old:
        (claimed,) = yield [script(steps.CLAIM, [flows.rec(old), flows.marker(old)], [rid])]
        claimed = flows.io.ok(claimed)
        if not int(claimed[0]):
            undo = [Cmd(("DEL", flows.rec(key)))]
            if tomb is not None:
                undo.append(script(steps.DROP, [flows.rec(tomb.key)], [rid]))
            if principal is not None:
                undo.append(Cmd(("ZREM", idx, key)))
            for result in (yield undo):
                flows.io.ok(result)
            return MISSING
        last.append(Cmd(("PEXPIREAT", flows.rec(key), exp_ms)))
        if tomb is not None:  # the winner's tombstone, whatever a losing rotation did to it
            last.append(script(steps.PUT, [flows.rec(tomb.key)], ["force", *stone]))
        owner = text(claimed[1])
        if owner:
            last.append(Cmd(("ZREM", flows.idx(owner), old)))
    # 4. Evictions: the victims' records go, then their index entries.
    if principal is not None:
        last += [
            script(steps.DELETE_IF_OWNED, [flows.rec(v), flows.marker(v)], [principal, rid])
            for v in victims
        ]
    if last:
        for result in (yield last):
            flows.io.ok(result)
    if victims:
        (result,) = yield [Cmd(("ZREM", idx, *victims))]
        flows.io.ok(result)
    return Saved(SaveOutcome.APPLIED, tuple(victims))


def _check(flows: Flows, principal: str, others: list[str]) -> Flow[tuple[list[str], list[str]]]:
    """Of the members an index names, those whose record is not live under ``principal``,
    and the live ones, earliest expiry first (cluster: the records are on other nodes)."""
    if not others:  # every other one was filed within the minute: counted, not read
        return [], []
    rows = yield [Cmd(("HMGET", flows.rec(m), "#e", "#p")) for m in others]
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


def _score(expires_at: float) -> str:
    # Headroom: a session extended by each request is refiled once per lifetime or so.
    return repr(expires_at + max(expires_at - time.time(), 60.0))


def revoke(flows: Flows, principal: str, keep: str | None, rid: str) -> Flow[list[str]]:
    """Delete every record of ``principal`` but ``keep``, in passes over its index (not atomic:
    a rotation that lands after the last pass escapes); the keys deleted."""
    idx = flows.idx(principal)
    removed: list[str] = []
    for _ in range(_PASSES):
        (members,) = yield [script(lua.LIST, [idx], [])]
        targets = [k for k in map(text, flows.io.ok(members)) if k != keep]
        if not targets:
            break
        replies = yield [
            script(steps.DELETE_IF_OWNED, [flows.rec(k), flows.marker(k)], [principal, rid])
            for k in targets
        ]
        gone = [k for k, n in zip(targets, replies, strict=True) if flows.io.ok(n)]
        (result,) = yield [Cmd(("ZREM", idx, *targets))]
        flows.io.ok(result)
        removed += gone
        if not gone:
            break
    return removed
