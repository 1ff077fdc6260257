/**
 * Bad input: whatever the provider, the network or the environment throws at us, the library neither
 * crashes, hangs, nor changes what the caller sees, its delays stay sane and its errors say what is
 * wrong.
 *  - Malformed JSON bodies and malformed / truncated SSE: the caller gets exactly what the SDK alone
 *    gives (compared with an `instrument(client, false)` client against the same scripted bytes), and
 *    every span we started ends.
 *  - Huge (64 KB / 12 KB) and duplicated headers; retry-after values `abc`, `-5`, `1e309`, empty, past
 *    and far-future HTTP-dates, …: sane, bounded delays with the source we report.
 *  - Broken LLM_RESILIENCE_* variables: a ConfigError naming the variable (in process and at start-up).
 *  - fast-check properties over the parsers we own: parseRetryAfter, parseRateLimitHeaders (+ the rate
 *    limiter they feed), the stream accumulators, optionsFromEnv.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import fc from "fast-check";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { ConfigError, instrument, register } from "../src/index.ts";
import { optionsFromEnv, resolveOptions } from "../src/config.ts";
import { parseRetryAfter } from "../src/policy/retry-after.ts";
import { parseRateLimitHeaders } from "../src/call/key-policies.ts";
import { RateLimiter } from "../src/policy/rate-limiter.ts";
import { ManualClock } from "../src/policy/clock.ts";
import { openaiAdapter } from "../src/providers/openai.ts";
import { anthropicAdapter } from "../src/providers/anthropic.ts";
import type { StreamAccumulator } from "../src/providers/types.ts";
import { startFakeProvider, type FakeProvider, type FaultRule } from "./fake-provider/index.ts";
import { errorShape, normalise, type Outcome } from "./fixtures/reliability/corpus.ts";
import { describeRun, runChild } from "./helpers/child.ts";
import { resultLine } from "./helpers/memory-logger.ts";
import { installCountingTelemetry } from "./helpers/otel.ts";

const { tel, counter } = installCountingTelemetry();
const MAX_DELAY_MS = 20;
let fake: FakeProvider;
let lib: { openai: OpenAI; anthropic: Anthropic };
let plain: { openai: OpenAI; anthropic: Anthropic };
let seq = 0;
const fresh = (p: string) => `${p}-bad-${++seq}`;
const msgs = [{ role: "user" as const, content: "hi" }];

before(async () => {
  fake = await startFakeProvider();
  register({ startSdk: false, logLevel: "silent", baseDelayMs: 1, maxDelayMs: MAX_DELAY_MS, breaker: false, rpm: 1_000_000 });
  const make = () => ({
    openai: new OpenAI({ apiKey: "sk-bad", baseURL: fake.openaiBaseURL }),
    anthropic: new Anthropic({ apiKey: "sk-ant-bad", baseURL: fake.anthropicBaseURL }),
  });
  lib = make();
  plain = make();
  instrument(plain.openai, false);
  instrument(plain.anthropic, false);
});
after(() => fake.close());
beforeEach(() => {
  fake.reset();
  tel.reset();
});

async function capture(f: () => Promise<unknown>): Promise<Outcome> {
  try {
    const v = await f();
    if (v && typeof (v as any)[Symbol.asyncIterator] === "function") {
      const chunks: unknown[] = [];
      try {
        for await (const c of v as AsyncIterable<unknown>) chunks.push(normalise(JSON.parse(JSON.stringify(c ?? null))));
        return { chunks };
      } catch (e) {
        return { chunks, error: errorShape(e) };
      }
    }
    return { value: normalise(JSON.parse(JSON.stringify(v ?? null))) };
  } catch (e) {
    return { error: errorShape(e) };
  }
}

/** The same scripted answer to a client without and with the library; returns both outcomes. */
async function sameBytes(
  sdk: "openai" | "anthropic",
  action: FaultRule["action"],
  call: (c: { openai: OpenAI; anthropic: Anthropic }, model: string) => Promise<unknown>,
): Promise<{ without: Outcome; with: Outcome; model: string; ms: number }> {
  const model = fresh(sdk);
  fake.script({ match: { model }, times: Infinity, action });
  const without = await capture(() => call(plain, model));
  const t0 = performance.now();
  const withLib = await capture(() => call(lib, model));
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 20)); // late span ends (body watchers, stream end)
  return { without, with: withLib, model, ms };
}

