package redisstore

import "github.com/redis/go-redis/v9"

// prelude holds the helpers of the scripts. Times are zero-padded Unix
// nanoseconds of equal length, or ” for the zero time, so that comparing
// strings compares instants exactly.
const prelude = `
local function after(a, b)
  if not a or a == '' then return false end
  if not b or b == '' then return true end
  if #a ~= #b then return #a > #b end
  return a > b
end
local function extend(k, ms)
  if redis.call('PTTL', k) < tonumber(ms) then redis.call('PEXPIRE', k, ms) end
end
local function blank(v) return not v or v == '' end
-- fileCall files call id, expiring at exp, under the customer k whose
-- filed calls cs (or false) were read with it, for Erase: the field "cs"
-- holds "<call id> <expiry in whole seconds>\n" for each, and drops those
-- expired at now once it grows long (a field per call, as earlier
-- versions filed them, took about twice the memory: see prune).
local function fileCall(k, cs, id, exp, now)
  cs = cs or ''
  if string.find('\n'..cs, '\n'..id..' ', 1, true) then return end
  if #cs > 2048 then
    local kept, s = {}, string.sub(now, 1, 11)
    for e, x in string.gmatch(cs, '([^\n]* (%d+)\n)') do
      if after(x, s) then kept[#kept + 1] = e end
    end
    cs = table.concat(kept)
  end
  redis.call('HSET', k, 'cs', cs..id..' '..string.sub(exp, 1, 11)..'\n')
end
-- prune drops from a customer's hash the calls earlier versions filed
-- under it, a field "c:<call id>" each, that have expired (the field's
-- value is the call's expiry), once there are many.
local function prune(k, now)
  if redis.call('HLEN', k) <= 40 then return end
  local f = redis.call('HGETALL', k)
  for i = 1, #f, 2 do
    if string.sub(f[i], 1, 2) == 'c:' and not after(f[i + 1], now) then redis.call('HDEL', k, f[i]) end
  end
end
`

