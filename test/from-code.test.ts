/**
 * The programmatic side: scoped overrides (`withPolicies`), typed decision events (`onDecision`) and
 * breaker state for health checks, on the real SDKs against the fake provider.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { createOpenAI } from "@ai-sdk/openai";
import Anthropic from "@anthropic-ai/sdk";
import { generateText } from "ai";
import OpenAI from "openai";
import {
  breakerStates,
  ConfigError,
  DeadlineExceededError,
  type Decision,
  health,
  instrument,
  onDecision,
  register,
  withPolicies,
} from "../src/index.ts";
import { type FakeProvider, startFakeProvider } from "./fake-provider/index.ts";
import { memoryLogger } from "./helpers/memory-logger.ts";
import { installTestTelemetry } from "./helpers/otel.ts";

const tel = installTestTelemetry();
const logs = memoryLogger("warn");
let fake: FakeProvider;
let openai: OpenAI;
let anthropic: Anthropic;
const msgs = [{ role: "user" as const, content: "hi" }];

before(async () => {
  fake = await startFakeProvider();
  register({
    startSdk: false,
    logger: logs.logger,
    baseDelayMs: 1,
    maxDelayMs: 2,
    breaker: { failures: 3, cooldownMs: 60_000 },
    fallbacks: { "gpt-4o": ["gpt-4o-mini"] },
  });
  openai = new OpenAI({ apiKey: "sk-test", baseURL: fake.openaiBaseURL, maxRetries: 2 });
  anthropic = new Anthropic({ apiKey: "sk-ant-test", baseURL: fake.anthropicBaseURL, maxRetries: 2 });
});
after(() => fake.close());
beforeEach(() => {
  fake.reset();
  tel.reset();
  logs.reset();
});

/** A model name of its own per test: breaker state never leaks between tests. */
let n = 0;
const fresh = (base: string) => `${base}-${process.pid}-${++n}`;

const chat = (model: string, extra: object = {}) => openai.chat.completions.create({ model, messages: msgs, ...extra });
const errorOf = async (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );
const sentFor = (model: string) => fake.requests.filter((r) => r.model === model).length;