function assertSpansClosed(model: string, failed: boolean): void {
  assert.deepEqual(counter.open(), [], "every span we started has ended");
  assert.deepEqual(counter.endedTwice(), [], "and only once");
  const logical = tel.logical().filter((s) => s.attributes["gen_ai.request.model"] === model);
  assert.equal(logical.length, 1, "one logical span");
  assert.equal(logical[0]!.attributes["error.type"] !== undefined, failed, `error.type set iff the call failed (${logical[0]!.attributes["error.type"]})`);
}

const json = (rawBody: string, status = 200): FaultRule["action"] => ({ rawBody, contentType: "application/json", status });
const sse = (rawBody: string): FaultRule["action"] => ({ rawBody, contentType: "text/event-stream" });
const oaChat = (c: { openai: OpenAI }, model: string) => c.openai.chat.completions.create({ model, messages: msgs }, { maxRetries: 0 });
const oaStream = (c: { openai: OpenAI }, model: string) => c.openai.chat.completions.create({ model, messages: msgs, stream: true }, { maxRetries: 0 });
const anMsg = (c: { anthropic: Anthropic }, model: string) => c.anthropic.messages.create({ model, max_tokens: 5, messages: msgs }, { maxRetries: 0 });
const anStream = (c: { anthropic: Anthropic }, model: string) =>
  c.anthropic.messages.create({ model, max_tokens: 5, messages: msgs, stream: true }, { maxRetries: 0 });

