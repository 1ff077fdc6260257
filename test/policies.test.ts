import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, before, beforeEach, describe, test } from "node:test";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import pino from "pino";
import { BreakerOpenError, ConfigError, register, instrument, type RegisterOptions } from "../src/index.ts";
import { optionsFromEnv } from "../src/config.ts";
import { startFakeProvider, type FakeProvider } from "./fake-provider/index.ts";
import { installTestTelemetry } from "./helpers/otel.ts";

const tel = installTestTelemetry();
let fake: FakeProvider;
let openai: OpenAI;
let anthropic: Anthropic;
const logLines: any[] = [];
const logger = pino(
  { level: "debug" },
  new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split("\n")) if (line) logLines.push(JSON.parse(line));
      cb();
    },
  }),
);

const BASE: RegisterOptions = { startSdk: false, logger, baseDelayMs: 1, maxDelayMs: 5 };
const setup = (o: RegisterOptions = {}) => register({ ...BASE, ...o });
let seq = 0;
/** A model of its own per test, so breaker keys never leak between tests. */
const freshModel = (p = "gpt-4o-mini") => `${p}-${++seq}`;
const chat = (model: string, opts?: OpenAI.RequestOptions) =>
  openai.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] }, opts);
const events = (span: any, name: string) => span.events.filter((e: any) => e.name === name);
const lastLogical = () => tel.logical().at(-1)!;

before(async () => {
  fake = await startFakeProvider();
  setup();
  openai = new OpenAI({ apiKey: "sk-test", baseURL: fake.openaiBaseURL });
  anthropic = new Anthropic({ apiKey: "sk-ant-test", baseURL: fake.anthropicBaseURL });
});
after(() => fake.close());
beforeEach(() => {
  fake.reset();
  tel.reset();
  logLines.length = 0;
  setup();
});

