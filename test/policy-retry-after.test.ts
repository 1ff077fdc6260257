import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseHttpDate, parseRetryAfter } from "../src/policy/retry-after.ts";

const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);
const headers = (h: Record<string, string | null | undefined>) => (name: string) => h[name];

test("retry-after-ms wins over retry-after, float ms kept", () => {
  assert.deepEqual(parseRetryAfter(headers({ "retry-after-ms": "1500.5", "retry-after": "9" }), NOW), {
    ms: 1500.5,
    source: "retry-after-ms",
  });
  assert.deepEqual(parseRetryAfter(headers({ "retry-after-ms": "0" }), NOW), { ms: 0, source: "retry-after-ms" });
  assert.deepEqual(parseRetryAfter(headers({ "retry-after-ms": " 20 " }), NOW), { ms: 20, source: "retry-after-ms" });
});

test("retry-after as (float) seconds", () => {
  assert.deepEqual(parseRetryAfter(headers({ "retry-after": "2" }), NOW), { ms: 2000, source: "retry-after" });
  assert.deepEqual(parseRetryAfter(headers({ "retry-after": "0.25" }), NOW), { ms: 250, source: "retry-after" });
  assert.deepEqual(parseRetryAfter(headers({ "retry-after": "1e1" }), NOW), { ms: 10_000, source: "retry-after" });
});

test("retry-after as HTTP-date, all three RFC 9110 forms; past dates give 0", () => {
  const future = NOW + 30_000;
  const imf = new Date(future).toUTCString(); // "Wed, 15 Jan 2025 12:00:30 GMT"
  assert.deepEqual(parseRetryAfter(headers({ "retry-after": imf }), NOW), { ms: 30_000, source: "retry-after" });
  assert.deepEqual(parseRetryAfter(headers({ "retry-after": "Wednesday, 15-Jan-25 12:00:30 GMT" }), NOW), {
    ms: 30_000,
    source: "retry-after",
  });
  assert.deepEqual(parseRetryAfter(headers({ "retry-after": "Wed Jan 15 12:00:30 2025" }), NOW), {
    ms: 30_000,
    source: "retry-after",
  });
  assert.deepEqual(parseRetryAfter(headers({ "retry-after": "Wed, 15 Jan 2025 11:00:00 GMT" }), NOW), {
    ms: 0,
    source: "retry-after",
  });
});

test("garbage in one header falls through to the next, else undefined", () => {
  const garbage = ["abc", "", "   ", "1e309", "Infinity", "-Infinity", "NaN", "-1", "-0.5", "0x10", "+5", "1,5", "5s", "1 2"];
  for (const g of garbage) {
    assert.deepEqual(parseRetryAfter(headers({ "retry-after-ms": g, "retry-after": "3" }), NOW), {
      ms: 3000,
      source: "retry-after",
    }, `retry-after-ms=${JSON.stringify(g)}`);
    assert.equal(parseRetryAfter(headers({ "retry-after": g }), NOW), undefined, `retry-after=${JSON.stringify(g)}`);
  }
  // Finite seconds whose ms overflow.
  assert.equal(parseRetryAfter(headers({ "retry-after": "1e307" }), NOW), undefined);
  assert.equal(parseRetryAfter(headers({}), NOW), undefined);
  assert.equal(parseRetryAfter(headers({ "retry-after": null, "retry-after-ms": null }), NOW), undefined);
});

test("HTTP-date parsing is strict (V8 Date.parse is not)", () => {
  for (const s of ["1", "abc 2", "2025-01-15", "Wed, 30 Feb 2025 12:00:00 GMT", "Wed, 15 Jan 2025 25:00:00 GMT", "Wed, 15 Foo 2025 12:00:00 GMT"]) {
    assert.equal(parseHttpDate(s, NOW), undefined, s);
  }
  assert.equal(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), Date.UTC(1994, 10, 6, 8, 49, 37));
  assert.equal(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT", NOW), Date.UTC(1994, 10, 6, 8, 49, 37));
  assert.equal(parseHttpDate("Sun Nov  6 08:49:37 1994"), Date.UTC(1994, 10, 6, 8, 49, 37));
  assert.equal(parseHttpDate("sun, 06 nov 1994 08:49:37 gmt"), Date.UTC(1994, 10, 6, 8, 49, 37));
});

test("property: never throws; result is undefined or finite and >= 0", () => {
  const value = fc.oneof(
    fc.string(),
    fc.string({ unit: "binary" }),
    fc.double().map(String),
    fc.double().map((n) => String(n * 1000)),
    fc.integer().map(String),
    fc.date().map((d) => d.toUTCString()),
    fc.constantFrom("1e309", "-0", "Infinity", "NaN", "", " ", "0x1", "1_000"),
    fc.constant(undefined),
    fc.constant(null),
  );
  fc.assert(
    fc.property(value, value, fc.double(), (ms, s, now) => {
      const r = parseRetryAfter(headers({ "retry-after-ms": ms, "retry-after": s }), now);
      if (r === undefined) return true;
      return Number.isFinite(r.ms) && r.ms >= 0 && (r.source === "retry-after-ms" || r.source === "retry-after");
    }),
    { numRuns: 5000 },
  );
});