describe("malformed bodies: the caller sees what the SDK alone gives, every span ends", () => {
  const bodies: [string, string][] = [
    ["truncated JSON", '{"id":"chatcmpl-1","object":"chat.completion","choices":[{"mess'],
    ["not JSON at all", "<html>502 Bad Gateway</html>"],
    ["empty body", ""],
    ["null", "null"],
    ["an array", "[1,2,3]"],
    ["wrong types everywhere", '{"id":123,"model":{"x":1},"choices":[null,{"finish_reason":5,"index":"a"}],"usage":{"prompt_tokens":"eleven","completion_tokens":-1}}'],
    ["choices is a string", '{"choices":"nope","usage":[]}'],
    ["deeply nested", "[".repeat(1000) + "]".repeat(1000)],
    ["invalid UTF-8", Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]).toString("latin1")],
  ];
  for (const [name, body] of bodies) {
    test(`openai JSON: ${name}`, async () => {
      const r = await sameBytes("openai", json(body), oaChat);
      assert.deepEqual(r.with, r.without);
      assertSpansClosed(r.model, r.with.error !== undefined);
    });
  }
  for (const [name, body] of [
    ["truncated JSON", '{"id":"msg_1","type":"message","content":[{"type":"te'],
    ["wrong types everywhere", '{"id":1,"type":"message","model":null,"content":null,"stop_reason":7,"usage":{"input_tokens":"x","output_tokens":1e308,"cache_read_input_tokens":1e308}}'],
    ["not JSON at all", "upstream connect error or disconnect/reset before headers"],
  ] as [string, string][]) {
    test(`anthropic JSON: ${name}`, async () => {
      const r = await sameBytes("anthropic", json(body), anMsg);
      assert.deepEqual(r.with, r.without);
      assertSpansClosed(r.model, r.with.error !== undefined);
    });
  }
  test("an error status with a body that is not JSON", async () => {
    const r = await sameBytes("openai", json("<html>oops</html>", 502), oaChat);
    assert.deepEqual(r.with, r.without);
    assert.equal(r.with.error?.status, 502);
    assertSpansClosed(r.model, true);
  });

  const chunk = (o: object) => `data: ${JSON.stringify(o)}\n\n`;
  const okChunk = { id: "chatcmpl-x", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta: { content: "hi" }, finish_reason: null }] };
  const streams: [string, string][] = [
    ["invalid JSON in data", "data: {not json\n\n"],
    ["truncated frame, no terminator", `data: ${JSON.stringify(okChunk)}`],
    ["a good chunk then a frame cut mid-JSON", chunk(okChunk) + 'data: {"id":"chatcmpl-x","cho'],
    ["data that is not an object", "data: null\n\ndata: 42\n\ndata: \"s\"\n\ndata: []\n\ndata: [DONE]\n\n"],
    ["wrong types in chunks", chunk({ choices: [{ index: -1, finish_reason: "stop" }, { index: "x", finish_reason: 7 }, null], usage: { prompt_tokens: "a" } }) + "data: [DONE]\n\n"],
    ["CRLF line endings", chunk(okChunk).replace(/\n/g, "\r\n") + "data: [DONE]\r\n\r\n"],
    ["binary garbage", Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 73) % 256)).toString("latin1")],
    ["empty body", ""],
    ["comments and unknown fields only", ": keep-alive\n\nretry: 10\n\nid: 7\n\n"],
    ["no [DONE]", chunk(okChunk)],
  ];
  for (const [name, body] of streams) {
    test(`openai SSE: ${name}`, async () => {
      const r = await sameBytes("openai", sse(body), oaStream);
      assert.deepEqual(r.with, r.without);
      assertSpansClosed(r.model, r.with.error !== undefined);
    });
  }
  const ev = (type: string, o: unknown) => `event: ${type}\ndata: ${JSON.stringify(o)}\n\n`;
  const anthropicStreams: [string, string][] = [
    ["invalid JSON in data", "event: message_start\ndata: {oops\n\n"],
    ["data that is not an object", "event: message_start\ndata: 42\n\nevent: message_delta\ndata: null\n\n"],
    [
      "null usage and delta, unknown events",
      ev("message_start", { type: "message_start", message: { id: 5, model: [], usage: null } }) +
        ev("ping", { type: "ping" }) +
        ev("future_event", { type: "future_event", x: [1] }) +
        ev("message_delta", { type: "message_delta", delta: null, usage: { output_tokens: "9" } }) +
        ev("message_stop", { type: "message_stop" }),
    ],
    ["truncated mid-frame", ev("message_start", { type: "message_start", message: { id: "msg_1", model: "m", usage: { input_tokens: 1 } } }) + 'event: content_block_delta\ndata: {"type":"content_bl'],
  ];
  for (const [name, body] of anthropicStreams) {
    test(`anthropic SSE: ${name}`, async () => {
      const r = await sameBytes("anthropic", sse(body), anStream);
      assert.deepEqual(r.with, r.without);
      assertSpansClosed(r.model, r.with.error !== undefined);
    });
  }
});