describe("retry", () => {
  test("retry-after-ms 50 → waits at least 50 ms, event says retry-after-ms", async () => {
    const model = freshModel();
    fake.script({ match: { model }, action: { status: 429, headers: { "retry-after-ms": "50" } } });
    const t0 = performance.now();
    await chat(model);
    assert.ok(performance.now() - t0 >= 50);
    const [retry] = events(lastLogical(), "llm_resilience.retry");
    assert.equal(retry.attributes["llm_resilience.retry.delay_ms"], 50);
    assert.equal(retry.attributes["llm_resilience.retry.delay_source"], "retry-after-ms");
  });

  test("an HTTP-date retry-after is honoured as a date", async () => {
    const model = freshModel();
    const date = new Date(Date.now() + 1000).toUTCString();
    fake.script({ match: { model }, action: { status: 503, headers: { "retry-after": date } } });
    await chat(model);
    const [retry] = events(lastLogical(), "llm_resilience.retry");
    assert.equal(retry.attributes["llm_resilience.retry.delay_source"], "retry-after");
    assert.ok(retry.attributes["llm_resilience.retry.delay_ms"] <= 1000);
  });

  test("garbage or negative retry-after falls back to backoff", async () => {
    const model = freshModel();
    fake.script(
      { match: { model }, action: { status: 429, headers: { "retry-after": "abc" } } },
      { match: { model }, action: { status: 429, headers: { "retry-after-ms": "-5" } } },
    );
    await chat(model);
    const retries = events(lastLogical(), "llm_resilience.retry");
    assert.equal(retries.length, 2);
    for (const r of retries) {
      assert.equal(r.attributes["llm_resilience.retry.delay_source"], "backoff");
      assert.ok(r.attributes["llm_resilience.retry.delay_ms"] <= 5, "within the configured max delay");
    }
  });

  test("retry-after 120 s → gives up at once with retry_after_too_long", async () => {
    const model = freshModel();
    fake.script({ match: { model }, action: { status: 429, headers: { "retry-after": "120" } } });
    const t0 = performance.now();
    await assert.rejects(chat(model), OpenAI.RateLimitError);
    assert.ok(performance.now() - t0 < 1000);
    assert.equal(fake.requests.length, 1);
    const [giveUp] = events(lastLogical(), "llm_resilience.give_up");
    assert.equal(giveUp.attributes["llm_resilience.give_up.reason"], "retry_after_too_long");
  });

  test("400, 401, 403, 404, 422 are never retried", async () => {
    for (const status of [400, 401, 403, 404, 422]) {
      const model = freshModel();
      fake.reset();
      fake.script({ match: { model }, times: 5, action: { status } });
      await assert.rejects(chat(model), (e: any) => e.status === status);
      assert.equal(fake.requests.length, 1, `status ${status}`);
    }
  });

  test("408, 409, 500, 502, 529 are retried; 529 is overloaded_error", async () => {
    for (const status of [408, 409, 500, 502]) {
      const model = freshModel();
      fake.reset();
      fake.script({ match: { model }, action: { status } });
      await chat(model);
      assert.equal(fake.requests.length, 2, `status ${status}`);
    }
    fake.reset();
    const model = freshModel("claude-haiku-4-5");
    fake.script({ match: { model }, action: { status: 529, errorType: "overloaded_error" } });
    await anthropic.messages.create({ model, max_tokens: 5, messages: [{ role: "user", content: "x" }] });
    const [retry] = events(lastLogical(), "llm_resilience.retry");
    assert.equal(retry.attributes["error.type"], "overloaded_error");
  });

  test("x-should-retry overrides: false on a 500 → one attempt; true on a 400 → retried", async () => {
    let model = freshModel();
    fake.script({ match: { model }, action: { status: 500, headers: { "x-should-retry": "false" } } });
    await assert.rejects(chat(model), OpenAI.InternalServerError);
    assert.equal(fake.requests.length, 1);
    fake.reset();
    model = freshModel();
    fake.script({ match: { model }, action: { status: 400, headers: { "x-should-retry": "true" } } });
    await chat(model);
    assert.equal(fake.requests.length, 2);
  });

  test("connection reset and attempt timeout are retried", async () => {
    let model = freshModel();
    fake.script({ match: { model }, action: { reset: true } });
    await chat(model);
    assert.equal(events(lastLogical(), "llm_resilience.retry")[0].attributes["error.type"], "connection_error");
    model = freshModel();
    setup({ attemptTimeoutMs: 100 });
    fake.script({ match: { model }, action: { hang: true } });
    await chat(model);
    const attempts = tel.attemptsOf(lastLogical());
    assert.equal(attempts[0]!.attributes["error.type"], "timeout");
    assert.equal(attempts.length, 2);
  });

  test("the caller's AbortSignal cancels a pending wait at once and rejects like the SDK", async () => {
    const model = freshModel();
    fake.script({ match: { model }, action: { status: 429, headers: { "retry-after-ms": "10000" } } });
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const ac = new AbortController();
    const p = chat(model, { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 50));
    const t0 = performance.now();
    ac.abort();
    await assert.rejects(p, OpenAI.APIUserAbortError);
    assert.ok(performance.now() - t0 < 10, `rejected ${performance.now() - t0} ms after abort`);
    const span = lastLogical();
    assert.equal(span.attributes["error.type"], "aborted");
    assert.equal(events(span, "llm_resilience.give_up")[0].attributes["llm_resilience.give_up.reason"], "aborted");
    // No timer of ours is left behind.
    assert.ok(process.getActiveResourcesInfo().filter((r) => r === "Timeout").length <= timersBefore);
  });

  test("the overall deadline covers attempts and waits: a wait that would cross it is not started", async () => {
    const model = freshModel();
    await chat(freshModel()); // warm: a cold first request costs more than the deadline on its own
    fake.reset();
    setup({ deadlineMs: 400 });
    fake.script({ match: { model }, times: 10, action: { status: 503, headers: { "retry-after-ms": "250" } } });
    const t0 = performance.now();
    await assert.rejects(chat(model));
    const elapsed = performance.now() - t0;
    // The second wait (250 ms from ~260 ms) would cross 400 ms, so the call ends after two attempts
    // instead of sleeping into the deadline (slack for a loaded machine).
    assert.ok(elapsed < 400 + 100, `ended after ${elapsed} ms`);
    assert.equal(fake.requests.length, 2);
    const [giveUp] = events(lastLogical(), "llm_resilience.give_up");
    assert.equal(giveUp.attributes["llm_resilience.give_up.reason"], "deadline");
  });

  test("retry budget: in a 100% failure storm retries are bounded, not multiplied by traffic", async () => {
    const model = freshModel();
    setup({ retryBudget: { capacity: 20, retryCost: 5, timeoutRetryCost: 10 }, breaker: false });
    fake.script({ match: { model }, times: Infinity, action: { status: 500 } });
    const results = await Promise.allSettled(Array.from({ length: 30 }, () => chat(model)));
    assert.ok(results.every((r) => r.status === "rejected"));
    const retries = tel.logical().flatMap((s) => events(s, "llm_resilience.retry")).length;
    assert.equal(retries, 4, "capacity 20 / cost 5");
    assert.equal(fake.requests.length, 30 + 4);
    assert.ok(tel.logical().some((s) => events(s, "llm_resilience.give_up")[0]?.attributes["llm_resilience.give_up.reason"] === "budget"));
  });

  test("a 429 with the provider's retry-after is retried on its schedule without spending the budget; one without a delay spends it", async () => {
    const model = freshModel();
    setup({ retryBudget: { capacity: 5, retryCost: 5, timeoutRetryCost: 10 }, breaker: false });
    // Ten calls at once, each first answered 429 + retry-after-ms: the budget holds one retry, all ten retry.
    fake.script({ match: { model }, times: 10, action: { status: 429, headers: { "retry-after-ms": "5" } } });
    const scheduled = await Promise.allSettled(Array.from({ length: 10 }, () => chat(model)));
    assert.deepEqual(scheduled.map((r) => r.status), Array(10).fill("fulfilled"));
    const sources = tel.logical().flatMap((sp) => events(sp, "llm_resilience.retry")).map((e) => e.attributes["llm_resilience.retry.delay_source"]);
    assert.deepEqual(sources, Array(10).fill("retry-after-ms"));
    assert.equal(fake.requests.length, 20);

    // The same storm without a server delay: backoff retries, drawn from the budget (refilled by one
    // token per success above: 5 + 10 = 15 → three retries at 5).
    tel.reset();
    fake.reset();
    const model2 = freshModel();
    fake.script({ match: { model: model2 }, times: 10, action: { status: 429 } });
    const unscheduled = await Promise.allSettled(Array.from({ length: 10 }, () => chat(model2)));
    const retried = tel.logical().flatMap((sp) => events(sp, "llm_resilience.retry"));
    assert.ok(retried.every((e) => e.attributes["llm_resilience.retry.delay_source"] === "backoff"));
    assert.ok(retried.length < 10, `budget-bound retries: ${retried.length}`);
    assert.equal(unscheduled.filter((r) => r.status === "fulfilled").length, retried.length);
    assert.ok(tel.logical().some((sp) => events(sp, "llm_resilience.give_up")[0]?.attributes["llm_resilience.give_up.reason"] === "budget"));
  });
});