describe("withPolicies: scoped overrides", () => {
  test("a scope's deadline applies to its calls only", async () => {
    const model = fresh("slow");
    fake.script({ match: { model }, times: Infinity, action: { delayMs: 150 } });
    const err = await errorOf(withPolicies({ deadlineMs: 40 }, () => chat(model)));
    assert.ok(err, "the scoped call failed");
    assert.equal(tel.logical()[0]!.attributes["error.type"], "timeout");
    const res = await chat(model);
    assert.ok(res.choices[0]!.message.content, "the same call outside the scope waits and succeeds");
  });

  test("maxAttempts in a scope wins over the client's maxRetries; the request's maxRetries wins over the scope", async () => {
    const model = fresh("flaky");
    fake.script({ match: { model }, times: Infinity, action: { status: 500 } });
    await errorOf(withPolicies({ maxAttempts: 1 }, () => chat(model)));
    assert.equal(sentFor(model), 1);
    fake.reset();
    fake.script({ match: { model }, times: Infinity, action: { status: 500 } });
    await errorOf(withPolicies({ maxAttempts: 1 }, () => openai.chat.completions.create({ model, messages: msgs }, { maxRetries: 1 })));
    assert.equal(sentFor(model), 2);
  });

  test("fallbacks: false turns the configured fallbacks off inside the scope", async () => {
    fake.script({ match: { model: "gpt-4o" }, times: Infinity, action: { status: 503 } });
    const err = await errorOf(withPolicies({ fallbacks: false, maxAttempts: 1 }, () => chat("gpt-4o")));
    assert.equal((err as { status?: number } | undefined)?.status, 503);
    assert.equal(sentFor("gpt-4o-mini"), 0);
    const res = await withPolicies({ maxAttempts: 1 }, () => chat("gpt-4o"));
    assert.equal(res.model, "gpt-4o-mini", "outside fallbacks: false the call falls back");
  });

  test("nested scopes merge setting by setting, the inner one winning", async () => {
    const model = fresh("nested");
    fake.script({ match: { model }, times: Infinity, action: { status: 500 } });
    await withPolicies({ maxAttempts: 4, deadlineMs: 5_000, breaker: false }, async () => {
      await errorOf(withPolicies({ maxAttempts: 2 }, () => chat(model)));
      assert.equal(sentFor(model), 2, "inner maxAttempts");
      await errorOf(chat(model));
      assert.equal(sentFor(model), 6, "back in the outer scope: its maxAttempts again");
    });
    const [inner] = tel.logical();
    assert.equal(inner!.attributes["llm_resilience.attempts"], 2);
  });

  test("a scope crosses awaits, timers and a stream's retry before its first chunk", async () => {
    const model = fresh("stream");
    fake.script({ match: { model }, times: 1, action: { status: 500 } });
    const text = await withPolicies({ maxAttempts: 1 }, async () => {
      await delay(5);
      await new Promise((r) => setImmediate(r));
      const err = await errorOf(chat(model, { stream: true }));
      assert.ok(err, "one attempt only: the 500 is not retried");
      fake.script({ match: { model }, times: 1, action: { status: 500 } });
      return withPolicies({ maxAttempts: 2 }, async () => {
        let out = "";
        for await (const c of await chat(model, { stream: true })) out += c.choices[0]?.delta?.content ?? "";
        return out;
      });
    });
    assert.ok(text.length > 0);
    assert.equal(sentFor(model), 3);
  });

  test("the Anthropic SDK: a scoped attempt timeout", async () => {
    const model = fresh("claude");
    fake.script({ match: { model }, times: 1, action: { delayMs: 200 } });
    const res = await withPolicies({ attemptTimeoutMs: 40 }, () => anthropic.messages.create({ model, max_tokens: 8, messages: msgs }));
    assert.equal(res.content[0]?.type, "text");
    assert.equal(sentFor(model), 2, "the first attempt timed out after 40 ms and was retried");
    const [logical] = tel.logical();
    assert.equal(tel.attemptsOf(logical!)[0]!.attributes["error.type"], "timeout");
  });

  test("breaker: false lets a scope's calls through an open breaker, without telling the breaker", async () => {
    const model = fresh("down");
    fake.script({ match: { model }, times: 3, action: { status: 500 } });
    await errorOf(chat(model));
    const rejected = await errorOf(chat(model));
    assert.equal((rejected as Error).name, "BreakerOpenError");
    const sent = sentFor(model);
    const res = await withPolicies({ breaker: false }, () => chat(model));
    assert.ok(res.choices[0]!.message.content);
    assert.equal(sentFor(model), sent + 1);
    assert.equal(((await errorOf(chat(model))) as Error).name, "BreakerOpenError", "the breaker is still open for everyone else");
  });

  test("maxRateLimitWaitMs: a call that would wait longer for our rate limiter ends before it is sent", async () => {
    const model = fresh("limited");
    const limited = instrument(new OpenAI({ apiKey: "sk-test", baseURL: fake.openaiBaseURL }), { rpm: 1 });
    await limited.chat.completions.create({ model, messages: msgs });
    const err = await errorOf(withPolicies({ maxRateLimitWaitMs: 50 }, () => limited.chat.completions.create({ model, messages: msgs })));
    assert.ok(err instanceof DeadlineExceededError, String(err));
    assert.equal(sentFor(model), 1, "the second call was never sent");
    const [, second] = tel.logical();
    const giveUp = second!.events.find((e) => e.name === "llm_resilience.give_up");
    assert.equal(giveUp?.attributes?.["llm_resilience.give_up.reason"], "deadline");
  });

  test("the AI SDK: a scope's fallbacks and attempts apply to generateText", async () => {
    const model = fresh("ai-sdk");
    const provider = createOpenAI({ apiKey: "sk-test", baseURL: fake.openaiBaseURL });
    fake.script({ match: { model }, times: Infinity, action: { status: 503 } });
    const scoped = await errorOf(
      withPolicies({ maxAttempts: 1, fallbacks: { [model]: ["gpt-4o-mini"] } }, () =>
        generateText({ model: provider.chat(model), prompt: "hi", maxRetries: 2 }),
      ),
    );
    assert.equal(scoped, undefined, "the scope's fallback answered");
    assert.equal(sentFor(model), 1, "one attempt on the primary model, as the scope says");
    assert.equal(sentFor("gpt-4o-mini"), 1);
  });

  test("a bad setting throws ConfigError naming it, before the function runs", () => {
    let ran = false;
    const run = (scope: object) => () =>
      withPolicies(scope as never, () => {
        ran = true;
      });
    assert.throws(run({ deadlineMs: -5 }), (e: unknown) => e instanceof ConfigError && /withPolicies\(\) deadlineMs/.test(e.message));
    assert.throws(run({ maxAttempts: 0 }), (e: unknown) => e instanceof ConfigError && /maxAttempts/.test(e.message));
    assert.throws(run({ fallbacks: { "gpt-4o": "gpt-4o-mini" } }), (e: unknown) => e instanceof ConfigError && /fallbacks/.test(e.message));
    assert.throws(run({ breaker: { failures: 2 } }), (e: unknown) => e instanceof ConfigError && /breaker/.test(e.message));
    assert.throws(run({ deadLineMs: 5 }), (e: unknown) => e instanceof ConfigError && /deadLineMs/.test(e.message));
    assert.equal(ran, false);
  });

  test("a deadline the scope sets to false lifts the register-time one", async () => {
    const model = fresh("deadline");
    fake.script({ match: { model }, times: Infinity, action: { delayMs: 60 } });
    const res = await withPolicies({ deadlineMs: 20 }, () => withPolicies({ deadlineMs: false }, () => chat(model)));
    assert.ok(res.choices[0]!.message.content);
  });
});

