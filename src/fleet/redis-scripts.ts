import { createHash } from "node:crypto";

/**
 * The Lua scripts of the Redis store. Each policy event is one script run: atomic where the state
 * lives, one round trip. Every script takes the time from the server (`TIME`), so the whole fleet
 * shares one clock for cooldowns, window buckets and refills, and returns that time first so a
 * client can estimate its offset to it.
 *
 * Breaker keys (hash tag on the breaker key, so one key's data lives in one cluster slot):
 *   <prefix>{<key>}:b  hash  s (closed|open|half_open), ou (openUntil, server ms), g (generation), ps (probe
 *                            successes this half-open episode), c (fleet-wide consecutive failures), ls (time of
 *                            the latest success reported, server ms)
 *   <prefix>{<key>}:p  zset  half-open probe tokens scored by their expiry (a dead probe frees its slot)
 *   <prefix>{<key>}:w  hash  the ratio window: c:<epoch> calls, f:<epoch> failures, epoch = floor(t / bucketMs)
 *   <prefix>{<key>}:f  zset  times of the failures since the latest success (fleet-wide consecutive count)
 * Bucket key:
 *   <prefix>{<key>}:k  hash  l (level), u (updatedAt, server ms), nb (notBefore, server ms)
 *
 * The generation `g` moves on every transition to max(g + 1, server now): it only grows, even
 * across a Redis restart that lost the data, so a client can order what it hears by it. A missing
 * hash answers g = 0 ("nothing known": closed, fresh).
 *
 * Transitions are PUBLISHed on the store's channel as JSON {k, s, ou, g}; a freed half-open probe
 * slot without a transition as {k, s, ou, g, f: 1}.
 */

export interface LuaScript {
  readonly name: string;
  readonly lua: string;
  readonly sha: string;
  readonly numberOfKeys: number;
}

function script(name: string, numberOfKeys: number, body: string): LuaScript {
  const lua = PRELUDE + body;
  return { name, lua, numberOfKeys, sha: createHash("sha1").update(lua).digest("hex") };
}

const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/** Reads the breaker hash into locals (s, ou, g, ps, c). */
const READ_BREAKER = `
local h = redis.call('HMGET', KEYS[1], 's', 'ou', 'g', 'ps', 'c')
local s = h[1] or 'closed'
local ou = tonumber(h[2]) or 0
local g = tonumber(h[3]) or 0
local ps = tonumber(h[4]) or 0
local c = tonumber(h[5]) or 0
`;

/**
 * acquire. KEYS: b, p. ARGV: key, channel, cooldownMs, K, probeTtlMs, token, ttlMs.
 * Returns {now, allowed, probe, s, ou, g, c, moved}; moved = 1 when this run moved open → half_open.
 */
export const BREAKER_ACQUIRE = script(
  "breaker_acquire",
  2,
  `
local now = now_ms()
local key, chan = ARGV[1], ARGV[2]
local cooldown, K, probeTtl, token, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
${READ_BREAKER}
if s == 'closed' then return {now, 1, 0, s, ou, g, c, 0} end
local moved = 0
if s == 'open' then
  if now < ou then return {now, 0, 0, s, ou, g, c, 0} end
  s = 'half_open'
  moved = 1
  ps = 0
  g = math.max(g + 1, now)
  redis.call('HSET', KEYS[1], 's', s, 'g', g, 'ps', 0)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PUBLISH', chan, cjson.encode({k = key, s = s, ou = ou, g = g}))
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local inflight = redis.call('ZCARD', KEYS[2])
if inflight + ps < K then
  redis.call('ZADD', KEYS[2], now + probeTtl, token)
  redis.call('PEXPIRE', KEYS[2], probeTtl + 1000)
  return {now, 1, 1, s, ou, g, c, moved}
end
return {now, 0, 0, s, ou, g, c, moved}
`,
);

