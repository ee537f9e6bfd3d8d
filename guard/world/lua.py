"""The Redis backend's server-side scripts. Redis runs each script atomically, so every
commit, fork, snapshot, restore and delete is one indivisible step for all replicas.

Keys (``P`` is the store's prefix, ``N`` a percent-encoded sandbox name)::

    P w:N:m     hash   version tick seq evseq created last ttl meta chain top log_start
    P w:N:ctr   hash   counters           P w:N:cnt  hash  objects per collection
    P w:N:sz    hash   bytes per collection P w:N:cv hash  writes per collection
    P w:N:mk    hash   snapshot id -> version at which the world equalled it
    P w:N:log   list   recent changes [version, collection, id, before]
    P w:N:ev    list   event history (JSON, each with its id)
    P L:ID:c:C  hash   a layer's objects of collection C: id -> "SEQ:JSON" ("SEQ:" deleted)
    P L:ID:o:C  zset   ids created in the layer, scored by creation sequence
    P L:ID:cols set    P L:ID:ref  references (worlds, snapshots)  P L:ID:n  entries
    P s:SID     hash   a snapshot: chain seq tick version created source meta ...
    P worlds    set    P snaps  zset (by creation time)

A world reads through its ``chain`` of frozen layers (bottom first) and its mutable
``top``; see :mod:`guard.world.memory` for the same design in process memory. The
scripts compute keys from the prefix, so on a Redis Cluster every key of a store must be
in one slot: the prefix holds a hash tag there (``{team-a}:``), and each script is sent
with the prefix as its one declared key, which routes it to that slot's node.
"""

COMMON = r"""
local P = ARGV[1]
local function wkey(n) return P .. 'w:' .. n end
local function lkey(l, kind, c)
  if c then return P .. 'L:' .. l .. ':' .. kind .. ':' .. c end
  return P .. 'L:' .. l .. ':' .. kind
end
local function split(v)
  local p = string.find(v, ':', 1, true)
  return tonumber(string.sub(v, 1, p - 1)), string.sub(v, p + 1)
end
local function chain_of(w)
  local chain = cjson.decode(redis.call('HGET', w .. ':m', 'chain') or '[]')
  local top = redis.call('HGET', w .. ':m', 'top')
  if top then table.insert(chain, top) end
  return chain
end
local function source_chain(src)
  if string.sub(src, 1, 2) == 's:' then
    local c = redis.call('HGET', P .. src, 'chain')
    if not c then return nil end
    return cjson.decode(c)
  end
  if redis.call('EXISTS', wkey(src) .. ':m') == 0 then return nil end
  return chain_of(wkey(src))
end
local function lookup(chain, c, id)
  for i = #chain, 1, -1 do
    local v = redis.call('HGET', lkey(chain[i], 'c', c), id)
    if v then return v end
  end
  return false
end
local function body_of(v)
  if not v then return false end
  local _, b = split(v)
  if b == '' then return false end
  return b
end
local function found_below(chain, c, id)
  for i = #chain - 1, 1, -1 do
    if redis.call('HEXISTS', lkey(chain[i], 'c', c), id) == 1 then return true end
  end
  return false
end
local function unref(l)
  if redis.call('DECR', lkey(l, 'ref')) <= 0 then
    for _, c in ipairs(redis.call('SMEMBERS', lkey(l, 'cols'))) do
      redis.call('UNLINK', lkey(l, 'c', c), lkey(l, 'o', c))
    end
    redis.call('UNLINK', lkey(l, 'cols'), lkey(l, 'ref'), lkey(l, 'n'))
  end
end
local function ref_all(chain)
  for _, l in ipairs(chain) do redis.call('INCR', lkey(l, 'ref')) end
end
local function hash_json(k)
  local flat = redis.call('HGETALL', k)
  if #flat == 0 then return '{}' end
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = tonumber(flat[i + 1]) end
  return cjson.encode(t)
end
local function set_hash(k, json)
  redis.call('DEL', k)
  local t = cjson.decode(json)
  for name, v in pairs(t) do redis.call('HSET', k, name, v) end
end
local function bump_collections(w)
  for _, c in ipairs(redis.call('HKEYS', w .. ':cnt')) do
    redis.call('HINCRBY', w .. ':cv', c, 1)
  end
end
-- freeze the top layer of world w (if it holds anything) and give it a new one
local function freeze(w, newtop)
  local m = w .. ':m'
  local top = redis.call('HGET', m, 'top')
  local chain = cjson.decode(redis.call('HGET', m, 'chain') or '[]')
  if tonumber(redis.call('GET', lkey(top, 'n')) or '0') > 0 then
    table.insert(chain, top)
    redis.call('HSET', m, 'chain', cjson.encode(chain), 'top', newtop)
    redis.call('SET', lkey(newtop, 'ref'), 1)
  end
  return chain
end
-- make world w (existing or new) hold the snapshot sid (or nothing); returns its version
local function become(w, sid, newtop, now, existing)
  local m = w .. ':m'
  local version = tonumber(redis.call('HGET', m, 'version') or '0')
  if existing then
    bump_collections(w)
    for _, l in ipairs(chain_of(w)) do unref(l) end
    version = version + 1
  end
  local chain, seq, tick, ctr, cnt, sz = {}, 0, 0, '{}', '{}', '{}'
  if sid ~= '' then
    local s = P .. 's:' .. sid
    chain = cjson.decode(redis.call('HGET', s, 'chain'))
    seq = redis.call('HGET', s, 'seq'); tick = redis.call('HGET', s, 'tick')
    ctr = redis.call('HGET', s, 'counters'); cnt = redis.call('HGET', s, 'counts')
    sz = redis.call('HGET', s, 'sizes')
  end
  ref_all(chain)
  redis.call('SET', lkey(newtop, 'ref'), 1)
  redis.call('HSET', m, 'chain', cjson.encode(chain), 'top', newtop, 'seq', seq,
             'tick', tick, 'version', version, 'log_start', version, 'last', now)
  set_hash(w .. ':ctr', ctr); set_hash(w .. ':cnt', cnt); set_hash(w .. ':sz', sz)
  bump_collections(w)
  redis.call('DEL', w .. ':log', w .. ':mk')
  if sid ~= '' then redis.call('HSET', w .. ':mk', sid, version) end
  return version
end
"""