describe("headers: huge and duplicated", () => {
  test("a 64 KB response header: the same error as without the library, no hang", async () => {
    const r = await sameBytes("openai", { status: 200, headers: { "x-huge": "a".repeat(64 * 1024) }, body: {} } as any, oaChat);
    assert.deepEqual(r.with, r.without);
    assert.ok(r.with.error, "the HTTP client rejects a 64 KB header");
    assert.ok(r.ms < 5_000, `${r.ms} ms`);
    assertSpansClosed(r.model, true);
  });

  test("11 KB of garbage in rate-limit and request-id headers: the call succeeds, the next one does not wait", async () => {
    const model = fresh("openai");
    const garbage = {
      // Under the HTTP client's 16 KB limit for all headers together.
      "x-ratelimit-remaining-requests": "1".repeat(6_000),
      "x-ratelimit-reset-requests": "9".repeat(400) + "s",
      "x-ratelimit-remaining-tokens": "0",
      "x-ratelimit-reset-tokens": "x".repeat(3_000),
      "x-request-id": "r".repeat(2_000),
    };
    fake.script({ match: { model }, action: { success: { headers: garbage } } });
    const t0 = performance.now();
    const res = await oaChat(lib, model);
    assert.equal(res.choices[0]!.message.content, "tok0 tok1 tok2 ");
    await oaChat(lib, model);
    assert.ok(performance.now() - t0 < 3_000, "no wait from garbage headers");
    assert.ok(tel.logical().every((s) => s.events.every((e) => e.name !== "llm_resilience.ratelimit.wait")));
  });

  test("a provider reset time of 3 years does not block the key for longer than a retry-after could (60 s)", async () => {
    const model = fresh("openai");
    fake.script({ match: { model }, action: { success: { headers: { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "99999999s" } } } });
    await oaChat(lib, model);
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 1_500);
    await lib.openai.chat.completions
      .create({ model, messages: msgs }, { signal: ac.signal, maxRetries: 0 })
      .catch(() => undefined)
      .finally(() => clearTimeout(timer));
    const wait = tel.logical().at(-1)!.events.find((e) => e.name === "llm_resilience.ratelimit.wait");
    const waitMs = Number(wait?.attributes?.["llm_resilience.ratelimit.wait_ms"] ?? 0);
    assert.ok(waitMs <= 60_000, `the next call was told to wait ${waitMs} ms (${(waitMs / 86_400_000).toFixed(0)} days)`);
  });

  test("duplicated headers (retry-after-ms, rate-limit, request id): sane backoff, no crash", async () => {
    const model = fresh("openai");
    fake.script({
      match: { model },
      action: {
        status: 429,
        headers: {
          "retry-after-ms": ["10", "20000"],
          "retry-after": ["1", "2"],
          "x-ratelimit-remaining-requests": ["5", "0"],
          "x-request-id": ["req_a", "req_b"],
        } as any,
      },
    });
    const res = await oaChat(lib, model).catch((e) => e);
    assert.equal(res?.choices?.[0]?.message?.content, undefined, "maxRetries 0: the 429 reaches the caller");
    assert.equal(res.status, 429);
    fake.script({ match: { model }, action: { status: 429, headers: { "retry-after-ms": ["10", "20000"], "retry-after": ["1", "2"] } as any } });
    const t0 = performance.now();
    await lib.openai.chat.completions.create({ model, messages: msgs });
    assert.ok(performance.now() - t0 < 2_000);
    const [retry] = tel.logical().at(-1)!.events.filter((e) => e.name === "llm_resilience.retry");
    assert.equal(retry!.attributes!["llm_resilience.retry.delay_source"], "backoff", "'10, 20000' and '1, 2' are not delays");
    assert.ok(Number(retry!.attributes!["llm_resilience.retry.delay_ms"]) <= MAX_DELAY_MS);
  });
});