describe("circuit breaker", () => {
  test("opens after N consecutive failures; the next call never reaches the server; span error.type breaker_open", async () => {
    const model = freshModel();
    setup({ maxAttempts: 1, breaker: { failures: 3, cooldownMs: 60_000 } });
    fake.script({ match: { model }, times: Infinity, action: { status: 503 } });
    for (let i = 0; i < 3; i++) await assert.rejects(chat(model), OpenAI.InternalServerError);
    const opening = tel.logical()[2]!;
    const [transition] = events(opening, "llm_resilience.breaker.transition");
    assert.equal(transition.attributes["llm_resilience.breaker.from"], "closed");
    assert.equal(transition.attributes["llm_resilience.breaker.to"], "open");
    assert.equal(transition.attributes["llm_resilience.breaker.store"], "local");
    assert.equal(fake.requests.length, 3);

    const err = await chat(model).catch((e) => e);
    assert.ok(err instanceof BreakerOpenError);
    assert.ok(err.retryAfterMs > 59_000 && err.retryAfterMs <= 60_000);
    assert.equal(fake.requests.length, 3, "rejected before any request left the process");
    const span = lastLogical();
    assert.equal(span.attributes["error.type"], "breaker_open");
    assert.equal(events(span, "llm_resilience.breaker.reject").length, 1);
    assert.equal(tel.attemptsOf(span).length, 0);
    const key = transition.attributes["llm_resilience.breaker.key"];
    assert.equal(await tel.metricValue("llm_resilience.breaker.state", { "llm_resilience.breaker.key": key }), 2);
    assert.equal(await tel.metricValue("llm_resilience.breaker.rejections", { "llm_resilience.breaker.key": key }), 1);
    assert.equal(await tel.metricValue("llm_resilience.breaker.transitions", { "llm_resilience.breaker.key": key }), 1);
  });

  test("4xx never count; 429 counts only when configured", async () => {
    let model = freshModel();
    setup({ maxAttempts: 1, breaker: { failures: 2, cooldownMs: 60_000 } });
    fake.script({ match: { model }, times: Infinity, action: { status: 429 } });
    for (let i = 0; i < 4; i++) await assert.rejects(chat(model), OpenAI.RateLimitError);
    assert.equal(fake.requests.length, 4, "429 does not open the breaker by default");
    fake.reset();
    model = freshModel();
    setup({ maxAttempts: 1, breaker: { failures: 2, cooldownMs: 60_000, countRateLimits: true } });
    fake.script({ match: { model }, times: Infinity, action: { status: 429 } });
    for (let i = 0; i < 4; i++) await assert.rejects(chat(model));
    assert.equal(fake.requests.length, 2, "counted 429s open it");
    fake.reset();
    model = freshModel();
    fake.script({ match: { model }, times: Infinity, action: { status: 400 } });
    for (let i = 0; i < 4; i++) await assert.rejects(chat(model), OpenAI.BadRequestError);
    assert.equal(fake.requests.length, 4);
  });

  test("after the cooldown exactly K probes go through under 100 concurrent callers; success closes", async () => {
    const model = freshModel();
    setup({ maxAttempts: 1, breaker: { failures: 2, cooldownMs: 100, halfOpenProbes: 1 } });
    fake.script({ match: { model }, times: 2, action: { status: 500 } });
    for (let i = 0; i < 2; i++) await assert.rejects(chat(model));
    await new Promise((r) => setTimeout(r, 120));
    fake.reset();
    fake.script({ match: { model }, action: { delayMs: 50 } });
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => chat(model)));
    assert.equal(fake.requests.length, 1, "exactly one probe reached the provider");
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    assert.ok(results.filter((r) => r.status === "rejected").every((r: any) => r.reason instanceof BreakerOpenError));
    const probeSpan = tel.logical().find((s) => events(s, "llm_resilience.breaker.probe").length === 1)!;
    assert.deepEqual(
      events(probeSpan, "llm_resilience.breaker.transition").map((e: any) => e.attributes["llm_resilience.breaker.to"]),
      ["half_open", "closed"],
    );
    await chat(model);
    assert.equal(fake.requests.length, 2, "closed again");
  });

  test("a failed probe re-opens the breaker", async () => {
    const model = freshModel();
    setup({ maxAttempts: 1, breaker: { failures: 1, cooldownMs: 50 } });
    fake.script({ match: { model }, times: 2, action: { status: 500 } });
    await assert.rejects(chat(model));
    await new Promise((r) => setTimeout(r, 70));
    await assert.rejects(chat(model), OpenAI.InternalServerError);
    await assert.rejects(chat(model), BreakerOpenError);
    assert.equal(fake.requests.length, 2);
  });
});

