import { createHash } from "node:crypto";
import type { LuaScript } from "./redis-scripts.js";

/**
 * The spend window's script (one run per reservation, settle or read; the server's clock).
 *
 * Keys (hash tag on the spend key):
 *   <prefix>{spend:<key>}:w  hash  settled USD per time bucket, field = epoch = floor(t / bucketMs)
 *   <prefix>{spend:<key>}:h  hash  USD held per call in flight, field = hold id
 *   <prefix>{spend:<key>}:x  zset  hold ids scored by expiry (a crashed process's holds free themselves)
 *
 * ARGV: 1 op (reserve|settle|read), 2 limit USD, 3 bucketMs, 4 buckets, 5 hold id ('' none), 6 USD to
 * hold, 7 hold TTL ms, 8 USD actually spent (settle).
 * Returns {now, admitted 1|0, spent (string), reserved (string), retryAt (string; server ms, -1 never)}.
 * Amounts travel as strings: Redis truncates Lua numbers in replies to integers.
 */
const lua = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op, limit, bucketMs, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local hold, usd, ttl, actual = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local cur = math.floor(now / bucketMs)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do redis.call('HDEL', KEYS[2], id) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if op == 'settle' then
  if hold ~= '' then
    redis.call('HDEL', KEYS[2], hold)
    redis.call('ZREM', KEYS[3], hold)
  end
  if actual > 0 then
    redis.call('HINCRBYFLOAT', KEYS[1], tostring(cur), actual)
    redis.call('PEXPIRE', KEYS[1], math.ceil((n + 1) * bucketMs))
  end
end
local all = redis.call('HGETALL', KEYS[1])
local spent, live = 0, {}
for i = 1, #all, 2 do
  local e = tonumber(all[i])
  if e <= cur - n then
    redis.call('HDEL', KEYS[1], all[i])
  elseif e <= cur then
    local v = tonumber(all[i + 1])
    spent = spent + v
    live[#live + 1] = {e, v}
  end
end
local reserved = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do reserved = reserved + tonumber(v) end
if op == 'reserve' then
  if spent + reserved + usd > limit + 1e-9 then
    local retry = -1
    if usd <= limit then
      table.sort(live, function(a, b) return a[1] < b[1] end)
      local room, remaining = limit + 1e-9 - reserved - usd, spent
      retry = now
      for _, b in ipairs(live) do
        if remaining <= room then break end
        remaining = remaining - b[2]
        retry = (b[1] + n) * bucketMs
      end
      if retry < now then retry = now end
    end
    return {now, 0, tostring(spent), tostring(reserved), tostring(retry)}
  end
  redis.call('HINCRBYFLOAT', KEYS[2], hold, usd)
  redis.call('ZADD', KEYS[3], now + ttl, hold)
  redis.call('PEXPIRE', KEYS[2], ttl + 1000)
  redis.call('PEXPIRE', KEYS[3], ttl + 1000)
  reserved = reserved + usd
end
return {now, 1, tostring(spent), tostring(reserved), '0'}
`;

export const SPEND: LuaScript = { name: "spend", lua, numberOfKeys: 3, sha: createHash("sha1").update(lua).digest("hex") };
