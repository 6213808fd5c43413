"""The Lua scripts :class:`~sessio.stores.redis.RedisStore` runs server-side: where atomicity lives.

This module holds the shared helpers and the scripts of one server (or a hash-tagged prefix),
where each operation is one script; :mod:`~sessio.stores._redis_lua_cluster` holds the steps
of the cluster protocol.

Every script reads the server's clock (``TIME``) for expiry decisions and checks key types
before it writes, so it never stops half-way on an error: a script applies all of its writes or
none. A script whose second run would not do what one run did (a create, a rotation, a
principal limit, a revocation) takes a per-call request id and remembers its reply under it
for a minute (:data:`MARKER_MS`): a client that resends it after a timeout or a dropped
connection gets the first run's reply back, and nothing runs twice. The protocol they
implement is described in :mod:`sessio.stores.redis`.
"""

from __future__ import annotations

import dataclasses
import hashlib

__all__ = [
    "CHUNKED",
    "DELETE",
    "DELETE_PRINCIPAL_RECORDS",
    "DELTA",
    "LIST",
    "MARKER_MS",
    "PRELUDE",
    "VERIFY",
    "WRITE",
    "Script",
]

#: How long a script remembers the reply of a request id (a retry comes within seconds).
MARKER_MS = 60_000


@dataclasses.dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA-1, run with ``EVALSHA`` (``EVAL`` when the server lacks it)."""

    name: str
    body: str
    sha: str = ""

    def __post_init__(self) -> None:
        digest = hashlib.sha1(self.body.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", digest)


# redis.call(cmd, key, list[first..last]) in chunks (Lua's unpack has a stack limit).
CHUNKED = """
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
PRELUDE = (
    CHUNKED
    + f"""
local MARKER_MS = {MARKER_MS}
"""
    + """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The reply an earlier run of this request id gave, if any (a client's retry).
local function replayed(marker, rid)
  if rid == '' or redis.call('TYPE', marker)['ok'] ~= 'hash' then return nil end
  local prev = redis.call('HGET', marker, rid)
  if prev then return cjson.decode(prev) end
  return nil
end

local function remember(marker, rid, reply)
  if rid == '' then return reply end
  if redis.call('TYPE', marker)['ok'] ~= 'hash' then redis.call('DEL', marker) end
  redis.call('HSET', marker, rid, cjson.encode(reply))
  redis.call('PEXPIRE', marker, MARKER_MS)
  return reply
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

-- Write a whole record: DEL, HSET '#e' and the pairs list[first..last] (plus extra), PEXPIREAT.
local function put(rec, list, first, last, extra, exp_ms, now)
  redis.call('DEL', rec)
  if tonumber(exp_ms) <= now then return end
  chunked('HSET', rec, list, first, last, extra)
  redis.call('PEXPIREAT', rec, exp_ms)
end
"""
)

#: One server (or a hash-tagged prefix): apply a Create, Update, Rotate or Rewrite, with its
#: principal limit and tombstone, in one step. Replies ``{'applied', evicted...}``,
#: ``{'missing'}``, ``{'exists'}`` or ``{'rejected'}``; nothing is written unless applied.
#: KEYS: record, marker, index (or the record), superseded record (or the record), tombstone
#: (or the record). ARGV: mode, request id ('' none), principal, has_principal, member,
#: expires_at, expires_ms, max_sessions ('' none), on_limit, superseded member ('' none),
#: record key head, tail, index key head, tail, tombstone expires_at ('' none), its ms,
#: n fields, m tombstone fields, n pairs, m pairs, then the names an update removes. A record
#: written with a request id carries it in ``#r``: a retry of the same request sees its own
#: write and replies as the first run did (the evicted keys are remembered in the marker).
#: Evicted records (and the superseded record's index, when another principal's) are reached
#: by key names built from the heads and tails: Redis allows that on one server and, within
#: the one slot of a hash-tagged prefix, on a cluster.
WRITE = Script(
    "write",
    PRELUDE
    + """
local rec, marker, idx, old, tomb = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local mode, rid, principal, has_principal = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
local member, exp, exp_ms, max, on_limit = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local superseded, rhead, rtail, ihead, itail = ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14]
local texp, texp_ms, nset, ntomb = ARGV[15], ARGV[16], tonumber(ARGV[17]), tonumber(ARGV[18])
local first = 19
local tfirst = first + 2 * nset
local rfirst = tfirst + 2 * ntomb

local kind = redis.call('TYPE', rec)['ok']
if rid ~= '' and kind == 'hash' and redis.call('HGET', rec, '#r') == rid then
  return replayed(marker, rid) or {'applied'}  -- a retry: the record is this request's
end
if mode == 'create' then
  if kind == 'hash' then return {'exists'} end
elseif mode == 'rotate' then
  if redis.call('TYPE', old)['ok'] ~= 'hash' then return {'missing'} end
elseif kind ~= 'hash' then
  return {'missing'}
end
local now = now_ms()
local reply = {'applied'}
if has_principal and max ~= '' then
  heal_index(idx)
  prune_index(idx, now)
  local others = {}
  for _, m in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
    if m ~= member and m ~= superseded then
      local r = rhead .. m .. rtail
      if redis.call('TYPE', r)['ok'] == 'hash' and redis.call('HGET', r, '#p') == principal then
        others[#others + 1] = {m, tonumber(redis.call('HGET', r, '#e')) or 0}
      else
        redis.call('ZREM', idx, m)
      end
    end
  end
  local excess = #others - tonumber(max) + 1
  if excess > 0 then
    if on_limit == 'reject' then return {'rejected'} end
    table.sort(others, function(a, b)
      if a[2] ~= b[2] then return a[2] < b[2] end
      return a[1] < b[1]
    end)
    for i = 1, excess do
      redis.call('DEL', rhead .. others[i][1] .. rtail)
      redis.call('ZREM', idx, others[i][1])
      reply[#reply + 1] = others[i][1]
    end
  end
end
if mode == 'rotate' then
  local owner = redis.call('HGET', old, '#p')
  redis.call('DEL', old)
  if owner then redis.call('ZREM', ihead .. owner .. itail, superseded) end
end
if mode == 'update' then
  local owner = redis.call('HGET', rec, '#p')
  if owner and (not has_principal or owner ~= principal) then
    redis.call('ZREM', ihead .. owner .. itail, member)
  end
end
local extra = {'#e', exp}
if has_principal then
  extra[#extra + 1] = '#p'
  extra[#extra + 1] = principal
end
if rid ~= '' then
  extra[#extra + 1] = '#r'
  extra[#extra + 1] = rid
end
if mode == 'update' and tonumber(exp_ms) > now then
  chunked('HSET', rec, ARGV, first, tfirst - 1, extra)
  if rfirst <= #ARGV then chunked('HDEL', rec, ARGV, rfirst, #ARGV, {}) end
  if not has_principal then redis.call('HDEL', rec, '#p') end
  redis.call('PEXPIREAT', rec, exp_ms)
else
  put(rec, ARGV, first, tfirst - 1, extra, exp_ms, now)
end
if has_principal and tonumber(exp_ms) > now then index_add(idx, member, exp, now) end
if texp ~= '' then put(tomb, ARGV, tfirst, rfirst - 1, {'#e', texp}, texp_ms, now) end
if #reply > 1 then remember(marker, rid, reply) end  -- the evicted keys, for a retry
return reply
""",
)

