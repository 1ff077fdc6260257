// AI SDK calls (generateText, streamText, embed, a provider model's doGenerate) priced, held to the spend
// limit and validated by the same Preflight as SDK calls: the real AI SDK over real HTTP against the fake
// provider, recorded by the real OpenTelemetry SDK.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { OpenTelemetry } from "@ai-sdk/otel";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { embed, generateText, streamText, tool } from "ai";
import { z } from "zod";
import { type RegisterOptions, register, SpendLimitError } from "../src/index.ts";
import { DEFAULT_RESPONSE_DEFAULTS, expectedText, type FakeProvider, startFakeProvider } from "./fake-provider/index.ts";
import { attr, installTestTelemetry } from "./helpers/otel.ts";
import { close, expectInvalidRequest, GPT4O_CALL_USD, runawayLoop } from "./helpers/refusals.ts";

const tel = installTestTelemetry();
let fake: FakeProvider;
let openai: ReturnType<typeof createOpenAI>;
let anthropic: ReturnType<typeof createAnthropic>;

const BASE: RegisterOptions = { startSdk: false, logLevel: "silent", baseDelayMs: 1, maxDelayMs: 5, breaker: false };
const setup = (o: RegisterOptions = {}) => register({ ...BASE, ...o });
const ours = () => tel.finished().filter((s) => s.instrumentationScope.name === "llm-resilience" && s.kind === 2);
const eventsOf = (s: ReadableSpan, name: string) => s.events.filter((e) => e.name === name);
const giveUpReason = (s: ReadableSpan) => eventsOf(s, "llm_resilience.give_up")[0]?.attributes?.["llm_resilience.give_up.reason"];
/** Spans end a moment after the stream's last part reached the caller. */
const settle = () => new Promise((r) => setImmediate(r));
let seq = 0;