// callPrelude reads and writes call records. A call record is one string:
// a MessagePack map of the fields listed at callHash, empty ones left out,
// read and written whole (one command each way). Records stored as hashes
// by earlier versions are read too, and rewritten as strings by their next
// write.
const callPrelude = prelude + `
local function loadCall(k)
  local v = redis.pcall('GET', k)
  if type(v) == 'table' and v.err then
    local f = redis.call('HGETALL', k)
    local t = {}
    for i = 1, #f, 2 do if f[i + 1] ~= '' then t[f[i]] = f[i + 1] end end
    return t
  end
  if not v then return nil end
  return cmsgpack.unpack(v)
end
local function unpackCall(v, k)
  if type(v) == 'table' and v.err then return loadCall(k) end
  if not v then return nil end
  return cmsgpack.unpack(v)
end
local function saveCall(k, t, ms)
  if ms then return redis.call('SET', k, cmsgpack.pack(t), 'PX', ms) end
  return redis.call('SET', k, cmsgpack.pack(t), 'KEEPTTL')
end
local function live(r, now) return r and after(r.exp, now) end
-- samePrint compares a stored print with a request's (packPrint: 12 raw
-- bytes of its hash); prints stored before are the whole hash in hex.
local function samePrint(stored, p)
  if stored == p then return true end
  if #stored ~= 64 or #p ~= 12 then return false end
  return string.sub(stored, 1, 24) == (string.gsub(p, '.', function(c) return string.format('%02x', string.byte(c)) end))
end
-- matchedOf is the customer a call's start matched, from its base ("b",
-- see callBase); a base stored as JSON ("base"), before, left it in "rv"
-- too.
local function matchedOf(r)
  local b = r.b
  if blank(b) or string.sub(b, 1, 1) == '{' then return nil end
  return cmsgpack.unpack(b)[6]
end
-- customerOf is a call's customer: "ref", left out while it is the
-- matched one (refField).
local function customerOf(r) return r.ref or matchedOf(r) end
local function state(r, op)
  return {done = not blank(r[op..'r']), resp = r[op..'r'], print = r[op..'p'] or '', lease = r[op..'l'] or '', leasePrint = r[op..'lp'] or '', started = r.st or ''}
end
local idle = {done = false, print = '', lease = '', leasePrint = '', started = ''}

-- claim applies the rules of boltstore's claim. A = {now, op, print, lease
-- end, replay start, quota, fresh record (packed), expiry, TTL, key expiry,
-- key TTL}; extra fields go into a record the claim writes. A start
-- without a quota is counted when it is saved (its record says so: "sq"),
-- so its claim of a new call is one SET. Returns {outcome} or {0, the
-- record as it stood, packed, '' if none} or {1, response}.
local function claim(call, usage, idem, A, extra)
  local now, op, print = A[1], A[2], A[3]
  if idem then
    local k = redis.call('HMGET', idem, 'print', 'ck', 'exp')
    if k[1] and after(k[3], now) then
      if not samePrint(k[1], print) then return {3} end
      local r = loadCall(k[2])
      if live(r, now) then
        local s = state(r, op)
        if s.done then return {1, s.resp} end
        if after(s.lease, now) then return {4} end
      end
    end
  end
  local quota = tonumber(A[6])
  local deferred = quota == 0 and op == 's'
  local fresh = A[7]
  if next(extra) then
    local t = cmsgpack.unpack(fresh)
    for f, v in pairs(extra) do t[f] = v end
    fresh = cmsgpack.pack(t)
  end
  local r
  if deferred then
    local got = redis.pcall('SET', call, fresh, 'NX', 'PX', A[9], 'GET')
    if got then r = unpackCall(got, call) end
  else
    r = loadCall(call)
  end
  local isLive = live(r, now)
  local s = idle
  if isLive then s = state(r, op) end
  if s.done and samePrint(s.print, print) and (op == 'e' or after(s.started, A[5])) then return {1, s.resp} end
  if s.done then return {2} end
  if after(s.lease, now) then
    if samePrint(s.leasePrint, print) then return {4} end
    return {2}
  end
  if quota > 0 and tonumber(redis.call('HGET', usage, 'requests') or '0') >= quota then return {5} end
  if not deferred then redis.call('HINCRBY', usage, 'requests', 1) end
  local before = ''
  if isLive then
    before = cmsgpack.pack(r)
    r[op..'l'], r[op..'lp'] = A[4], print
    if deferred then r[op..'q'] = '1' end
    for f, v in pairs(extra) do r[f] = v end
    saveCall(call, r)
  elseif r or not deferred then
    redis.call('SET', call, fresh, 'PX', A[9])
  end
  if idem then
    redis.call('HSET', idem, 'print', print, 'ck', call, 'exp', A[10])
    redis.call('PEXPIRE', idem, A[11])
    redis.call('SADD', call..':keys', idem)
    extend(call..':keys', A[11])
  end
  return {0, before}
end
`

// claimScript claims a start or end (see claim in callPrelude).
// KEYS: call, usage[, idempotency key]. ARGV: as claim's A.
var claimScript = redis.NewScript(callPrelude + `
return claim(KEYS[1], KEYS[2], KEYS[3], ARGV, {})
`)

