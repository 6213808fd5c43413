"""The Lua steps of RedisStore's cluster protocol (an untagged prefix on Redis Cluster).

A record, its principal's index and a rotation's other records live in different slots there,
so a write is several scripts, each atomic on its own slot and safe to run twice; the order
they run in is :mod:`sessio.stores._redis_cluster`'s, what it guarantees is described in
:mod:`sessio.stores.redis`.
"""

from __future__ import annotations

from ._redis_lua import PRELUDE, Script

__all__ = ["CLAIM", "DELETE_IF_OWNED", "DROP", "PUT", "REGISTER", "SAVE"]


#: Cluster: write one record (the index, in another slot, was written first). Replies like
#: :data:`WRITE` (never ``rejected``), or ``{'register'}`` when the record would name a
#: principal, or an expiry past ``#i``, that its index does not cover yet (nothing written).
#: Mode 'put' writes unconditionally (the new record of a rotation). A record written with a
#: request id carries it in ``#r``, so a retry of the same request sees its own write and
#: replies ``applied`` again. KEYS[1] record. ARGV: mode, request id, principal, has_principal, expires_at, expires_ms, registered score
#: ('' none), n fields, n pairs, then the names an update removes.
SAVE = Script(
    "save",
    PRELUDE
    + """
local rec = KEYS[1]
local mode, rid, principal, has_principal = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
local exp, exp_ms, registered, nset = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
local first = 9
local rfirst = first + 2 * nset
local kind = redis.call('TYPE', rec)['ok']
if rid ~= '' and kind == 'hash' and redis.call('HGET', rec, '#r') == rid then
  return {'applied'}  -- a retry: the record is this request's
end
if mode == 'create' then
  if kind == 'hash' then return {'exists'} end
elseif mode ~= 'put' and kind ~= 'hash' then
  return {'missing'}
end
local now = now_ms()
if tonumber(exp_ms) <= now then
  if mode ~= 'create' then redis.call('DEL', rec) end
  return {'applied'}
end
if has_principal and registered == '' then
  local covered = false
  if kind == 'hash' and redis.call('HGET', rec, '#p') == principal then
    registered = redis.call('HGET', rec, '#i') or ''
    covered = registered ~= '' and tonumber(registered) >= tonumber(exp)
  end
  if not covered then return {'register'} end
end
local extra = {'#e', exp}
if has_principal then
  extra[#extra + 1] = '#p'
  extra[#extra + 1] = principal
  extra[#extra + 1] = '#i'
  extra[#extra + 1] = registered
end
if rid ~= '' then
  extra[#extra + 1] = '#r'
  extra[#extra + 1] = rid
end
if mode == 'update' then
  chunked('HSET', rec, ARGV, first, rfirst - 1, extra)
  if rfirst <= #ARGV then chunked('HDEL', rec, ARGV, rfirst, #ARGV, {}) end
  if not has_principal then redis.call('HDEL', rec, '#p', '#i') end
  redis.call('PEXPIREAT', rec, exp_ms)
else
  put(rec, ARGV, first, rfirst - 1, extra, exp_ms, now)
end
return {'applied'}
""",
)