describe("fallback", () => {
  test("retries exhausted on the primary → the fallback model, under the same logical span", async () => {
    const primary = freshModel("gpt-4o");
    const backup = freshModel("gpt-4o-mini");
    setup({ maxAttempts: 3, fallbacks: { [primary]: [backup] } });
    fake.script({ match: { model: primary }, times: Infinity, action: { status: 503 } });
    const res = await chat(primary);
    assert.equal(res.model, backup);
    const span = lastLogical();
    assert.equal(tel.logical().length, 1);
    assert.equal(span.name, `chat ${primary}`);
    const attempts = tel.attemptsOf(span);
    assert.deepEqual(attempts.map((a) => a.attributes["gen_ai.request.model"]), [primary, primary, primary, backup]);
    assert.deepEqual(attempts.map((a) => a.attributes["http.request.resend_count"]), [undefined, 1, 2, 3]);
    assert.deepEqual(
      attempts.map((a) => a.name),
      [`chat ${primary} attempt`, `chat ${primary} attempt`, `chat ${primary} attempt`, `chat ${backup} attempt`],
      "each attempt is named for the model it asked for",
    );
    assert.deepEqual(
      span.events.map((e) => e.name),
      ["llm_resilience.retry", "llm_resilience.retry", "llm_resilience.fallback"],
    );
    const fb = events(span, "llm_resilience.fallback")[0];
    assert.equal(fb.attributes["llm_resilience.fallback.from"], primary);
    assert.equal(fb.attributes["llm_resilience.fallback.to"], backup);
    assert.equal(fb.attributes["llm_resilience.fallback.reason"], "max_attempts");
    assert.equal(span.attributes["gen_ai.response.model"], backup);
    assert.equal(await tel.metricValue("llm_resilience.fallbacks", { "gen_ai.request.model": primary }), 1);
  });

  test("an open breaker sends the call straight to the fallback", async () => {
    const primary = freshModel("claude-opus-4-6");
    const backup = freshModel("claude-haiku-4-5");
    setup({ maxAttempts: 1, breaker: { failures: 1, cooldownMs: 60_000 }, fallbacks: { [primary]: [backup] } });
    fake.script({ match: { model: primary }, times: Infinity, action: { status: 529, errorType: "overloaded_error" } });
    const msg = () => anthropic.messages.create({ model: primary, max_tokens: 5, messages: [{ role: "user", content: "x" }] });
    await msg(); // fails on primary (opens), falls back
    fake.reset();
    const res = await msg();
    assert.equal(res.model, backup);
    assert.deepEqual(fake.requests.map((r) => r.model), [backup], "nothing sent to the open primary");
    const span = lastLogical();
    assert.equal(events(span, "llm_resilience.fallback")[0].attributes["llm_resilience.fallback.reason"], "breaker_open");
  });

  test("the failure that opens the breaker falls back at once, without waiting for a retry", async () => {
    const primary = freshModel("gpt-4o");
    const backup = freshModel("gpt-4o-mini");
    setup({ maxAttempts: 3, breaker: { failures: 1, cooldownMs: 60_000 }, fallbacks: { [primary]: [backup] } });
    fake.script({ match: { model: primary }, times: Infinity, action: { status: 503, headers: { "retry-after-ms": "5000" } } });
    const t0 = performance.now();
    const res = await chat(primary);
    assert.ok(performance.now() - t0 < 2000);
    assert.equal(res.model, backup);
    const span = lastLogical();
    assert.equal(events(span, "llm_resilience.retry").length, 0);
    assert.equal(events(span, "llm_resilience.fallback")[0].attributes["llm_resilience.fallback.reason"], "breaker_open");
  });

  test("context overflow uses the context fallbacks only", async () => {
    const primary = freshModel("gpt-4o");
    const longer = freshModel("gpt-4.1");
    const cheaper = freshModel("gpt-4o-mini");
    setup({ fallbacks: { [primary]: [cheaper] } });
    fake.script({ match: { model: primary }, times: Infinity, action: { status: 400, errorCode: "context_length_exceeded" } });
    await assert.rejects(chat(primary), OpenAI.BadRequestError);
    assert.deepEqual(fake.requests.map((r) => r.model), [primary], "a context overflow is no reason for the cheaper fallback");
    fake.reset();
    fake.script({ match: { model: primary }, times: Infinity, action: { status: 400, errorCode: "context_length_exceeded" } });
    setup({ fallbacks: { [primary]: [cheaper] }, contextFallbacks: { [primary]: [longer] } });
    const res = await chat(primary);
    assert.equal(res.model, longer);
    assert.equal(events(lastLogical(), "llm_resilience.fallback")[0].attributes["llm_resilience.fallback.reason"], "context_length_exceeded");
  });
});