describe("retry-after values", () => {
  const future = "Fri, 31 Dec 9999 23:59:59 GMT";
  const cases: { name: string; headers: Record<string, string>; source?: string; max?: number; exact?: number; giveUp?: boolean }[] = [
    { name: "retry-after: abc", headers: { "retry-after": "abc" }, source: "backoff", max: MAX_DELAY_MS },
    { name: "retry-after: -5", headers: { "retry-after": "-5" }, source: "backoff", max: MAX_DELAY_MS },
    { name: "retry-after: 1e309", headers: { "retry-after": "1e309" }, source: "backoff", max: MAX_DELAY_MS },
    { name: "retry-after: (empty)", headers: { "retry-after": "" }, source: "backoff", max: MAX_DELAY_MS },
    { name: "retry-after: 0x10", headers: { "retry-after": "0x10" }, source: "backoff", max: MAX_DELAY_MS },
    { name: "retry-after: 0.02 (seconds)", headers: { "retry-after": "0.02" }, source: "retry-after", exact: 20 },
    { name: "retry-after: an HTTP-date in the past", headers: { "retry-after": "Sun, 06 Nov 1994 08:49:37 GMT" }, source: "retry-after", exact: 0 },
    { name: "retry-after: an RFC 850 date in the past", headers: { "retry-after": "Sunday, 06-Nov-94 08:49:37 GMT" }, source: "retry-after", exact: 0 },
    { name: "retry-after: an HTTP-date in year 9999", headers: { "retry-after": future }, giveUp: true },
    { name: "retry-after: 10^20 seconds", headers: { "retry-after": "99999999999999999999" }, giveUp: true },
    { name: "retry-after-ms: NaN", headers: { "retry-after-ms": "NaN" }, source: "backoff", max: MAX_DELAY_MS },
    { name: "retry-after-ms: Infinity", headers: { "retry-after-ms": "Infinity" }, source: "backoff", max: MAX_DELAY_MS },
    { name: "retry-after-ms: 1e1", headers: { "retry-after-ms": "1e1" }, source: "retry-after-ms", exact: 10 },
    { name: "retry-after-ms: '  15  '", headers: { "retry-after-ms": "  15  " }, source: "retry-after-ms", exact: 15 },
    { name: "retry-after-ms garbage, retry-after valid", headers: { "retry-after-ms": "soon", "retry-after": "0" }, source: "retry-after", exact: 0 },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const model = fresh("openai");
      fake.script({ match: { model }, action: { status: 429, headers: c.headers } });
      const t0 = performance.now();
      const out = await capture(() => lib.openai.chat.completions.create({ model, messages: msgs }));
      const ms = performance.now() - t0;
      const span = tel.logical().at(-1)!;
      if (c.giveUp) {
        assert.equal(out.error?.class, "RateLimitError", "given up, the 429 reaches the caller");
        assert.equal(fake.requests.length, 1);
        const giveUp = span.events.find((e) => e.name === "llm_resilience.give_up");
        assert.equal(giveUp?.attributes?.["llm_resilience.give_up.reason"], "retry_after_too_long");
        assert.ok(ms < 2_000, `gave up after ${ms} ms`);
        return;
      }
      assert.equal(out.error, undefined, JSON.stringify(out.error));
      const retry = span.events.find((e) => e.name === "llm_resilience.retry")!;
      const delay = Number(retry.attributes!["llm_resilience.retry.delay_ms"]);
      assert.equal(retry.attributes!["llm_resilience.retry.delay_source"], c.source);
      if (c.exact !== undefined) assert.equal(delay, c.exact);
      if (c.max !== undefined) assert.ok(delay >= 0 && delay <= c.max, `delay ${delay}`);
      assert.ok(ms < 2_000, `${ms} ms`);
    });
  }
});

// ------------------------------------------------------------------ configuration
const INT_VARS = [
  "LLM_RESILIENCE_MAX_ATTEMPTS",
  "LLM_RESILIENCE_BASE_DELAY_MS",
  "LLM_RESILIENCE_MAX_DELAY_MS",
  "LLM_RESILIENCE_MAX_RETRY_AFTER_MS",
  "LLM_RESILIENCE_ATTEMPT_TIMEOUT_MS",
  "LLM_RESILIENCE_DEADLINE_MS",
  "LLM_RESILIENCE_BREAKER_FAILURES",
  "LLM_RESILIENCE_BREAKER_COOLDOWN_MS",
  "LLM_RESILIENCE_RPM",
  "LLM_RESILIENCE_TPM",
];
const ALL_VARS = [
  ...INT_VARS,
  "LLM_RESILIENCE_FALLBACKS",
  "LLM_RESILIENCE_CONTEXT_FALLBACKS",
  "LLM_RESILIENCE_LOG_LEVEL",
  "LLM_RESILIENCE_DISABLED",
  "LLM_RESILIENCE_OPENAI_STREAM_USAGE",
  "LLM_RESILIENCE_REDIS_URL",
  "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
];
const GARBAGE: Record<string, string[]> = {
  int: ["abc", "-1", "1.5", "1e3", "0x10", "Infinity", "NaN", "99999999999999999999", "12abc", "１２", "1 2", "+5", "\u0000", "5ms"],
  LLM_RESILIENCE_FALLBACKS: ["gpt-4o:gpt-4o-mini", '{"gpt-4o":"gpt-4o-mini"}', "[]", "null", '"x"', '{"gpt-4o":[1]}', '{"gpt-4o":[""]}', '{"":["a"]}', '{"gpt-4o":', "[".repeat(100_000)],
  LLM_RESILIENCE_LOG_LEVEL: ["loud", "INFO ", "10", "verbose"],
  LLM_RESILIENCE_DISABLED: ["maybe", "yes", "2", "on"],
  LLM_RESILIENCE_OPENAI_STREAM_USAGE: ["sure"],
  OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: ["enabled"],
  LLM_RESILIENCE_REDIS_URL: ["localhost:6379", "http://redis:6379", "redis://"],
};
GARBAGE.LLM_RESILIENCE_CONTEXT_FALLBACKS = GARBAGE.LLM_RESILIENCE_FALLBACKS!;
// BREAKER_FAILURES accepts 0 (= off), the others their own minimum.
const garbageFor = (v: string) => GARBAGE[v] ?? GARBAGE.int!.filter((g) => !(v.endsWith("_MS") && g === "0"));