// startScript is a start's claim on a single node or Sentinel, where a
// script may read keys of any slot: with the claim it reads the index
// entries and follows them to the customers, so that a start takes two
// round trips. It files the call under each customer it read (field
// "c:<call id>": its expiry, in the customer's hash, for Erase; a customer the start
// does not reveal is skipped by Erase, which checks the call record), and
// notes in the call record the customers filed ("fl", "|" for none: the
// others the start reveals did not exist) and how far the
// ANI's TTL already reaches ("lk"), so that the save need not read them.
// KEYS: call, usage, idempotency key or "", ANI index or "", the
// customer_ref's record or "", then the external ids' owner hashes.
// ARGV: claim's A (11), the customer key's start and end around an
// escaped ref, the call id, its expiry, the most customers to read, the
// customer_ref.
// Returns {outcome} or {0, before, ANI fields, {owner fields…}, {ref,
// record…} of the customers read}; Claim reads the candidates past the
// most as Resolve does.
var startScript = redis.NewScript(callPrelude + `
local function esc(ref)
  return (string.gsub(ref, '[%%{}:]', {['%'] = '%25', ['{'] = '%7B', ['}'] = '%7D', [':'] = '%3A'}))
end
local A = ARGV
local ani, owners, refs, seen = {}, {}, {}, {}
local function want(ref) if not seen[ref] then seen[ref] = true; refs[#refs + 1] = ref end end
if KEYS[4] ~= '' then
  ani = redis.call('HGETALL', KEYS[4])
  for i = 1, #ani, 2 do
    local ref = string.match(ani[i], '^l:(.*)$')
    if ref then want(ref) end
  end
end
for i = 6, #KEYS do
  local f = redis.call('HGETALL', KEYS[i])
  owners[#owners + 1] = f
  for j = 1, #f, 2 do want(f[j]) end
end
local recs, filed = {}, {}
if KEYS[5] ~= '' then
  local v = redis.call('HMGET', KEYS[5], 'rec', 'cs')
  if v[1] then filed[#filed + 1] = {KEYS[5], A[17], v[2]} end
  recs[#recs + 1] = ''
  recs[#recs + 1] = v[1]
end
local most = tonumber(A[16])
for i, ref in ipairs(refs) do
  if i > most then break end
  local k = A[12]..esc(ref)..A[13]
  if k ~= KEYS[5] then
    local v = redis.call('HMGET', k, 'rec', 'cs')
    if v[1] then filed[#filed + 1] = {k, ref, v[2]} end
    recs[#recs + 1] = ref
    recs[#recs + 1] = v[1]
  end
end
local fl = ''
for _, f in ipairs(filed) do fl = fl..'|'..f[2] end
local extra = {fl = fl..'|'}
for i = 1, #ani, 2 do if ani[i] == 'ltk' then extra.lk = ani[i + 1] end end
local res = claim(KEYS[1], KEYS[2], KEYS[3] ~= '' and KEYS[3] or nil, A, extra)
if res[1] ~= 0 then return res end
for _, f in ipairs(filed) do fileCall(f[1], f[3], A[14], A[15], A[1]) end
return {0, res[2], ani, owners, recs}
`)

// releaseScript undoes a claim whose lease is still this print's.
// KEYS: call, usage[, idempotency key]. ARGV: now, op, print.
var releaseScript = redis.NewScript(callPrelude + `
local call, usage, now, op = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local r = loadCall(call)
if not live(r, now) then return 0 end
local s = state(r, op)
if s.done or not samePrint(s.leasePrint, ARGV[3]) then return 0 end
local counted = r[op..'q'] ~= '1'
r[op..'l'], r[op..'lp'], r[op..'q'] = nil, nil, nil
if blank(r.st) and blank(r.en) and blank(r.sl) and blank(r.el) then redis.call('DEL', call) else saveCall(call, r) end
if KEYS[3] then redis.call('DEL', KEYS[3]) end
if counted and tonumber(redis.call('HGET', usage, 'requests') or '0') > 0 then redis.call('HINCRBY', usage, 'requests', -1) end
return 1
`)

// lineTypePrelude remembers an ANI's line type in its index hash: "lt",
// "ltx" (its expiry) and "ltk", a time the key's TTL is known to reach,
// set a week past ltx, so that starts within that week set two fields and
// leave the TTL (which only ever grows) alone.
const lineTypePrelude = `
local function remember(k, lt, ltx, ltk, ms, covered)
  if covered then
    redis.call('HSET', k, 'lt', lt, 'ltx', ltx)
    return
  end
  local added = redis.call('HSET', k, 'lt', lt, 'ltx', ltx, 'ltk', ltk)
  if added == 3 and redis.call('PEXPIRE', k, ms, 'NX') == 1 then return end
  redis.call('PEXPIRE', k, ms, 'GT')
end
`

