// Cost of the Redis store on the healthy path, and what shared state buys during an outage.
//   npm run build && node bench/redis-store.mjs
// Starts its own redis-server (scripts/start-redis.sh) unless REDIS_URL is set. Prints markdown.
import { execFileSync } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { setImmediate as tick } from "node:timers/promises";
import { CircuitBreaker } from "../dist/policy/breaker.js";
import { RateLimiter } from "../dist/policy/rate-limiter.js";
import { localStore } from "../dist/policy/local-store.js";
import { createRedisStore } from "../dist/fleet/redis-store.js";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const isThenable = (v) => typeof v?.then === "function";

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

let redisPid;
let url = process.env.REDIS_URL;
if (!url) {
  const port = await freePort();
  redisPid = Number(execFileSync(path.join(root, "scripts", "start-redis.sh"), [String(port)]).toString().trim());
  url = `redis://127.0.0.1:${port}`;
}
const stores = [];
const redisStore = (o = {}) => {
  const s = createRedisStore({ url, keyPrefix: `bench-${process.pid}:`, logger: { warn: () => {}, info: () => {} }, ...o });
  stores.push(s);
  return s;
};

// ---- 1. Added cost per decision, closed and healthy ----
const N = Number(process.env.BENCH_N ?? 200_000);
const CHUNK = 1000; // yield between chunks so that background flushes run inside the measured time

async function run(fn) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i += CHUNK) {
    for (let j = 0; j < CHUNK; j++) {
      const r = fn();
      if (isThenable(r)) await r;
    }
    await tick();
  }
  return Number(process.hrtime.bigint() - t0) / N;
}

/** Local and Redis rounds interleaved (A/B/A/B...), best round of each: robust on a busy machine. */
async function measurePair(a, b, rounds = 7) {
  for (const fn of [a, b]) {
    for (let i = 0; i < 20_000; i++) {
      const r = fn();
      if (isThenable(r)) await r;
    }
  }
  await sleep(200);
  let ba = Infinity;
  let bb = Infinity;
  for (let i = 0; i < rounds; i++) {
    ba = Math.min(ba, await run(a));
    bb = Math.min(bb, await run(b));
  }
  return [ba, bb, rounds];
}

function scenarios(store, key) {
  const breaker = new CircuitBreaker(`${key}|b`, { store, consecutiveFailures: 5 });
  const limiter = new RateLimiter(`${key}|l`, { store, requestsPerMinute: 1e9, tokensPerMinute: 1e12 });
  return {
    "breaker acquire + record success": () => {
      const d = breaker.tryAcquire();
      if (isThenable(d)) return d.then((x) => breaker.onSuccess(x.probe));
      return breaker.onSuccess(d.probe);
    },
    "rate limiter reserve (rpm + tpm) + correct": () => {
      const r = limiter.reserve(500);
      if (isThenable(r)) return r.then(() => limiter.correct(500, 450));
      return limiter.correct(500, 450);
    },
    "whole call decision (breaker + limiter)": () => {
      const d = breaker.tryAcquire();
      const r = limiter.reserve(500);
      const finish = () => {
        breaker.onSuccess(false);
        limiter.correct(500, 450);
      };
      return isThenable(d) || isThenable(r) ? Promise.all([d, r]).then(finish) : finish();
    },
  };
}

const rs = redisStore();
if (!(await rs.ready(3000))) throw new Error(`Redis at ${url} not ready`);
const local = scenarios(localStore, "local");
const shared = scenarios(rs, `shared-${Date.now()}`);
const rows = [];
let roundsRun = 0;
for (const name of Object.keys(local)) {
  const before = rs.stats.commands;
  const [l, r, rounds] = await measurePair(local[name], shared[name]);
  roundsRun = rounds;
  const perK = ((rs.stats.commands - before) / ((rounds + 0.1) * N)) * 1000;
  rows.push({ name, l, r, perK });
}

console.log(`\n### Decision cost, breaker closed and healthy (Node ${process.version}, best of ${roundsRun} interleaved rounds × ${N} ops)\n`);
console.log("| decision | local store | Redis store | added | Redis commands per 1000 decisions |");
console.log("|---|---:|---:|---:|---:|");
for (const { name, l, r, perK } of rows) {
  console.log(`| ${name} | ${l.toFixed(0)} ns | ${r.toFixed(0)} ns | ${(r - l).toFixed(0)} ns | ${perK.toFixed(2)} |`);
}

// ---- 2. Probes into an outage: N=4 replicas, local vs shared state ----
const REPLICAS = 4;
const OUTAGE_MS = Number(process.env.BENCH_OUTAGE_MS ?? 3000);
const COOLDOWN_MS = 250;
const FAILURES = 5;
const PACE_MS = 5;

async function outage(makeStore, label) {
  const key = `outage-${label}-${Date.now()}`;
  const replicaStores = Array.from({ length: REPLICAS }, () => makeStore());
  await Promise.all(replicaStores.map((s) => (s === localStore ? true : s.ready(3000))));
  const breakers = replicaStores.map(
    (store) => new CircuitBreaker(key, { store, consecutiveFailures: FAILURES, cooldownMs: COOLDOWN_MS, halfOpenProbes: 1 }),
  );
  const counts = { requests: 0, probes: 0, beforeAllOpen: 0 };
  let allOpen = false;
  const until = Date.now() + OUTAGE_MS;
  await Promise.all(
    breakers.map(async (b) => {
      while (Date.now() < until) {
        let d = b.tryAcquire();
        if (isThenable(d)) d = await d;
        if (d.allowed) {
          counts.requests++; // the provider is down: every request sent fails
          if (d.probe) counts.probes++;
          if (!allOpen) counts.beforeAllOpen++;
          const r = b.onFailure(d.probe);
          if (isThenable(r)) await r;
        }
        if (!allOpen && breakers.every((x) => x.state !== "closed")) allOpen = true;
        await sleep(PACE_MS);
      }
    }),
  );
  return counts;
}

const loc = await outage(() => localStore, "local");
const sh = await outage(() => redisStore(), "shared");
const cooldowns = OUTAGE_MS / COOLDOWN_MS;
console.log(
  `\n### Requests sent into a ${OUTAGE_MS / 1000} s outage by ${REPLICAS} replicas (failures ${FAILURES}, cooldown ${COOLDOWN_MS} ms, K = 1, one attempt per replica every ${PACE_MS} ms)\n`,
);
console.log("| state | failures before every replica is open | probes | probes per cooldown | requests in total |");
console.log("|---|---:|---:|---:|---:|");
for (const [name, c] of [
  ["local (per process)", loc],
  ["shared (Redis)", sh],
]) {
  console.log(`| ${name} | ${c.beforeAllOpen} | ${c.probes} | ${(c.probes / cooldowns).toFixed(2)} | ${c.requests} |`);
}

await Promise.all(stores.map((s) => s.close()));
if (redisPid) process.kill(redisPid);
