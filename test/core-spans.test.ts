import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { register } from "../src/index.ts";
import { startFakeProvider, expectedText, type FakeProvider } from "./fake-provider/index.ts";
import { attr, installTestTelemetry } from "./helpers/otel.ts";

const tel = installTestTelemetry();
let fake: FakeProvider;
let openai: OpenAI;
let anthropic: Anthropic;

before(async () => {
  fake = await startFakeProvider();
  register({ startSdk: false, logLevel: "silent", baseDelayMs: 1, maxDelayMs: 5, breaker: false });
  openai = new OpenAI({ apiKey: "sk-test", baseURL: fake.openaiBaseURL });
  anthropic = new Anthropic({ apiKey: "sk-ant-test", baseURL: fake.anthropicBaseURL });
});
after(() => fake.close());
beforeEach(() => {
  fake.reset();
  tel.reset();
});

describe("span model", () => {
  test("a chat call that got a 429 and then succeeded: one logical span, two attempts, a retry event", async () => {
    fake.script({ match: { path: "/chat/completions" }, action: { status: 429, headers: { "retry-after-ms": "20" } } });
    const started = Date.now();
    const res = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], temperature: 0.2, max_tokens: 50 });
    assert.equal(res.choices[0]!.message.content, expectedText(3));
    assert.ok(Date.now() - started >= 20, "waited retry-after-ms");

    const [logical, ...others] = tel.logical();
    assert.equal(others.length, 0);
    assert.equal(logical!.name, "chat gpt-4o-mini");
    assert.equal(attr(logical!, "gen_ai.operation.name"), "chat");
    assert.equal(attr(logical!, "gen_ai.provider.name"), "openai");
    assert.equal(attr(logical!, "gen_ai.request.model"), "gpt-4o-mini");
    assert.equal(attr(logical!, "gen_ai.request.temperature"), 0.2);
    assert.equal(attr(logical!, "gen_ai.request.max_tokens"), 50);
    assert.equal(attr(logical!, "gen_ai.usage.input_tokens"), 11);
    assert.equal(attr(logical!, "gen_ai.usage.output_tokens"), 7);
    assert.deepEqual(attr(logical!, "gen_ai.response.finish_reasons"), ["stop"]);
    assert.equal(attr(logical!, "gen_ai.response.id"), res.id);
    assert.equal(attr(logical!, "server.address"), "127.0.0.1");
    assert.equal(attr(logical!, "server.port"), fake.port);
    assert.equal(attr(logical!, "llm_resilience.attempts"), 2);
    assert.equal(attr(logical!, "error.type"), undefined);

    const attempts = tel.attemptsOf(logical!);
    assert.deepEqual(attempts.map((a) => a.name), ["chat gpt-4o-mini attempt", "chat gpt-4o-mini attempt"]);
    assert.equal(attempts[0]!.kind, 0 /* INTERNAL */);
    assert.equal(attr(attempts[0]!, "llm_resilience.attempt.number"), 1);
    assert.equal(attr(attempts[0]!, "http.request.resend_count"), undefined);
    assert.equal(attr(attempts[0]!, "http.response.status_code"), 429);
    assert.equal(attr(attempts[0]!, "error.type"), "rate_limit_error");
    assert.equal(attr(attempts[1]!, "llm_resilience.attempt.number"), 2);
    assert.equal(attr(attempts[1]!, "http.request.resend_count"), 1);
    assert.equal(attr(attempts[1]!, "http.response.status_code"), 200);
    assert.equal(attr(attempts[1]!, "gen_ai.usage.input_tokens"), 11);
    assert.match(String(attr(attempts[1]!, "llm_resilience.provider.request_id")), /^req_/);
    assert.ok(attr(attempts[1]!, "http.response.header.x-ratelimit-remaining-requests"));

    const retry = logical!.events.find((e) => e.name === "llm_resilience.retry");
    assert.ok(retry, "retry event");
    assert.equal(retry!.attributes!["llm_resilience.attempt.number"], 1);
    assert.equal(retry!.attributes!["llm_resilience.retry.delay_ms"], 20);
    assert.equal(retry!.attributes!["llm_resilience.retry.delay_source"], "retry-after-ms");
    assert.equal(retry!.attributes!["error.type"], "rate_limit_error");

    // The SDK's own retries are off underneath: exactly two requests, the second marked as a retry.
    assert.equal(fake.requests.length, 2);
    assert.equal(fake.requests[1]!.retryCount, 1);
  });

  test("a streamed Anthropic call: usage incl. cache tokens, finish reason, time to first chunk, no SDK span", async () => {
    fake.setDefaults({ cacheReadTokens: 5, cacheCreationTokens: 2 });
    try {
      const stream = await anthropic.messages.create({ model: "claude-haiku-4-5", max_tokens: 64, stream: true, messages: [{ role: "user", content: "hi" }] });
      let text = "";
      for await (const ev of stream) if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
      assert.equal(text, expectedText(3));
    } finally {
      fake.setDefaults({ cacheReadTokens: 0, cacheCreationTokens: 0 });
    }
    const spans = tel.finished();
    assert.equal(spans.filter((s) => s.name.startsWith("anthropic.")).length, 0, "the SDK's own span is replaced by ours");
    const [logical, ...others] = tel.logical();
    assert.equal(others.length, 0);
    assert.equal(logical!.name, "chat claude-haiku-4-5");
    assert.equal(attr(logical!, "gen_ai.provider.name"), "anthropic");
    assert.equal(attr(logical!, "gen_ai.request.stream"), true);
    assert.equal(attr(logical!, "gen_ai.usage.input_tokens"), 11 + 5 + 2);
    assert.equal(attr(logical!, "gen_ai.usage.cache_read.input_tokens"), 5);
    assert.equal(attr(logical!, "gen_ai.usage.cache_creation.input_tokens"), 2);
    assert.equal(attr(logical!, "gen_ai.usage.output_tokens"), 7);
    assert.deepEqual(attr(logical!, "gen_ai.response.finish_reasons"), ["end_turn"]);
    assert.equal(typeof attr(logical!, "gen_ai.response.time_to_first_chunk"), "number");
    assert.match(String(attr(logical!, "gen_ai.response.id")), /^msg_/);
    const attempts = tel.attemptsOf(logical!);
    assert.equal(attempts.length, 1);
    assert.equal(attr(attempts[0]!, "gen_ai.usage.output_tokens"), 7);
  });

  test("non-retryable 400 context overflow: one attempt, error.type context_length_exceeded, give_up non_retryable", async () => {
    fake.script({ match: { path: "/chat/completions" }, action: { status: 400, errorCode: "context_length_exceeded" } });
    await assert.rejects(
      openai.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] }),
      (e: any) => e instanceof OpenAI.BadRequestError && e.status === 400,
    );
    const [logical] = tel.logical();
    assert.equal(attr(logical!, "error.type"), "context_length_exceeded");
    assert.equal(attr(logical!, "llm_resilience.attempts"), 1);
    assert.equal(logical!.status.code, 2);
    const giveUp = logical!.events.find((e) => e.name === "llm_resilience.give_up");
    assert.equal(giveUp?.attributes?.["llm_resilience.give_up.reason"], "non_retryable");
    assert.equal(fake.requests.length, 1);
  });

  test("the user's maxRetries is our limit: maxRetries 1 → 2 attempts then give_up max_attempts", async () => {
    fake.script({ match: { path: "/v1/messages" }, times: 5, action: { status: 529, errorType: "overloaded_error" } });
    await assert.rejects(
      anthropic.messages.create({ model: "claude-sonnet-4-5", max_tokens: 10, messages: [{ role: "user", content: "x" }] }, { maxRetries: 1 }),
      (e: any) => e instanceof Anthropic.APIError && e.status === 529,
    );
    assert.equal(fake.requests.length, 2);
    const [logical] = tel.logical();
    assert.equal(attr(logical!, "error.type"), "overloaded_error");
    assert.equal(attr(logical!, "llm_resilience.attempts"), 2);
    assert.deepEqual(
      logical!.events.map((e) => e.name),
      ["llm_resilience.retry", "llm_resilience.give_up"],
    );
    assert.equal(logical!.events[1]!.attributes!["llm_resilience.give_up.reason"], "max_attempts");
  });
});