describe("onDecision: typed decision events", () => {
  test("a retry, then an outage seen by a listener: the same facts as the span events, with the call's context", async () => {
    const seen: Decision[] = [];
    const off = onDecision((d) => {
      seen.push(d);
    });
    try {
      const model = fresh("events");
      fake.script({ match: { model }, times: 1, action: { status: 429, headers: { "retry-after-ms": "5" } } });
      await chat(model);
      fake.script({ match: { model }, times: Infinity, action: { status: 500 } });
      for (let i = 0; i < 3; i++) await errorOf(chat(model));
      await delay(1);

      const spans = tel.logical();
      const fromSpans = spans.flatMap((s) =>
        s.events.map((e) => ({ name: e.name, spanId: s.spanContext().spanId, traceId: s.spanContext().traceId, attrs: e.attributes })),
      );
      assert.equal(seen.length, fromSpans.length, "one listener event per span event");
      const typeOf = (name: string) => name.replace("llm_resilience.", "");
      assert.deepEqual(
        seen.map((d) => d.type),
        fromSpans.map((e) => typeOf(e.name)),
      );
      for (const [i, d] of seen.entries()) {
        assert.equal(d.call?.spanId, fromSpans[i]!.spanId, "the listener gets the span of the call that caused it");
        assert.equal(d.call?.traceId, fromSpans[i]!.traceId);
        assert.equal(d.call?.provider, "openai");
        assert.equal(d.call?.operation, "chat");
        assert.equal(d.call?.requestModel, model);
        assert.match(d.call?.breakerKey ?? "", new RegExp(`^openai\\|127\\.0\\.0\\.1:${fake.port}\\|${model}$`));
      }
      const retry = seen.find((d) => d.type === "retry");
      assert.ok(retry && retry.type === "retry");
      assert.equal(retry.delayMs, 5);
      assert.equal(retry.delaySource, "retry-after-ms");
      assert.equal(retry.errorType, "rate_limit_error");
      assert.equal(retry.attempt, 1);
      const opened = seen.find((d) => d.type === "breaker.transition");
      assert.ok(opened && opened.type === "breaker.transition");
      assert.deepEqual([opened.from, opened.to, opened.store], ["closed", "open", "local"]);
      assert.ok(opened.call, "a transition this process caused carries its call");
      const giveUps = seen.filter((d) => d.type === "give_up").map((d) => (d.type === "give_up" ? d.reason : ""));
      assert.ok(giveUps.includes("breaker_open"), `give-ups: ${giveUps}`);
      assert.ok(seen.some((d) => d.type === "breaker.reject"));
    } finally {
      off();
    }
  });

  test("subscribing to some types; unsubscribing stops delivery", async () => {
    const model = fresh("filter");
    const retries: Decision[] = [];
    const off = onDecision((d) => retries.push(d), ["retry"]);
    fake.script({ match: { model }, times: 1, action: { status: 500 } });
    await chat(model);
    await delay(1);
    assert.deepEqual(
      retries.map((d) => d.type),
      ["retry"],
    );
    off();
    fake.script({ match: { model }, times: 1, action: { status: 500 } });
    await chat(model);
    await delay(1);
    assert.equal(retries.length, 1);
  });

  test("a listener that throws or rejects never reaches the call, and is reported once", async () => {
    const model = fresh("throwing");
    const offThrow = onDecision(() => {
      throw new Error("listener bug");
    });
    const offReject = onDecision(async () => {
      throw new Error("async listener bug");
    });
    try {
      for (let i = 0; i < 3; i++) {
        fake.script({ match: { model }, times: 1, action: { status: 500 } });
        const res = await chat(model);
        assert.ok(res.choices[0]!.message.content);
      }
      await delay(5);
      const lines = logs.lines.filter((l) => /decision listener/.test(l.msg ?? ""));
      assert.equal(lines.filter((l) => /threw/.test(l.msg)).length, 1, logs.raw());
      assert.equal(lines.filter((l) => /rejected/.test(l.msg)).length, 1, logs.raw());
    } finally {
      offThrow();
      offReject();
    }
  });
});

