// Each cell of the Redis store against a real redis-server (started here on a free port).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { CircuitBreaker, type CircuitBreakerOptions } from "../src/policy/breaker.ts";
import { RateLimiter } from "../src/policy/rate-limiter.ts";
import { RetryBudget } from "../src/policy/retry-budget.ts";
import { isPromiseLike, type BreakerDecision, type StoreKind } from "../src/policy/store.ts";
import { createRedisStore, type RedisStore, type RedisStoreOptions } from "../src/fleet/redis-store.ts";
import { freePort, hasRedisServer, RedisServer } from "./helpers/redis-server.ts";
import { sleep, waitFor } from "./helpers/wait.ts";

const skip = hasRedisServer() ? false : "redis-server not installed (apt-get install -y redis-server)";

let keySeq = 0;
const freshKey = (name: string) => `${name}-${process.pid}-${++keySeq}`;

/** Stores opened by a test, closed at its end. */
class Fleet {
  readonly stores: RedisStore[] = [];
  readonly warnings: string[] = [];
  readonly degradedCalls: Array<[number, boolean]> = [];

  constructor(private readonly url: string) {}

  async open(n: number, options: RedisStoreOptions = {}): Promise<RedisStore[]> {
    const made: RedisStore[] = [];
    for (let i = 0; i < n; i++) {
      const index = this.stores.length;
      const store = createRedisStore({
        url: this.url,
        reconnectMaxDelayMs: 100,
        recoveryCheckMs: 100,
        // Tolerant of a loaded CI box; the tests of a slow Redis set a short timeout themselves.
        commandTimeoutMs: 250,
        logger: { warn: (_o, msg) => this.warnings.push(`${index}: ${msg}`), info: () => {} },
        onDegraded: (d) => this.degradedCalls.push([index, d]),
        ...options,
      });
      this.stores.push(store);
      made.push(store);
    }
    const ready = await Promise.all(made.map((s) => s.ready(3000)));
    assert.deepEqual(ready, made.map(() => true), "stores connect");
    return made;
  }

  async close(): Promise<void> {
    await Promise.all(this.stores.map((s) => s.close()));
  }
}

type Transition = { i: number; from: string; to: string; store: StoreKind };

function breakers(stores: RedisStore[], key: string, options: CircuitBreakerOptions<"async">, log: Transition[] = []) {
  return stores.map(
    (store, i) =>
      new CircuitBreaker<"async">(key, {
        ...options,
        store,
        onTransition: (from, to, _k, kind) => log.push({ i, from, to, store: kind }),
      }),
  );
}