// saveStartScript stores a finished start: the call record in one SET
// that returns the record the claim left, the start counted in the
// hour's hash in one HINCRBY (the usage code after '|' in the field: see
// Usage), the line type in the ANI's hash (KEYS[4], single node only) and
// the call filed under the revealed customers the claim did not file.
// KEYS: call, the hour's hash, then (single node only) the ANI index if
// ARGV[9] is set and the keys of the revealed customers. ARGV: record
// (packed), TTL, billable code ('b' or 'n'), tally field, tally TTL, call
// id, its expiry, the revealed refs joined as "|a|b|", then the line type
// or ”, its expiry, ltk and TTL, then the start's time.
var saveStartScript = redis.NewScript(callPrelude + lineTypePrelude + `
local call, A = KEYS[1], ARGV
local old = unpackCall(redis.pcall('SET', call, A[1], 'XX', 'PX', A[2], 'GET'), call)
local own = {b = true, exp = true, sl = true, slp = true, sq = true, fl = true, lk = true}
local merge = not old
for f in pairs(old or {}) do if not own[f] then merge = true end end
if merge then
  -- Another write reached the record since the claim (or it is gone):
  -- keep what it wrote, with the start's fields over it.
  local r = old or {}
  r.sl, r.slp, r.sq, r.fl, r.lk = nil, nil, nil, nil, nil
  for f, v in pairs(cmsgpack.unpack(A[1])) do r[f] = v end
  saveCall(call, r, A[2])
end
old = old or {}
local code = A[3]
if old.sq == '1' then code = 'r'..code end
if redis.call('HINCRBY', KEYS[2], A[4]..'|'..code, 1) == 1 then redis.call('PEXPIRE', KEYS[2], A[5]) end
local i = 3
-- A call whose claim read its customers was filed under every one that
-- existed; the others it reveals are new.
local file = not old.fl
if A[9] ~= '' then
  remember(KEYS[3], A[9], A[10], A[11], A[12], old.lk and not after(A[10], old.lk))
  i = 4
end
for ref in string.gmatch(A[8], '[^|]+') do
  if file and KEYS[i] then
    local h = redis.call('HMGET', KEYS[i], 'v', 'cs')
    if h[1] then fileCall(KEYS[i], h[2], A[6], A[7], A[13]) end
  end
  i = i + 1
end
return 1
`)

// fileCallScript files a call under a customer, if it exists (Cluster,
// where the save's script cannot reach the customer's slot). KEYS: the
// customer. ARGV: call id, its expiry, the start's time.
var fileCallScript = redis.NewScript(prelude + `
local h = redis.call('HMGET', KEYS[1], 'v', 'cs')
if h[1] then fileCall(KEYS[1], h[2], ARGV[1], ARGV[2], ARGV[3]) end
return 1
`)

// lineTypeScript remembers a line type (Cluster: the ANI's own slot).
// KEYS: ANI index. ARGV: line type, expiry, ltk, TTL.
var lineTypeScript = redis.NewScript(lineTypePrelude + `
remember(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], false)
return 1
`)

// mergeScript merges fields into a call record and counts the call if
// asked. KEYS: call, usage (read only with a counter), the hour's tallies
// (read only with a tally field), the customer's call set (optional).
// ARGV: counter field or ”, TTL, mode, the customer ref of the call set,
// n, tally field or ”, the tallies' TTL, then n field/value pairs always
// set, then the pairs a new record starts with. Modes: "merge" sets the
// TTL on a new record, "confirm" changes only an existing record (returns
// 0 if there is none). A tally costs one command; its hash gets its TTL
// when a field first appears in it.
var mergeScript = redis.NewScript(mergePrelude + `
return mergeCall(KEYS, ARGV)
`)

// mergePrelude holds mergeScript's work, which commitScript does too.
const mergePrelude = callPrelude + `
local function mergeCall(K, A, loaded)
  local call = K[1]
  local r
  if loaded == nil then r = loadCall(call) else r = loaded or nil end
  local mode = A[3]
  if not r and mode == 'confirm' then return 0 end
  local absent = not r
  local first = 8 + 2 * tonumber(A[5])
  r = r or {}
  local function put(from, to)
    for i = from, to, 2 do
      if A[i + 1] == '' then r[A[i]] = nil else r[A[i]] = A[i + 1] end
    end
  end
  if absent then put(first, #A) end
  put(8, first - 1)
  if absent and mode == 'merge' then saveCall(call, r, A[2]) else saveCall(call, r) end
  if K[4] and customerOf(r) == A[4] then
    redis.call('SADD', K[4], call)
    extend(K[4], redis.call('PTTL', call))
  end
  if A[1] ~= '' then redis.call('HINCRBY', K[2], A[1], 1) end
  if A[6] ~= '' and redis.call('HINCRBY', K[3], A[6], 1) == 1 then redis.call('PEXPIRE', K[3], A[7]) end
  return 1
end
`