/**
 * record: a probe outcome (token) and/or a batch of closed-state outcomes, in one run.
 * KEYS: b, p, w, f. ARGV: 1 key, 2 channel, 3 cooldownMs, 4 K, 5 ttlMs, 6 consecutiveFailures,
 * 7 failureRatio ('' off), 8 windowBuckets, 9 bucketMs, 10 minimumCalls, 11 batch generation ('' no
 * batch), 12 time of the batch's last success (server ms, 0 none), 13 batch id, 14 probe token
 * ('' none), 15 probe outcome, 16 n = failures after the batch's last success, 17..16+n their times
 * (server ms), then (epoch, calls, failures) triples for the ratio window.
 *
 * Consecutive failures are counted fleet-wide in event time, not arrival time: `f` holds the times
 * of the failures after the latest success anyone reported (`ls`), at most `consecutiveFailures` of
 * them. A success reported late (batched) only cancels the failures that happened before it, so
 * batching cannot hide other processes' failures that came after it.
 * The batch applies only if the breaker is still closed in the generation it was counted in:
 * outcomes of an earlier closed episode say nothing about the current one.
 * Returns {now, s, ou, g, c, from}; from = the state before, when this run made a transition ('' otherwise).
 */
export const BREAKER_RECORD = script(
  "breaker_record",
  4,
  `
local now = now_ms()
local key, chan = ARGV[1], ARGV[2]
local cooldown, K, ttl, threshold = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local ratio, buckets, bucketMs, minCalls = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local batchGen, lastSuccess, batchId = ARGV[11], tonumber(ARGV[12]), ARGV[13]
local token, outcome, n = ARGV[14], ARGV[15], tonumber(ARGV[16])
${READ_BREAKER}
local ls = tonumber(redis.call('HGET', KEYS[1], 'ls')) or 0
local from = s
local changed, freed, counted = false, false, false
local function set_open()
  s = 'open'; ou = now + cooldown; ps = 0; c = 0; g = math.max(g + 1, now); changed = true
  redis.call('DEL', KEYS[4])
end
local function set_closed()
  s = 'closed'; ps = 0; c = 0; g = math.max(g + 1, now); changed = true
  redis.call('DEL', KEYS[3], KEYS[4])
end
if token ~= '' then
  redis.call('ZREM', KEYS[2], token)
  if s == 'half_open' then
    if outcome == 'success' then
      ps = ps + 1
      if ps >= K then set_closed() else counted = true end
    elseif outcome == 'failure' then
      set_open()
    else
      freed = true
    end
  end
end
if batchGen ~= '' and s == 'closed' and tonumber(batchGen) == g then
  counted = true
  if lastSuccess > ls then
    ls = lastSuccess
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ls)
  end
  for i = 1, n do
    local t = tonumber(ARGV[16 + i])
    if t > ls then redis.call('ZADD', KEYS[4], t, batchId .. ':' .. i) end
  end
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -(threshold + 1))
  redis.call('PEXPIRE', KEYS[4], ttl)
  c = redis.call('ZCARD', KEYS[4])
  local tripped = c >= threshold
  if ratio ~= '' then
    local i = 17 + n
    while i + 2 <= #ARGV do
      redis.call('HINCRBY', KEYS[3], 'c:' .. ARGV[i], ARGV[i + 1])
      if tonumber(ARGV[i + 2]) > 0 then redis.call('HINCRBY', KEYS[3], 'f:' .. ARGV[i], ARGV[i + 2]) end
      i = i + 3
    end
    redis.call('PEXPIRE', KEYS[3], math.ceil((buckets + 1) * bucketMs))
    local cur = math.floor(now / bucketMs)
    local all = redis.call('HGETALL', KEYS[3])
    local calls, fails = 0, 0
    for j = 1, #all, 2 do
      local f = all[j]
      local e = tonumber(string.sub(f, 3))
      if e <= cur - buckets then
        redis.call('HDEL', KEYS[3], f)
      elseif e <= cur then
        if string.sub(f, 1, 1) == 'c' then calls = calls + tonumber(all[j + 1]) else fails = fails + tonumber(all[j + 1]) end
      end
    end
    if calls >= minCalls and fails >= tonumber(ratio) * calls then tripped = true end
  end
  if tripped then set_open() end
end
if changed then
  redis.call('HSET', KEYS[1], 's', s, 'ou', ou, 'g', g, 'ps', ps, 'c', c, 'ls', ls)
  redis.call('PUBLISH', chan, cjson.encode({k = key, s = s, ou = ou, g = g}))
elseif counted then
  redis.call('HSET', KEYS[1], 'ps', ps, 'c', c, 'ls', ls)
end
if changed or counted then redis.call('PEXPIRE', KEYS[1], ttl) end
if freed then redis.call('PUBLISH', chan, cjson.encode({k = key, s = s, ou = ou, g = g, f = 1})) end
if changed then return {now, s, ou, g, c, from} end
return {now, s, ou, g, c, ''}
`,
);