# ARGV: P, name, newtop, now, ttl, meta, initial sid ('' = empty) -> 1 if created
OPEN = COMMON + r"""
local w = wkey(ARGV[2])
if redis.call('EXISTS', w .. ':m') == 1 then return 0 end
local sid = ARGV[7]
if sid ~= '' and redis.call('EXISTS', P .. 's:' .. sid) == 0 then return -1 end
redis.call('HSET', w .. ':m', 'created', ARGV[4], 'ttl', ARGV[5], 'meta', ARGV[6],
           'evseq', 0)
become(w, sid, ARGV[3], ARGV[4], false)
redis.call('HSET', w .. ':m', 'version', 0, 'log_start', 0)
if sid ~= '' then redis.call('HSET', w .. ':mk', sid, 0) end
redis.call('SADD', P .. 'worlds', ARGV[2])
return 1
"""

# ARGV: P, name, coll, id -> {version, value or false}
GET = COMMON + r"""
local w = wkey(ARGV[2])
local v = lookup(chain_of(w), ARGV[3], ARGV[4])
return {tonumber(redis.call('HGET', w .. ':m', 'version') or '-1'), body_of(v)}
"""

# ARGV: P, source ('N' world or 's:SID'), coll, after id, after seq (-1: none), reverse,
# limit, budget -> {version, cver, next seq (-1: done), id, json, id, json, ...}
SCAN = COMMON + r"""
local src, c = ARGV[2], ARGV[3]
local chain = source_chain(src)
if not chain then return {-1, 0, -1} end
local version, cver = 0, 0
if string.sub(src, 1, 2) ~= 's:' then
  version = tonumber(redis.call('HGET', wkey(src) .. ':m', 'version'))
  cver = tonumber(redis.call('HGET', wkey(src) .. ':cv', c) or '0')
end
local start = tonumber(ARGV[5])
if ARGV[4] ~= '' then
  local v = lookup(chain, c, ARGV[4])
  if not v or not body_of(v) then return {version, cver, -1} end
  start = split(v)
end
local reverse, limit, budget = ARGV[6] == '1', tonumber(ARGV[7]), tonumber(ARGV[8])
local out = {version, cver, -1}
local n, examined, last = 0, 0, start
local first, final, step = 1, #chain, 1
if reverse then first, final, step = #chain, 1, -1 end
for i = first, final, step do
  local zk = lkey(chain[i], 'o', c)
  local offset = 0
  while n < limit and examined < budget do
    local batch
    if reverse then
      local hi = '+inf'
      if start >= 0 then hi = '(' .. start end
      batch = redis.call('ZREVRANGEBYSCORE', zk, hi, '-inf', 'WITHSCORES', 'LIMIT', offset, 64)
    else
      local lo = '-inf'
      if start >= 0 then lo = '(' .. start end
      batch = redis.call('ZRANGEBYSCORE', zk, lo, '+inf', 'WITHSCORES', 'LIMIT', offset, 64)
    end
    if #batch == 0 then break end
    for j = 1, #batch, 2 do
      local id, s = batch[j], tonumber(batch[j + 1])
      examined = examined + 1
      last = s
      local v = lookup(chain, c, id)
      if v then
        local seq, b = split(v)
        if seq == s and b ~= '' then
          table.insert(out, id); table.insert(out, b); n = n + 1
        end
      end
      if n >= limit or examined >= budget then break end
    end
    offset = offset + 64
  end
  if n >= limit or examined >= budget then
    out[3] = last
    return out
  end
end
return out
"""

