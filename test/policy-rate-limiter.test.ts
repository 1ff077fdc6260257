import { test } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../src/policy/clock.ts";
import { Deadline } from "../src/policy/deadline.ts";
import { estimateTokens, RateLimiter } from "../src/policy/rate-limiter.ts";

test("no limits: zero wait, no state", () => {
  const l = new RateLimiter("k");
  assert.equal(l.enabled, false);
  assert.deepEqual(l.reserve(1e9), { waitMs: 0, granted: true, store: "local" });
});

test("RPM 60: the 61st request in the same second waits ~1 s, the 62nd ~2 s", () => {
  const clock = new ManualClock(0);
  const l = new RateLimiter("k", { requestsPerMinute: 60, clock });
  for (let i = 0; i < 60; i++) assert.equal(l.reserve(0).waitMs, 0, `request ${i + 1}`);
  const r61 = l.reserve(0);
  assert.equal(r61.kind, "requests");
  assert.ok(Math.abs(r61.waitMs - 1000) <= 1, `waitMs=${r61.waitMs}`);
  assert.ok(Math.abs(l.reserve(0).waitMs - 2000) <= 1);
  clock.advance(62_000); // the 2 s of debt, then a full minute: refilled and capped at capacity
  for (let i = 0; i < 60; i++) assert.equal(l.reserve(0).waitMs, 0);
  assert.ok(l.reserve(0).waitMs > 0);
});

test("TPM bounds tokens per minute; waits queue in order", () => {
  const clock = new ManualClock(0);
  const l = new RateLimiter("k", { tokensPerMinute: 10_000, clock });
  assert.equal(l.reserve(6000).waitMs, 0);
  const second = l.reserve(6000); // 2000 in debt: 2000 / (10000/60000) ms
  assert.equal(second.kind, "tokens");
  assert.equal(second.waitMs, 12_000);
  const third = l.reserve(1000);
  assert.equal(third.waitMs, 18_000);
  // Over a simulated 10 minutes with callers honouring the wait, throughput stays at the limit.
  const c2 = new ManualClock(0);
  const l2 = new RateLimiter("k", { tokensPerMinute: 10_000, clock: c2 });
  let sent = 0;
  let lastSend = 0;
  for (let i = 0; i < 1000; i++) {
    const r = l2.reserve(500);
    lastSend = c2.now() + r.waitMs;
    if (lastSend <= 600_000) sent += 500;
  }
  assert.ok(sent <= 10_000 * 10 + 10_000, `sent=${sent}`); // 10 minutes + the initial burst
});

test("the binding limit names the kind", () => {
  const clock = new ManualClock(0);
  const l = new RateLimiter("k", { requestsPerMinute: 1000, tokensPerMinute: 1000, clock });
  const a = l.reserve(1000);
  assert.deepEqual(a, { waitMs: 0, granted: true, store: "local" });
  const b = l.reserve(500);
  assert.equal(b.kind, "tokens");
  assert.equal(b.waitMs, 30_000);
});

test("deadline: a wait it does not allow reserves nothing", () => {
  const clock = new ManualClock(0);
  const l = new RateLimiter("k", { requestsPerMinute: 60, tokensPerMinute: 60_000, clock });
  for (let i = 0; i < 60; i++) l.reserve(10);
  const refused = l.reserve(10, new Deadline(500, clock));
  assert.equal(refused.granted, false);
  assert.ok(refused.waitMs >= 1000);
  const granted = l.reserve(10, new Deadline(1500, clock));
  assert.equal(granted.granted, true);
  assert.ok(Math.abs(granted.waitMs - 1000) <= 1, "the refused reservation did not push this one back");
});

test("cancel gives a granted reservation back", () => {
  const clock = new ManualClock(0);
  const l = new RateLimiter("k", { requestsPerMinute: 1, clock });
  l.reserve(0);
  const r = l.reserve(0);
  assert.equal(r.waitMs, 60_000);
  l.cancel(0);
  assert.equal(l.reserve(0).waitMs, 60_000);
});

