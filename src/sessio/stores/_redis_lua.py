"""The Lua scripts :class:`~sessio.stores.redis.RedisStore` runs server-side, one per operation.

Every script reads the server's clock (``TIME``) for expiry decisions and checks key types
before it writes, so it never stops half-way on an error: a script applies all of its writes or
none. The protocol they implement is described in :mod:`sessio.stores.redis`.
"""

from __future__ import annotations

import dataclasses
import hashlib

__all__ = [
    "DELETE_IF_OWNED",
    "DELETE_PRINCIPAL_RECORDS",
    "DELTA",
    "LIST",
    "REGISTER",
    "SAVE",
    "VERIFY",
    "Script",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA-1, run with ``EVALSHA`` (``EVAL`` when the server lacks it)."""

    name: str
    body: str
    sha: str = ""
    #: ``EVALSHA <sha>`` as the protocol sends it, packed once.
    head: bytes = b""

    def __post_init__(self) -> None:
        digest = hashlib.sha1(self.body.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", digest)
        object.__setattr__(self, "head", b"$7\r\nEVALSHA\r\n$40\r\n%s\r\n" % digest.encode())


# redis.call(cmd, key, list[first..last]) in chunks (Lua's unpack has a stack limit).
_CHUNKED = """
local function chunked(cmd, key, list, first, last, extra)
  local batch = {}
  for _, v in ipairs(extra) do batch[#batch + 1] = v end
  for i = first, last do
    batch[#batch + 1] = list[i]
    if #batch >= 4000 then
      redis.call(cmd, key, unpack(batch))
      batch = {}
    end
  end
  if #batch > 0 then redis.call(cmd, key, unpack(batch)) end
end
"""

# Shared helpers, prepended to the scripts that need them.
_PRELUDE = (
    _CHUNKED
    + """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- An index that is not a sorted set is garbage: drop it rather than fail half-way.
local function heal_index(idx)
  local kind = redis.call('TYPE', idx)['ok']
  if kind ~= 'zset' and kind ~= 'none' then redis.call('DEL', idx) end
end

-- Members (and index keys) outlive their score by a minute: in a cluster, the record a member
-- names expires on another node's clock, which may run behind this one.
local SKEW_MS = 60000

local function prune_index(idx, now)
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. ((now - SKEW_MS) / 1000))
end

-- Add member with score (kept at the highest score seen), prune expired members, and make the
-- index key itself expire after its last member.
local function index_add(idx, member, score, now)
  heal_index(idx)
  prune_index(idx, now)
  redis.call('ZADD', idx, 'GT', score, member)
  local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', idx, math.ceil(tonumber(top[2]) * 1000) + SKEW_MS)
end
"""
)

#: Apply one Write to a session record. Returns 1 (applied), 0 (the record, or the superseded
#: one, is gone: nothing written) or -1 (cluster mode: the principal index must be registered
#: first; nothing written).
#: KEYS[1] record; atomic mode: KEYS[2] principal index (or the record again), KEYS[3] superseded
#: record (optional: the write then applies only if it exists, and deletes it).
#: ARGV: atomic, mode, has_principal, principal, member, expires_at, expires_ms, registered,
#: number of fields set n, n name/value pairs, then the names to remove. The mode is 'delta' or
#: 'rewrite' (both need the record to exist) or 'create'.
SAVE = Script(
    "save",
    _PRELUDE
    + """
local rec = KEYS[1]
local atomic, mode, has_principal = ARGV[1] == '1', ARGV[2], ARGV[3] == '1'
local replace = mode ~= 'delta'
local principal, member, exp, exp_ms, registered = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local nset = tonumber(ARGV[9])

-- A rotation or a rewrite takes over a record only if it is still there: one revoked (or
-- evicted, or expired) meanwhile stays gone.
if atomic and KEYS[3] then
  if redis.call('TYPE', KEYS[3])['ok'] ~= 'hash' then return 0 end
  redis.call('DEL', KEYS[3])
end
local kind = redis.call('TYPE', rec)['ok']
if mode ~= 'create' and kind ~= 'hash' then return 0 end
local now = now_ms()
if tonumber(exp_ms) <= now then
  redis.call('DEL', rec)
  return 1
end
if has_principal and not atomic and registered == '' then
  local covered = false
  if kind == 'hash' and redis.call('HGET', rec, '#p') == principal then
    registered = redis.call('HGET', rec, '#i') or ''
    covered = registered ~= '' and tonumber(registered) >= tonumber(exp)
  end
  if not covered then return -1 end
end
if replace then redis.call('DEL', rec) end
local extra = {'#e', exp}
if has_principal then
  extra[#extra + 1] = '#p'
  extra[#extra + 1] = principal
  if not atomic then
    extra[#extra + 1] = '#i'
    extra[#extra + 1] = registered
  end
end
chunked('HSET', rec, ARGV, 10, 9 + 2 * nset, extra)
if 10 + 2 * nset <= #ARGV then chunked('HDEL', rec, ARGV, 10 + 2 * nset, #ARGV, {}) end
if not has_principal and not replace then redis.call('HDEL', rec, '#p', '#i') end
redis.call('PEXPIREAT', rec, exp_ms)
if atomic and has_principal then index_add(KEYS[2], member, exp, now) end
return 1
""",
)

#: The most common write, kept lean (it runs on every request that changes a session): a delta
#: that names no principal, in either mode. Sets the fields and ``#e``, drops the removed names
#: and any principal, and moves the expiry, only if the record exists. An expiry already past
#: makes ``PEXPIREAT`` delete the record at once. Returns 1 (applied) or 0 (no record).
#: KEYS[1] record. ARGV: expires_at, expires_ms, number of fields set n, n name/value pairs,
#: then the names to remove.
DELTA = Script(
    "delta",
    _CHUNKED
    + """
local rec = KEYS[1]
if redis.call('TYPE', rec)['ok'] ~= 'hash' then return 0 end
local last = 3 + 2 * tonumber(ARGV[3])
if #ARGV < 4000 then
  redis.call('HSET', rec, '#e', ARGV[1], unpack(ARGV, 4, last))
  redis.call('HDEL', rec, '#p', '#i', unpack(ARGV, last + 1))
else
  chunked('HSET', rec, ARGV, 4, last, {'#e', ARGV[1]})
  chunked('HDEL', rec, ARGV, last + 1, #ARGV, {'#p', '#i'})
end
redis.call('PEXPIREAT', rec, ARGV[2])
return 1
""",
)

#: Cluster mode: file a member in a principal index, before the record that names it is written.
#: KEYS[1] index; ARGV[1] member, ARGV[2] score (an upper bound of the record's expiry).
REGISTER = Script(
    "register",
    _PRELUDE
    + """
index_add(KEYS[1], ARGV[1], ARGV[2], now_ms())
return 1
""",
)

#: Prune a principal index of expired members and return the others.
#: KEYS[1] index.
LIST = Script(
    "list",
    _PRELUDE
    + """
local idx = KEYS[1]
heal_index(idx)
prune_index(idx, now_ms())
return redis.call('ZRANGE', idx, 0, -1)
""",
)

#: Atomic mode: read the records an index names, dropping members whose record is gone or now
#: belongs to another principal. Returns member, HGETALL pairs, member, HGETALL pairs...
#: KEYS[1] index, KEYS[2..] records; ARGV[1] principal, ARGV[2..] the members, in KEYS order.
VERIFY = Script(
    "verify",
    """
local out = {}
for i = 2, #KEYS do
  local rec = KEYS[i]
  if redis.call('TYPE', rec)['ok'] == 'hash' and redis.call('HGET', rec, '#p') == ARGV[1] then
    out[#out + 1] = ARGV[i]
    out[#out + 1] = redis.call('HGETALL', rec)
  else
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return out
""",
)

#: Atomic mode: delete every record a principal index names (but one to keep), in one step, so
#: no save can land half-way. The members are known only once the script runs, so it builds
#: their record keys itself (ARGV[3] .. member .. ARGV[4]) rather than declaring them: Redis
#: allows that for a script without flags on one server, and in a cluster within one slot,
#: which the atomic mode's hash-tagged prefix guarantees. It reads every record before writing
#: any, so a server that insists on declared keys fails it before it has deleted a session.
#: Members whose record is gone or names another principal are dropped from the index too.
#: Returns the members whose records it deleted.
#: KEYS[1] index; ARGV[1] principal, ARGV[2] member to keep ('' for none), ARGV[3] and ARGV[4]
#: what a record key puts before and after its member.
DELETE_PRINCIPAL_RECORDS = Script(
    "delete_principal_records",
    _PRELUDE
    + """
local idx, principal, keep, head, tail = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
heal_index(idx)
prune_index(idx, now_ms())
local owned, stale = {}, {}
for _, member in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
  if member ~= keep then
    local rec = head .. member .. tail
    if redis.call('TYPE', rec)['ok'] == 'hash' and redis.call('HGET', rec, '#p') == principal then
      owned[#owned + 1] = member
    else
      stale[#stale + 1] = member
    end
  end
end
for _, member in ipairs(owned) do
  redis.call('DEL', head .. member .. tail)
  redis.call('ZREM', idx, member)
end
for _, member in ipairs(stale) do redis.call('ZREM', idx, member) end
return owned
""",
)

#: Cluster mode: delete one record if it still names the principal (it may have changed hands
#: since the index was read). Returns 1 (deleted) or 0. KEYS[1] record; ARGV[1] principal.
DELETE_IF_OWNED = Script(
    "delete_if_owned",
    """
local rec = KEYS[1]
if redis.call('TYPE', rec)['ok'] == 'hash' and redis.call('HGET', rec, '#p') == ARGV[1] then
  return redis.call('DEL', rec)
end
return 0
""",
)