# ARGV: P, name, payload JSON, value, value, ... -> {'ok', version} | {'conflict', version}
# | {'gone'} | {'room', version, objects, bytes} (the world's limits leave no room: nothing
# written). The payload names values by their place in ARGV (false: none), so objects are
# not JSON inside JSON: neither side escapes, and cjson never decodes one.
COMMIT = COMMON + r"""
local w = wkey(ARGV[2])
local m = w .. ':m'
local h = redis.call('HMGET', m, 'version', 'chain', 'top', 'seq', 'log_start')
if not h[1] then return {'gone'} end
local t = cjson.decode(ARGV[3])
local function value(i) if i then return ARGV[i] end return false end
local version = tonumber(h[1])
local chain = cjson.decode(h[2] or '[]')
if h[3] then table.insert(chain, h[3]) end
if t.base ~= version then
  for _, r in ipairs(t.reads) do
    if body_of(lookup(chain, r[1], r[2])) ~= value(r[3]) then return {'conflict', version} end
  end
  for _, r in ipairs(t.creads) do
    if tonumber(redis.call('HGET', w .. ':ctr', r[1]) or '0') ~= r[2] then
      return {'conflict', version}
    end
  end
  for _, r in ipairs(t.scans) do
    if tonumber(redis.call('HGET', w .. ':cv', r[1]) or '0') ~= r[2] then
      return {'conflict', version}
    end
  end
end
if #t.writes == 0 and #t.counters == 0 then
  redis.call('HSET', m, 'last', t.now)  -- a request that only reads is activity too (TTL)
  return {'ok', version}
end
if t.room then  -- {max objects, max bytes, objects added, bytes grown} (0: no limit)
  local r, objects, size = t.room, 0, 0
  for _, n in ipairs(redis.call('HVALS', w .. ':cnt')) do objects = objects + tonumber(n) end
  for _, n in ipairs(redis.call('HVALS', w .. ':sz')) do size = size + tonumber(n) end
  if (r[1] > 0 and r[3] > 0 and objects + r[3] > r[1])
      or (r[2] > 0 and r[4] > 0 and size + r[4] > r[2]) then
    return {'room', version, objects, size}
  end
end
version = version + 1
local top = chain[#chain]
-- per collection sums, written once each after the loop
local seq0 = tonumber(h[4] or '0')
local seq, entries, cnt, sz, cv, cols, log = seq0, 0, {}, {}, {}, {}, {}
local names = {}  -- collections in the order first written (a deterministic script)
local function add(tbl, c, d)
  if not cnt[c] then cnt[c] = 0; sz[c] = 0; cv[c] = 0; table.insert(names, c) end
  tbl[c] = tbl[c] + d
end
for _, wr in ipairs(t.writes) do
  local c, id, raw = wr[1], wr[2], value(wr[3])
  local cur = lookup(chain, c, id)
  local before = body_of(cur)
  local ck = lkey(top, 'c', c)
  if raw == false then
    if before then
      local s = split(cur)
      if found_below(chain, c, id) then
        entries = entries + redis.call('HSET', ck, id, s .. ':')
      else
        redis.call('HDEL', ck, id)
        redis.call('ZREM', lkey(top, 'o', c), id)
        entries = entries - 1
      end
      add(cnt, c, -1)
      add(sz, c, -#before)
    end
  else
    local s
    if before then
      s = split(cur)
    else
      seq = seq + 1
      s = seq
      redis.call('ZADD', lkey(top, 'o', c), s, id)
      if not cols[c] then cols[c] = true; table.insert(cols, c) end
      add(cnt, c, 1)
    end
    entries = entries + redis.call('HSET', ck, id, s .. ':' .. raw)
    add(sz, c, #raw - #(before or ''))
  end
  if before or raw then
    add(cv, c, 1)
    table.insert(log, cjson.encode({version, c, id, before}))
  end
end
if #cols > 0 then redis.call('SADD', lkey(top, 'cols'), unpack(cols)) end
if entries ~= 0 then redis.call('INCRBY', lkey(top, 'n'), entries) end
if seq > seq0 then redis.call('HINCRBY', m, 'seq', seq - seq0) end
for _, c in ipairs(names) do
  if cnt[c] ~= 0 then redis.call('HINCRBY', w .. ':cnt', c, cnt[c]) end
  if sz[c] ~= 0 then redis.call('HINCRBY', w .. ':sz', c, sz[c]) end
  if cv[c] ~= 0 then redis.call('HINCRBY', w .. ':cv', c, cv[c]) end
end
for _, ctr in ipairs(t.counters) do redis.call('HSET', w .. ':ctr', ctr[1], ctr[2]) end
local len = 0
for i = 1, #log, 1000 do  -- (unpack has a limit: a snapshot loaded in one transaction)
  len = redis.call('RPUSH', w .. ':log', unpack(log, i, math.min(i + 999, #log)))
end
local over = len - t.keep
if over > 0 then
  local dropped = redis.call('LPOP', w .. ':log', over)
  local lastv = cjson.decode(dropped[#dropped])[1]
  if lastv > tonumber(h[5] or '0') then redis.call('HSET', m, 'log_start', lastv) end
end
redis.call('HSET', m, 'version', version, 'last', t.now)
return {'ok', version}
"""