// commitScript is a whole end on a single node, where one script may
// write every slot: it checks that each customer it writes is still at
// the version read and not locked (else it writes nothing and returns
// {1}), then sets the index entries, writes the customers, merges the
// call record (as mergeScript) and cleans the index. Being one script, it
// needs no locks of its own. ARGV[1] is the plan, packed: {s = {{key,
// TTL, field, value}…}, w = {{key, lock, prev, version, record, TTL}…}, n = now,
// m = {keys, args} of mergeScript, o = {{owner key, ref}…}, d = {{key,
// field}…}, g = {field, value}: the field of the other half of the call's
// ending (an end's "co", a completion's "en") as the commit read it, or
// it writes nothing and returns {1}}. Returns {0} when done.
var commitScript = redis.NewScript(mergePrelude + `
local P = cmsgpack.unpack(ARGV[1])
local g = loadCall(P.m[1][1]) -- the call, read once: nothing below writes it before the merge
if g and (g[P.g[1]] or '') ~= P.g[2] then return {1} end
for _, w in ipairs(P.w or {}) do
  if redis.call('EXISTS', w[2]) == 1 then return {1} end
  if tonumber(redis.call('HGET', w[1], 'v') or '0') ~= tonumber(w[3]) then return {1} end
end
for _, e in ipairs(P.s or {}) do
  redis.call('HSET', e[1], e[3], e[4])
  extend(e[1], e[2])
end
for _, w in ipairs(P.w or {}) do
  redis.call('HSET', w[1], 'v', w[4], 'rec', w[5])
  redis.call('PEXPIRE', w[1], w[6])
  prune(w[1], P.n)
end
mergeCall(P.m[1], P.m[2], g or false)
for _, o in ipairs(P.o or {}) do
  for _, f in ipairs(redis.call('HKEYS', o[1])) do
    if f ~= o[2] then redis.call('HDEL', o[1], f) end
  end
end
for _, d in ipairs(P.d or {}) do redis.call('HDEL', d[1], d[2]) end
return {0}
`)

// eraseCallsScript deletes a customer's call records and the idempotency
// keys that name them. KEYS: the customer's call set (of earlier versions).
// ARGV: ref, n, then the n keys of the calls the customer's record lists,
// then the keys of the calls filed under the customer (deleted if they
// name it).
var eraseCallsScript = redis.NewScript(callPrelude + `
local gone, listed = {}, 2 + tonumber(ARGV[2])
for i = 3, listed do gone[ARGV[i]] = true end
local function names(ck)
  local r = loadCall(ck)
  return r and (customerOf(r) == ARGV[1] or matchedOf(r) == ARGV[1] or string.find(r.rv or '', '|' .. ARGV[1] .. '|', 1, true))
end
for i = listed + 1, #ARGV do if names(ARGV[i]) then gone[ARGV[i]] = true end end
for _, ck in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if names(ck) then gone[ck] = true end
end
for ck in pairs(gone) do
  for _, ik in ipairs(redis.call('SMEMBERS', ck..':keys')) do
    if redis.call('HGET', ik, 'ck') == ck then redis.call('DEL', ik) end
  end
  redis.call('DEL', ck, ck..':keys')
end
redis.call('DEL', KEYS[1])
return 1
`)

// guardScript is the Cluster path's check that the other half of a call's
// ending has not committed since the commit read the call (commitScript's
// g), and its mark that this half is committing, which the other half's
// guard respects until it expires (a commit that fails after it removes
// it, see unguardScript, or leaves it to expire when even that fails; the
// merge of the call record clears it). KEYS: call.
// ARGV: the other half's field and the value read, its mark's field, this
// half's mark's field, now, the mark's expiry. Returns 0 to go on, 1 when
// the other half committed or is committing.
var guardScript = redis.NewScript(callPrelude + `
local r = loadCall(KEYS[1])
if not r then return 0 end
if (r[ARGV[1]] or '') ~= ARGV[2] then return 1 end
if blank(r[ARGV[1]]) and after(r[ARGV[3]], ARGV[5]) then return 1 end
r[ARGV[4]] = ARGV[6]
saveCall(KEYS[1], r)
return 0
`)

// unguardScript removes a commit's mark from its call if it is still the
// commit's. KEYS: call. ARGV: the mark's field, its value.
var unguardScript = redis.NewScript(callPrelude + `
local r = loadCall(KEYS[1])
if r and r[ARGV[1]] == ARGV[2] then
  r[ARGV[1]] = nil
  saveCall(KEYS[1], r)
end
return 0
`)

