import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createAzure } from "@ai-sdk/azure";
import { createOpenAI } from "@ai-sdk/openai";
import { LegacyOpenTelemetry, OpenTelemetry } from "@ai-sdk/otel";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { APICallError, embed, embedMany, generateObject, generateText, RetryError, streamObject, streamText } from "ai";
import { z } from "zod";
import { register } from "../src/index.ts";
import { DEFAULT_RESPONSE_DEFAULTS, expectedChunk, expectedText, type FakeProvider, startFakeProvider } from "./fake-provider/index.ts";
import { describeRun, REPO_ROOT, runChild } from "./helpers/child.ts";
import { memoryLogger } from "./helpers/memory-logger.ts";
import { attr, installTestTelemetry } from "./helpers/otel.ts";
import { OTLP_KIND, type OtlpReceiver, startOtlpReceiver } from "./helpers/otlp-receiver.ts";

// The real AI SDK (ai, @ai-sdk/openai, @ai-sdk/anthropic, @ai-sdk/azure) over real HTTP against the fake
// provider, with the real OpenTelemetry SDK exporting to memory.

const tel = installTestTelemetry();
let fake: FakeProvider;
let openai: ReturnType<typeof createOpenAI>;
let anthropic: ReturnType<typeof createAnthropic>;

/** Our log lines (warn and up), kept for the whole file. */
const mem = memoryLogger("warn");
const BASE = { startSdk: false, logger: mem.logger, baseDelayMs: 1, maxDelayMs: 5, breaker: false } as const;