describe("breakerStates / health: state for health checks", () => {
  test("an open breaker is listed with its key, provider, model, cooldown end and failure count; health says degraded", async () => {
    const down = fresh("health-down");
    const up = fresh("health-up");
    await chat(up);
    fake.script({ match: { model: down }, times: Infinity, action: { status: 500 } });
    const before = Date.now();
    await errorOf(chat(down));
    const states = await breakerStates();
    const d = states.find((s) => s.model === down);
    const u = states.find((s) => s.model === up);
    assert.ok(d && u, JSON.stringify(states));
    assert.equal(d.state, "open");
    assert.equal(d.provider, "openai");
    assert.equal(d.server, `127.0.0.1:${fake.port}`);
    assert.equal(d.key, `openai|127.0.0.1:${fake.port}|${down}`);
    assert.equal(d.store, "local");
    assert.ok(d.openUntil! >= before + 60_000 && d.openUntil! <= Date.now() + 60_000, String(d.openUntil));
    assert.equal(u.state, "closed");
    assert.equal(u.openUntil, undefined);
    assert.equal(u.consecutiveFailures, 0);

    const h = await health();
    assert.equal(h.status, "degraded");
    assert.ok(h.breakers.open >= 1 && h.breakers.closed >= 1);
    assert.ok(h.unavailable.some((b) => b.key === d.key));
    assert.ok(!h.unavailable.some((b) => b.key === u.key));
    assert.deepEqual(h.store, { kind: "local", degraded: false });
  });

  test("a closed breaker counts its consecutive failures", async () => {
    const model = fresh("health-count");
    fake.script({ match: { model }, times: 2, action: { status: 500 } });
    await errorOf(withPolicies({ maxAttempts: 2 }, () => chat(model)));
    const s = (await breakerStates()).find((b) => b.model === model);
    assert.equal(s?.state, "closed");
    assert.equal(s?.consecutiveFailures, 2);
  });
});