# ARGV: P, name -> the next request number, or -1 when the world is gone
TICK = COMMON + r"""
local m = wkey(ARGV[2]) .. ':m'
if redis.call('EXISTS', m) == 0 then return -1 end
return redis.call('HINCRBY', m, 'tick', 1)
"""

# ARGV: P, source, new, srcnewtop, newtop, now, ttl, meta -> 'ok' | 'exists' | 'nosource'
FORK = COMMON + r"""
local s, d = wkey(ARGV[2]), wkey(ARGV[3])
if redis.call('EXISTS', s .. ':m') == 0 then return 'nosource' end
if redis.call('EXISTS', d .. ':m') == 1 then return 'exists' end
local chain = freeze(s, ARGV[4])
ref_all(chain)
redis.call('SET', lkey(ARGV[5], 'ref'), 1)
for _, k in ipairs({':ctr', ':cnt', ':sz', ':cv', ':mk', ':log', ':ev'}) do
  redis.call('COPY', s .. k, d .. k)
end
local f = redis.call('HMGET', s .. ':m', 'seq', 'tick', 'version', 'evseq', 'log_start')
redis.call('HSET', d .. ':m', 'chain', cjson.encode(chain), 'top', ARGV[5], 'seq', f[1],
           'tick', f[2], 'version', f[3], 'evseq', f[4], 'log_start', f[5],
           'created', ARGV[6], 'last', ARGV[6], 'ttl', ARGV[7], 'meta', ARGV[8])
redis.call('SADD', P .. 'worlds', ARGV[3])
return 'ok'
"""

# ARGV: P, name, sid, newtop, now, meta -> 'ok' | 'exists' | 'noworld'
SNAPSHOT = COMMON + r"""
local w, s = wkey(ARGV[2]), P .. 's:' .. ARGV[3]
if redis.call('EXISTS', w .. ':m') == 0 then return 'noworld' end
if redis.call('EXISTS', s) == 1 then return 'exists' end
local chain = freeze(w, ARGV[4])
ref_all(chain)
local f = redis.call('HMGET', w .. ':m', 'seq', 'tick', 'version')
redis.call('HSET', s, 'chain', cjson.encode(chain), 'seq', f[1], 'tick', f[2],
           'version', f[3], 'created', ARGV[5], 'source', ARGV[2], 'meta', ARGV[6],
           'counters', hash_json(w .. ':ctr'), 'counts', hash_json(w .. ':cnt'),
           'sizes', hash_json(w .. ':sz'))
redis.call('ZADD', P .. 'snaps', ARGV[5], ARGV[3])
redis.call('HSET', w .. ':mk', ARGV[3], f[3])
return 'ok'
"""