test("correct: real usage settles the estimate both ways", () => {
  const clock = new ManualClock(0);
  const l = new RateLimiter("k", { tokensPerMinute: 6000, clock });
  l.reserve(6000);
  l.correct(6000, 1000); // 5000 back
  assert.equal(l.reserve(5000).waitMs, 0);
  l.correct(100, 3100); // used 3000 more than estimated: now 3000 in debt
  assert.equal(l.reserve(0).waitMs, 30_000);
  l.correct(100, NaN); // ignored
  assert.equal(l.reserve(0).waitMs, 30_000);
});

test("server headers tighten, never loosen", () => {
  const clock = new ManualClock(0);
  const l = new RateLimiter("k", { requestsPerMinute: 600, tokensPerMinute: 100_000, clock });
  l.applyServerHeaders({ remainingRequests: 1, remainingTokens: 50_000 });
  assert.equal(l.reserve(1000).waitMs, 0);
  const r = l.reserve(1000); // the request bucket is empty: 1 / (600/60000) = 100 ms
  assert.equal(r.kind, "requests");
  assert.equal(r.waitMs, 100);
  // A looser server view changes nothing.
  l.applyServerHeaders({ remainingRequests: 10_000, remainingTokens: 10_000_000 });
  assert.equal(l.reserve(0).waitMs, 200);
});

test("server headers: an exhausted limit blocks until its reset", () => {
  const clock = new ManualClock(0);
  const l = new RateLimiter("k", { requestsPerMinute: 600, tokensPerMinute: 100_000, clock });
  l.applyServerHeaders({ remainingTokens: 0, resetTokensMs: 20_000, remainingRequests: 5, resetRequestsMs: 999 });
  const r = l.reserve(10);
  assert.equal(r.kind, "tokens");
  assert.equal(r.waitMs, 20_000);
  clock.advance(20_000);
  assert.equal(l.reserve(10).waitMs, 0);
  // Garbage header values are ignored.
  l.applyServerHeaders({ remainingRequests: NaN, remainingTokens: -5, resetTokensMs: Infinity });
  assert.equal(l.reserve(10).waitMs, 0);
});

test("headers do not create limits that were not configured", () => {
  const clock = new ManualClock(0);
  const l = new RateLimiter("k", { requestsPerMinute: 600, clock });
  l.applyServerHeaders({ remainingTokens: 0, resetTokensMs: 60_000 });
  assert.equal(l.reserve(1e6).waitMs, 0);
});

test("invalid limits throw", () => {
  assert.throws(() => new RateLimiter("k", { requestsPerMinute: 0 }), /requestsPerMinute/);
  assert.throws(() => new RateLimiter("k", { tokensPerMinute: Infinity }), /tokensPerMinute/);
});

test("estimateTokens: chars / 4 over JSON, plus max_tokens; never throws", () => {
  const messages = [{ role: "user", content: "x".repeat(400) }];
  const json = JSON.stringify(messages).length;
  assert.equal(estimateTokens(messages), Math.ceil(json / 4));
  assert.equal(estimateTokens(messages, 256), Math.ceil(json / 4) + 256);
  assert.equal(estimateTokens("abcdefgh"), 2);
  assert.equal(estimateTokens(undefined, 10), 10);
  assert.equal(estimateTokens(null), 0);
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  assert.equal(estimateTokens(circular, 5), 5);
  assert.equal(estimateTokens({ n: 1n }), 0);
  assert.equal(estimateTokens("ab", -3), 1);
  assert.equal(estimateTokens("ab", NaN), 1);
});

test("estimateTokens: base64 media count as a flat allowance, not as text", () => {
  const b64 = "A".repeat(1_000_000);
  const openai = [{ role: "user", content: [{ type: "image_url", image_url: { url: `data:image/png;base64,${b64}` } }] }];
  const anthropic = [{ role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: b64 } }] }];
  for (const m of [openai, anthropic]) {
    const n = estimateTokens(m);
    assert.ok(n >= 1000 && n < 1100, `n=${n}`);
  }
});
