import { test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../src/policy/clock.ts";
import { CircuitBreaker, type CircuitBreakerOptions } from "../src/policy/breaker.ts";
import { KeyedRegistry } from "../src/policy/registry.ts";
import { SlidingWindow } from "../src/policy/sliding-window.ts";

function setup(options: CircuitBreakerOptions = {}) {
  const clock = new ManualClock(1_000_000);
  const transitions: string[] = [];
  const b = new CircuitBreaker("openai:gpt-4o", {
    clock,
    onTransition: (from, to, key, store) => transitions.push(`${from}->${to}@${key}/${store}`),
    ...options,
  });
  /** One whole attempt: acquire, then report. */
  const call = (outcome: "ok" | "fail" | "uncounted") => {
    const d = b.tryAcquire();
    assert.equal(d.allowed, true);
    if (!d.allowed) return;
    if (outcome === "ok") b.onSuccess(d.probe);
    else b.onFailure(d.probe, outcome === "fail");
  };
  return { clock, b, transitions, call };
}

test("opens after N consecutive counted failures; a success resets the count", () => {
  const { b, call, transitions } = setup({ consecutiveFailures: 3 });
  call("fail");
  call("fail");
  call("ok");
  call("fail");
  call("fail");
  assert.equal(b.state, "closed");
  call("fail");
  assert.equal(b.state, "open");
  assert.deepEqual(transitions, ["closed->open@openai:gpt-4o/local"]);
});

test("default: 5 consecutive failures", () => {
  const { b, call } = setup();
  for (let i = 0; i < 4; i++) call("fail");
  assert.equal(b.state, "closed");
  call("fail");
  assert.equal(b.state, "open");
});

test("rejects while open with retryAtMs = end of the cooldown", () => {
  const { b, call, clock } = setup({ consecutiveFailures: 1, cooldownMs: 30_000 });
  const openedAt = clock.now();
  call("fail");
  clock.advance(10_000);
  const d = b.tryAcquire();
  assert.deepEqual(d, { allowed: false, retryAtMs: openedAt + 30_000, state: "open", store: "local" });
  clock.advance(19_999);
  assert.equal(b.tryAcquire().allowed, false);
  assert.equal(b.state, "open");
});

test("failure ratio over the window, only with minimumCalls", () => {
  const { b, call } = setup({ consecutiveFailures: 1000, failureRatio: 0.5, minimumCalls: 10 });
  // 9 calls, 5 failures (ratio 0.55) — below the minimum, stays closed.
  for (const o of ["fail", "ok", "fail", "ok", "fail", "ok", "fail", "ok", "fail"] as const) call(o);
  assert.equal(b.state, "closed");
  call("ok"); // 10 calls, ratio 0.5, but only failures can open
  assert.equal(b.state, "closed");
  call("fail"); // 11 calls, 6 failures
  assert.equal(b.state, "open");
});

test("ratio below the threshold keeps it closed", () => {
  const { b, call } = setup({ consecutiveFailures: 1000, failureRatio: 0.5, minimumCalls: 10 });
  for (let i = 0; i < 100; i++) call(i % 3 === 0 ? "fail" : "ok");
  assert.equal(b.state, "closed");
});

test("the window slides: old buckets are forgotten", () => {
  const { b, call, clock } = setup({
    consecutiveFailures: 1000,
    failureRatio: 0.5,
    minimumCalls: 10,
    windowMs: 10_000,
    windowBuckets: 10,
  });
  for (let i = 0; i < 9; i++) call("fail");
  clock.advance(11_000); // everything above is out of the window now
  call("fail");
  assert.equal(b.state, "closed");
  for (let i = 0; i < 8; i++) call("ok");
  call("fail"); // 10 calls in window, 2 failures
  assert.equal(b.state, "closed");
});

test("sliding window totals: bucketed and bounded", () => {
  const w = new SlidingWindow(1000, 10);
  for (let t = 0; t < 1000; t += 10) w.add(t, t % 20 === 0);
  assert.deepEqual(w.totals(999), { calls: 100, failures: 50 });
  assert.deepEqual(w.totals(1050), { calls: 90, failures: 45 }); // the first 100 ms bucket dropped
  assert.deepEqual(w.totals(5000), { calls: 0, failures: 0 });
  w.add(5000, true);
  assert.deepEqual(w.totals(5000), { calls: 1, failures: 1 });
  w.reset();
  assert.deepEqual(w.totals(5000), { calls: 0, failures: 0 });
});

test("after the cooldown exactly K probes are admitted among 100 concurrent acquisitions", () => {
  const { b, call, clock, transitions } = setup({ consecutiveFailures: 1, cooldownMs: 1000, halfOpenProbes: 3 });
  call("fail");
  clock.advance(1000);
  const decisions = Array.from({ length: 100 }, () => b.tryAcquire());
  const allowed = decisions.filter((d) => d.allowed);
  assert.equal(allowed.length, 3);
  assert.ok(allowed.every((d) => d.allowed && d.probe));
  assert.ok(decisions.filter((d) => !d.allowed).every((d) => !d.allowed && d.state === "half_open"));
  assert.equal(b.state, "half_open");
  // K probe successes close it.
  b.onSuccess(true);
  b.onSuccess(true);
  assert.equal(b.state, "half_open");
  assert.equal(b.tryAcquire().allowed, false, "2 succeeded + 1 in flight = K: no more probes");
  b.onSuccess(true);
  assert.equal(b.state, "closed");
  assert.deepEqual(transitions.map((t) => t.split("@")[0]), ["closed->open", "open->half_open", "half_open->closed"]);
  const d = b.tryAcquire();
  assert.deepEqual(d, { allowed: true, probe: false, store: "local" });
});

test("a probe failure re-opens with a fresh cooldown", () => {
  const { b, call, clock } = setup({ consecutiveFailures: 1, cooldownMs: 1000, halfOpenProbes: 2 });
  call("fail");
  clock.advance(1500);
  const p1 = b.tryAcquire();
  const p2 = b.tryAcquire();
  assert.ok(p1.allowed && p1.probe && p2.allowed && p2.probe);
  b.onSuccess(true);
  clock.advance(200);
  const failedAt = clock.now();
  b.onFailure(true);
  assert.equal(b.state, "open");
  assert.deepEqual(b.tryAcquire(), { allowed: false, retryAtMs: failedAt + 1000, state: "open", store: "local" });
});

test("closing resets the counts: old failures do not re-trip it", () => {
  const { b, call, clock } = setup({ consecutiveFailures: 2, cooldownMs: 10 });
  call("fail");
  call("fail");
  clock.advance(10);
  call("ok"); // the probe
  assert.equal(b.state, "closed");
  call("fail");
  assert.equal(b.state, "closed");
});

test("uncounted failures are neutral: they neither open nor reset the consecutive count", () => {
  const { b, call } = setup({ consecutiveFailures: 3, failureRatio: 0.5, minimumCalls: 3 });
  for (let i = 0; i < 50; i++) call("uncounted");
  assert.equal(b.state, "closed");
  call("fail");
  call("fail");
  for (let i = 0; i < 10; i++) call("uncounted");
  assert.equal(b.state, "closed", "2 failures in 2 counted calls, below minimumCalls");
  call("fail");
  assert.equal(b.state, "open");
});

test("an uncounted probe failure or a release frees the slot without a verdict", () => {
  const { b, call, clock } = setup({ consecutiveFailures: 1, cooldownMs: 100 });
  call("fail");
  clock.advance(100);
  const p = b.tryAcquire();
  assert.ok(p.allowed && p.probe);
  assert.equal(b.tryAcquire().allowed, false);
  b.onRelease(true);
  assert.equal(b.state, "half_open");
  const p2 = b.tryAcquire();
  assert.ok(p2.allowed && p2.probe);
  b.onFailure(true, false);
  assert.equal(b.state, "half_open");
  const p3 = b.tryAcquire();
  assert.ok(p3.allowed && p3.probe);
  b.onSuccess(true);
  assert.equal(b.state, "closed");
  b.onRelease(false); // no-op for non-probes
  assert.equal(b.state, "closed");
});

test("stale outcomes are ignored: a non-probe failure in half_open does not re-open", () => {
  const { b, clock } = setup({ consecutiveFailures: 1, cooldownMs: 100 });
  const old = b.tryAcquire(); // admitted while closed, still running
  const failing = b.tryAcquire();
  assert.ok(old.allowed && !old.probe && failing.allowed);
  b.onFailure(false);
  assert.equal(b.state, "open");
  clock.advance(100);
  const probe = b.tryAcquire();
  assert.ok(probe.allowed && probe.probe);
  b.onFailure(false); // the old call finally fails
  assert.equal(b.state, "half_open");
  b.onSuccess(false); // nor does a stale success close it
  assert.equal(b.state, "half_open");
  b.onSuccess(true);
  assert.equal(b.state, "closed");
});

test("a slow probe of an earlier episode still holds its slot", () => {
  const { b, clock } = setup({ consecutiveFailures: 1, cooldownMs: 100, halfOpenProbes: 2 });
  const first = b.tryAcquire();
  assert.ok(first.allowed);
  b.onFailure(false);
  clock.advance(100);
  const slow = b.tryAcquire();
  const failing = b.tryAcquire();
  assert.ok(slow.allowed && slow.probe && failing.allowed && failing.probe);
  b.onFailure(true); // re-open; `slow` is still running
  clock.advance(100);
  const next = b.tryAcquire();
  assert.ok(next.allowed && next.probe);
  assert.equal(b.tryAcquire().allowed, false, "slow + next = K");
  b.onSuccess(true); // the slow one
  b.onSuccess(true);
  assert.equal(b.state, "closed");
});

test("a throwing transition listener does not break the breaker", () => {
  const b = new CircuitBreaker("k", {
    consecutiveFailures: 1,
    onTransition: () => {
      throw new Error("telemetry bug");
    },
  });
  const d = b.tryAcquire();
  assert.ok(d.allowed);
  b.onFailure(false);
  assert.equal(b.state, "open");
});

test("invalid options throw RangeError naming the option", () => {
  assert.throws(() => new CircuitBreaker("k", { consecutiveFailures: 0 }), /consecutiveFailures/);
  assert.throws(() => new CircuitBreaker("k", { failureRatio: 1.5 }), /failureRatio/);
  assert.throws(() => new CircuitBreaker("k", { failureRatio: 0 }), /failureRatio/);
  assert.throws(() => new CircuitBreaker("k", { halfOpenProbes: 1.5 }), /halfOpenProbes/);
  assert.throws(() => new CircuitBreaker("k", { cooldownMs: -1 }), /cooldownMs/);
  assert.throws(() => new CircuitBreaker("k", { windowMs: 0 }), /windowMs/);
  assert.throws(() => new KeyedRegistry((k) => new CircuitBreaker(k), { maxKeys: 0 }), /maxKeys/);
  assert.throws(() => new CircuitBreaker("k", { minimumCalls: 0 }), /minimumCalls/);
});

/** Breakers by key as the key policies keep them: bounded, closed breakers evicted first. */
function breakerRegistry(options: CircuitBreakerOptions & { maxKeys?: number } = {}) {
  const { maxKeys, ...breakerOptions } = options;
  return new KeyedRegistry((key) => new CircuitBreaker(key, breakerOptions), { maxKeys, evictable: (b) => b.state === "closed" });
}

test("registry: one breaker per key, shared listener", () => {
  const seen: string[] = [];
  const r = breakerRegistry({ consecutiveFailures: 1, onTransition: (f, t, k) => seen.push(`${k}:${f}->${t}`) });
  const a = r.get("a");
  assert.equal(r.get("a"), a);
  assert.notEqual(r.get("b"), a);
  a.tryAcquire();
  a.onFailure(false);
  assert.deepEqual(seen, ["a:closed->open"]);
  assert.equal(r.size, 2);
});

test("registry LRU bound: evicts closed breakers first, least recently used first", () => {
  const r = breakerRegistry({ consecutiveFailures: 1, maxKeys: 3 });
  const open = r.get("open");
  open.tryAcquire();
  open.onFailure(false);
  r.get("b");
  r.get("c");
  r.get("b"); // b is now more recent than c
  r.get("d"); // evicts c (closed, LRU), not "open" (older but open)
  assert.equal(r.size, 3);
  assert.deepEqual([...r.entries()].map(([k]) => k).sort(), ["b", "d", "open"]);
  for (let i = 0; i < 2000; i++) r.get(`k${i}`);
  assert.equal(r.size, 3);
  assert.ok(r.peek("open"), "the open breaker survives churn of closed ones");
  assert.equal(r.peek("open"), open);
});

test("registry LRU bound: when every breaker is open, the least recently used goes anyway", () => {
  const r = breakerRegistry({ consecutiveFailures: 1, maxKeys: 2 });
  for (const k of ["x", "y", "z"]) {
    const b = r.get(k);
    b.tryAcquire();
    b.onFailure(false);
  }
  assert.equal(r.size, 2);
  assert.equal(r.peek("x"), undefined);
});

test("registry default bound is 1000 keys", () => {
  const r = breakerRegistry();
  for (let i = 0; i < 1500; i++) r.get(`k${i}`);
  assert.equal(r.size, 1000);
  assert.equal(r.peek("k0"), undefined);
  assert.ok(r.peek("k1499"));
});