before(async () => {
  fake = await startFakeProvider();
  openai = createOpenAI({ apiKey: "sk-test-ai-sdk", baseURL: fake.openaiBaseURL });
  anthropic = createAnthropic({ apiKey: "sk-ant-test-ai-sdk", baseURL: `${fake.anthropicBaseURL}/v1` });
  (globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;
});
after(() => fake.close());
beforeEach(() => {
  setup();
  fake.reset();
  fake.setDefaults(DEFAULT_RESPONSE_DEFAULTS);
  tel.reset();
});

describe("cost of an AI SDK call", () => {
  test("generateText (openai): llm_resilience.cost.usd on the logical span and its attempt; the counter splits input and output", async () => {
    fake.setDefaults({ inputTokens: 1000, cacheReadTokens: 400, outputTokens: 500 });
    const labels = { "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini", "gen_ai.provider.name": "openai" };
    const inputBefore = await tel.metricValue("llm_resilience.cost", { ...labels, "gen_ai.token.type": "input" });
    const outputBefore = await tel.metricValue("llm_resilience.cost", { ...labels, "gen_ai.token.type": "output" });
    fake.script({ match: { path: "/chat/completions" }, action: { status: 503 } });
    await generateText({ model: openai.chat("gpt-4o-mini"), prompt: "hi" });
    const [span] = ours();
    // gpt-4o-mini: 0.15 input, 0.075 cached input, 0.60 output (USD per million tokens)
    const input = (600 * 0.15 + 400 * 0.075) / 1e6;
    const output = (500 * 0.6) / 1e6;
    close(attr(span!, "llm_resilience.cost.usd"), input + output, "logical");
    const [failed, answered] = tel.attemptsOf(span!);
    assert.equal(attr(failed!, "llm_resilience.cost.usd"), undefined, "the 503 reported no usage and cost nothing");
    close(attr(answered!, "llm_resilience.cost.usd"), input + output, "attempt");
    close((await tel.metricValue("llm_resilience.cost", { ...labels, "gen_ai.token.type": "input" })) - inputBefore, input, "input counter");
    close((await tel.metricValue("llm_resilience.cost", { ...labels, "gen_ai.token.type": "output" })) - outputBefore, output, "output counter");
  });

  test("streamText (anthropic): priced from the finish part, cache reads and writes at their rates", async () => {
    fake.setDefaults({ inputTokens: 100, cacheReadTokens: 2000, cacheCreationTokens: 500, outputTokens: 80 });
    const result = streamText({ model: anthropic("claude-haiku-4-5"), prompt: "hi" });
    for await (const _ of result.textStream);
    await settle();
    const [span] = ours();
    // claude-haiku-4-5: 1 input, 0.10 cache read, 1.25 cache write, 5 output
    const usd = (100 * 1 + 2000 * 0.1 + 500 * 1.25 + 80 * 5) / 1e6;
    close(attr(span!, "llm_resilience.cost.usd"), usd, "logical");
    close(attr(tel.attemptsOf(span!)[0]!, "llm_resilience.cost.usd"), usd, "attempt");
  });

  test("embed is priced from its input tokens", async () => {
    fake.setDefaults({ inputTokens: 2000 });
    await embed({ model: openai.embedding("text-embedding-3-small"), value: "x" });
    const [span] = ours();
    assert.ok(Number(attr(span!, "llm_resilience.cost.usd")) > 0, "embedding cost recorded");
  });

  test("with the AI SDK's own GenAI span, the cost goes on that span (the call's one span)", async () => {
    await generateText({
      model: openai.chat("gpt-4o-mini"),
      prompt: "hi",
      experimental_telemetry: { isEnabled: true, integrations: new OpenTelemetry() },
    });
    const [chat] = tel.finished().filter((s) => s.name === "chat gpt-4o-mini");
    close(attr(chat!, "llm_resilience.cost.usd"), (11 * 0.15 + 7 * 0.6) / 1e6);
  });
});

describe("the spend limit on AI SDK calls", () => {
  test("a runaway generateText loop stops at the limit: no request beyond it reaches the provider, the AI SDK retries nothing", async (t) => {
    const limit = 0.01 + ++seq * 1e-6; // a window of its own
    setup({ spendLimit: { usd: limit } });
    // gpt-4o: 2.50 input, 10 output. Worst case per call: ~20 input tokens + 100 output = ~0.00105 USD;
    // actual (11 in, 7 out): 0.0000975 USD. The loop goes on while spent + worst case fits.
    const { attempted } = await runawayLoop(t, () => generateText({ model: openai.chat("gpt-4o"), prompt: "hi", maxOutputTokens: 100 }), {
      limitUsd: limit,
      callUsd: GPT4O_CALL_USD,
      requestsSeen: () => fake.requests.length,
    });
    assert.equal(ours().length, attempted, "one logical span per call: the AI SDK's loop did not retry a refusal");

    const refusedSpan = ours().at(-1)!;
    assert.equal(tel.attemptsOf(refusedSpan).length, 0, "no attempt span: nothing was sent");
    assert.equal(eventsOf(refusedSpan, "llm_resilience.spend.reject").length, 1);
    assert.equal(giveUpReason(refusedSpan), "spend_limit");
    assert.equal(attr(refusedSpan, "error.type"), "spend_limit");
  });

  test("streamText: the refusal reaches the caller as the stream's error, with no request sent", async () => {
    setup({ spendLimit: { usd: 1e-4 + ++seq * 1e-9 } });
    const errors: unknown[] = [];
    const result = streamText({
      model: anthropic("claude-sonnet-4-5"),
      prompt: "hi",
      maxOutputTokens: 1000,
      onError: ({ error }) => void errors.push(error),
    });
    for await (const _ of result.textStream);
    await settle();
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof SpendLimitError, String(errors[0]));
    assert.equal(fake.requests.length, 0);
    const [span] = ours();
    assert.equal(giveUpReason(span!), "spend_limit");
  });

  test("the worst case reserved is the AI SDK's maxOutputTokens: a call that fits is sent, the same call asking for more is not", async () => {
    // gpt-4o at 10 USD/M output: 1000 output tokens are 0.01 USD.
    setup({ spendLimit: { usd: 0.005 + ++seq * 1e-9 } });
    await generateText({ model: openai.chat("gpt-4o"), prompt: "hi", maxOutputTokens: 100 });
    assert.equal(fake.requests.length, 1);
    await assert.rejects(generateText({ model: openai.chat("gpt-4o"), prompt: "hi", maxOutputTokens: 1000 }), SpendLimitError);
    assert.equal(fake.requests.length, 1);
  });

  test("an image in the prompt is estimated as one media item (as an inline image to the SDKs is), not by its bytes", async () => {
    // gpt-4o: one image ~1,000 input tokens (0.0025 USD) + 100 output (0.001) fits in 0.01 USD; the
    // image's 64 KiB counted as serialised bytes (~130,000 tokens, ~0.33 USD) would not.
    setup({ spendLimit: { usd: 0.01 + ++seq * 1e-9 } });
    const image = new Uint8Array(64 * 1024).fill(7);
    await generateText({
      model: openai.chat("gpt-4o"),
      messages: [{ role: "user", content: [{ type: "image", image, mediaType: "image/png" }] }],
      maxOutputTokens: 100,
    });
    assert.equal(fake.requests.length, 1);
  });
});

