// Cost per call and the spend limit, through the real SDKs over HTTP against the fake provider,
// recorded by the real OpenTelemetry SDK.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { resolveOptions } from "../src/config.ts";
import { type ConfigError, type RegisterOptions, register, SpendLimitError, withPolicies } from "../src/index.ts";
import { type FakeProvider, startFakeProvider } from "./fake-provider/index.ts";
import { memoryLogger } from "./helpers/memory-logger.ts";
import { installTestTelemetry } from "./helpers/otel.ts";
import { close, GPT4O_CALL_USD, runawayLoop } from "./helpers/refusals.ts";

const tel = installTestTelemetry();
const log = memoryLogger("debug");
let fake: FakeProvider;
let openai: OpenAI;
let anthropic: Anthropic;

const BASE: RegisterOptions = { startSdk: false, logger: log.logger, baseDelayMs: 1, maxDelayMs: 5 };
const setup = (o: RegisterOptions = {}) => register({ ...BASE, ...o });
const events = (span: any, name: string) => span.events.filter((e: any) => e.name === name);
const lastLogical = () => tel.logical().at(-1)!;
const hi = [{ role: "user" as const, content: "hi" }];
let seq = 0;

before(async () => {
  fake = await startFakeProvider();
  openai = new OpenAI({ apiKey: "sk-test", baseURL: fake.openaiBaseURL, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: "sk-ant-test", baseURL: fake.anthropicBaseURL, maxRetries: 0 });
});
after(() => fake.close());
beforeEach(() => {
  fake.reset();
  fake.setDefaults({ inputTokens: 11, outputTokens: 7, cacheReadTokens: 0, cacheCreationTokens: 0, reasoningTokens: 0 });
  tel.reset();
  log.reset();
  setup();
});

describe("cost of a call", () => {
  test("OpenAI: the logical span and its attempt carry llm_resilience.cost.usd; the counter splits input and output", async () => {
    fake.setDefaults({ inputTokens: 1000, cacheReadTokens: 400, outputTokens: 500, reasoningTokens: 300 });
    await openai.chat.completions.create({ model: "gpt-4o-mini", messages: hi });
    const span = lastLogical();
    const [attempt] = tel.attemptsOf(span);
    // gpt-4o-mini: 0.15 input, 0.075 cached, 0.60 output (reasoning is part of the output tokens)
    const input = (600 * 0.15 + 400 * 0.075) / 1e6;
    const output = (500 * 0.6) / 1e6;
    close(span.attributes["llm_resilience.cost.usd"], input + output, "logical");
    close(attempt!.attributes["llm_resilience.cost.usd"], input + output, "attempt");
    const labels = {
      "gen_ai.request.model": "gpt-4o-mini",
      "gen_ai.response.model": "gpt-4o-mini",
      "gen_ai.provider.name": "openai",
      "gen_ai.operation.name": "chat",
    };
    close(await tel.metricValue("llm_resilience.cost", { ...labels, "gen_ai.token.type": "input" }), input, "input counter");
    close(await tel.metricValue("llm_resilience.cost", { ...labels, "gen_ai.token.type": "output" }), output, "output counter");
  });

  test("Anthropic: cache reads and writes at their rates; a dated response model is priced by its undated name", async () => {
    fake.setDefaults({ inputTokens: 100, cacheReadTokens: 2000, cacheCreationTokens: 500, outputTokens: 80 });
    await anthropic.messages.create({ model: "claude-sonnet-4-5-20250929", max_tokens: 100, messages: hi });
    // claude-sonnet-4-5: 3 input, 0.30 cache read, 3.75 cache write, 15 output
    close(lastLogical().attributes["llm_resilience.cost.usd"], (100 * 3 + 2000 * 0.3 + 500 * 3.75 + 80 * 15) / 1e6);
  });

  test("a stream is priced from its usage when it ends", async () => {
    const stream = await anthropic.messages.create({ model: "claude-haiku-4-5", max_tokens: 50, messages: hi, stream: true });
    for await (const _ of stream);
    close(lastLogical().attributes["llm_resilience.cost.usd"], (11 * 1 + 7 * 5) / 1e6);
  });

  test("after a fallback the cost is the answering model's; failed attempts cost nothing", async () => {
    const primary = `gpt-primary-${++seq}`;
    const backup = `gpt-backup-${seq}`;
    setup({ fallbacks: { [primary]: [backup] }, prices: { [primary]: { input: 100, output: 100 }, [backup]: { input: 1, output: 2 } } });
    fake.script({ match: { model: primary }, times: Infinity, action: { status: 503 } });
    await openai.chat.completions.create({ model: primary, messages: hi }, { maxRetries: 1 });
    const span = lastLogical();
    const attempts = tel.attemptsOf(span);
    assert.deepEqual(
      attempts.map((a) => [a.attributes["gen_ai.request.model"], "llm_resilience.cost.usd" in a.attributes]),
      [
        [primary, false],
        [primary, false],
        [backup, true],
      ],
    );
    close(attempts[2]!.attributes["llm_resilience.cost.usd"], (11 * 1 + 7 * 2) / 1e6);
    close(span.attributes["llm_resilience.cost.usd"], (11 * 1 + 7 * 2) / 1e6);
    close(await tel.metricValue("llm_resilience.cost", { "gen_ai.request.model": primary, "gen_ai.response.model": backup }), (11 + 14) / 1e6);
  });

  test("prices override the bundled table (option)", async () => {
    setup({ prices: { "gpt-4o": { input: 1, output: 1 } } });
    await openai.chat.completions.create({ model: "gpt-4o", messages: hi });
    close(lastLogical().attributes["llm_resilience.cost.usd"], 18 / 1e6);
  });

  test("a model without a price: no cost attribute, one warning naming it, however many calls", async () => {
    const model = `unpriced-model-${++seq}`;
    for (let i = 0; i < 3; i++) await openai.chat.completions.create({ model, messages: hi });
    assert.equal(lastLogical().attributes["llm_resilience.cost.usd"], undefined);
    const warnings = log.lines.filter((l) => l.level === 40 && l.model === model);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0].msg, /no price for model .*LLM_RESILIENCE_PRICES/);
  });
});

