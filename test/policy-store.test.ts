import { test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../src/policy/clock.ts";
import { Deadline } from "../src/policy/deadline.ts";
import { CircuitBreaker } from "../src/policy/breaker.ts";
import { RetryBudget } from "../src/policy/retry-budget.ts";
import { RateLimiter } from "../src/policy/rate-limiter.ts";
import { localStore } from "../src/policy/local-store.ts";
import {
  isPromiseLike,
  mapResult,
  type BreakerCell,
  type BreakerSettings,
  type BucketCell,
  type BucketSettings,
  type CellTransitionListener,
  type StateStore,
} from "../src/policy/store.ts";

/** Stands in for a remote store: same state machine, every answer arrives as a Promise. */
class AsyncStore implements StateStore<"async"> {
  readonly kind = "redis" as const;
  readonly keys: string[] = [];
  breaker(key: string, settings: BreakerSettings, onTransition: CellTransitionListener): BreakerCell<"async"> {
    this.keys.push(key);
    // Decided "remotely": every decision and transition says so.
    const cell = localStore.breaker(key, settings, (t) => onTransition({ ...t, store: "redis" }));
    return {
      get state() {
        return cell.state;
      },
      acquire: async (now) => ({ ...cell.acquire(now), store: "redis" }),
      record: async (now, outcome, probe) => {
        const t = cell.record(now, outcome, probe);
        return t && { ...t, store: "redis" };
      },
    };
  }
  bucket(key: string, settings: BucketSettings): BucketCell<"async"> {
    this.keys.push(key);
    const cell = localStore.bucket(key, settings);
    return {
      tryTake: async (now, n) => cell.tryTake(now, n),
      reserve: async (now, n) => cell.reserve(now, n),
      add: async (now, n) => cell.add(now, n),
      tighten: async (now, max, nb) => cell.tighten(now, max, nb),
      level: async (now) => cell.level(now),
    };
  }
}

test("local store: results are plain values, never Promises (no await on the hot path)", () => {
  const b = new CircuitBreaker("k");
  const d = b.tryAcquire();
  assert.equal(isPromiseLike(d), false);
  assert.equal(d.allowed, true);
  assert.equal(b.store, "local");
  assert.equal(isPromiseLike(new RetryBudget("k").tryAcquire("normal")), false);
  assert.equal(isPromiseLike(new RateLimiter("k", { requestsPerMinute: 1 }).reserve(1)), false);
  // Admissions in the closed state are shared objects: nothing is allocated per call.
  assert.equal(b.tryAcquire(), d);
});

test("async store: the same policies answer through Promises and say which store decided", async () => {
  const store = new AsyncStore();
  const clock = new ManualClock(0);
  const seen: unknown[] = [];
  const b = new CircuitBreaker("openai:gpt-4o", {
    store,
    clock,
    consecutiveFailures: 1,
    cooldownMs: 100,
    onTransition: (...a) => seen.push(a),
  });
  const first = b.tryAcquire();
  assert.ok(isPromiseLike(first));
  const d = await first;
  assert.deepEqual(d, { allowed: true, probe: false, store: "redis" });
  await b.onFailure(d.allowed && d.probe);
  assert.equal(b.state, "open");
  assert.deepEqual(seen, [["closed", "open", "openai:gpt-4o", "redis"]]);
  const rejected = await b.tryAcquire();
  assert.deepEqual(rejected, { allowed: false, retryAtMs: 100, state: "open", store: "redis" });

  const budget = new RetryBudget("openai:gpt-4o", { store, clock });
  assert.deepEqual(await budget.tryAcquire("timeout"), { ok: true, cost: 10, store: "redis" });
  assert.equal(await budget.available(), 490);

  const limiter = new RateLimiter("openai:gpt-4o", { store, clock, requestsPerMinute: 60, tokensPerMinute: 600 });
  assert.deepEqual(await limiter.reserve(600), { waitMs: 0, granted: true, store: "redis" });
  assert.deepEqual(await limiter.reserve(60, new Deadline(10, clock)), { waitMs: 6000, kind: "tokens", granted: false, store: "redis" });
  await limiter.applyServerHeaders({ remainingRequests: 0, resetRequestsMs: 30_000 });
  assert.deepEqual(await limiter.reserve(0), { waitMs: 30_000, kind: "requests", granted: true, store: "redis" });
  await limiter.correct(600, 0);
  await limiter.cancel(0);

  assert.deepEqual(store.keys, ["openai:gpt-4o", "budget:openai:gpt-4o", "rpm:openai:gpt-4o", "tpm:openai:gpt-4o"]);
});

test("mapResult keeps sync values sync and maps Promises", async () => {
  assert.equal(mapResult<"sync", number, number>(2, (x) => x * 2), 4);
  const p = mapResult<"async", number, number>(Promise.resolve(2), (x) => x * 3);
  assert.ok(isPromiseLike(p));
  assert.equal(await p, 6);
  assert.equal(isPromiseLike({ then: 1 }), false);
  assert.equal(isPromiseLike(null), false);
});