describe("broken configuration variables", () => {
  test("each variable with garbage: a ConfigError that names it and says what it accepts", () => {
    let checked = 0;
    for (const name of ALL_VARS) {
      for (const value of garbageFor(name)) {
        assert.throws(
          () => resolveOptions({}, { [name]: value }),
          (e: any) => e instanceof ConfigError && e.setting === name && e.message.includes(name) && /expected/.test(e.message),
          `${name}=${JSON.stringify(value).slice(0, 40)}`,
        );
        checked++;
      }
    }
    assert.ok(checked > 100);
  });

  test("a Redis URL with credentials is not echoed in the error", () => {
    assert.throws(() => optionsFromEnv({ LLM_RESILIENCE_REDIS_URL: "rediz://user:hunter2@host" }), (e: any) => e instanceof ConfigError && !e.message.includes("hunter2"));
  });

  for (const [name, value] of [
    ["LLM_RESILIENCE_MAX_ATTEMPTS", "abc"],
    ["LLM_RESILIENCE_FALLBACKS", '{"gpt-4o":'],
  ]) {
    test(`start-up with ${name}=${value}: stops at once with the error, before the app runs`, async () => {
      const r = await runChild(["-r", "llm-resilience/register", "-e", "console.log('APP RAN')"], { env: { [name!]: value }, timeoutMs: 15_000 });
      assert.equal(r.timedOut, false, describeRun(r));
      assert.notEqual(r.code, 0, describeRun(r));
      assert.doesNotMatch(r.stdout, /APP RAN/);
      assert.match(r.stderr, new RegExp(`ConfigError.*${name}|${name}.*expected`), describeRun(r));
    });
  }
});

// ------------------------------------------------------------------ fuzz
let fuzzCases = 0;
const counted = <T extends unknown[]>(f: (...a: T) => void) => (...a: T) => {
  fuzzCases++;
  f(...a);
};
const headerValue = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.double().map(String),
  fc.integer().map(String),
  fc.stringMatching(/^\d{1,400}$/),
  fc.stringMatching(/^\s*-?\d{0,12}(\.\d{0,6})?([eE][+-]?\d{1,4})?\s*$/),
  fc.date({ noInvalidDate: false }).map((d) => (Number.isNaN(d.getTime()) ? "Invalid Date" : d.toUTCString())),
  fc.stringMatching(/^(\d{1,6}(\.\d{1,3})?(ms|s|m|h)){1,4}$/),
  fc.constantFrom("", " ", "abc", "-5", "1e309", "Infinity", "NaN", "0x10", "1,2", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"),
);
const headersFrom = (h: Record<string, string | undefined>) => ({ get: (n: string) => h[n] ?? null });
const finiteNonNeg = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v >= 0;