describe("spend limit", () => {
  test("a runaway loop stops at the limit: no request beyond it reaches the provider", async (t) => {
    const limit = 0.01 + ++seq * 1e-6; // a window of its own
    setup({ spendLimit: { usd: limit } });
    // gpt-4o: 2.50 input, 10 output. Worst case per call: ~16 input tokens + 100 output = ~0.00104 USD;
    // actual (11 in, 7 out): 0.0000975 USD. The loop goes on while spent + worst case fits.
    const {
      refused,
      spent,
      firstRefusal: e,
    } = await runawayLoop(t, () => openai.chat.completions.create({ model: "gpt-4o", messages: hi, max_tokens: 100 }), {
      limitUsd: limit,
      callUsd: GPT4O_CALL_USD,
      requestsSeen: () => fake.requests.length,
    });
    assert.ok(e.retryAt > Date.now() && e.retryAt <= Date.now() + 3_600_000, "retryAt: when the spend leaves the hour window");
    // Every refusal after the first is one too: the provider saw nothing more.
    const requestsBefore = fake.requests.length;
    await assert.rejects(openai.chat.completions.create({ model: "gpt-4o", messages: hi, max_tokens: 100 }), SpendLimitError);
    assert.equal(fake.requests.length, requestsBefore);

    const span = lastLogical();
    assert.equal(tel.attemptsOf(span).length, 0, "no attempt span: nothing was sent");
    const [reject] = events(span, "llm_resilience.spend.reject");
    assert.equal(reject.attributes["llm_resilience.spend.limit_usd"], limit);
    close(reject.attributes["llm_resilience.spend.spent_usd"], spent);
    assert.ok(reject.attributes["llm_resilience.spend.estimate_usd"] > 0.001);
    const [giveUp] = events(span, "llm_resilience.give_up");
    assert.equal(giveUp.attributes["llm_resilience.give_up.reason"], "spend_limit");
    assert.equal(span.attributes["error.type"], "spend_limit");
    assert.equal(await tel.metricValue("llm_resilience.spend.rejections", { "gen_ai.request.model": "gpt-4o" }), refused + 1);
  });

  test("withPolicies({ spendLimit: false }): the limit never refuses the scope's calls, and what they cost still counts", async () => {
    const limit = 0.0005 + ++seq * 1e-9; // a window of its own; below one gpt-4o call's worst case (~0.00104)
    setup({ spendLimit: { usd: limit } });
    const call = (max_tokens: number) => openai.chat.completions.create({ model: "gpt-4o", messages: hi, max_tokens });
    await assert.rejects(call(100), SpendLimitError);
    const before = fake.requests.length;
    for (let i = 0; i < 6; i++) await withPolicies({ spendLimit: false }, () => call(100));
    assert.equal(fake.requests.length, before + 6, "every exempt call was sent");
    const e = await call(1).catch((err: unknown) => err);
    assert.ok(e instanceof SpendLimitError, String(e));
    close(e.spentUsd, 6 * GPT4O_CALL_USD, "the exempt calls' cost");
  });

  test("concurrent calls hold their worst case: no more are sent than the limit covers", async () => {
    const limit = 0.005 + ++seq * 1e-6;
    setup({ spendLimit: { usd: limit } });
    fake.setDefaults({ latencyMs: 30 });
    // Worst case per call (max_tokens 200 at 10 USD/M output, ~16 input tokens): ~0.00204 -> 2 fit in 0.005.
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => openai.chat.completions.create({ model: "gpt-4o", messages: hi, max_tokens: 200 })),
    );
    const ok = results.filter((r) => r.status === "fulfilled").length;
    assert.equal(ok, 2);
    assert.equal(fake.requests.length, 2);
    assert.ok(results.filter((r) => r.status === "rejected").every((r) => (r as PromiseRejectedResult).reason instanceof SpendLimitError));
    fake.setDefaults({ latencyMs: 0 });
  });

  test("the hold is replaced by the actual cost when the call ends, and freed when it fails", async () => {
    const limit = 0.003 + ++seq * 1e-6;
    setup({ spendLimit: { usd: limit }, maxAttempts: 1 });
    const model = "gpt-4o";
    // ~0.00204 worst case each: one at a time fits, two at once would not.
    for (let i = 0; i < 5; i++) await openai.chat.completions.create({ model, messages: hi, max_tokens: 200 });
    fake.script({ match: { model }, times: 3, action: { status: 500 } });
    for (let i = 0; i < 3; i++) await assert.rejects(openai.chat.completions.create({ model, messages: hi, max_tokens: 200 }), /500/);
    await openai.chat.completions.create({ model, messages: hi, max_tokens: 200 });
    assert.equal(fake.requests.length, 9, "every call fitted once the one before had settled");
  });

  test("an unpriced model is not limited (and says so once)", async () => {
    setup({ spendLimit: { usd: 1e-9 + ++seq * 1e-12 } });
    const model = `not-in-the-table-${seq}`;
    await openai.chat.completions.create({ model, messages: hi });
    assert.equal(fake.requests.length, 1);
    assert.equal(log.lines.filter((l) => l.level === 40 && l.model === model).length, 1);
  });
});