describe("rate limit", () => {
  test("requests per minute: a call that would wait past the deadline is not sent", async () => {
    const model = freshModel();
    setup({ rpm: 1, deadlineMs: 500 });
    await chat(model);
    await assert.rejects(chat(model));
    assert.equal(fake.requests.length, 1);
    assert.equal(events(lastLogical(), "llm_resilience.give_up")[0].attributes["llm_resilience.give_up.reason"], "deadline");
  });

  test("a call that gives up while waiting for the limiter gives its reservation back", async () => {
    const model = freshModel();
    setup({ rpm: 1 });
    await chat(model);
    const waits: number[] = [];
    for (let i = 0; i < 2; i++) {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 30);
      await assert.rejects(chat(model, { signal: ac.signal }));
      waits.push(events(lastLogical(), "llm_resilience.ratelimit.wait")[0].attributes["llm_resilience.ratelimit.wait_ms"]);
    }
    // One request per minute: the second call waits about a minute, and so does the third, because
    // the second gave its slot back (kept, it would push the third to two minutes).
    assert.ok(waits.every((w) => w > 59_000 && w <= 60_000), `waits ${waits}`);
    assert.equal(fake.requests.length, 1);
  });

  test("the provider's rate-limit headers tighten the limiter: the next call waits, with an event", async () => {
    const model = freshModel();
    setup({ rpm: 1000 });
    fake.script({ match: { model }, action: { success: { headers: { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "150ms" } } } });
    await chat(model);
    const t0 = performance.now();
    await chat(model);
    assert.ok(performance.now() - t0 >= 100);
    const [wait] = events(lastLogical(), "llm_resilience.ratelimit.wait");
    assert.equal(wait.attributes["llm_resilience.ratelimit.kind"], "requests");
    assert.ok(wait.attributes["llm_resilience.ratelimit.wait_ms"] > 100);
  });
});

