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
`

// callPrelude reads one op's part of a call record (the fields are listed
// at callHash).
const callPrelude = prelude + `
local function live(k, now) return after(redis.call('HGET', k, 'exp'), now) end
local function state(k, op)
  local f = redis.call('HMGET', k, op..'r', op..'p', op..'l', op..'lp', 'st')
  return {done = not blank(f[1]), resp = f[1], print = f[2] or '', lease = f[3] or '', leasePrint = f[4] or '', started = f[5] or ''}
end
local idle = {done = false, print = '', lease = '', leasePrint = '', started = ''}
`

// claimScript applies the rules of boltstore's claim in one step.
// KEYS: call, usage[, idempotency key]. ARGV: now, op ("s" or "e"), print,
// lease end, replay start (now minus the replay window), quota, a new
// record's base, expiry and TTL, the key record's expiry and TTL.
// Returns {outcome} or {0, the record as it stood} or {1, response}.
var claimScript = redis.NewScript(callPrelude + `
local call, usage, now, op, print = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]
if KEYS[3] then
  local k = redis.call('HMGET', KEYS[3], 'print', 'ck', 'exp')
  if k[1] and after(k[3], now) then
    if k[1] ~= print then return {3} end
    if live(k[2], now) then
      local s = state(k[2], op)
      if s.done then return {1, s.resp} end
      if after(s.lease, now) then return {4} end
    end
  end
end
local isLive = live(call, now)
local s = idle
if isLive then s = state(call, op) end
if s.done and s.print == print and (op == 'e' or after(s.started, ARGV[5])) then return {1, s.resp} end
if s.done then return {2} end
if after(s.lease, now) then
  if s.leasePrint == print then return {4} end
  return {2}
end
local quota = tonumber(ARGV[6])
if quota > 0 and tonumber(redis.call('HGET', usage, 'requests') or '0') >= quota then return {5} end
redis.call('HINCRBY', usage, 'requests', 1)
local before = {}
if isLive then
  before = redis.call('HGETALL', call)
else
  redis.call('DEL', call)
  redis.call('HSET', call, 'base', ARGV[7], 'exp', ARGV[8])
  redis.call('PEXPIRE', call, ARGV[9])
end
redis.call('HSET', call, op..'l', ARGV[4], op..'lp', print)
if KEYS[3] then
  redis.call('HSET', KEYS[3], 'print', print, 'ck', call, 'exp', ARGV[10])
  redis.call('PEXPIRE', KEYS[3], ARGV[11])
  redis.call('SADD', call..':keys', KEYS[3])
  extend(call..':keys', ARGV[11])
end
return {0, before}
`)

// releaseScript undoes a claim whose lease is still this print's.
// KEYS: call, usage[, idempotency key]. ARGV: now, op, print.
var releaseScript = redis.NewScript(callPrelude + `
local call, usage, now, op = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
if not live(call, now) then return 0 end
local s = state(call, op)
if s.done or s.leasePrint ~= ARGV[3] then return 0 end
redis.call('HDEL', call, op..'l', op..'lp')
local f = redis.call('HMGET', call, 'st', 'en', 'sl', 'el')
if blank(f[1]) and blank(f[2]) and blank(f[3]) and blank(f[4]) then redis.call('DEL', call) end
if KEYS[3] then redis.call('DEL', KEYS[3]) end
if tonumber(redis.call('HGET', usage, 'requests') or '0') > 0 then redis.call('HINCRBY', usage, 'requests', -1) end
return 1
`)

// mergeScript merges fields into a call record and counts the call if
// asked. KEYS: call, usage (read only with a counter), the hour's tallies
// (read only with a tally field), the customer's call set (optional).
// ARGV: counter field or ”, TTL, mode, the customer ref of the call set,
// n, tally field or ”, the tallies' TTL, then n field/value pairs always
// set, then the pairs a new record starts with. Modes: "start" sets the
// TTL, "merge" sets it on a new record, "confirm" changes only an existing
// record (returns 0 if there is none). A tally costs one command; its hash
// gets its TTL when a field first appears in it.
var mergeScript = redis.NewScript(prelude + `
local call = KEYS[1]
local absent = redis.call('EXISTS', call) == 0
local mode = ARGV[3]
if absent and mode == 'confirm' then return 0 end
local first = 8 + 2 * tonumber(ARGV[5])
-- One HSET per group of fields: a command each was most of a start's.
if absent and #ARGV >= first then redis.call('HSET', call, unpack(ARGV, first, #ARGV)) end
if first > 8 then redis.call('HSET', call, unpack(ARGV, 8, first - 1)) end
if mode == 'start' or (absent and mode == 'merge') then redis.call('PEXPIRE', call, ARGV[2]) end
if KEYS[4] and redis.call('HGET', call, 'ref') == ARGV[4] then
  redis.call('SADD', KEYS[4], call)
  extend(KEYS[4], redis.call('PTTL', call))
end
if ARGV[1] ~= '' then redis.call('HINCRBY', KEYS[2], ARGV[1], 1) end
if ARGV[6] ~= '' and redis.call('HINCRBY', KEYS[3], ARGV[6], 1) == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[7]) end
return 1
`)

// eraseCallsScript deletes a customer's call records and the idempotency
// keys that name them. KEYS: the customer's call set. ARGV: ref, then the
// keys of the calls the customer's record lists.
var eraseCallsScript = redis.NewScript(`
local gone = {}
for i = 2, #ARGV do gone[ARGV[i]] = true end
for _, ck in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local rv = redis.call('HGET', ck, 'rv') or ''
  if redis.call('HGET', ck, 'ref') == ARGV[1] or string.find(rv, '|' .. ARGV[1] .. '|', 1, true) then gone[ck] = true end
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

// addCallScript files a call under a customer it revealed, so erasing the
// customer erases the call. KEYS: the customer's call set. ARGV: call key, TTL.
var addCallScript = redis.NewScript(prelude + `
redis.call('SADD', KEYS[1], ARGV[1])
extend(KEYS[1], ARGV[2])
return 1
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
// none), delete ('1' or ”), version, record, TTL. Returns {1} when the
// customer changed, else {0, the record it replaced}.
var writeScript = redis.NewScript(`
local held = redis.call('GET', KEYS[2])
if held and held ~= ARGV[2] then return {1} end
if tonumber(redis.call('HGET', KEYS[1], 'v') or '0') ~= tonumber(ARGV[1]) then return {1} end
local old = redis.call('HGET', KEYS[1], 'rec') or ''
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[4], 'rec', ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
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
	claimScript, releaseScript, mergeScript, eraseCallsScript, addCallScript,
	lockScript, unlockScript, writeScript, setFieldScript, ownerOnlyScript,
	putKeyScript, keyByHashScript, allKeysScript, keyTimeScript, leaseScript, unleaseScript,
}