/** sync. KEYS: b. Returns {now, s, ou, g, c}. */
export const BREAKER_SYNC = script(
  "breaker_sync",
  1,
  `
local now = now_ms()
${READ_BREAKER}
return {now, s, ou, g, c}
`,
);

/**
 * merge_open: after an outage of Redis, a process whose local fallback breaker is open pushes that
 * state, but only onto state that did not move while it was away (g <= the generation it last
 * knew; a restarted, empty Redis has g = 0). Open wins over closed, the later openUntil wins.
 * KEYS: b. ARGV: key, channel, openUntil (server ms), knownGeneration, ttlMs. Returns {now, s, ou, g, c}.
 */
export const BREAKER_MERGE_OPEN = script(
  "breaker_merge_open",
  1,
  `
local now = now_ms()
local key, chan, want, known, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
${READ_BREAKER}
if g <= known and (s == 'closed' or (s == 'open' and ou < want)) then
  s = 'open'; ou = math.max(ou, want); ps = 0; c = 0; g = math.max(g + 1, now)
  redis.call('HSET', KEYS[1], 's', s, 'ou', ou, 'g', g, 'ps', ps, 'c', c)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PUBLISH', chan, cjson.encode({k = key, s = s, ou = ou, g = g}))
end
return {now, s, ou, g, c}
`,
);

/**
 * One token bucket operation, with the caller's pending corrections applied first.
 * KEYS: k. ARGV: 1 capacity, 2 refillPerMs, 3 op (apply|reserve|take|lease|level), 4 amount,
 * 5 lease wanted, 6 delta to add (capped at capacity), 7 tighten max level ('' none), 8 notBefore
 * relative to now ('' none), 9 ttlMs.
 * Returns {now, result, level (string), notBefore remaining ms, leased (string)}; result: reserve →
 * the wait in ms (-1 = never), take → 1|0.
 * A lease is only granted from a positive level left after the operation: leased units were
 * taken from the shared bucket, so the fleet never spends more than the bucket holds.
 */
export const BUCKET = script(
  "bucket",
  1,
  `
local now = now_ms()
local cap, rate, op, amount, want = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local delta, tmax, nbRel, ttl = tonumber(ARGV[6]), ARGV[7], ARGV[8], tonumber(ARGV[9])
local h = redis.call('HMGET', KEYS[1], 'l', 'u', 'nb')
local lvl = tonumber(h[1])
local upd = tonumber(h[2]) or now
local nb = tonumber(h[3]) or 0
if lvl == nil then lvl = cap end
if rate > 0 and now > upd and lvl < cap then lvl = math.min(cap, lvl + (now - upd) * rate) end
if now > upd then upd = now end
if delta ~= 0 then lvl = math.min(cap, lvl + delta) end
if tmax ~= '' and tonumber(tmax) < lvl then lvl = tonumber(tmax) end
if nbRel ~= '' then
  local x = now + tonumber(nbRel)
  if x > nb then nb = x end
end
local res, granted = 0, 0
if op == 'reserve' then
  lvl = lvl - amount
  local wait = 0
  if lvl < 0 then
    if rate > 0 then wait = math.ceil(-lvl / rate) else wait = -1 end
  end
  local block = nb - now
  if wait >= 0 and block > wait then wait = math.ceil(block) end
  res = wait
  if wait == 0 and want > 0 and lvl > 0 then granted = math.min(want, lvl); lvl = lvl - granted end
elseif op == 'take' then
  if lvl >= amount then lvl = lvl - amount; res = 1 end
elseif op == 'lease' then
  if nb <= now and want > 0 and lvl > 0 then granted = math.min(want, lvl); lvl = lvl - granted end
end
if op ~= 'level' or delta ~= 0 or tmax ~= '' or nbRel ~= '' then
  redis.call('HSET', KEYS[1], 'l', lvl, 'u', upd, 'nb', nb)
  redis.call('PEXPIRE', KEYS[1], ttl)
end
local rem = nb - now
if rem < 0 then rem = 0 end
return {now, res, tostring(lvl), math.ceil(rem), tostring(granted)}
`,
);

export const ALL_SCRIPTS: readonly LuaScript[] = [BREAKER_ACQUIRE, BREAKER_RECORD, BREAKER_SYNC, BREAKER_MERGE_OPEN, BUCKET];