describe("redis store cells against a real Redis", { skip }, () => {
  let server: RedisServer;
  before(async () => {
    server = await RedisServer.start();
  });
  after(async () => {
    await server?.kill();
  });

  test("closed and healthy: decisions come from the cache, no round trip per call", async () => {
    const fleet = new Fleet(server.url);
    try {
      const [store] = await fleet.open(1);
      const b = breakers([store!], freshKey("hot"), { consecutiveFailures: 3 })[0]!;
      await b.tryAcquire(); // the first decision of a new cell confirms the shared state
      await sleep(20);
      const before = store!.stats.commands;
      for (let i = 0; i < 2000; i++) {
        const d = b.tryAcquire();
        assert.equal(isPromiseLike(d), false);
        assert.deepEqual(d, { allowed: true, probe: false, store: "redis" });
        assert.equal(b.onSuccess(false), undefined);
      }
      await sleep(150);
      // The successes went to Redis as one batch, not one command each.
      assert.ok(store!.stats.commands - before <= 2, `commands: ${store!.stats.commands - before}`);
    } finally {
      await fleet.close();
    }
  });

  test("the fleet-wide threshold opens the breaker in every store; open state and cooldown shared", async () => {
    const fleet = new Fleet(server.url);
    try {
      const stores = await fleet.open(4);
      const log: Transition[] = [];
      const key = freshKey("open");
      const bs = breakers(stores, key, { consecutiveFailures: 4, cooldownMs: 400 }, log);
      await Promise.all(bs.map((b) => b.tryAcquire()));
      // One failure in each store: no store alone reaches 4, the fleet does.
      for (const b of bs.slice(0, 3)) b.onFailure(false);
      await sleep(50);
      assert.deepEqual(bs.map((b) => b.state), ["closed", "closed", "closed", "closed"]);
      bs[3]!.onFailure(false);
      await waitFor("all open", () => bs.every((b) => b.state === "open"), 1000);
      assert.deepEqual(
        log.filter((t) => t.to === "open").map((t) => t.store),
        ["redis", "redis", "redis", "redis"],
      );
      // Rejected everywhere without a round trip, with the same end of cooldown.
      const ds = bs.map((b) => b.tryAcquire());
      assert.ok(ds.every((d) => !isPromiseLike(d)));
      const retryAts = (ds as BreakerDecision[]).map((d) => {
        assert.equal(d.allowed, false);
        return (d as { retryAtMs: number }).retryAtMs;
      });
      // Each process converts the server's openUntil with its clock-offset estimate (error ≈ half a
      // round trip: well under a millisecond on an idle machine, more on a loaded CI box).
      assert.ok(Math.max(...retryAts) - Math.min(...retryAts) <= 40, `retryAt spread ${retryAts}`);
      // A store created now learns the open state on its first decision.
      const [late] = await fleet.open(1);
      const d = await breakers([late!], key, { consecutiveFailures: 4, cooldownMs: 400 })[0]!.tryAcquire();
      assert.equal(d.allowed, false);
      assert.ok(Math.abs((d as { retryAtMs: number }).retryAtMs - retryAts[0]!) <= 40);
    } finally {
      await fleet.close();
    }
  });

  test("half-open admits exactly K probes across 4 store instances; failure re-opens, K successes close everywhere", async () => {
    const fleet = new Fleet(server.url);
    try {
      const stores = await fleet.open(4);
      const log: Transition[] = [];
      const opts = { consecutiveFailures: 2, cooldownMs: 200, halfOpenProbes: 2 };
      const bs = breakers(stores, freshKey("probes"), opts, log);
      await Promise.all(bs.map((b) => b.tryAcquire()));
      bs[0]!.onFailure(false);
      bs[1]!.onFailure(false);
      await waitFor("open", () => bs.every((b) => b.state === "open"));

      const probeRound = async () => {
        await sleep(230);
        const ds = await Promise.all(bs.flatMap((b) => Array.from({ length: 5 }, () => b.tryAcquire())));
        return ds.map((d, j) => ({ d, b: bs[Math.floor(j / 5)]! })).filter(({ d }) => d.allowed);
      };

      let admitted = await probeRound();
      assert.equal(admitted.length, 2, "exactly K probes in the fleet");
      assert.ok(admitted.every(({ d }) => d.allowed && d.probe));
      // One probe fails: open again everywhere, fresh cooldown.
      await admitted[0]!.b.onFailure(true);
      await admitted[1]!.b.onRelease(true);
      await waitFor("re-opened", () => bs.every((b) => b.state === "open"));

      admitted = await probeRound();
      assert.equal(admitted.length, 2, "exactly K probes again");
      await Promise.all(admitted.map(({ b }) => b.onSuccess(true)));
      await waitFor("closed everywhere", () => bs.every((b) => b.state === "closed"));
      for (let i = 0; i < 4; i++) {
        assert.deepEqual(
          log.filter((t) => t.i === i).map((t) => t.to),
          ["open", "half_open", "open", "half_open", "closed"],
        );
      }
    } finally {
      await fleet.close();
    }
  });

  test("a probe that never reports frees its slot after probeTtlMs", async () => {
    const fleet = new Fleet(server.url);
    try {
      const stores = await fleet.open(2, { probeTtlMs: 300, halfOpenPollMs: 20 });
      const bs = breakers(stores, freshKey("ttl"), { consecutiveFailures: 1, cooldownMs: 50 });
      await Promise.all(bs.map((b) => b.tryAcquire()));
      bs[0]!.onFailure(false);
      await waitFor("open", () => bs[1]!.state === "open");
      await sleep(60);
      assert.equal((await bs[0]!.tryAcquire()).allowed, true); // the probe; its process "dies"
      assert.equal((await bs[1]!.tryAcquire()).allowed, false);
      await sleep(320);
      const d = await bs[1]!.tryAcquire();
      assert.equal(d.allowed && d.probe, true);
    } finally {
      await fleet.close();
    }
  });

  test("the failure-ratio window is counted fleet-wide", async () => {
    const fleet = new Fleet(server.url);
    try {
      const stores = await fleet.open(3);
      const bs = breakers(stores, freshKey("ratio"), { consecutiveFailures: 100, failureRatio: 0.5, minimumCalls: 12, windowMs: 10_000 });
      await Promise.all(bs.map((b) => b.tryAcquire()));
      // Each store: S F S F (never 2 consecutive); 12 calls, 6 failures in the fleet.
      for (let r = 0; r < 2; r++) {
        for (const b of bs) {
          b.onSuccess(false);
          b.onFailure(false);
        }
        await sleep(130);
      }
      await waitFor("open by ratio", () => bs.every((b) => b.state === "open"));
    } finally {
      await fleet.close();
    }
  });

  test("a rate limit is shared by all stores (leases never overspend it)", async () => {
    const fleet = new Fleet(server.url);
    try {
      const stores = await fleet.open(4);
      const key = freshKey("rpm");
      const rpm = 120;
      const ls = stores.map((store) => new RateLimiter<"async">(key, { requestsPerMinute: rpm, store }));
      const t0 = Date.now();
      let free = 0;
      const waiting = new Set<number>();
      while (waiting.size < ls.length) {
        for (let i = 0; i < ls.length; i++) {
          if (waiting.has(i)) continue;
          const r = await ls[i]!.reserve(0);
          if (r.waitMs === 0) free++;
          else waiting.add(i);
        }
      }
      const refill = ((Date.now() - t0) / 60_000) * rpm;
      // Alone, each store would have let `rpm` through; together they let the shared bucket through.
      // Never more (leased units have left the bucket); less by at most the unspent leases
      // (leaseFraction 5 % = 6 requests per store) of stores that stopped at their first wait.
      const lease = 0.05 * rpm;
      assert.ok(free <= rpm + refill + 1, `overspent: ${free} free reservations (limit ${rpm}, refill ${refill.toFixed(2)})`);
      assert.ok(free >= rpm - ls.length * lease, `underspent: ${free} free reservations (limit ${rpm})`);

      // Corrections from reported usage reach the shared bucket.
      const tkey = freshKey("tpm");
      const ts = stores.slice(0, 2).map((store) => new RateLimiter<"async">(tkey, { tokensPerMinute: 60_000, store }));
      await ts[0]!.reserve(1000);
      await ts[0]!.correct(1000, 4000); // used 3000 more than estimated
      await sleep(150);
      const bucket = stores[1]!.bucket(`tpm:${tkey}`, { capacity: 60_000, refillPerMs: 1 });
      const level = await bucket.level(Date.now());
      assert.ok(level < 60_000 - 3500 && level > 60_000 - 4500, `shared level after correction ${level}`);
    } finally {
      await fleet.close();
    }
  });

  test("the retry budget is shared per key; refills are batched", async () => {
    const fleet = new Fleet(server.url);
    try {
      const stores = await fleet.open(2);
      const key = freshKey("budget");
      const [a, b] = stores.map((store) => new RetryBudget<"async">(key, { capacity: 20, retryCost: 5, store }));
      const results: boolean[] = [];
      for (let i = 0; i < 6; i++) results.push((await (i % 2 ? b! : a!).tryAcquire("normal")).ok);
      assert.deepEqual(results, [true, true, true, true, false, false]);
      const d = await b!.tryAcquire("normal");
      assert.deepEqual(d, { ok: false, store: "redis" });
      assert.equal(a!.onSuccess(5), undefined); // batched: no round trip on the call path
      await sleep(150);
      assert.equal((await b!.tryAcquire("normal")).ok, true);
    } finally {
      await fleet.close();
    }
  });

  test("scripts are loaded again after SCRIPT FLUSH", async () => {
    const fleet = new Fleet(server.url);
    try {
      const [store] = await fleet.open(1);
      assert.equal(await server.command("SCRIPT FLUSH"), "+OK");
      const b = breakers([store!], freshKey("flush"), { consecutiveFailures: 1 })[0]!;
      const d = await b.tryAcquire();
      assert.deepEqual(d, { allowed: true, probe: false, store: "redis" });
      assert.ok(store!.stats.scriptReloads >= 1);
      assert.equal(store!.status, "ready");
      assert.equal(store!.stats.degradedEpisodes, 0);
    } finally {
      await fleet.close();
    }
  });
});

