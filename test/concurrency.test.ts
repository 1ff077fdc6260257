/**
 * Concurrency.
 * 1. 1,000 concurrent calls (both SDKs, launched in a steady stream over ~1 s) through a breaker the
 *    fake provider opens and closes (503 phases, then healthy, then 503, then healthy). Invariants:
 *    - while half-open, at most K (halfOpenProbes) requests reach the provider per half-open episode —
 *      counted on the provider's side: each request is tied to its call by a body tag and to the attempt
 *      that sent it, whose start falls inside the episode;
 *    - no lost or doubled span: exactly one logical span per call, every span ended once, each logical
 *      span's `llm_resilience.attempts` equals its attempt children, attempts == requests received;
 *    - the breaker's telemetry agrees with itself: transition events == log lines == the transitions
 *      counter, a legal state sequence, the state gauge == the last transition, rejections == the
 *      BreakerOpenErrors the callers got.
 * 2. Abort storms: 1,000 calls aborted at random moments (before starting, in our waits, in flight,
 *    mid-stream) in a child process leave no timers behind: it exits on its own, as promptly as the
 *    same storm without the library.
 * 3. Per-client overrides (`instrument(client, { breaker })`) keep their state across that client's calls.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { trace, type Span } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { BreakerOpenError, instrument, register } from "../src/index.ts";
import { startFakeProvider, type FakeProvider } from "./fake-provider/index.ts";
import { describeRun, runChild, type ChildResult } from "./helpers/child.ts";
import { memoryLogger, resultLine } from "./helpers/memory-logger.ts";
import { installCountingTelemetry } from "./helpers/otel.ts";

const { tel, counter } = installCountingTelemetry();
const mem = memoryLogger("warn");
const CALLS = 1000;
const K = 3;
const MODEL = "conc-model";
let fake: FakeProvider;
/** A fake of its own for each abort-storm child, so the breaker phases below never touch their rules. */
let stormFakes: FakeProvider[];

type Outcome = { i: number; ok: boolean; error?: string };
const outcomes: Outcome[] = [];
const callerSpans = new Map<string, number>(); // spanId of the caller's span -> call index
const hr = (t: [number, number]) => t[0] * 1e3 + t[1] / 1e6;

// One monotonic clock for both sides of the half-open count (OTel timestamps are anchored per trace,
// so times from two different traces are not comparable to the millisecond): when each attempt span
// started, and when each breaker transition event was added.
const attemptStartedAt = new Map<string, number>();
const transitionsAt: { t: number; from: string; to: string; key: string }[] = [];
{
  const onStart = counter.onStart.bind(counter);
  counter.onStart = (span: any) => {
    onStart(span);
    if (span.name.endsWith(" attempt")) {
      attemptStartedAt.set(span.spanContext().spanId, performance.now());
      return;
    }
    const addEvent = span.addEvent.bind(span);
    span.addEvent = (name: string, attributes?: any, time?: any) => {
      if (name === "llm_resilience.breaker.transition") {
        transitionsAt.push({ t: performance.now(), from: attributes["llm_resilience.breaker.from"], to: attributes["llm_resilience.breaker.to"], key: attributes["llm_resilience.breaker.key"] });
      }
      return addEvent(name, attributes, time);
    };
  };
}

// Abort storm results, run concurrently with part 1 (a child process each).
type Storm = ChildResult & { exitedAt: number };
let stormWith: Promise<Storm>;
let stormWithout: Promise<Storm>;
/** Started after the in-process part, so the children's calls are not starved by it. */
let startStorms: () => void;