# ARGV: P, sid, layer, now, meta, seq, tick, counters, counts, sizes -> 'ok' | 'exists'
PUBLISH = COMMON + r"""
local s = P .. 's:' .. ARGV[2]
if redis.call('EXISTS', s) == 1 then return 'exists' end
local chain = {}
if ARGV[3] ~= '' then chain = {ARGV[3]}; redis.call('SET', lkey(ARGV[3], 'ref'), 1) end
redis.call('HSET', s, 'chain', cjson.encode(chain), 'seq', ARGV[6], 'tick', ARGV[7],
           'version', 0, 'created', ARGV[4], 'source', '', 'meta', ARGV[5],
           'counters', ARGV[8], 'counts', ARGV[9], 'sizes', ARGV[10])
redis.call('ZADD', P .. 'snaps', ARGV[4], ARGV[2])
return 'ok'
"""

# ARGV: P, name, sid ('' = empty), newtop, now, create (1/0), ttl, meta
# -> version | -1 no world | -2 no snapshot | -3 exists
BECOME = COMMON + r"""
local w = wkey(ARGV[2])
local exists = redis.call('EXISTS', w .. ':m') == 1
if ARGV[6] == '1' and exists then return -3 end
if ARGV[6] ~= '1' and not exists then return -1 end
if ARGV[3] ~= '' and redis.call('EXISTS', P .. 's:' .. ARGV[3]) == 0 then return -2 end
if not exists then
  redis.call('HSET', w .. ':m', 'created', ARGV[5], 'ttl', ARGV[7], 'meta', ARGV[8],
             'evseq', 0)
  redis.call('SADD', P .. 'worlds', ARGV[2])
end
return become(w, ARGV[3], ARGV[4], ARGV[5], exists)
"""

# ARGV: P, name, idle-before ('' = always) -> 1 deleted | 0
DELETE = COMMON + r"""
local w = wkey(ARGV[2])
local m = w .. ':m'
if redis.call('EXISTS', m) == 0 then return 0 end
if ARGV[3] ~= '' then
  local f = redis.call('HMGET', m, 'ttl', 'last')
  if f[1] == '' or tonumber(f[2]) + tonumber(f[1]) >= tonumber(ARGV[3]) then return 0 end
end
for _, l in ipairs(chain_of(w)) do unref(l) end
redis.call('UNLINK', m, w .. ':ctr', w .. ':cnt', w .. ':sz', w .. ':cv', w .. ':mk',
           w .. ':log', w .. ':ev')
redis.call('SREM', P .. 'worlds', ARGV[2])
redis.call('PUBLISH', P .. 'events', ARGV[2])
return 1
"""

# ARGV: P, sid -> 1 | 0
DELETE_SNAPSHOT = COMMON + r"""
local s = P .. 's:' .. ARGV[2]
local c = redis.call('HGET', s, 'chain')
if not c then return 0 end
for _, l in ipairs(cjson.decode(c)) do unref(l) end
redis.call('UNLINK', s)
redis.call('ZREM', P .. 'snaps', ARGV[2])
return 1
"""

# ARGV: P, name, event JSON (an object), keep -> id | -1 no world
ADD_EVENT = COMMON + r"""
local w = wkey(ARGV[2])
if redis.call('EXISTS', w .. ':m') == 0 then return -1 end
local n = redis.call('HINCRBY', w .. ':m', 'evseq', 1)
local body = string.sub(ARGV[3], 2)
local sep = ','
if body == '}' then sep = '' end
local len = redis.call('RPUSH', w .. ':ev', '{"id":' .. n .. sep .. body)
if len > tonumber(ARGV[4]) then redis.call('LTRIM', w .. ':ev', -tonumber(ARGV[4]), -1) end
redis.call('PUBLISH', P .. 'events', ARGV[2] .. ' ' .. n)  -- name (quoted) and id
return n
"""

# ARGV: P, name, after, limit -> {json, ...}
EVENTS = COMMON + r"""
local w = wkey(ARGV[2])
local last = tonumber(redis.call('HGET', w .. ':m', 'evseq') or '0')
local len = redis.call('LLEN', w .. ':ev')
local first = last - len + 1
local start = math.max(0, tonumber(ARGV[3]) - first + 1)
local limit = tonumber(ARGV[4])
if limit <= 0 or start >= len then return {} end
return redis.call('LRANGE', w .. ':ev', start, start + limit - 1)
"""

# ARGV: P, name, hash ("cnt", "ctr", "sz") -> {the world's version (nil: no world), the
# hash as field, value, ...}: the two in one step
HASH = r"""
local w = ARGV[1] .. 'w:' .. ARGV[2]
return {redis.call('HGET', w .. ':m', 'version'), redis.call('HGETALL', w .. ':' .. ARGV[3])}
"""
