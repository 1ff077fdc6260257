import { test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../src/policy/clock.ts";
import { Deadline } from "../src/policy/deadline.ts";

test("a budget counts down and expires", () => {
  const clock = new ManualClock(1000);
  const d = new Deadline(5000, clock);
  assert.equal(d.bounded, true);
  assert.equal(d.atMs, 6000);
  assert.equal(d.remainingMs(), 5000);
  clock.advance(4000);
  assert.equal(d.remainingMs(), 1000);
  assert.equal(d.expired(), false);
  clock.advance(1000);
  assert.equal(d.expired(), true);
  clock.advance(1000);
  assert.equal(d.remainingMs(), 0);
});

test("allows only waits that end before the deadline", () => {
  const clock = new ManualClock(0);
  const d = new Deadline(1000, clock);
  assert.equal(d.allows(0), true);
  assert.equal(d.allows(999), true);
  assert.equal(d.allows(1000), false);
  assert.equal(d.allows(5000), false);
  assert.equal(d.allows(NaN), false);
});

test("no deadline: never expires, allows any finite wait", () => {
  const clock = new ManualClock(0);
  for (const d of [new Deadline(undefined, clock), new Deadline(Infinity, clock)]) {
    assert.equal(d.bounded, false);
    assert.equal(d.remainingMs(), Infinity);
    clock.advance(1e12);
    assert.equal(d.expired(), false);
    assert.equal(d.allows(1e15), true);
    assert.equal(d.allows(Infinity), false);
  }
});

test("zero budget is expired at once; bad budgets throw", () => {
  const d = new Deadline(0, new ManualClock(5));
  assert.equal(d.expired(), true);
  assert.equal(d.allows(0), false);
  assert.throws(() => new Deadline(-1), RangeError);
  assert.throws(() => new Deadline(NaN), RangeError);
});

test("default clock is wall time", () => {
  const d = new Deadline(60_000);
  assert.ok(Math.abs(d.atMs - (Date.now() + 60_000)) < 1000);
});
