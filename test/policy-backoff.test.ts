import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, DEFAULT_BASE_DELAY_MS, DEFAULT_MAX_DELAY_MS } from "../src/policy/backoff.ts";

const opts = { baseMs: DEFAULT_BASE_DELAY_MS, maxMs: DEFAULT_MAX_DELAY_MS };

test("defaults are the SDKs' 0.5 s / 8 s", () => {
  assert.equal(DEFAULT_BASE_DELAY_MS, 500);
  assert.equal(DEFAULT_MAX_DELAY_MS, 8000);
});

test("full jitter: random() * min(max, base * 2^n)", () => {
  const one = () => 0.999999;
  assert.equal(backoffDelay(0, opts, () => 0.5), 250);
  assert.equal(backoffDelay(1, opts, () => 0.5), 500);
  assert.equal(backoffDelay(3, opts, () => 0.5), 2000);
  assert.equal(backoffDelay(4, opts, () => 1 - Number.EPSILON) <= 8000, true);
  assert.equal(backoffDelay(5, opts, () => 0.5), 4000); // capped at 8000
  assert.equal(backoffDelay(2, opts, () => 0), 0);
  assert.ok(Math.abs(backoffDelay(2, opts, one) - 2000) < 0.01);
});

test("overflow-safe for large indexes and sane for odd inputs", () => {
  for (const n of [31, 53, 64, 1023, 1024, 5000, 1e9, Number.MAX_SAFE_INTEGER, Infinity]) {
    assert.equal(backoffDelay(n, opts, () => 0.5), 4000, `n=${n}`);
  }
  assert.equal(backoffDelay(-3, opts, () => 0.5), 250);
  assert.equal(backoffDelay(NaN, opts, () => 0.5), 250);
  assert.equal(backoffDelay(2000, { baseMs: 0, maxMs: 8000 }, () => 0.5), 0);
  assert.equal(backoffDelay(1, opts, () => 7), 1000); // random clamped to [0, 1]
  assert.equal(backoffDelay(1, opts, () => -1), 0);
  assert.equal(backoffDelay(1, opts, () => NaN), 0);
});

test("with Math.random, always within [0, ceiling]", () => {
  for (let n = 0; n < 200; n++) {
    const d = backoffDelay(n % 40, opts);
    assert.ok(d >= 0 && d <= Math.min(8000, 500 * 2 ** (n % 40)));
  }
});