describe("redis store degraded mode", { skip }, () => {
  test("an acquire that timed out but took a probe slot gives it back (no fleet stuck half-open)", async () => {
    const server = await RedisServer.start();
    const fleet = new Fleet(server.url);
    try {
      const [a, b] = await fleet.open(2, { commandTimeoutMs: 40, probeTtlMs: 60_000, halfOpenPollMs: 20 });
      const opts = { consecutiveFailures: 1, cooldownMs: 100, halfOpenProbes: 1 };
      const [ba, bb] = breakers([a!, b!], freshKey("orphan"), opts);
      await Promise.all([ba!.tryAcquire(), bb!.tryAcquire()]);
      ba!.onFailure(false);
      await waitFor("open", () => bb!.state === "open");
      await sleep(120);
      server.pause();
      let local: BreakerDecision;
      try {
        local = await ba!.tryAcquire(); // times out; the script runs once Redis answers again
      } finally {
        setTimeout(() => server.resume(), 100);
      }
      assert.equal(local.store, "local");
      ba!.onRelease(local.allowed && local.probe);
      await waitFor("a recovered", () => a!.status === "ready", 3000);
      assert.equal(b!.status, "ready");
      // Without the release, b would be refused for probeTtlMs (60 s).
      await waitFor(
        "b admitted as the probe",
        () => {
          const d = bb!.tryAcquire();
          const ok = (x: BreakerDecision) => x.allowed && x.probe && x.store === "redis";
          if (isPromiseLike(d)) void d.then((x) => ok(x) && (admitted = true));
          else if (ok(d)) admitted = true;
          return admitted;
        },
        3000,
      );
    } finally {
      await fleet.close();
      await server.kill();
    }
  });
  let admitted = false;

  test("Redis killed: local fallback from the last shared state, one warning; restarted: re-converges", async () => {
    const server = await RedisServer.start();
    const fleet = new Fleet(server.url);
    try {
      const stores = await fleet.open(2);
      const log: Transition[] = [];
      const opts = { consecutiveFailures: 2, cooldownMs: 1500 };
      const openKey = freshKey("was-open");
      const bs = breakers(stores, openKey, opts, log);
      const other = breakers(stores, freshKey("opens-locally"), opts, log);
      const rl = new RateLimiter<"async">(freshKey("rl"), { requestsPerMinute: 600, store: stores[0]! });
      await Promise.all([...bs, ...other].map((b) => b.tryAcquire()));
      bs[0]!.onFailure(false);
      bs[1]!.onFailure(false);
      await waitFor("open", () => bs.every((b) => b.state === "open"));

      await server.kill();
      await waitFor("degraded", () => stores.every((s) => s.degraded));
      // Decisions go on, locally, and never reject.
      const d = bs[1]!.tryAcquire();
      assert.equal(isPromiseLike(d), false);
      assert.equal((d as BreakerDecision).allowed, false, "the open state survives the outage");
      assert.equal((d as BreakerDecision).store, "local");
      assert.deepEqual(await other[0]!.tryAcquire(), { allowed: true, probe: false, store: "local" });
      other[0]!.onFailure(false);
      other[0]!.onFailure(false);
      assert.equal(other[0]!.state, "open");
      assert.deepEqual(log.at(-1), { i: 0, from: "closed", to: "open", store: "local" });
      const r = await rl.reserve(1);
      assert.equal(r.granted, true);
      for (let i = 0; i < 20; i++) await Promise.all([...bs, ...other].map((b) => b.tryAcquire()));
      assert.equal(fleet.warnings.length, 2, `one warning per store: ${fleet.warnings.join(" | ")}`);
      // Each store reports degraded exactly once; which one notices first is up to the scheduler.
      assert.deepEqual([...fleet.degradedCalls].sort((a, b) => Number(a[0]) - Number(b[0])), [
        [0, true],
        [1, true],
      ]);

      await server.restart(); // same port, empty: no scripts, no state
      await waitFor("recovered", () => stores.every((s) => s.status === "ready"), 5000);
      assert.deepEqual(fleet.degradedCalls.slice(2).map(([, deg]) => deg), [false, false]);
      // The open states were pushed to the empty Redis: a fresh store sees both keys open.
      const [fresh] = await fleet.open(1);
      const seen = await Promise.all(
        [openKey, other[0]!.key].map((k) => breakers([fresh!], k, opts)[0]!.tryAcquire()),
      );
      assert.deepEqual(seen.map((x) => [x.allowed, x.store]), [
        [false, "redis"],
        [false, "redis"],
      ]);
      // Store 1 never saw the local opening of `other`; after re-convergence it does.
      await waitFor("store 1 learns the merged open state", () => other[1]!.state === "open");
      assert.equal(fleet.warnings.length, 2);
    } finally {
      await fleet.close();
      await server.kill();
    }
  });

  test("a slow Redis (stopped process) degrades within the command timeout, recovers when it answers", async () => {
    const server = await RedisServer.start();
    const fleet = new Fleet(server.url);
    try {
      const [store] = await fleet.open(1, { commandTimeoutMs: 40 });
      const b = breakers([store!], freshKey("slow"), { consecutiveFailures: 2 })[0]!;
      await b.tryAcquire();
      server.pause();
      try {
        const fresh = breakers([store!], freshKey("slow-new"), { consecutiveFailures: 2 })[0]!;
        const t0 = Date.now();
        const d = await fresh.tryAcquire(); // a new cell must ask Redis: it times out and falls back
        const took = Date.now() - t0;
        assert.deepEqual(d, { allowed: true, probe: false, store: "local" });
        assert.ok(took < 150, `decision took ${took} ms`);
        assert.equal(store!.degraded, true);
        assert.equal((b.tryAcquire() as BreakerDecision).store, "local");
      } finally {
        server.resume();
      }
      await waitFor("recovered", () => store!.status === "ready", 3000);
      assert.deepEqual(await b.tryAcquire(), { allowed: true, probe: false, store: "redis" });
      assert.deepEqual(fleet.degradedCalls, [
        [0, true],
        [0, false],
      ]);
    } finally {
      await fleet.close();
      await server.kill();
    }
  });
});