before(async () => {
  fake = await startFakeProvider();
  register(BASE);
  openai = createOpenAI({ apiKey: "sk-test-ai-sdk", baseURL: fake.openaiBaseURL });
  anthropic = createAnthropic({ apiKey: "sk-ant-test-ai-sdk", baseURL: `${fake.anthropicBaseURL}/v1` });
  // The AI SDK logs a console warning for unknown model ids and deprecated functions: not what is tested here.
  (globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;
});
after(() => fake.close());
beforeEach(() => {
  register(BASE);
  fake.reset();
  fake.setDefaults(DEFAULT_RESPONSE_DEFAULTS);
  tel.reset();
});

const logicalSpans = () => tel.finished().filter((s) => s.instrumentationScope.name === "llm-resilience" && s.kind === 2);
function onlyLogical(): ReadableSpan {
  const spans = logicalSpans();
  assert.equal(spans.length, 1, `one logical span, got ${spans.map((s) => s.name).join(", ")}`);
  return spans[0]!;
}
const eventsOf = (s: ReadableSpan, name: string) => s.events.filter((e) => e.name === name);
/** Spans end a moment after the stream's last part reached the caller. */
const settle = () => new Promise((r) => setImmediate(r));

describe("generateText", () => {
  test("openai chat: one logical span with the convention's attributes, one attempt, the metrics", async () => {
    const res = await generateText({ model: openai.chat("gpt-4o-mini"), prompt: "hi", temperature: 0.2, maxOutputTokens: 50, seed: 7 });
    assert.equal(res.text, expectedText(3));

    const span = onlyLogical();
    assert.equal(span.name, "chat gpt-4o-mini");
    assert.equal(attr(span, "gen_ai.operation.name"), "chat");
    assert.equal(attr(span, "gen_ai.provider.name"), "openai");
    assert.equal(attr(span, "gen_ai.request.model"), "gpt-4o-mini");
    assert.equal(attr(span, "gen_ai.request.temperature"), 0.2);
    assert.equal(attr(span, "gen_ai.request.max_tokens"), 50);
    assert.equal(attr(span, "gen_ai.request.seed"), 7);
    assert.equal(attr(span, "gen_ai.request.stream"), false);
    assert.equal(attr(span, "gen_ai.response.model"), "gpt-4o-mini");
    assert.equal(attr(span, "gen_ai.response.id"), res.response.id);
    assert.deepEqual(attr(span, "gen_ai.response.finish_reasons"), ["stop"]);
    assert.equal(attr(span, "gen_ai.usage.input_tokens"), 11);
    assert.equal(attr(span, "gen_ai.usage.output_tokens"), 7);
    assert.equal(attr(span, "server.address"), "127.0.0.1");
    assert.equal(attr(span, "server.port"), fake.port);
    assert.equal(attr(span, "llm_resilience.attempts"), 1);
    const [attempt, ...more] = tel.attemptsOf(span);
    assert.equal(more.length, 0);
    assert.equal(attempt!.name, "chat gpt-4o-mini attempt");
    assert.equal(attr(attempt!, "http.response.status_code"), 200);
    assert.match(String(attr(attempt!, "llm_resilience.provider.request_id")), /^req_/);
    assert.ok(attr(attempt!, "http.response.header.x-ratelimit-remaining-requests"));

    assert.equal(
      await tel.metricValue("gen_ai.client.operation.duration", { "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini" }),
      1,
    );
    assert.equal(await tel.metricValue("gen_ai.client.token.usage", { "gen_ai.request.model": "gpt-4o-mini", "gen_ai.token.type": "input" }), 1);
    assert.equal(fake.requests.length, 1);
  });

  test("a 429 then a 200: one logical span, two attempts, a retry event; the provider saw two requests", async () => {
    fake.script({ match: { path: "/chat/completions" }, action: { status: 429, headers: { "retry-after-ms": "20" } } });
    const started = Date.now();
    const res = await generateText({ model: openai.chat("gpt-4o-mini"), prompt: "hi" });
    assert.equal(res.text, expectedText(3));
    assert.ok(Date.now() - started >= 20, "waited the server's retry-after-ms, not the AI SDK's 2 s backoff");

    const span = onlyLogical();
    assert.equal(attr(span, "llm_resilience.attempts"), 2);
    const attempts = tel.attemptsOf(span);
    assert.equal(attempts.length, 2);
    assert.equal(attr(attempts[0]!, "http.response.status_code"), 429);
    assert.equal(attr(attempts[0]!, "error.type"), "rate_limit_error");
    assert.equal(attr(attempts[1]!, "http.request.resend_count"), 1);
    assert.equal(attr(attempts[1]!, "http.response.status_code"), 200);
    const [retry] = eventsOf(span, "llm_resilience.retry");
    assert.equal(retry!.attributes!["llm_resilience.retry.delay_ms"], 20);
    assert.equal(retry!.attributes!["llm_resilience.retry.delay_source"], "retry-after-ms");
    assert.equal(fake.requests.length, 2);
    assert.equal(await tel.metricValue("llm_resilience.retries", { "gen_ai.request.model": "gpt-4o-mini" }), 1);
  });

  test("retries exhausted: the AI SDK's RetryError listing every attempt, exactly maxRetries + 1 requests, none added by the AI SDK", async () => {
    fake.script({ match: { path: "/chat/completions" }, times: Infinity, action: { status: 503 } });
    const err = await generateText({ model: openai.chat("gpt-4o-mini"), prompt: "hi", maxRetries: 3 }).catch((e: unknown) => e);
    assert.ok(RetryError.isInstance(err), `RetryError, got ${String(err)}`);
    assert.equal(err.reason, "maxRetriesExceeded");
    assert.equal(err.errors.length, 4);
    assert.ok(APICallError.isInstance(err.lastError));
    assert.equal(fake.requests.length, 4);

    const span = onlyLogical();
    assert.equal(attr(span, "llm_resilience.attempts"), 4);
    assert.equal(attr(span, "error.type"), "server_error");
    const [giveUp] = eventsOf(span, "llm_resilience.give_up");
    assert.equal(giveUp!.attributes!["llm_resilience.give_up.reason"], "max_attempts");
  });

  test("maxRetries: 0 is one attempt, and the provider's error as it is", async () => {
    fake.script({ match: { path: "/chat/completions" }, times: Infinity, action: { status: 503 } });
    const err = await generateText({ model: openai.chat("gpt-4o-mini"), prompt: "hi", maxRetries: 0 }).catch((e: unknown) => e);
    assert.ok(APICallError.isInstance(err));
    assert.equal(err.statusCode, 503);
    assert.equal(fake.requests.length, 1);
    assert.equal(attr(onlyLogical(), "llm_resilience.attempts"), 1);
  });

  test("maxRetries you pass is the limit; the AI SDK's default gives way to our maxAttempts, and its loop adds nothing", async () => {
    register({ ...BASE, maxAttempts: 1 });
    fake.script({ match: { path: "/chat/completions" }, times: Infinity, action: { status: 503 } });
    const err = await generateText({ model: openai.chat("gpt-4o-mini"), prompt: "hi" }).catch((e: unknown) => e);
    assert.ok(APICallError.isInstance(err));
    assert.equal(err.isRetryable, false, "marked: the policies gave up on it");
    assert.equal(fake.requests.length, 1, "one attempt, and no retry by the AI SDK's own loop");
    fake.reset();
    fake.script({ match: { path: "/chat/completions" }, times: Infinity, action: { status: 503 } });
    await generateText({ model: openai.chat("gpt-4o-mini"), prompt: "hi", maxRetries: 3 }).catch(() => {});
    assert.equal(fake.requests.length, 4);
  });

  test("a non-retryable 400 is one attempt and the AI SDK does not retry it either", async () => {
    fake.script({ match: { path: "/messages" }, action: { status: 400, errorType: "invalid_request_error", message: "bad" } });
    const err = await generateText({ model: anthropic("claude-haiku-4-5"), prompt: "hi" }).catch((e: unknown) => e);
    assert.ok(APICallError.isInstance(err));
    assert.equal(fake.requests.length, 1);
    const span = onlyLogical();
    assert.equal(attr(span, "error.type"), "invalid_request_error");
    assert.equal(eventsOf(span, "llm_resilience.give_up")[0]!.attributes!["llm_resilience.give_up.reason"], "non_retryable");
  });

  test("anthropic: usage with cache tokens (input counts them, the convention's rule), the provider's finish reason", async () => {
    fake.setDefaults({ cacheReadTokens: 5, cacheCreationTokens: 2 });
    const res = await generateText({ model: anthropic("claude-haiku-4-5"), prompt: "hi", maxOutputTokens: 100, topK: 3 });
    assert.equal(res.text, expectedText(3));
    const span = onlyLogical();
    assert.equal(span.name, "chat claude-haiku-4-5");
    assert.equal(attr(span, "gen_ai.provider.name"), "anthropic");
    assert.equal(attr(span, "gen_ai.request.top_k"), 3);
    assert.equal(attr(span, "gen_ai.usage.input_tokens"), 18);
    assert.equal(attr(span, "gen_ai.usage.cache_read.input_tokens"), 5);
    assert.equal(attr(span, "gen_ai.usage.cache_creation.input_tokens"), 2);
    assert.equal(attr(span, "gen_ai.usage.output_tokens"), 7);
    assert.deepEqual(attr(span, "gen_ai.response.finish_reasons"), ["end_turn"]);
    assert.match(String(attr(tel.attemptsOf(span)[0]!, "llm_resilience.provider.request_id")), /^req_/);
  });

  test("openai responses API and azure (the same model classes): provider names", async () => {
    await generateText({ model: openai.responses("gpt-4o-mini"), prompt: "hi" });
    const responses = onlyLogical();
    assert.equal(attr(responses, "gen_ai.provider.name"), "openai");
    // A completed response has no provider reason the AI SDK keeps: its unified one.
    assert.deepEqual(attr(responses, "gen_ai.response.finish_reasons"), ["stop"]);
    tel.reset();
    fake.reset();

    const azure = createAzure({ apiKey: "az-test-key", baseURL: `${fake.url}/openai`, useDeploymentBasedUrls: true });
    fake.script({ match: { platform: "azure" }, action: { status: 500 } });
    const res = await generateText({ model: azure.chat("my-deployment"), prompt: "hi" });
    assert.equal(res.text, expectedText(3));
    const span = onlyLogical();
    assert.equal(attr(span, "gen_ai.provider.name"), "azure.ai.openai");
    assert.equal(attr(span, "llm_resilience.attempts"), 2);
    assert.deepEqual(
      fake.requests.map((r) => r.platform),
      ["azure", "azure"],
    );
  });
});

describe("streamText", () => {
  test("anthropic: usage with cache tokens, finish reason, time to first chunk", async () => {
    fake.setDefaults({ cacheReadTokens: 5, cacheCreationTokens: 2 });
    const result = streamText({ model: anthropic("claude-haiku-4-5"), prompt: "hi" });
    let text = "";
    for await (const t of result.textStream) text += t;
    assert.equal(text, expectedText(3));
    await settle();
    const span = onlyLogical();
    assert.equal(attr(span, "gen_ai.request.stream"), true);
    assert.equal(attr(span, "gen_ai.usage.input_tokens"), 18);
    assert.equal(attr(span, "gen_ai.usage.cache_read.input_tokens"), 5);
    assert.equal(attr(span, "gen_ai.usage.output_tokens"), 7);
    assert.deepEqual(attr(span, "gen_ai.response.finish_reasons"), ["end_turn"]);
    assert.equal(typeof attr(span, "gen_ai.response.id"), "string");
    const ttfc = Number(attr(span, "gen_ai.response.time_to_first_chunk"));
    assert.ok(ttfc > 0 && ttfc * 1e9 <= span.duration[0] * 1e9 + span.duration[1], "time to first chunk within the call");
    assert.equal(await tel.metricValue("gen_ai.client.operation.time_to_first_chunk", { "gen_ai.provider.name": "anthropic" }), 1);
  });

  test("a 429 then a 200: one logical span, two attempts; the provider saw two requests", async () => {
    fake.script({ match: { path: "/chat/completions", stream: true }, action: { status: 429, headers: { "retry-after-ms": "10" } } });
    const result = streamText({ model: openai.chat("gpt-4o-mini"), prompt: "hi" });
    let text = "";
    for await (const t of result.textStream) text += t;
    assert.equal(text, expectedText(3));
    await settle();
    const span = onlyLogical();
    const attempts = tel.attemptsOf(span);
    assert.deepEqual(
      attempts.map((a) => attr(a, "http.response.status_code")),
      [429, 200],
    );
    assert.equal(attr(span, "llm_resilience.attempts"), 2);
    assert.equal(attr(span, "gen_ai.usage.output_tokens"), 7);
    assert.equal(eventsOf(span, "llm_resilience.retry").length, 1);
    assert.equal(fake.requests.length, 2);
  });

  test("a stream that fails before any output is retried, and the caller sees one clean answer", async () => {
    fake.script({ match: { path: "/messages", stream: true }, action: { streamErrorAfter: 0, errorType: "overloaded_error" } });
    const result = streamText({ model: anthropic("claude-haiku-4-5"), prompt: "hi" });
    let text = "";
    for await (const t of result.textStream) text += t;
    assert.equal(text, expectedText(3));
    await settle();
    const span = onlyLogical();
    assert.equal(attr(span, "llm_resilience.attempts"), 2);
    assert.equal(attr(tel.attemptsOf(span)[0]!, "error.type"), "overloaded_error");
    assert.equal(attr(span, "error.type"), undefined);
    assert.equal(fake.requests.length, 2);
  });

  test("a stream left early (break): its span ends without an error, with what arrived, once the AI SDK drops the stream", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    fake.setDefaults({ chunks: 50, chunkDelayMs: 5 });
    await (async () => {
      const result = streamText({ model: openai.chat("gpt-4o-mini"), prompt: "hi" });
      for await (const t of result.textStream) {
        assert.equal(t, expectedChunk(0));
        break;
      }
    })();
    // The AI SDK stops reading the provider's stream but never cancels it: it is left to the collector.
    for (let i = 0; i < 100 && logicalSpans().length === 0; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    const span = onlyLogical();
    assert.equal(attr(span, "error.type"), undefined);
    assert.equal(span.status.code, 0);
    assert.equal(typeof attr(span, "gen_ai.response.time_to_first_chunk"), "number");
    assert.equal(attr(span, "gen_ai.usage.output_tokens"), undefined, "the stream never reached its usage");
  });

  test("an abort mid-stream: the output that arrived is the call's result, as for the SDKs", async () => {
    fake.setDefaults({ chunks: 50, chunkDelayMs: 5 });
    const controller = new AbortController();
    const result = streamText({ model: openai.chat("gpt-4o-mini"), prompt: "hi", abortSignal: controller.signal });
    let n = 0;
    for await (const _ of result.textStream) if (++n === 3) controller.abort();
    await settle();
    const span = onlyLogical();
    assert.equal(attr(span, "error.type"), undefined);
    assert.equal(attr(span, "llm_resilience.attempts"), 1);
    assert.equal(fake.requests.length, 1);
  });
});

describe("generateObject, streamObject, embed, embedMany", () => {
  test("generateObject and streamObject go through the same call (one logical span each)", async () => {
    fake.script({ match: { path: "/chat/completions" }, action: { status: 500 } });
    const schema = z.object({ answer: z.string() });
    await generateObject({ model: openai.chat("gpt-4o-mini"), schema, prompt: "x" }).catch(() => {});
    const span = onlyLogical();
    assert.equal(attr(span, "llm_resilience.attempts"), 2);
    assert.equal(fake.requests.length, 2);
    tel.reset();
    fake.reset();

    const result = streamObject({ model: openai.chat("gpt-4o-mini"), schema, prompt: "x" });
    for await (const _ of result.partialObjectStream);
    await result.object.catch(() => {});
    await settle();
    const streamed = onlyLogical();
    assert.equal(attr(streamed, "gen_ai.request.stream"), true);
    assert.equal(fake.requests.length, 1);
    // These two publish no maxRetries (deprecated in ai 7): said once, naming the setting that applies.
    const said = mem.lines.filter((l) => String(l.msg).includes("did not publish its maxRetries"));
    assert.equal(said.length, 1);
    assert.match(said[0].msg, /LLM_RESILIENCE_MAX_ATTEMPTS/);
  });

  test("embed and embedMany: operation embeddings, input tokens, retried under one span", async () => {
    fake.script({ match: { path: "/embeddings" }, action: { status: 429, headers: { "retry-after-ms": "5" } } });
    const one = await embed({ model: openai.embedding("text-embedding-3-small"), value: "x" });
    assert.ok(Array.isArray(one.embedding));
    const span = onlyLogical();
    assert.equal(span.name, "embeddings text-embedding-3-small");
    assert.equal(attr(span, "gen_ai.operation.name"), "embeddings");
    assert.equal(attr(span, "llm_resilience.attempts"), 2);
    assert.equal(typeof attr(span, "gen_ai.usage.input_tokens"), "number");
    tel.reset();

    const many = await embedMany({ model: openai.embedding("text-embedding-3-small"), values: ["a", "b"], maxRetries: 0 });
    assert.equal(many.embeddings.length, 2);
    assert.equal(attr(onlyLogical(), "llm_resilience.attempts"), 1);
  });
});

describe("policies", () => {
  test("a fallback model: the primary's retries spent, the fallback answers; the event says why", async () => {
    register({ ...BASE, fallbacks: { "gpt-4o": ["gpt-4o-mini"] } });
    fake.script({ match: { path: "/chat/completions", model: "gpt-4o" }, times: Infinity, action: { status: 503 } });
    const res = await generateText({ model: openai.chat("gpt-4o"), prompt: "hi", maxRetries: 1 });
    assert.equal(res.text, expectedText(3));
    assert.equal(res.response.modelId, "gpt-4o-mini");
    assert.deepEqual(
      fake.requests.map((r) => r.model),
      ["gpt-4o", "gpt-4o", "gpt-4o-mini"],
    );
    const span = onlyLogical();
    assert.equal(attr(span, "gen_ai.request.model"), "gpt-4o");
    assert.equal(attr(span, "gen_ai.response.model"), "gpt-4o-mini");
    const [fallback] = eventsOf(span, "llm_resilience.fallback");
    assert.deepEqual(fallback!.attributes, {
      "llm_resilience.fallback.from": "gpt-4o",
      "llm_resilience.fallback.to": "gpt-4o-mini",
      "llm_resilience.fallback.reason": "max_attempts",
    });
    assert.deepEqual(
      tel.attemptsOf(span).map((a) => attr(a, "gen_ai.request.model")),
      ["gpt-4o", "gpt-4o", "gpt-4o-mini"],
    );
  });

  test("an abort while the request hangs: the caller's AbortError, one request, error.type aborted", async () => {
    fake.script({ match: { path: "/chat/completions" }, action: { hang: true } });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    const err = await generateText({ model: openai.chat("gpt-4o-mini"), prompt: "hi", abortSignal: controller.signal }).catch((e: unknown) => e);
    assert.equal((err as Error).name, "AbortError");
    assert.equal(fake.requests.length, 1);
    const span = onlyLogical();
    assert.equal(attr(span, "error.type"), "aborted");
    assert.equal(eventsOf(span, "llm_resilience.give_up")[0]!.attributes!["llm_resilience.give_up.reason"], "aborted");
  });

  test("an abort during the wait before a retry stops at once, without another request", async () => {
    fake.script({ match: { path: "/chat/completions" }, action: { status: 429, headers: { "retry-after-ms": "5000" } } });
    register({ ...BASE, maxRetryAfterMs: 60_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const started = Date.now();
    const err = await generateText({ model: openai.chat("gpt-4o-mini"), prompt: "hi", abortSignal: controller.signal }).catch((e: unknown) => e);
    assert.ok(Date.now() - started < 2000, "did not sit out the 5 s retry-after");
    assert.equal((err as Error).name, "AbortError");
    assert.equal(fake.requests.length, 1);
    assert.equal(attr(onlyLogical(), "error.type"), "aborted");
  });

  test("the breaker opens on the AI SDK's calls like on the SDKs': the next call is rejected without a request", async () => {
    register({ ...BASE, breaker: { failures: 2, cooldownMs: 60_000 } });
    fake.script({ match: { path: "/chat/completions", model: "gpt-breaker" }, times: Infinity, action: { status: 503 } });
    await generateText({ model: openai.chat("gpt-breaker"), prompt: "hi", maxRetries: 1 }).catch(() => {});
    assert.equal(fake.requests.length, 2);
    const err = await generateText({ model: openai.chat("gpt-breaker"), prompt: "hi" }).catch((e: unknown) => e);
    assert.equal((err as Error).name, "BreakerOpenError");
    assert.equal(fake.requests.length, 2, "no request while the breaker is open");
    const rejected = logicalSpans().at(-1)!;
    assert.equal(attr(rejected, "error.type"), "breaker_open");
    assert.equal(eventsOf(rejected, "llm_resilience.breaker.reject").length, 1);
  });

  test("the provider's rate-limit headers reach the limiter: the next call waits, with an event", async () => {
    register({ ...BASE, rpm: 1000 });
    fake.script({
      match: { model: "gpt-rpm" },
      action: { success: { headers: { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "150ms" } } },
    });
    await generateText({ model: openai.chat("gpt-rpm"), prompt: "hi" });
    const started = performance.now();
    await generateText({ model: openai.chat("gpt-rpm"), prompt: "hi" });
    assert.ok(performance.now() - started >= 100, "waited for the provider's reset");
    const [wait] = eventsOf(logicalSpans().at(-1)!, "llm_resilience.ratelimit.wait");
    assert.equal(wait!.attributes!["llm_resilience.ratelimit.kind"], "requests");
    assert.ok(Number(wait!.attributes!["llm_resilience.ratelimit.wait_ms"]) > 100);
  });

  test("an attempt timeout aborts a hanging request and retries it", async () => {
    register({ ...BASE, attemptTimeoutMs: 1000 });
    fake.script({ match: { path: "/chat/completions" }, action: { hang: true } });
    const res = await generateText({ model: openai.chat("gpt-4o-mini"), prompt: "hi" });
    assert.equal(res.text, expectedText(3));
    const span = onlyLogical();
    assert.deepEqual(
      tel.attemptsOf(span).map((a) => attr(a, "error.type")),
      ["timeout", undefined],
    );
    assert.equal(eventsOf(span, "llm_resilience.retry")[0]!.attributes!["error.type"], "timeout");
    assert.equal(fake.requests.length, 2);
  });

  test("a deadline ends a hanging call with error.type timeout", async () => {
    register({ ...BASE, deadlineMs: 100 });
    fake.script({ match: { path: "/chat/completions" }, times: Infinity, action: { hang: true } });
    const started = Date.now();
    const err = await generateText({ model: openai.chat("gpt-4o-mini"), prompt: "hi" }).catch((e: unknown) => e);
    assert.ok(Date.now() - started < 5000, "ended by the deadline, not by the hang");
    assert.ok(err instanceof Error);
    const span = onlyLogical();
    assert.equal(attr(span, "error.type"), "timeout");
    assert.equal(eventsOf(span, "llm_resilience.give_up")[0]!.attributes!["llm_resilience.give_up.reason"], "deadline");
  });
});

describe("with the AI SDK's own telemetry", () => {
  test("ai.generateText spans (LegacyOpenTelemetry): ours nests under ai.generateText.doGenerate", async () => {
    fake.script({ match: { path: "/chat/completions" }, action: { status: 429, headers: { "retry-after-ms": "1" } } });
    await generateText({
      model: openai.chat("gpt-4o-mini"),
      prompt: "hi",
      experimental_telemetry: { isEnabled: true, integrations: new LegacyOpenTelemetry() },
    });
    const spans = tel.finished();
    const root = spans.find((s) => s.name === "ai.generateText")!;
    const step = spans.find((s) => s.name === "ai.generateText.doGenerate")!;
    const ours = onlyLogical();
    assert.equal(step.parentSpanContext?.spanId, root.spanContext().spanId);
    assert.equal(ours.parentSpanContext?.spanId, step.spanContext().spanId);
    assert.equal(ours.spanContext().traceId, root.spanContext().traceId);
    assert.equal(tel.attemptsOf(ours).length, 2);
    assert.equal(spans.filter((s) => s.attributes["gen_ai.operation.name"] !== undefined && s.kind === 2).length, 1, "one GenAI client span");
  });

  test("GenAI spans (OpenTelemetry): its `chat` span is the call's span, not doubled; attempts and events go on it", async () => {
    fake.script({ match: { path: "/chat/completions", stream: true }, action: { status: 503 } });
    const result = streamText({
      model: openai.chat("gpt-4o-mini"),
      prompt: "hi",
      experimental_telemetry: { isEnabled: true, integrations: new OpenTelemetry() },
    });
    for await (const _ of result.textStream);
    await settle();
    const spans = tel.finished();
    const chat = spans.filter((s) => s.name === "chat gpt-4o-mini");
    assert.equal(chat.length, 1, `one chat span, got ${chat.map((s) => s.instrumentationScope.name).join(", ")}`);
    const span = chat[0]!;
    assert.equal(span.instrumentationScope.name, "gen_ai");
    assert.equal(attr(span, "llm_resilience.attempts"), 2);
    assert.equal(eventsOf(span, "llm_resilience.retry").length, 1);
    assert.equal(tel.attemptsOf(span).length, 2);
    assert.equal(attr(span, "server.port"), fake.port);
    assert.equal(logicalSpans().length, 0, "no second CLIENT span of ours");
  });
});

describe("from the one start-up line, in every module system (real child processes, OTLP to a receiver)", () => {
  let rx: OtlpReceiver;
  before(async () => {
    assert.ok(existsSync(join(REPO_ROOT, "dist", "register.js")), "run `npm run build` first");
    rx = await startOtlpReceiver();
  });
  after(() => rx.close());

  const FIXTURES = "test/fixtures/ai-sdk";
  const cases: [string, string[]][] = [
    ["import first (ES module app)", [`${FIXTURES}/import-first.mjs`]],
    ["node --import llm-resilience/register", ["--import", "llm-resilience/register", `${FIXTURES}/plain.mjs`]],
    ["require first (CommonJS app; ai 7 is ES modules that require() loads)", [`${FIXTURES}/require-first.cjs`]],
    ["a CommonJS app importing the AI SDK after registering", [`${FIXTURES}/import-later.cjs`]],
  ];
  let seq = 0;
  for (const [title, args] of cases) {
    test(title, async () => {
      const id = `ai-sdk-${++seq}`;
      const retryModel = `retry-${id}`;
      fake.script({ match: { model: retryModel }, times: 1, action: { status: 429, headers: { "retry-after-ms": "10" } } });
      const result = await runChild(args, {
        env: {
          FAKE_URL: fake.url,
          RETRY_MODEL: retryModel,
          OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
          OTEL_SERVICE_NAME: id,
          OTEL_BSP_SCHEDULE_DELAY: "60000",
          LLM_RESILIENCE_LOG_LEVEL: "warn",
        },
        timeoutMs: 60_000,
      });
      assert.equal(result.code, 0, describeRun(result));
      assert.match(result.stdout, /APP-RESULT \["tok0 tok1 tok2 ","tok0 tok1 tok2 "\]/);
      await new Promise((r) => setTimeout(r, 50));
      const spans = rx.spansOf(id);
      const logical = spans.filter((s) => s.scope === "llm-resilience" && s.kind === OTLP_KIND.CLIENT);
      assert.deepEqual(logical.map((s) => s.name).sort(), ["chat claude-haiku-4-5", `chat ${retryModel}`], describeRun(result));
      const retried = logical.find((s) => s.name === `chat ${retryModel}`)!;
      assert.equal(retried.attributes["llm_resilience.attempts"], 2);
      assert.equal(spans.filter((s) => s.parentSpanId === retried.spanId).length, 2);
      assert.equal(fake.requests.filter((r) => r.model === retryModel).length, 2, "the provider saw two requests");
    });
  }
});