describe("configuration and logs", () => {
  test("bad variables stop start-up with an error naming the variable and what it accepts", () => {
    for (const [name, value] of [
      ["LLM_RESILIENCE_MAX_ATTEMPTS", "abc"],
      ["LLM_RESILIENCE_BASE_DELAY_MS", "-5"],
      ["LLM_RESILIENCE_FALLBACKS", "gpt-4o:gpt-4o-mini"],
      ["LLM_RESILIENCE_FALLBACKS", '{"gpt-4o":"gpt-4o-mini"}'],
      ["LLM_RESILIENCE_LOG_LEVEL", "loud"],
      ["LLM_RESILIENCE_DISABLED", "maybe"],
      ["LLM_RESILIENCE_REDIS_URL", "localhost:6379"],
    ]) {
      assert.throws(
        () => optionsFromEnv({ [name!]: value }),
        (e: any) => e instanceof ConfigError && e.message.includes(name!) && e.message.includes("expected"),
        `${name}=${value}`,
      );
    }
    assert.deepEqual(optionsFromEnv({ LLM_RESILIENCE_FALLBACKS: '{"gpt-4o":["gpt-4o-mini"]}', LLM_RESILIENCE_MAX_ATTEMPTS: "4" }), {
      fallbacks: { "gpt-4o": ["gpt-4o-mini"] },
      maxAttempts: 4,
    });
    assert.throws(() => register({ ...BASE, maxAttempts: 0 }), ConfigError);
    assert.throws(() => instrument(new OpenAI({ apiKey: "x" }), { breaker: { failureRatio: 2 } }), ConfigError);
  });

  test("per-client overrides via instrument(client, overrides); the SDK's maxRetries option is honoured", async () => {
    const model = freshModel();
    const c = instrument(new OpenAI({ apiKey: "sk-x", baseURL: fake.openaiBaseURL }), { maxAttempts: 1 });
    fake.script({ match: { model }, times: 3, action: { status: 500 } });
    await assert.rejects(c.chat.completions.create({ model, messages: [{ role: "user", content: "x" }] }));
    assert.equal(fake.requests.length, 1);
    fake.reset();
    const c2 = new OpenAI({ apiKey: "sk-x", baseURL: fake.openaiBaseURL, maxRetries: 4 });
    fake.script({ match: { model }, times: 4, action: { status: 500 } });
    await c2.chat.completions.create({ model, messages: [{ role: "user", content: "x" }] });
    assert.equal(fake.requests.length, 5);
  });

  test("one summary line per call with context (debug when it succeeded, info when it failed); warn lines for retries and give-ups; never content or keys", async () => {
    const model = freshModel();
    fake.script({ match: { model }, action: { status: 429, headers: { "retry-after-ms": "1" } } });
    await openai.chat.completions.create({ model, messages: [{ role: "user", content: "SECRET-PROMPT" }] });
    const summary = logLines.filter((l) => l.msg === "llm call");
    assert.equal(summary.length, 1);
    assert.equal(summary[0].level, 20, "a successful call's summary is debug");
    assert.equal(logLines.filter((l) => l.level === 30).length, 0, "nothing at info for a call that succeeded");
    const span = lastLogical();
    assert.equal(summary[0].provider, "openai");
    assert.equal(summary[0].model, model);
    assert.equal(summary[0]["tokens.input"], 11);
    assert.equal(summary[0]["tokens.output"], 7);
    assert.equal(summary[0].attempts, 2);
    assert.equal(summary[0].retries, 1);
    assert.equal(summary[0].finish_reason, "stop");
    assert.equal(summary[0].trace_id, span.spanContext().traceId);
    assert.equal(summary[0].span_id, span.spanContext().spanId);
    assert.equal(typeof summary[0].latency_ms, "number");
    const warns = logLines.filter((l) => l.level === 40 && !/no price for model/.test(l.msg));
    assert.equal(warns.length, 1);
    assert.equal(warns[0].msg, "llm call retrying");
    assert.equal(warns[0]["error.type"], "rate_limit_error");

    logLines.length = 0;
    fake.script({ match: { model }, action: { status: 400, body: { error: { type: "invalid_request_error", message: "bad" } } } });
    await assert.rejects(openai.chat.completions.create({ model, messages: [{ role: "user", content: "SECRET-PROMPT" }] }));
    const failed = logLines.filter((l) => l.msg === "llm call failed");
    assert.equal(failed.length, 1);
    assert.equal(failed[0].level, 30, "a failed call's summary is info");
    assert.equal(failed[0]["error.type"], "invalid_request_error");
    assert.equal(logLines.filter((l) => l.msg === "llm call gave up" && l.level === 40 && l.reason === "non_retryable").length, 1);
    const all = JSON.stringify(logLines);
    assert.ok(!all.includes("SECRET-PROMPT") && !all.includes("sk-test"));
  });
});