describe("configuration", () => {
  test("LLM_RESILIENCE_PRICES: a JSON object or the path of a JSON file, merged over the bundled table", async () => {
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const file = join(mkdtempSync(join(tmpdir(), "llmr-prices-")), "prices.json");
    writeFileSync(file, JSON.stringify({ "my-model": { input: 1, output: 2 } }));
    assert.deepEqual(resolveOptions({}, { LLM_RESILIENCE_PRICES: file }).prices, { "my-model": { input: 1, output: 2 } });
    assert.deepEqual(resolveOptions({}, { LLM_RESILIENCE_PRICES: '{"gpt-4o":{"cacheRead":1}}' }).prices, { "gpt-4o": { cacheRead: 1 } });
    assert.throws(
      () => resolveOptions({}, { LLM_RESILIENCE_PRICES: '{"mine":{"input":1}}' }),
      (e: ConfigError) => e.setting === "LLM_RESILIENCE_PRICES" && /needs input and output/.test(e.message),
    );
    assert.throws(() => resolveOptions({}, { LLM_RESILIENCE_PRICES: "/nonexistent/prices.json" }), /LLM_RESILIENCE_PRICES.*path of a JSON file/);
    assert.throws(() => resolveOptions({}, { LLM_RESILIENCE_PRICES: "{nope" }), /LLM_RESILIENCE_PRICES/);
  });

  test("spend limit and window from the environment, the option wins field by field; bad values name the setting", () => {
    assert.deepEqual(resolveOptions({}, { LLM_RESILIENCE_SPEND_LIMIT_USD: "2.5" }).spendLimit, { usd: 2.5, windowMs: 3_600_000 });
    assert.deepEqual(
      resolveOptions({ spendLimit: { usd: 9 } }, { LLM_RESILIENCE_SPEND_LIMIT_USD: "2.5", LLM_RESILIENCE_SPEND_WINDOW_MS: "60000" }).spendLimit,
      { usd: 9, windowMs: 60_000 },
    );
    assert.equal(resolveOptions({ spendLimit: false }, { LLM_RESILIENCE_SPEND_LIMIT_USD: "2.5" }).spendLimit, undefined);
    assert.equal(resolveOptions({}, { LLM_RESILIENCE_SPEND_WINDOW_MS: "60000" }).spendLimit, undefined, "a window alone limits nothing");
    for (const bad of ["0", "-1", "abc", "1e3"])
      assert.throws(() => resolveOptions({}, { LLM_RESILIENCE_SPEND_LIMIT_USD: bad }), /LLM_RESILIENCE_SPEND_LIMIT_USD/);
    assert.throws(() => resolveOptions({}, { LLM_RESILIENCE_SPEND_WINDOW_MS: "1.5" }), /LLM_RESILIENCE_SPEND_WINDOW_MS/);
    assert.throws(() => resolveOptions({ spendLimit: { usd: 0 } }, {}), /option spendLimit\.usd/);
    assert.throws(() => resolveOptions({ prices: { x: { input: "1" } } as any }, {}), /option prices/);
    assert.throws(() => resolveOptions({}, { LLM_RESILIENCE_VALIDATE: "yes" }), /LLM_RESILIENCE_VALIDATE/);
    assert.equal(resolveOptions({}, { LLM_RESILIENCE_VALIDATE: "true" }).validate, true);
  });
});