describe("redis store start-up", { skip }, () => {
  test("failures counted while the store connects reach the fleet: the breaker opens at exactly its threshold", async () => {
    const port = await freePort();
    const warnings: string[] = [];
    const store = createRedisStore({
      url: `redis://127.0.0.1:${port}`,
      reconnectMaxDelayMs: 50,
      commandTimeoutMs: 250,
      logger: { warn: (_o, msg) => warnings.push(msg), info: () => {} },
    });
    let server: RedisServer | undefined;
    try {
      const log: Transition[] = [];
      const [b] = breakers([store], freshKey("startup"), { consecutiveFailures: 3, cooldownMs: 60_000 }, log);
      // Redis is not there yet: the store connects while the application already calls.
      assert.equal(store.status, "connecting");
      for (let i = 0; i < 2; i++) {
        const d = await b!.tryAcquire();
        assert.deepEqual(d, { allowed: true, probe: false, store: "local" });
        assert.equal(await b!.onFailure(false), undefined);
      }
      assert.equal(b!.state, "closed");
      server = await RedisServer.start(port);
      assert.equal(await store.ready(3000), true);
      assert.equal(b!.state, "closed", "two failures stay below the threshold of 3");
      // The third failure opens it: the two counted while connecting reached Redis.
      assert.deepEqual(await b!.tryAcquire(), { allowed: true, probe: false, store: "redis" });
      const opened = await b!.onFailure(false);
      await waitFor("the third failure opens the breaker", () => b!.state === "open", 1000);
      assert.deepEqual(opened, { from: "closed", to: "open", store: "redis" }, "the transition comes back to the failure that caused it");
      assert.deepEqual(log, [{ i: 0, from: "closed", to: "open", store: "redis" }]);
      // Shared: another store sees it open.
      const other = createRedisStore({ url: server.url, logger: { warn: () => {} } });
      try {
        assert.equal(await other.ready(3000), true);
        const d = await breakers([other], b!.key, { consecutiveFailures: 3, cooldownMs: 60_000 })[0]!.tryAcquire();
        assert.deepEqual([d.allowed, d.store], [false, "redis"]);
      } finally {
        await other.close();
      }
    } finally {
      await store.close();
      await server?.kill();
    }
  });
});