describe("validation of AI SDK calls (validate: true)", () => {
  beforeEach(() => setup({ validate: true }));

  /** Expects an InvalidRequestError naming `problem`, no request on the wire and one logical span giving up. */
  async function refused(call: () => Promise<unknown>, problem: RegExp, errorType = "invalid_request_error"): Promise<void> {
    await expectInvalidRequest(call, problem, () => fake.requests.length);
    const spans = ours();
    assert.equal(spans.length, 1, "one logical span: not retried");
    assert.equal(tel.attemptsOf(spans[0]!).length, 0);
    assert.equal(giveUpReason(spans[0]!), "invalid_request");
    assert.equal(attr(spans[0]!, "error.type"), errorType);
  }

  test("a model call with an empty prompt (a middleware or a direct doGenerate call) is refused before sending", () =>
    refused(() => openai.chat("gpt-4o-mini").doGenerate({ prompt: [] }), /^prompt: must not be empty$/));

  test("Anthropic: a prompt of system messages only is refused (no message would be left)", () =>
    refused(() => anthropic("claude-haiku-4-5").doGenerate({ prompt: [{ role: "system", content: "be brief" }] }), /^prompt: system messages only/));

  test("an unknown role is refused", () =>
    refused(
      () => openai.chat("gpt-4o-mini").doGenerate({ prompt: [{ role: "human", content: "x" } as any] }),
      /^prompt\[0\]\.role: unknown role "human"/,
    ));

  test("a prompt certainly above the model's context window: refused without a round trip, or straight to the context fallback", async () => {
    const model = `tiny-window-${++seq}`;
    setup({ validate: true, prices: { [model]: { input: 1, output: 1, contextWindow: 100 } } });
    const long = "lorem ipsum dolor sit amet ".repeat(200); // 4,400 non-space characters: at least 733 tokens
    await refused(() => generateText({ model: openai.chat(model), prompt: long }), /above the context window/, "context_length_exceeded");

    tel.reset();
    setup({ validate: true, prices: { [model]: { input: 1, output: 1, contextWindow: 100 } }, contextFallbacks: { [model]: ["gpt-4o-mini"] } });
    const res = await generateText({ model: openai.chat(model), prompt: long });
    assert.equal(res.text, expectedText(3));
    assert.deepEqual(
      fake.requests.map((r) => r.model),
      ["gpt-4o-mini"],
      "only the fallback was asked",
    );
    const [fallback] = eventsOf(ours()[0]!, "llm_resilience.fallback");
    assert.equal(fallback!.attributes!["llm_resilience.fallback.reason"], "context_length_exceeded");
  });

  test("normal AI SDK calls are all sent: system, tools, an image, a maxOutputTokens the provider caps, streams, embeddings", async () => {
    const image = new Uint8Array(64 * 1024).fill(7);
    await generateText({ model: openai.chat("gpt-4o-mini"), system: "be brief", prompt: "hi" });
    await generateText({
      model: openai.chat("gpt-4o-mini"),
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "what is this?" },
            { type: "image", image, mediaType: "image/png" },
          ],
        },
      ],
    });
    await generateText({
      model: openai.chat("gpt-4o-mini"),
      prompt: "weather?",
      tools: { weather: tool({ description: "the weather", inputSchema: z.object({ city: z.string() }) }) },
    });
    await generateText({ model: openai.responses("gpt-4o-mini"), prompt: "hi" });
    // Above claude-haiku-4-5's 64,000: @ai-sdk/anthropic caps max_tokens at the model's limit, and the API accepts it.
    await generateText({ model: anthropic("claude-haiku-4-5"), system: "be brief", prompt: "hi", maxOutputTokens: 100_000 });
    await generateText({
      model: anthropic("claude-haiku-4-5"),
      messages: [
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
        { role: "user", content: [{ type: "image", image, mediaType: "image/png" }] },
      ],
    });
    const stream = streamText({ model: anthropic("claude-haiku-4-5"), prompt: "hi" });
    for await (const _ of stream.textStream);
    await embed({ model: openai.embedding("text-embedding-3-small"), value: "x" });
    await settle();
    assert.equal(fake.requests.length, 8, "every call was sent");
    assert.deepEqual(
      ours().map((s) => attr(s, "error.type")),
      Array(8).fill(undefined),
    );
  });
});