#: The most common write, kept lean (it runs on every request that changes a session): an
#: update that names no principal and no limit. Sets the fields and ``#e``, drops the removed
#: names and any principal, and moves the expiry, only if the record exists; it is idempotent,
#: so it needs no request id. An expiry already past makes ``PEXPIREAT`` delete the record.
#: Returns 1 (applied) or 0 (no record). KEYS[1] record. ARGV: expires_at, expires_ms, number
#: of fields set n, n name/value pairs, then the names to remove.
DELTA = Script(
    "delta",
    CHUNKED
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


#: Delete one record and, where its index shares the script's reach (one server, a hash-tagged
#: prefix), its index entry; the index key is built from a head and tail. Replies
#: ``{deleted (0/1), principal or ''}``. KEYS[1] record; ARGV: member, index head, tail, and
#: '1' when the index may be reached.
DELETE = Script(
    "delete",
    """
local rec = KEYS[1]
if redis.call('TYPE', rec)['ok'] ~= 'hash' then return {redis.call('DEL', rec), ''} end
local owner = redis.call('HGET', rec, '#p') or ''
redis.call('DEL', rec)
if owner ~= '' and ARGV[4] == '1' then redis.call('ZREM', ARGV[2] .. owner .. ARGV[3], ARGV[1]) end
return {1, owner}
""",
)

#: Prune a principal index of expired members and return the others.
#: KEYS[1] index.
LIST = Script(
    "list",
    PRELUDE
    + """
local idx = KEYS[1]
heal_index(idx)
prune_index(idx, now_ms())
return redis.call('ZRANGE', idx, 0, -1)
""",
)

#: One server (or a hash-tagged prefix): read the records an index names, dropping members
#: whose record is gone or now belongs to another principal. Returns member, HGETALL pairs,
#: member, HGETALL pairs... KEYS[1] index, KEYS[2..] records; ARGV[1] principal, ARGV[2..]
#: the members, in KEYS order.
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

#: One server (or a hash-tagged prefix): delete every record a principal index names (but one
#: to keep), in one step, so no save can land half-way. The members are known only once the
#: script runs, so it builds their record keys itself (head .. member .. tail) rather than
#: declaring them: Redis allows that for a script without flags on one server, and in a
#: cluster within one slot, which the hash-tagged prefix guarantees. It reads every record
#: before writing any, so a server that insists on declared keys fails it before it has
#: deleted a session. Replies with the members whose records it deleted; a retry of the same
#: request id gets the first run's reply. KEYS: index, marker; ARGV: principal, member to keep
#: ('' none), record key head, tail, request id.
DELETE_PRINCIPAL_RECORDS = Script(
    "delete_principal_records",
    PRELUDE
    + """
local idx, marker, principal, keep, head, tail = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local prev = replayed(marker, ARGV[5])
if prev then return prev end
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
return remember(marker, ARGV[5], owned)
""",
)
