import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ManualClock } from "../src/policy/clock.ts";
import { SpendLimit } from "../src/policy/spend-limit.ts";

const HOUR = 3_600_000;
const MIN = 60_000;

function limit(usd: number, clock: ManualClock, o: { windowMs?: number; holdTtlMs?: number } = {}) {
  return new SpendLimit("k", { limitUsd: usd, clock, ...o });
}

describe("spend limit", () => {
  test("a sequential loop is admitted while spent + estimate fits, then refused", () => {
    const clock = new ManualClock(10 * HOUR);
    const s = limit(1, clock);
    let admitted = 0;
    for (let i = 0; i < 100; i++) {
      const d = s.reserve(0.15);
      if (!d.admitted) {
        assert.equal(i, 6, "after 6 calls settled at 0.15 (0.90 spent) a 7th would make 1.05");
        assert.ok(Math.abs(d.spentUsd - 0.9) < 1e-9);
        assert.equal(d.reservedUsd, 0);
        break;
      }
      admitted++;
      s.settle(d.hold, 0.15);
      clock.advance(10);
    }
    assert.equal(admitted, 6);
  });

  test("holds of calls in flight count: concurrent calls cannot overshoot together", () => {
    const clock = new ManualClock(0);
    const s = limit(1, clock);
    const holds: string[] = [];
    for (let i = 0; i < 10; i++) {
      const d = s.reserve(0.3);
      if (d.admitted) holds.push(d.hold);
    }
    assert.equal(holds.length, 3, "3 × 0.30 held; a 4th would make 1.20");
    const refused = s.reserve(0.3);
    assert.equal(refused.admitted, false);
    assert.ok(!refused.admitted && Math.abs(refused.reservedUsd - 0.9) < 1e-9);
    // One call ends having cost less than its worst case: its hold is replaced by the actual cost.
    s.settle(holds[0]!, 0.05);
    assert.equal(s.reserve(0.3).admitted, true, "0.05 spent + 0.60 held + 0.30 fits");
  });

  test("a settled call with no usage frees its whole hold", () => {
    const clock = new ManualClock(0);
    const s = limit(1, clock);
    const d = s.reserve(0.9);
    assert.ok(d.admitted);
    assert.equal(s.reserve(0.2).admitted, false);
    s.settle(d.hold, 0);
    assert.equal(s.spent(), 0);
    assert.equal(s.reserve(0.2).admitted, true);
  });

  test("a hold grows for a fallback to a dearer model, within the same rule", () => {
    const clock = new ManualClock(0);
    const s = limit(1, clock);
    const d = s.reserve(0.4);
    assert.ok(d.admitted);
    const more = s.reserve(0.5, d.hold);
    assert.ok(more.admitted && more.hold === d.hold);
    assert.equal(s.reserve(0.2, d.hold).admitted, false, "0.9 held + 0.2 > 1");
    s.settle(d.hold, 0.3);
    assert.ok(Math.abs((s.spent() as number) - 0.3) < 1e-9);
  });

  test("the window slides: spend leaves it one step (windowMs / 60) at a time, and retryAt says when", () => {
    const clock = new ManualClock(100 * HOUR); // a bucket boundary
    const s = limit(1, clock);
    const a = s.reserve(0.6);
    assert.ok(a.admitted);
    s.settle(a.hold, 0.6); // bucket t0
    clock.advance(30 * MIN);
    const b = s.reserve(0.3);
    assert.ok(b.admitted);
    s.settle(b.hold, 0.3); // bucket t0 + 30 min
    const refused = s.reserve(0.5);
    assert.ok(!refused.admitted);
    assert.equal(refused.retryAtMs, 100 * HOUR + HOUR, "the 0.6 leaves the window one hour after its bucket began");
    clock.set(100 * HOUR + HOUR - 1);
    assert.equal(s.reserve(0.5).admitted, false, "still inside the window");
    clock.set(100 * HOUR + HOUR);
    assert.ok(Math.abs((s.spent() as number) - 0.3) < 1e-9, "the older spend left, the newer stays");
    assert.equal(s.reserve(0.5).admitted, true);
  });

  test("an estimate above the limit is refused for good: retryAt is Infinity", () => {
    const s = limit(1, new ManualClock(0));
    const d = s.reserve(1.5);
    assert.ok(!d.admitted);
    assert.equal(d.retryAtMs, Infinity);
  });

  test("a hold whose call never ends frees itself after holdTtlMs", () => {
    const clock = new ManualClock(0);
    const s = limit(1, clock, { holdTtlMs: 1000 });
    assert.ok(s.reserve(1).admitted);
    assert.equal(s.reserve(0.1).admitted, false);
    clock.advance(1000);
    assert.equal(s.reserve(0.1).admitted, true);
  });

  test("bad settings are refused", () => {
    const clock = new ManualClock(0);
    assert.throws(() => limit(0, clock), /limitUsd must be a finite number > 0/);
    assert.throws(() => limit(Infinity, clock), /limitUsd/);
    assert.throws(() => limit(1, clock, { windowMs: 0 }), /windowMs/);
  });

  test("negative, NaN and infinite amounts count as 0", () => {
    const s = limit(1, new ManualClock(0));
    const d = s.reserve(Number.NaN);
    assert.ok(d.admitted);
    s.settle(d.hold, Number.POSITIVE_INFINITY);
    assert.equal(s.spent(), 0);
  });
});