describe("streams", () => {
  const streamChat = async (model: string) => {
    const stream = await openai.chat.completions.create({ model, stream: true, messages: [{ role: "user", content: "hi" }] });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    return text;
  };

  test("a stream that fails before its first chunk is retried; the caller sees one clean stream", async () => {
    const model = freshModel();
    const sseError = 'data: {"error":{"message":"boom","type":"server_error","param":null,"code":null}}\n\n';
    fake.script({ match: { model }, action: { rawBody: sseError, contentType: "text/event-stream" } });
    const text = await streamChat(model);
    assert.equal(text, "tok0 tok1 tok2 ");
    assert.equal(fake.requests.length, 2);
    const span = lastLogical();
    assert.equal(span.attributes["llm_resilience.attempts"], 2);
    assert.equal(span.attributes["error.type"], undefined);
    assert.equal(events(span, "llm_resilience.retry").length, 1);
    const attempts = tel.attemptsOf(span);
    assert.equal(attempts[0]!.attributes["error.type"], "server_error");
    assert.equal(attempts[1]!.attributes["gen_ai.response.id"], span.attributes["gen_ai.response.id"]);
  });

  test("an Anthropic overloaded_error event before message_start is retried; the MessageStream helper sees one message", async () => {
    const model = freshModel("claude-haiku-4-5");
    const sseError = 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n';
    fake.script({ match: { model }, action: { rawBody: sseError, contentType: "text/event-stream" } });
    const message = await anthropic.messages.stream({ model, max_tokens: 10, messages: [{ role: "user", content: "x" }] }).finalMessage();
    assert.equal(message.usage.output_tokens, 7);
    assert.equal(fake.requests.length, 2);
    assert.equal(tel.attemptsOf(lastLogical())[0]!.attributes["error.type"], "overloaded_error");
  });

  test("after the first chunk reached the caller, a failure ends the call: no retry", async () => {
    const model = freshModel();
    fake.script({ match: { model }, action: { streamErrorAfter: 2, errorType: "server_error" } });
    await assert.rejects(streamChat(model));
    assert.equal(fake.requests.length, 1);
    const span = lastLogical();
    assert.equal(span.attributes["error.type"], "server_error");
    assert.equal(events(span, "llm_resilience.give_up")[0].attributes["llm_resilience.give_up.reason"], "non_retryable");
    fake.reset();
    fake.script({ match: { model }, action: { streamCutAfter: 0 } }); // the role chunk got through
    await assert.rejects(streamChat(model));
    assert.equal(fake.requests.length, 1);
    assert.equal(lastLogical().attributes["error.type"], "connection_error");
  });
});