#: Cluster: file a member in a principal index before the record that names it is written, and
#: enforce a principal limit on the index, atomically on the index's slot. The index cannot see
#: the records (other slots), so when the others reach the limit the first call writes nothing
#: and replies ``{'check', members...}``; the caller reads those records and calls again with
#: the members found dead (gone, expired, changed hands) and the live ones by expiry, earliest
#: first. That call drops the dead, counts again and replies ``{'ok', victims...}`` (the
#: earliest-expiring others, to evict) or ``{'rejected'}``. The index's *notes* (a hash in its
#: slot) keep, for a minute, the members filed recently (their record may not be written yet:
#: never checked, always counted) and those being evicted (not counted, never picked twice),
#: and the reply of each request id, so a retry gets the first run's victims.
#: KEYS: index, notes; ARGV: member, score, superseded member ('' none), max_sessions ('' none),
#: on_limit, request id, number of dead members ('' on the first call), the dead, then the live
#: by expiry.
REGISTER = Script(
    "register",
    PRELUDE
    + """
local idx, notes, member, score, superseded = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]
local max, rid = ARGV[4], ARGV[6]
local prev = replayed(notes, rid)
if prev then return prev end
local now = now_ms()
heal_index(idx)
prune_index(idx, now)
if redis.call('TYPE', notes)['ok'] ~= 'hash' then redis.call('DEL', notes) end
local fresh, leaving = {}, {}
local seen = redis.call('HGETALL', notes)
for i = 1, #seen, 2 do
  local kind, m, at = string.sub(seen[i], 1, 2), string.sub(seen[i], 3), tonumber(seen[i + 1])
  if kind == 'n:' or kind == 'x:' then
    if now - at > MARKER_MS then
      redis.call('HDEL', notes, seen[i])
    elseif kind == 'n:' then
      fresh[m] = at
    else
      leaving[m] = true
    end
  end
end
local reply = {'ok'}
if max ~= '' then
  local checked = ARGV[7] ~= ''
  if checked and tonumber(ARGV[7]) > 0 then
    chunked('ZREM', idx, ARGV, 8, 7 + tonumber(ARGV[7]), {})
  end
  local others, present = {}, {}
  for _, m in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
    if m ~= member and m ~= superseded and not leaving[m] then
      others[#others + 1] = m
      present[m] = true
    end
  end
  local excess = #others - tonumber(max) + 1
  if excess > 0 then
    if not checked then
      local check = {'check'}
      for _, m in ipairs(others) do
        if not fresh[m] then check[#check + 1] = m end
      end
      return check
    end
    if ARGV[5] == 'reject' then return {'rejected'} end
    -- Earliest expiry first, as the caller read it; then the members filed within the
    -- minute (not read: their records may not be written yet), oldest filing first, which
    -- under one policy is the earliest expiry; then anything left, by score.
    local order = {}
    for i = 8 + tonumber(ARGV[7]), #ARGV do order[#order + 1] = ARGV[i] end
    local recent = {}
    for _, m in ipairs(others) do
      if fresh[m] then recent[#recent + 1] = m end
    end
    table.sort(recent, function(a, b) return fresh[a] < fresh[b] end)
    for _, m in ipairs(recent) do order[#order + 1] = m end
    for _, m in ipairs(others) do order[#order + 1] = m end
    for _, m in ipairs(order) do
      if #reply > excess then break end
      if present[m] then
        reply[#reply + 1] = m
        present[m] = nil
        redis.call('HSET', notes, 'x:' .. m, now)
      end
    end
  end
end
redis.call('HSET', notes, 'n:' .. member, now)
redis.call('PEXPIRE', notes, MARKER_MS)
index_add(idx, member, score, now)
return remember(notes, rid, reply)
""",
)

#: Cluster: take over the superseded record of a rotation: delete it if it is live. A retry of
#: the same request id finds it gone but its marker there and gets the same reply.
#: Replies ``{1, principal or ''}`` (taken) or ``{0}``. KEYS: record, marker; ARGV[1] request id.
CLAIM = Script(
    "claim",
    PRELUDE
    + """
local rec, marker, rid = KEYS[1], KEYS[2], ARGV[1]
local prev = replayed(marker, rid)
if prev then return prev end
if redis.call('TYPE', rec)['ok'] ~= 'hash' then return {0} end
local owner = redis.call('HGET', rec, '#p') or ''
redis.call('DEL', rec)
return remember(marker, rid, {1, owner})
""",
)

#: Cluster: write a rotation's tombstone (a plain record) carrying the request id in ``#r``.
#: Mode 'new' (before the takeover) leaves a tombstone another request wrote alone and replies
#: 0: a rotation that loses the race for the superseded record must not replace the winner's;
#: mode 'force' (after the takeover succeeded) writes it whatever is there. Replies 1 when
#: written. KEYS[1] record; ARGV: mode, request id, expires_at, expires_ms, name/value pairs.
PUT = Script(
    "put",
    PRELUDE
    + """
local rec, mode, rid = KEYS[1], ARGV[1], ARGV[2]
if mode == 'new' and redis.call('TYPE', rec)['ok'] == 'hash' and
    redis.call('HGET', rec, '#r') ~= rid then
  return 0
end
put(rec, ARGV, 5, #ARGV, {'#e', ARGV[3], '#r', rid}, ARGV[4], now_ms())
return 1
""",
)

#: Cluster: undo a tombstone this request wrote (its rotation found the superseded record
#: gone); one another request wrote stays. KEYS[1] record; ARGV[1] request id. Replies 0/1.
DROP = Script(
    "drop",
    """
if redis.call('TYPE', KEYS[1])['ok'] == 'hash' and redis.call('HGET', KEYS[1], '#r') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
""",
)

#: Cluster: delete one record if it still names the principal (it may have changed hands since
#: the index was read); a retry of the same request id gets the same reply. Returns 1
#: (deleted) or 0. KEYS: record, marker; ARGV: principal, request id.
DELETE_IF_OWNED = Script(
    "delete_if_owned",
    PRELUDE
    + """
local rec, marker = KEYS[1], KEYS[2]
local prev = replayed(marker, ARGV[2])
if prev then return prev[1] end
if redis.call('TYPE', rec)['ok'] == 'hash' and redis.call('HGET', rec, '#p') == ARGV[1] then
  redis.call('DEL', rec)
  remember(marker, ARGV[2], {1})
  return 1
end
return 0
""",
)
