import { test } from "node:test";
import assert from "node:assert/strict";
import { RetryBudget } from "../src/policy/retry-budget.ts";

test("AWS standard-mode costs: 5 per retry, 10 after a timeout", () => {
  const b = new RetryBudget("k");
  assert.equal(b.available(), 500);
  assert.deepEqual(b.tryAcquire("normal"), { ok: true, cost: 5, store: "local" });
  assert.deepEqual(b.tryAcquire("timeout"), { ok: true, cost: 10, store: "local" });
  assert.equal(b.available(), 485);
});

test("a 100%-failure storm: retries granted are bounded by capacity / cost, whatever the traffic", () => {
  for (const calls of [1_000, 10_000, 100_000]) {
    const b = new RetryBudget("k");
    let granted = 0;
    for (let i = 0; i < calls; i++) {
      for (let r = 0; r < 2; r++) if (b.tryAcquire("normal").ok) granted++;
    }
    assert.equal(granted, 500 / 5, `calls=${calls}`);
    assert.deepEqual(b.tryAcquire("normal"), { ok: false, store: "local" });
  }
});

test("storm with occasional successes: refunds bound the extra retries", () => {
  const b = new RetryBudget("k");
  let granted = 0;
  let refunded = 0;
  for (let i = 0; i < 10_000; i++) {
    let lastCost = 0;
    let succeeded = false;
    for (let r = 0; r < 2; r++) {
      const d = b.tryAcquire(i % 2 ? "timeout" : "normal");
      if (!d.ok) break;
      granted++;
      lastCost = d.cost;
      // 1 call in 100 succeeds on its retry
      if (i % 100 === 0) {
        succeeded = true;
        break;
      }
    }
    if (succeeded) {
      b.onSuccess(lastCost);
      refunded += lastCost;
    }
  }
  // Every granted retry costs >= 5, so granted <= (capacity + refunds) / 5.
  assert.ok(granted <= (500 + refunded) / 5, `granted=${granted} refunded=${refunded}`);
});

test("success refunds the retry's cost, or 1 without a retry, capped at capacity", () => {
  const b = new RetryBudget("k", { capacity: 20 });
  const t = b.tryAcquire("timeout");
  assert.ok(t.ok);
  assert.equal(b.available(), 10);
  b.onSuccess(t.ok ? t.cost : 0);
  assert.equal(b.available(), 20);
  b.tryAcquire("normal");
  b.onSuccess(0);
  assert.equal(b.available(), 16);
  for (let i = 0; i < 10; i++) b.onSuccess(0);
  assert.equal(b.available(), 20);
});

test("an empty budget refuses until successes refill it", () => {
  const b = new RetryBudget("k", { capacity: 10, retryCost: 5, timeoutRetryCost: 10 });
  assert.ok(b.tryAcquire("normal").ok);
  assert.equal(b.tryAcquire("timeout").ok, false, "5 left, a timeout retry needs 10");
  assert.ok(b.tryAcquire("normal").ok);
  assert.equal(b.tryAcquire("normal").ok, false);
  for (let i = 0; i < 5; i++) b.onSuccess(0);
  assert.ok(b.tryAcquire("normal").ok);
});

test("invalid options throw", () => {
  assert.throws(() => new RetryBudget("k", { capacity: -1 }), /capacity/);
  assert.throws(() => new RetryBudget("k", { retryCost: NaN }), /retryCost/);
});