before(async () => {
  [fake, ...stormFakes] = await Promise.all([startFakeProvider(), startFakeProvider(), startFakeProvider()]);
  fake.setDefaults({ latencyMs: 8 });
  for (const f of stormFakes) {
    f.script(
      { match: { model: "storm-hang" }, times: Infinity, action: { hang: true } },
      { match: { model: "storm-429" }, times: Infinity, action: { status: 429, headers: { "retry-after-ms": "10000", "retry-after": "10" } } },
      { match: { model: "storm-stream" }, times: Infinity, action: { success: { chunks: 30, chunkDelayMs: 20 } } },
      { match: { model: "storm-slow" }, times: Infinity, action: { delayMs: 60 } },
      // The first two answers (one per SDK) say the request budget is spent for 30 s.
      {
        match: { model: "storm-rl" },
        times: 2,
        action: { success: { headers: { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "30s", "anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": new Date(Date.now() + 30_000).toISOString() } } },
      },
      { match: { model: "storm-503" }, times: Infinity, action: { status: 503, headers: { "retry-after-ms": "300" } } },
    );
  }
  const storm = (withLibrary: boolean) =>
    runChild(["test/fixtures/reliability/abort-storm.cjs"], {
      env: { FAKE_URL: stormFakes[withLibrary ? 1 : 0]!.url, WITH_LIBRARY: withLibrary ? "1" : "0", STORM_CALLS: String(CALLS) },
      timeoutMs: 45_000,
    }).then((r) => ({ ...r, exitedAt: Date.now() }));
  startStorms = () => {
    stormWithout = storm(false);
    stormWith = storm(true);
  };

  register({
    startSdk: false,
    logger: mem.logger,
    baseDelayMs: 1,
    maxDelayMs: 5,
    maxAttempts: 2,
    retryBudget: false,
    breaker: { failures: 5, cooldownMs: 60, halfOpenProbes: K },
  });
  const openai = new OpenAI({ apiKey: "sk-conc", baseURL: fake.openaiBaseURL });
  const anthropic = new Anthropic({ apiKey: "sk-ant-conc", baseURL: fake.anthropicBaseURL });
  const failing = () => {
    fake.script({ match: { model: MODEL }, times: Infinity, action: { status: 503 } });
  };
  const healthy = () => fake.clearRules();
  // Warm-up (lazy loading, JIT) on other models, so the phases below are not distorted by it.
  await Promise.all([
    openai.chat.completions.create({ model: "conc-warmup", messages: [{ role: "user", content: "w" }] }),
    anthropic.messages.create({ model: "conc-warmup", max_tokens: 5, messages: [{ role: "user", content: "w" }] }),
  ]);
  tel.reset();
  fake.reset();

  const tracer = trace.getTracer("concurrency-test");
  // One breaker key for both SDKs would need one provider; use OpenAI for the breaker model and mix in
  // Anthropic calls on a healthy model so both SDKs share the load.
  const call = (i: number): Promise<void> =>
    tracer.startActiveSpan(`caller ${i}`, async (span: Span) => {
      callerSpans.set(span.spanContext().spanId, i);
      try {
        if (i % 4 === 3) await anthropic.messages.create({ model: "conc-claude", max_tokens: 5, messages: [{ role: "user", content: `call ${i}` }] });
        else await openai.chat.completions.create({ model: MODEL, user: `call-${i}`, messages: [{ role: "user", content: "hi" }] });
        outcomes.push({ i, ok: true });
      } catch (e: any) {
        outcomes.push({ i, ok: false, error: e?.constructor?.name });
      } finally {
        span.end();
      }
    });

  // Phases by launch count (not wall time, which a loaded machine stretches): 503s for calls 0-299,
  // healthy for 300-549, 503s for 550-799, healthy from 800 on.
  const pending: Promise<void>[] = [];
  for (let i = 0; i < CALLS; i += 5) {
    if (i === 0 || i === 550) failing();
    if (i === 300 || i === 800) healthy();
    for (let j = i; j < i + 5 && j < CALLS; j++) pending.push(call(j));
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(pending);
  healthy();
  await new Promise((r) => setTimeout(r, 50));
});
after(() => Promise.all([fake, ...stormFakes].map((f) => f.close())));

function logicalOf(callerSpanId: string): ReadableSpan[] {
  return tel.logical().filter((s) => s.parentSpanContext?.spanId === callerSpanId);
}
const transitions = () =>
  tel
    .logical()
    .flatMap((s) => s.events.filter((e) => e.name === "llm_resilience.breaker.transition"))
    .sort((a, b) => hr(a.time) - hr(b.time))
    .map((e) => ({ t: hr(e.time), from: String(e.attributes!["llm_resilience.breaker.from"]), to: String(e.attributes!["llm_resilience.breaker.to"]), key: String(e.attributes!["llm_resilience.breaker.key"]) }));

describe(`${CALLS} concurrent calls through an opening and closing breaker`, () => {
  test("every call settled, with a success or the error of a policy/provider", () => {
    assert.equal(outcomes.length, CALLS);
    const kinds = new Set(outcomes.map((o) => (o.ok ? "ok" : o.error)));
    for (const k of kinds) assert.ok(["ok", "InternalServerError", "BreakerOpenError"].includes(k!), `unexpected outcome ${k}`);
    assert.ok(outcomes.some((o) => o.ok) && outcomes.some((o) => o.error === "BreakerOpenError") && outcomes.some((o) => o.error === "InternalServerError"), [...kinds].join(","));
  });

  test("no lost or doubled span: one logical span per call, attempts consistent, all ended once", () => {
    assert.deepEqual(counter.open(), [], "spans left open");
    assert.deepEqual(counter.endedTwice(), [], "spans ended twice");
    assert.equal(tel.logical().length, CALLS, "logical spans == calls");
    let attempts = 0;
    for (const [spanId, i] of callerSpans) {
      const logical = logicalOf(spanId);
      assert.equal(logical.length, 1, `call ${i}: ${logical.length} logical spans`);
      const children = tel.attemptsOf(logical[0]!);
      assert.equal(logical[0]!.attributes["llm_resilience.attempts"], children.length, `call ${i}: llm_resilience.attempts`);
      assert.deepEqual(children.map((c) => c.attributes["llm_resilience.attempt.number"]), children.map((_, n) => n + 1), `call ${i}: attempt numbers`);
      attempts += children.length;
      const o = outcomes.find((x) => x.i === i)!;
      assert.equal(logical[0]!.status.code === 2, !o.ok, `call ${i}: span status follows the outcome`);
      if (o.error === "BreakerOpenError") assert.equal(logical[0]!.attributes["error.type"], "breaker_open");
    }
    assert.equal(attempts, fake.requests.filter((r) => r.model === MODEL || r.model === "conc-claude").length, "one attempt span per request received");
  });

  test(`half-open: at most K=${K} requests reach the provider per episode`, (t) => {
    const ts = transitionsAt.filter((x) => x.key.endsWith(`|${MODEL}`));
    const episodes: { start: number; end: number }[] = [];
    ts.forEach((x, n) => {
      if (x.to === "half_open") episodes.push({ start: x.t, end: ts[n + 1]?.t ?? Infinity });
    });
    assert.ok(episodes.length >= 1, "the breaker went half-open at least once");
    // Tie each request the provider received to the attempt that sent it: call id (body tag) + retry count.
    const attemptStart = new Map<string, number>();
    for (const [spanId, i] of callerSpans) {
      for (const logical of logicalOf(spanId)) {
        for (const a of tel.attemptsOf(logical)) {
          attemptStart.set(`call-${i}#${Number(a.attributes["llm_resilience.attempt.number"]) - 1}`, attemptStartedAt.get(a.spanContext().spanId)!);
        }
      }
    }
    const starts = fake.requests.filter((r) => r.model === MODEL).map((r) => attemptStart.get(`${r.body.user}#${r.retryCount ?? 0}`));
    assert.ok(starts.every((s) => s !== undefined), "every request maps to an attempt span");
    const perEpisode = episodes.map((e) => starts.filter((s) => s! >= e.start && s! <= e.end).length);
    // A breaker only closes on a probe's success: every episode that ended closed saw a probe request.
    ts.forEach((x, n) => {
      if (x.from === "half_open" && x.to === "closed") {
        const e = episodes.findIndex((ep) => ep.end === x.t);
        assert.ok(perEpisode[e]! >= 1, `episode ${e} closed without a probe request (${perEpisode.join(", ")})`);
      }
    });
    t.diagnostic(`half-open episodes: ${episodes.length}; requests reaching the provider per episode: ${perEpisode.join(", ")}; transitions: ${ts.map((x) => x.to).join(">")}`);
    t.diagnostic(`calls ${CALLS}: ${JSON.stringify(Object.fromEntries([...new Set(outcomes.map((o) => o.error ?? "ok"))].map((k) => [k, outcomes.filter((o) => (o.error ?? "ok") === k).length])))}; logical spans ${tel.logical().length}; attempt spans ${tel.finished().filter((x) => x.name.endsWith(" attempt")).length}; requests ${fake.requests.length}`);
    assert.ok(perEpisode.every((n) => n <= K), `requests per half-open episode: ${perEpisode.join(", ")}`);
  });

  test("the breaker's telemetry agrees with itself: events == logs == metrics, a legal state sequence", async () => {
    const ts = transitions().filter((x) => x.key.endsWith(`|${MODEL}`));
    const legal = new Set(["closed>open", "open>half_open", "half_open>open", "half_open>closed"]);
    let state = "closed";
    for (const x of ts) {
      assert.equal(x.from, state, `transition from ${x.from} while ${state}`);
      assert.ok(legal.has(`${x.from}>${x.to}`), `${x.from}>${x.to}`);
      state = x.to;
    }
    for (const need of ["closed>open", "open>half_open", "half_open>closed"]) assert.ok(ts.some((x) => `${x.from}>${x.to}` === need), `saw ${need}`);
    const key = ts[0]!.key;
    const logLines = mem.lines.filter((l) => l.msg === "llm circuit breaker transition" && l["breaker.key"] === key);
    assert.equal(logLines.length, ts.length, "one log line per transition");
    for (const pair of legal) {
      const [from, to] = pair.split(">");
      const events = ts.filter((x) => x.from === from && x.to === to).length;
      const metric = await tel.metricValue("llm_resilience.breaker.transitions", { "llm_resilience.breaker.key": key, "llm_resilience.breaker.from": from, "llm_resilience.breaker.to": to });
      assert.equal(metric, events, `transitions counter ${pair}`);
    }
    const gauge = await tel.metricValue("llm_resilience.breaker.state", { "llm_resilience.breaker.key": key });
    assert.equal(gauge, { closed: 0, half_open: 1, open: 2 }[state as "closed"], `gauge ${gauge} vs last state ${state}`);
    const rejectEvents = tel.logical().flatMap((s) => s.events.filter((e) => e.name === "llm_resilience.breaker.reject")).length;
    const rejected = outcomes.filter((o) => o.error === "BreakerOpenError").length;
    assert.equal(rejectEvents, rejected, "one reject event per rejected call");
    assert.equal(await tel.metricValue("llm_resilience.breaker.rejections", { "llm_resilience.breaker.key": key }), rejected);
    for (const model of [MODEL, "conc-claude"]) {
      const attemptSpans = tel.finished().filter((s) => s.name.endsWith(" attempt") && s.attributes["gen_ai.request.model"] === model).length;
      assert.equal(await tel.metricValue("llm_resilience.attempts", { "gen_ai.request.model": model }), attemptSpans, `attempts counter == attempt spans (${model})`);
    }
  });
});

describe("abort storm (child processes)", () => {
  before(() => startStorms());
  test(`${CALLS} calls aborted at random moments: no unhandled rejection, no timer left, the process exits on its own`, async (t) => {
    const [without, withLib] = await Promise.all([stormWithout, stormWith]);
    const a = resultLine(without.stdout);
    const b = resultLine(withLib.stdout);
    assert.ok(a && without.code === 0, `control run failed\n${describeRun(without)}`);
    assert.ok(b, `library run printed no RESULT\n${describeRun(withLib)}`);
    assert.equal(withLib.code, 0, describeRun(withLib));
    assert.equal(b.unhandled, 0);
    const total = (o: Record<string, number>) => Object.values(o).reduce((x, y) => x + y, 0);
    assert.equal(total(b.outcomes), CALLS);
    assert.ok((b.outcomes.APIUserAbortError ?? 0) >= CALLS / 4, `many calls were aborted: ${JSON.stringify(b.outcomes)}`);
    for (const k of Object.keys(b.outcomes)) assert.ok(["ok", "APIUserAbortError", "BreakerOpenError", "InternalServerError", "ServiceUnavailableError", "RateLimitError"].includes(k), `outcome ${k}`);
    // The library's waits were really hit: the rate-limited model's calls waited (30 s) until aborted,
    // and aborts landed in every phase of a call.
    assert.equal(b.byModel["storm-rl"].ok ?? 0, 0, `storm-rl: ${JSON.stringify(b.byModel["storm-rl"])}`);
    for (const [where, n] of Object.entries<number>(b.abortedAt)) assert.ok(n > 0, `aborted ${where}: ${n} (${JSON.stringify(b.abortedAt)})`);
    assert.ok(b.timers <= a.timers, `timers still active after every call settled: ${b.timers} with the library, ${a.timers} without (${JSON.stringify(b.active)})`);
    const exitA = without.exitedAt - a.doneAt;
    const exitB = withLib.exitedAt - b.doneAt;
    t.diagnostic(`with the library: ${JSON.stringify(b.outcomes)}, aborted ${JSON.stringify(b.abortedAt)}, timers ${b.timers}, exit ${exitB} ms after settling; without: ${JSON.stringify(a.outcomes)}, timers ${a.timers}, exit ${exitA} ms`);
    // Every wait in the storm is 10 s (retry-after) or 30 s (rate limit): one timer left behind would
    // keep the process alive that long.
    assert.ok(!withLib.timedOut && exitB < 8_000, `exit ${exitB} ms after the last call settled (${exitA} ms without the library)`);
  });
});

describe("per-client overrides keep their state across calls", () => {
  test("instrument(client, { breaker }) opens that client's breaker after its failures", async () => {
    const c = instrument(new OpenAI({ apiKey: "sk-conc", baseURL: fake.openaiBaseURL }), { maxAttempts: 1, breaker: { failures: 2, cooldownMs: 60_000 } });
    const model = "conc-override";
    fake.script({ match: { model }, times: Infinity, action: { status: 503 } });
    const got: string[] = [];
    for (let i = 0; i < 4; i++) got.push(await c.chat.completions.create({ model, messages: [{ role: "user", content: "x" }] }).then(() => "ok", (e) => e.constructor.name));
    assert.deepEqual(got, ["InternalServerError", "InternalServerError", "BreakerOpenError", "BreakerOpenError"]);
    assert.equal(fake.requests.filter((r) => r.model === model).length, 2);
    assert.ok(got[2] === BreakerOpenError.name);
  });
});