// lockScript locks a customer for an end that changes several, if it is
// still at the version read. KEYS: customer, lock. ARGV: prev, token, TTL.
// Returns 0 when locked, 1 when the customer changed or is locked.
var lockScript = redis.NewScript(`
local held = redis.call('GET', KEYS[2])
if held and held ~= ARGV[2] then return 1 end
if tonumber(redis.call('HGET', KEYS[1], 'v') or '0') ~= tonumber(ARGV[1]) then return 1 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 0
`)

// unlockScript removes a lock if it is still the token's. KEYS: lock.
// ARGV: token.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`)

// writeScript writes or deletes a customer if it is still at prev and not
// locked by another end. KEYS: customer, lock. ARGV: prev, token (” if
// none), delete ('1' or ”), version, record, TTL, now (to prune the calls
// filed under it). Returns {1} when the customer changed, else {0, the
// record it replaced}.
var writeScript = redis.NewScript(prelude + `
local held = redis.call('GET', KEYS[2])
if held and held ~= ARGV[2] then return {1} end
if tonumber(redis.call('HGET', KEYS[1], 'v') or '0') ~= tonumber(ARGV[1]) then return {1} end
local old = redis.call('HGET', KEYS[1], 'rec') or ''
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[4], 'rec', ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  prune(KEYS[1], ARGV[7])
end
if held then redis.call('DEL', KEYS[2]) end
return {0, old}
`)

// setFieldScript sets hash fields and makes the key live at least TTL.
// KEYS: the hash. ARGV: TTL, then field, value pairs.
var setFieldScript = redis.NewScript(prelude + `
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
extend(KEYS[1], ARGV[1])
return 1
`)

// ownerOnlyScript leaves ref the only owner candidate of an external id.
// KEYS: the owner hash. ARGV: ref.
var ownerOnlyScript = redis.NewScript(`
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if f ~= ARGV[1] then redis.call('HDEL', KEYS[1], f) end
end
return 1
`)

// putKeyScript stores an API key. KEYS: key, hash index, id set. ARGV:
// JSON, hash, revoked, last used.
var putKeyScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'revoked', ARGV[3], 'last_used', ARGV[4])
redis.call('HSET', KEYS[2], ARGV[2], KEYS[1])
redis.call('SADD', KEYS[3], KEYS[1])
return 1
`)

// keyByHashScript returns the fields of the key with a hash, or none.
// KEYS: hash index. ARGV: hash.
var keyByHashScript = redis.NewScript(`
local k = redis.call('HGET', KEYS[1], ARGV[1])
if not k then return {} end
return redis.call('HGETALL', k)
`)

// allKeysScript returns the fields of every key. KEYS: id set.
var allKeysScript = redis.NewScript(`
local out = {}
for _, k in ipairs(redis.call('SMEMBERS', KEYS[1])) do out[#out + 1] = redis.call('HGETALL', k) end
return out
`)

// keyTimeScript sets a time of an existing key. KEYS: key. ARGV: field,
// time, '1' to keep a time already set. Returns 0 if the key is absent.
var keyTimeScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[3] == '1' and (redis.call('HGET', KEYS[1], ARGV[1]) or '') ~= '' then return 1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// leaseScript gives or renews a stream lease. KEYS: lease. ARGV: holder,
// now, expiry, TTL. Returns 1 when holder has it, 0 when another holder's
// lease is live.
var leaseScript = redis.NewScript(prelude + `
local l = redis.call('HMGET', KEYS[1], 'h', 'x')
if l[1] and l[1] ~= ARGV[1] and after(l[2], ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'x', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// unleaseScript ends a stream lease if it is still holder's. KEYS: lease.
// ARGV: holder.
var unleaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'h') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`)

var allScripts = []*redis.Script{
	claimScript, startScript, saveStartScript, commitScript, fileCallScript, lineTypeScript, releaseScript, mergeScript, eraseCallsScript,
	guardScript, unguardScript, lockScript, unlockScript, writeScript, setFieldScript, ownerOnlyScript,
	putKeyScript, keyByHashScript, allKeysScript, keyTimeScript, leaseScript, unleaseScript,
}