describe("property-based (fast-check) over the parsers we own", () => {
  after(() => {
    console.log(`# fuzz cases run: ${fuzzCases}`);
  });

  test("parseRetryAfter never throws; gives a finite delay >= 0 from a known source, or nothing", () => {
    fc.assert(
      fc.property(fc.option(headerValue), fc.option(headerValue), fc.integer({ min: 0, max: 4_102_444_800_000 }), counted((ms, ra, now) => {
        const r = parseRetryAfter((n) => (n === "retry-after-ms" ? ms : n === "retry-after" ? ra : null), now);
        if (r === undefined) return;
        assert.ok(finiteNonNeg(r.ms), `ms ${r.ms}`);
        assert.ok(r.source === "retry-after-ms" || r.source === "retry-after");
      })),
      { numRuns: 4000 },
    );
  });

  test("parseRetryAfter reads what it should: integer ms, seconds, and IMF dates", () => {
    const now = Date.UTC(2026, 0, 1);
    fc.assert(
      fc.property(fc.nat(1e9), fc.nat(1e6), fc.integer({ min: -1e10, max: 1e10 }), counted((msN, sec, offset) => {
        assert.deepEqual(parseRetryAfter((n) => (n === "retry-after-ms" ? String(msN) : null), now), { ms: msN, source: "retry-after-ms" });
        assert.deepEqual(parseRetryAfter((n) => (n === "retry-after" ? String(sec) : null), now), { ms: sec * 1000, source: "retry-after" });
        const at = Math.floor((now + offset) / 1000) * 1000;
        const r = parseRetryAfter((n) => (n === "retry-after" ? new Date(at).toUTCString() : null), now);
        assert.deepEqual(r, { ms: Math.max(0, at - now), source: "retry-after" });
      })),
      { numRuns: 1500 },
    );
  });

  const RL_HEADERS = [
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-reset",
  ];
  test("parseRateLimitHeaders never throws; counts and resets are >= 0; the limiter they feed waits a finite time", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...RL_HEADERS), headerValue), fc.integer({ min: 0, max: 4_102_444_800_000 }), counted((h, now) => {
        const parsed = parseRateLimitHeaders(headersFrom(h), now);
        if (parsed === undefined) return;
        for (const [k, v] of Object.entries(parsed)) assert.ok(v === undefined || (typeof v === "number" && v >= 0 && !Number.isNaN(v)), `${k}=${v}`);
        const limiter = new RateLimiter("k", { requestsPerMinute: 60, tokensPerMinute: 10_000, clock: new ManualClock(now) });
        limiter.applyServerHeaders(parsed);
        const wait = limiter.reserve(100).waitMs;
        assert.ok(finiteNonNeg(wait), `wait ${wait}`);
      })),
      { numRuns: 3000 },
    );
  });

  // Chunks: any JSON, or shapes close to the real ones with arbitrary values in every field.
  const anyField = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined));
  const smallIndex = fc.oneof(fc.integer({ min: -3, max: 200 }), fc.double({ min: -1, max: 200 }), fc.string({ maxLength: 3 }), fc.constant(null));
  const usageGen = fc.oneof(anyField, fc.dictionary(fc.constantFrom("prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "prompt_tokens_details", "completion_tokens_details"), fc.oneof(fc.double(), fc.integer(), anyField)));
  const openaiChunk = fc.record(
    { id: anyField, model: anyField, choices: fc.oneof(anyField, fc.array(fc.oneof(anyField, fc.record({ index: smallIndex, finish_reason: anyField, delta: anyField }, { requiredKeys: [] })), { maxLength: 5 })), usage: usageGen },
    { requiredKeys: [] },
  );
  const responsesEvent = fc.record(
    { type: fc.oneof(fc.constantFrom("response.created", "response.completed", "response.incomplete", "response.failed", "response.output_text.delta"), fc.string()), response: fc.oneof(anyField, fc.record({ id: anyField, model: anyField, status: anyField, usage: usageGen, incomplete_details: anyField }, { requiredKeys: [] })) },
    { requiredKeys: [] },
  );
  const anthropicEvent = fc.record(
    {
      type: fc.oneof(fc.constantFrom("message_start", "message_delta", "content_block_delta", "message_stop"), fc.string()),
      message: fc.oneof(anyField, fc.record({ id: anyField, model: anyField, usage: usageGen }, { requiredKeys: [] })),
      delta: fc.oneof(anyField, fc.record({ stop_reason: anyField }, { requiredKeys: [] })),
      usage: usageGen,
    },
    { requiredKeys: [] },
  );
  const sane = (acc: StreamAccumulator) => {
    const i = acc.info;
    assert.ok(i.id === undefined || typeof i.id === "string", "id");
    assert.ok(i.model === undefined || typeof i.model === "string", "model");
    assert.ok(i.finishReasons === undefined || (Array.isArray(i.finishReasons) && i.finishReasons.every((r) => typeof r === "string")), "finish reasons");
    for (const [k, v] of Object.entries(i.usage ?? {})) assert.ok(v === undefined || (typeof v === "number" && !Number.isNaN(v)), `usage.${k}=${v}`);
  };
  const accumulators: [string, () => StreamAccumulator, fc.Arbitrary<unknown>][] = [
    ["openai chat", () => openaiAdapter.streamAccumulator(openaiAdapter.operationForPath("/chat/completions")!, true), openaiChunk],
    ["openai responses", () => openaiAdapter.streamAccumulator(openaiAdapter.operationForPath("/responses")!, false), responsesEvent],
    ["anthropic messages", () => anthropicAdapter.streamAccumulator(anthropicAdapter.operationForPath("/v1/messages")!, false), anthropicEvent],
  ];
  for (const [name, make, shaped] of accumulators) {
    test(`${name} stream accumulator: any sequence of JSON values never throws and leaves sane info`, () => {
      fc.assert(
        fc.property(fc.array(fc.oneof(fc.jsonValue(), shaped), { maxLength: 20 }), counted((chunks) => {
          const acc = make();
          const t0 = performance.now();
          for (const c of chunks) assert.equal(typeof acc.add(c), "boolean");
          sane(acc);
          assert.ok(performance.now() - t0 < 250, "fast");
        })),
        { numRuns: 1500 },
      );
    });
  }

  test("openai chat accumulator: a chunk whose choice index is 2^32-2 costs no more than any other chunk", async () => {
    const r = await runChild(["--import", "tsx", "test/fixtures/reliability/accumulator-index.ts"], { timeoutMs: 10_000 });
    const out = resultLine(r.stdout);
    assert.ok(out && !r.timedOut, `add() did not return within 10 s (the process was killed)\n${describeRun(r)}`);
    assert.ok(out.times.every((t: number) => t < 50), `add() took ${out.times.map((t: number) => t.toFixed(0)).join(" / ")} ms`);
    assert.deepEqual(out.info.finishReasons, ["length", "stop"], "finish reasons in choice order");
  });

  test("optionsFromEnv with arbitrary strings: only a ConfigError naming a set variable, else sane options", () => {
    const value = fc.oneof(headerValue, fc.jsonValue().map((v) => JSON.stringify(v)), fc.constantFrom("0", "1", "true", "false", "info", "silent", '{"a":["b"]}', "redis://h:1"));
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...ALL_VARS), value, { maxKeys: 5 }), counted((env) => {
        let o;
        try {
          o = optionsFromEnv(env);
        } catch (e) {
          assert.ok(e instanceof ConfigError, `threw ${e}`);
          assert.ok(Object.keys(env).includes(e.setting), `names ${e.setting}`);
          return;
        }
        const ints: [unknown, number][] = [
          [o.maxAttempts, 1], [o.baseDelayMs, 0], [o.maxDelayMs, 0], [o.maxRetryAfterMs, 0], [o.attemptTimeoutMs, 1], [o.deadlineMs, 1], [o.rpm, 1], [o.tpm, 1],
        ];
        for (const [v, min] of ints) assert.ok(v === undefined || (Number.isSafeInteger(v) && (v as number) >= min), `int ${v}`);
        for (const map of [o.fallbacks, o.contextFallbacks]) {
          if (map === undefined) continue;
          for (const [k, list] of Object.entries(map)) assert.ok(k.length > 0 && list.every((m) => typeof m === "string" && m.length > 0));
        }
        if (o.breaker !== undefined && o.breaker !== false) {
          for (const v of [o.breaker.failures, o.breaker.cooldownMs]) assert.ok(v === undefined || Number.isSafeInteger(v));
        }
        for (const b of [o.disabled, o.captureContent, o.openaiStreamUsage]) assert.ok(b === undefined || typeof b === "boolean");
        // And the merged options start-up would run with are consistent.
        try {
          const r = resolveOptions({}, env);
          assert.ok(r.maxDelayMs >= r.baseDelayMs);
        } catch (e) {
          assert.ok(e instanceof ConfigError, `resolveOptions threw ${e}`);
        }
      })),
      { numRuns: 3000 },
    );
  });

  test("fuzz case count", () => {
    assert.ok(fuzzCases >= 4000 + 1500 + 3000 + 3 * 1500 + 3000, `ran ${fuzzCases}`);
  });
});
