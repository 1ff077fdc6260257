// Every instrumented operation of both SDKs, called through the real SDKs against the fake provider:
// the caller gets what the SDK returns (same content, same API), and exactly one logical span with
// the right name, operation, provider, model, usage, finish reasons and response id, with attempts.
import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { Stream as AnthropicStream } from "@anthropic-ai/sdk/streaming";
import { Stream as OpenAIStream } from "openai/streaming";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { register } from "../src/index.ts";
import { expectedText, STRUCTURED_ANSWER, startFakeProvider, type FakeProvider } from "./fake-provider/index.ts";
import { attr, captureOtelWarnings, installTestTelemetry } from "./helpers/otel.ts";

const tel = installTestTelemetry();
const warnings = captureOtelWarnings();
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
  fake.setDefaults({ chunks: 3, chunkDelayMs: 0, cacheReadTokens: 0, cacheCreationTokens: 0, reasoningTokens: 0, latencyMs: 0 });
  tel.reset();
  warnings.reset();
});
afterEach(() => {
  assert.deepEqual(warnings.endedSpanMisuse(), [], "no span was ended twice or changed after its end");
});

const user = [{ role: "user" as const, content: "hi" }];
const SCHEMA = {
  type: "object",
  properties: { answer: { type: "number" } },
  required: ["answer"],
  additionalProperties: false,
} as const;

/** Lets span ends scheduled after the caller's last await (setImmediate) happen. */
const settle = () => new Promise((r) => setTimeout(r, 15));

interface Expect {
  name: string;
  operation: string;
  provider: "openai" | "anthropic";
  model: string;
  input?: number;
  output?: number;
  finish?: string[];
  id?: string;
  stream?: boolean;
  /** Time to first chunk expected (default: when streamed). */
  ttfc?: boolean;
}

/** Exactly one logical span, as expected, with one successful attempt child; returns both. */
function oneCall(e: Expect): { span: ReadableSpan; attempt: ReadableSpan } {
  const logical = tel.logical();
  assert.equal(logical.length, 1, `one logical span, got ${logical.map((s) => s.name).join(", ")}`);
  const span = logical[0]!;
  checkSpan(span, e);
  const attempts = tel.attemptsOf(span);
  assert.equal(attempts.length, 1, "one attempt child");
  const attempt = attempts[0]!;
  assert.equal(attempt.name, `${e.name} attempt`);
  assert.equal(attempt.kind, 0 /* INTERNAL */);
  assert.equal(attr(attempt, "llm_resilience.attempt.number"), 1);
  assert.equal(attr(attempt, "http.response.status_code"), 200);
  assert.equal(attr(attempt, "gen_ai.request.model"), e.model);
  if (e.id !== undefined) assert.equal(attr(attempt, "gen_ai.response.id"), e.id);
  assert.match(String(attr(attempt, "llm_resilience.provider.request_id")), /^req_/);
  return { span, attempt };
}

function checkSpan(span: ReadableSpan, e: Expect): void {
  assert.equal(span.name, e.name);
  assert.equal(span.kind, 2 /* CLIENT */);
  assert.equal(span.status.code, 0, "status unset (not an error)");
  assert.equal(attr(span, "error.type"), undefined);
  assert.equal(attr(span, "gen_ai.operation.name"), e.operation);
  assert.equal(attr(span, "gen_ai.provider.name"), e.provider);
  assert.equal(attr(span, "gen_ai.request.model"), e.model);
  assert.equal(attr(span, "server.address"), "127.0.0.1");
  assert.equal(attr(span, "server.port"), fake.port);
  assert.equal(attr(span, "llm_resilience.attempts"), 1);
  assert.equal(attr(span, "gen_ai.usage.input_tokens"), e.input);
  assert.equal(attr(span, "gen_ai.usage.output_tokens"), e.output);
  assert.deepEqual(attr(span, "gen_ai.response.finish_reasons"), e.finish);
  assert.equal(attr(span, "gen_ai.response.id"), e.id);
  if (e.stream !== undefined) assert.equal(attr(span, "gen_ai.request.stream"), e.stream);
  const ttfc = e.ttfc ?? e.stream === true;
  assert.equal(typeof attr(span, "gen_ai.response.time_to_first_chunk"), ttfc ? "number" : "undefined");
}

const chatText = (chunks: OpenAI.Chat.Completions.ChatCompletionChunk[]) => chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");

describe("openai", () => {
  test("chat.completions.create (JSON)", async () => {
    const res = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: user, max_tokens: 20 });
    assert.equal(res.object, "chat.completion");
    assert.equal(res.choices[0]!.message.content, expectedText(3));
    assert.match(String(res._request_id), /^req_/);
    const { span } = oneCall({ name: "chat gpt-4o-mini", operation: "chat", provider: "openai", model: "gpt-4o-mini", input: 11, output: 7, finish: ["stop"], id: res.id, stream: false });
    assert.equal(attr(span, "gen_ai.response.model"), "gpt-4o-mini");
    assert.equal(attr(span, "gen_ai.request.max_tokens"), 20);
  });

  test("chat.completions.create (stream): async iteration gets every chunk", async () => {
    const stream = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: user, stream: true });
    assert.ok(stream instanceof OpenAIStream, "the SDK's Stream");
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    assert.equal(chatText(chunks), expectedText(3));
    assert.equal(chunks.at(-1)!.choices[0]!.finish_reason, "stop");
    assert.ok(!chunks.some((c) => "usage" in c), "no usage asked, none received");
    // No usage was asked for: none is recorded (see streaming.test.ts for the opt-in).
    oneCall({ name: "chat gpt-4o-mini", operation: "chat", provider: "openai", model: "gpt-4o-mini", finish: ["stop"], id: chunks[0]!.id, stream: true });
  });

  test("chat.completions.parse with a json_schema response_format", async () => {
    const res = await openai.chat.completions.parse({
      model: "gpt-4o",
      messages: user,
      response_format: { type: "json_schema", json_schema: { name: "answer", schema: SCHEMA, strict: true } },
    });
    assert.equal(res.choices[0]!.message.content, STRUCTURED_ANSWER);
    assert.deepEqual(res.choices[0]!.message.parsed, { answer: 4 });
    assert.equal(fake.requests[0]!.body.response_format.type, "json_schema");
    oneCall({ name: "chat gpt-4o", operation: "chat", provider: "openai", model: "gpt-4o", input: 11, output: 7, finish: ["stop"], id: res.id, stream: false });
  });

  test("chat.completions.stream helper: events and finalChatCompletion()", async () => {
    const runner = openai.chat.completions.stream({ model: "gpt-4o-mini", messages: user });
    let deltas = "";
    let chunkEvents = 0;
    runner.on("content", (delta) => {
      deltas += delta;
    });
    runner.on("chunk", () => {
      chunkEvents++;
    });
    const final = await runner.finalChatCompletion();
    assert.equal(deltas, expectedText(3));
    assert.equal(chunkEvents, 5, "role chunk + 3 content chunks + finish chunk");
    assert.equal(final.choices[0]!.message.content, expectedText(3));
    assert.equal(await runner.finalContent(), expectedText(3));
    await settle();
    oneCall({ name: "chat gpt-4o-mini", operation: "chat", provider: "openai", model: "gpt-4o-mini", finish: ["stop"], id: final.id, stream: true });
  });

  test("chat.completions.runTools with a function tool: one logical span per round trip", async () => {
    const calls: string[] = [];
    const runner = openai.chat.completions.runTools({
      model: "gpt-4o-mini",
      messages: user,
      tools: [
        {
          type: "function",
          function: {
            name: "lookup",
            parameters: { type: "object", properties: {} },
            function: (args: string) => {
              calls.push(args);
              return "42";
            },
          },
        },
      ],
    });
    assert.equal(await runner.finalContent(), expectedText(3));
    assert.equal(calls.length, 1, "the tool ran once");
    assert.equal(fake.requests.length, 2);
    assert.ok(fake.requests[1]!.body.messages.some((m: any) => m.role === "tool" && m.content === "42"), "second request carries the tool result");
    await settle();
    const spans = tel.logical().sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
    assert.equal(spans.length, 2);
    const ids = runner.allChatCompletions().map((c) => c.id);
    checkSpan(spans[0]!, { name: "chat gpt-4o-mini", operation: "chat", provider: "openai", model: "gpt-4o-mini", input: 11, output: 7, finish: ["tool_calls"], id: ids[0], stream: false });
    checkSpan(spans[1]!, { name: "chat gpt-4o-mini", operation: "chat", provider: "openai", model: "gpt-4o-mini", input: 11, output: 7, finish: ["stop"], id: ids[1], stream: false });
    for (const s of spans) assert.equal(tel.attemptsOf(s).length, 1);
  });

  test("chat.completions.runTools with stream: true: one streamed logical span per round trip", async () => {
    const runner = openai.chat.completions.runTools({
      model: "gpt-4o-mini",
      messages: user,
      stream: true,
      tools: [{ type: "function", function: { name: "lookup", parameters: { type: "object", properties: {} }, function: () => "42" } }],
    });
    let deltas = "";
    runner.on("content", (d) => {
      deltas += d;
    });
    assert.equal(await runner.finalContent(), expectedText(3));
    assert.equal(deltas, expectedText(3));
    await settle();
    const spans = tel.logical();
    assert.equal(spans.length, 2);
    assert.deepEqual(spans.map((s) => attr(s, "gen_ai.response.finish_reasons")).sort(), [["stop"], ["tool_calls"]]);
    for (const s of spans) assert.equal(attr(s, "gen_ai.request.stream"), true);
  });

  test("responses.create (JSON)", async () => {
    const res = await openai.responses.create({ model: "gpt-4.1", input: "hi", max_output_tokens: 30 });
    assert.equal(res.output_text, expectedText(3));
    const { span } = oneCall({ name: "chat gpt-4.1", operation: "chat", provider: "openai", model: "gpt-4.1", input: 11, output: 7, finish: ["completed"], id: res.id, stream: false });
    assert.equal(attr(span, "gen_ai.request.max_tokens"), 30);
  });

  test("responses.create (stream)", async () => {
    const stream = await openai.responses.create({ model: "gpt-4.1", input: "hi", stream: true });
    let text = "";
    let completedId: string | undefined;
    const types: string[] = [];
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === "response.output_text.delta") text += ev.delta;
      if (ev.type === "response.completed") completedId = ev.response.id;
    }
    assert.equal(text, expectedText(3));
    assert.equal(types[0], "response.created");
    assert.equal(types.at(-1), "response.completed");
    oneCall({ name: "chat gpt-4.1", operation: "chat", provider: "openai", model: "gpt-4.1", input: 11, output: 7, finish: ["completed"], id: completedId, stream: true });
  });

  test("responses.stream(...): events and finalResponse()", async () => {
    const rs = openai.responses.stream({ model: "gpt-4.1", input: "hi" });
    let deltas = "";
    rs.on("response.output_text.delta", (ev) => {
      deltas += ev.delta;
    });
    const final = await rs.finalResponse();
    assert.equal(deltas, expectedText(3));
    assert.equal(final.output_text, expectedText(3));
    await settle();
    oneCall({ name: "chat gpt-4.1", operation: "chat", provider: "openai", model: "gpt-4.1", input: 11, output: 7, finish: ["completed"], id: final.id, stream: true });
  });

  test("responses.parse with a json_schema text format", async () => {
    const res = await openai.responses.parse({
      model: "gpt-4.1",
      input: "hi",
      text: { format: { type: "json_schema", name: "answer", schema: SCHEMA, strict: true } },
    });
    assert.deepEqual(res.output_parsed, { answer: 4 });
    assert.equal(res.output_text, STRUCTURED_ANSWER);
    oneCall({ name: "chat gpt-4.1", operation: "chat", provider: "openai", model: "gpt-4.1", input: 11, output: 7, finish: ["completed"], id: res.id, stream: false });
  });

  test("embeddings.create: operation embeddings, input tokens only", async () => {
    const res = await openai.embeddings.create({ model: "text-embedding-3-small", input: ["a", "b"] });
    assert.equal(res.data.length, 2);
    assert.equal(res.data[0]!.embedding.length, 8);
    assert.ok(res.data[0]!.embedding.every((x) => typeof x === "number" && Number.isFinite(x)), "the SDK decoded base64 into floats");
    assert.equal(res.usage.prompt_tokens, 11);
    const { span } = oneCall({ name: "embeddings text-embedding-3-small", operation: "embeddings", provider: "openai", model: "text-embedding-3-small", input: 11 });
    assert.equal(attr(span, "gen_ai.response.model"), "text-embedding-3-small");
  });

  test("completions.create: operation text_completion", async () => {
    const res = await openai.completions.create({ model: "gpt-3.5-turbo-instruct", prompt: "hi", max_tokens: 9 });
    assert.equal(res.choices[0]!.text, expectedText(3));
    const { span } = oneCall({ name: "text_completion gpt-3.5-turbo-instruct", operation: "text_completion", provider: "openai", model: "gpt-3.5-turbo-instruct", input: 11, output: 7, finish: ["stop"], id: res.id, stream: false });
    assert.equal(attr(span, "gen_ai.request.max_tokens"), 9);
  });

  test("completions.create (stream)", async () => {
    const stream = await openai.completions.create({ model: "gpt-3.5-turbo-instruct", prompt: "hi", stream: true, stream_options: { include_usage: true } });
    let text = "";
    let id: string | undefined;
    for await (const c of stream) {
      id ??= c.id;
      text += c.choices[0]?.text ?? "";
    }
    assert.equal(text, expectedText(3));
    oneCall({ name: "text_completion gpt-3.5-turbo-instruct", operation: "text_completion", provider: "openai", model: "gpt-3.5-turbo-instruct", input: 11, output: 7, finish: ["stop"], id, stream: true });
  });

  test("reasoning and cache read tokens: chat and responses", async () => {
    fake.setDefaults({ reasoningTokens: 4, cacheReadTokens: 6 });
    const chat = await openai.chat.completions.create({ model: "o4-mini", messages: user });
    assert.equal(chat.usage!.completion_tokens_details!.reasoning_tokens, 4);
    let { span } = oneCall({ name: "chat o4-mini", operation: "chat", provider: "openai", model: "o4-mini", input: 11, output: 7, finish: ["stop"], id: chat.id, stream: false });
    assert.equal(attr(span, "gen_ai.usage.reasoning.output_tokens"), 4);
    assert.equal(attr(span, "gen_ai.usage.cache_read.input_tokens"), 6);

    tel.reset();
    const stream = await openai.responses.create({ model: "o4-mini", input: "hi", stream: true });
    let id: string | undefined;
    for await (const ev of stream) if (ev.type === "response.completed") id = ev.response.id;
    ({ span } = oneCall({ name: "chat o4-mini", operation: "chat", provider: "openai", model: "o4-mini", input: 11, output: 7, finish: ["completed"], id, stream: true }));
    assert.equal(attr(span, "gen_ai.usage.reasoning.output_tokens"), 4);
    assert.equal(attr(span, "gen_ai.usage.cache_read.input_tokens"), 6);
  });
});

describe("anthropic", () => {
  const model = "claude-haiku-4-5";
  const base = { model, max_tokens: 64, messages: user };

  test("messages.create (JSON)", async () => {
    const msg = await anthropic.messages.create({ ...base, temperature: 0.5 });
    assert.deepEqual(msg.content.map((b) => (b.type === "text" ? b.text : b.type)), [expectedText(3)]);
    const { span } = oneCall({ name: `chat ${model}`, operation: "chat", provider: "anthropic", model, input: 11, output: 7, finish: ["end_turn"], id: msg.id, stream: false });
    assert.equal(attr(span, "gen_ai.request.temperature"), 0.5);
    assert.equal(attr(span, "gen_ai.request.max_tokens"), 64);
    assert.equal(tel.finished().filter((s) => s.name.startsWith("anthropic.")).length, 0, "no SDK span besides ours");
  });

  test("messages.create (stream)", async () => {
    const stream = await anthropic.messages.create({ ...base, stream: true });
    let text = "";
    let id: string | undefined;
    const types: string[] = [];
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === "message_start") id = ev.message.id;
      if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
    }
    assert.equal(text, expectedText(3));
    assert.deepEqual([types[0], types.at(-1)], ["message_start", "message_stop"]);
    oneCall({ name: `chat ${model}`, operation: "chat", provider: "anthropic", model, input: 11, output: 7, finish: ["end_turn"], id, stream: true });
  });

  test("messages.stream(...): events and finalMessage()", async () => {
    const ms = anthropic.messages.stream(base);
    let text = "";
    let messageEvents = 0;
    let connected = false;
    ms.on("connect", () => {
      connected = true;
    });
    ms.on("text", (delta) => {
      text += delta;
    });
    ms.on("message", () => {
      messageEvents++;
    });
    const final = await ms.finalMessage();
    assert.ok(connected);
    assert.equal(text, expectedText(3));
    assert.equal(messageEvents, 1);
    assert.equal(await ms.finalText(), expectedText(3));
    assert.equal(final.usage.output_tokens, 7);
    await settle();
    oneCall({ name: `chat ${model}`, operation: "chat", provider: "anthropic", model, input: 11, output: 7, finish: ["end_turn"], id: final.id, stream: true });
  });

  test("messages.parse with a json_schema output format", async () => {
    assert.equal(typeof (anthropic.messages as any).parse, "function", "this SDK has messages.parse");
    const msg = await anthropic.messages.parse({ ...base, output_config: { format: { type: "json_schema", schema: SCHEMA } } } as any);
    assert.deepEqual((msg as any).parsed_output, { answer: 4 });
    assert.equal(fake.requests[0]!.body.output_config.format.type, "json_schema");
    oneCall({ name: `chat ${model}`, operation: "chat", provider: "anthropic", model, input: 11, output: 7, finish: ["end_turn"], id: msg.id, stream: false });
  });

  test("messages.countTokens: operation count_tokens", async () => {
    const res = await anthropic.messages.countTokens({ model, messages: user });
    assert.equal(res.input_tokens, 11);
    assert.equal(fake.requests[0]!.path, "/v1/messages/count_tokens");
    oneCall({ name: `count_tokens ${model}`, operation: "count_tokens", provider: "anthropic", model });
  });

  test("beta.messages.create", async () => {
    const msg = await anthropic.beta.messages.create(base);
    assert.equal((msg.content[0] as any).text, expectedText(3));
    assert.equal(fake.requests[0]!.path, "/v1/messages");
    oneCall({ name: `chat ${model}`, operation: "chat", provider: "anthropic", model, input: 11, output: 7, finish: ["end_turn"], id: msg.id, stream: false });
  });

  test("messages.batches.create: operation create_batch, model of the first request", async () => {
    const batch = await anthropic.messages.batches.create({
      requests: [
        { custom_id: "a", params: base },
        { custom_id: "b", params: { ...base, model: "claude-sonnet-4-5" } },
      ],
    });
    assert.match(batch.id, /^msgbatch_/);
    assert.equal(batch.request_counts.processing, 2);
    oneCall({ name: `create_batch ${model}`, operation: "create_batch", provider: "anthropic", model, id: batch.id });
  });

  test("usage: input_tokens = input + cache_read + cache_creation; thinking tokens are reasoning (JSON and stream)", async () => {
    fake.setDefaults({ cacheReadTokens: 5, cacheCreationTokens: 2, reasoningTokens: 3 });
    const msg = await anthropic.messages.create(base);
    assert.equal(msg.usage.input_tokens, 11);
    let { span } = oneCall({ name: `chat ${model}`, operation: "chat", provider: "anthropic", model, input: 18, output: 7, finish: ["end_turn"], id: msg.id, stream: false });
    assert.equal(attr(span, "gen_ai.usage.cache_read.input_tokens"), 5);
    assert.equal(attr(span, "gen_ai.usage.cache_creation.input_tokens"), 2);
    assert.equal(attr(span, "gen_ai.usage.reasoning.output_tokens"), 3);

    tel.reset();
    const final = await anthropic.messages.stream(base).finalMessage();
    await settle();
    ({ span } = oneCall({ name: `chat ${model}`, operation: "chat", provider: "anthropic", model, input: 18, output: 7, finish: ["end_turn"], id: final.id, stream: true }));
    assert.equal(attr(span, "gen_ai.usage.cache_read.input_tokens"), 5);
    assert.equal(attr(span, "gen_ai.usage.reasoning.output_tokens"), 3);
  });
});

describe("what the SDK returns keeps its API", () => {
  test("openai APIPromise.withResponse(): data, Response, request_id", async () => {
    const { data, response, request_id } = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: user }).withResponse();
    assert.equal(data.choices[0]!.message.content, expectedText(3));
    assert.ok(response instanceof Response);
    assert.equal(response.status, 200);
    assert.match(String(request_id), /^req_/);
    const { attempt } = oneCall({ name: "chat gpt-4o-mini", operation: "chat", provider: "openai", model: "gpt-4o-mini", input: 11, output: 7, finish: ["stop"], id: data.id, stream: false });
    assert.equal(attr(attempt, "llm_resilience.provider.request_id"), request_id);
  });

  test("anthropic APIPromise.withResponse() on a stream: data is the Stream", async () => {
    const { data, response, request_id } = await anthropic.messages.create({ model: "claude-haiku-4-5", max_tokens: 9, messages: user, stream: true }).withResponse();
    assert.equal(response.status, 200);
    assert.match(String(request_id), /^req_/);
    let id: string | undefined;
    let n = 0;
    for await (const ev of data) {
      n++;
      if (ev.type === "message_start") id = ev.message.id;
    }
    assert.equal(n, 8);
    const { attempt } = oneCall({ name: "chat claude-haiku-4-5", operation: "chat", provider: "anthropic", model: "claude-haiku-4-5", input: 11, output: 7, finish: ["end_turn"], id, stream: true });
    assert.equal(attr(attempt, "llm_resilience.provider.request_id"), request_id);
  });

  test("asResponse() (JSON): the span ends once the application reads the body, with what the body says", async () => {
    for (const read of ["json", "text"] as const) {
      tel.reset();
      const res = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: user }).asResponse();
      assert.ok(res instanceof Response);
      assert.equal(res.headers.get("content-type"), "application/json");
      await settle();
      assert.equal(tel.logical().length, 0, "still open: the body has not been read");
      const body: any = read === "json" ? await res.json() : JSON.parse(await res.text());
      assert.equal(body.choices[0].message.content, expectedText(3));
      await settle();
      oneCall({ name: "chat gpt-4o-mini", operation: "chat", provider: "openai", model: "gpt-4o-mini", input: 11, output: 7, finish: ["stop"], id: body.id, stream: false });
    }
  });

  test("asResponse() (anthropic JSON) read as bytes", async () => {
    const res = await anthropic.messages.create({ model: "claude-haiku-4-5", max_tokens: 9, messages: user }).asResponse();
    await settle();
    assert.equal(tel.logical().length, 0);
    const body = JSON.parse(new TextDecoder().decode(await res.arrayBuffer()));
    await settle();
    oneCall({ name: "chat claude-haiku-4-5", operation: "chat", provider: "anthropic", model: "claude-haiku-4-5", input: 11, output: 7, finish: ["end_turn"], id: body.id, stream: false });
  });

  test("asResponse() on a stream read as text: the span ends, with the SSE events' usage", async () => {
    const res = await anthropic.messages.create({ model: "claude-haiku-4-5", max_tokens: 9, messages: user, stream: true }).asResponse();
    await settle();
    assert.equal(tel.logical().length, 0);
    const text = await res.text();
    assert.match(text, /event: message_stop/);
    const id = /"id":"(msg_[0-9a-f]+)"/.exec(text)![1];
    await settle();
    oneCall({ name: "chat claude-haiku-4-5", operation: "chat", provider: "anthropic", model: "claude-haiku-4-5", input: 11, output: 7, finish: ["end_turn"], id, stream: true, ttfc: false });
  });

  test("asResponse() on a stream read through response.body: bytes pass through, the span ends at the end", async () => {
    const res = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: user, stream: true }).asResponse();
    const decoder = new TextDecoder();
    let text = "";
    for await (const bytes of res.body as any as AsyncIterable<Uint8Array>) text += decoder.decode(bytes, { stream: true });
    assert.match(text, /data: \[DONE\]/);
    for (let i = 0; i < 3; i++) assert.ok(text.includes(JSON.stringify(`tok${i} `)), `chunk ${i} is in the body`);
    await settle();
    const [span, ...rest] = tel.logical();
    assert.equal(rest.length, 0);
    assert.equal(span!.status.code, 0);
    assert.equal(typeof attr(span!, "gen_ai.response.time_to_first_chunk"), "number");
    assert.equal(tel.attemptsOf(span!).length, 1);
  });

  test("asResponse() on a stream whose body the application cancels: the span ends, not an error", async () => {
    fake.setDefaults({ chunks: 200, chunkDelayMs: 2 });
    const res = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: user, stream: true }).asResponse();
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    await settle();
    const [span, ...rest] = tel.logical();
    assert.equal(rest.length, 0);
    assert.equal(span!.status.code, 0);
  });

  test("Stream.tee(): both branches get every chunk, one logical span", async () => {
    const stream = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: user, stream: true });
    const [left, right] = stream.tee();
    const read = async (s: AsyncIterable<any>) => {
      const out: any[] = [];
      for await (const c of s) out.push(c);
      return out;
    };
    const [a, b] = await Promise.all([read(left), read(right)]);
    assert.equal(a.length, 5);
    assert.deepEqual(a, b);
    assert.equal(a.map((c) => c.choices[0]?.delta?.content ?? "").join(""), expectedText(3));
    oneCall({ name: "chat gpt-4o-mini", operation: "chat", provider: "openai", model: "gpt-4o-mini", finish: ["stop"], id: a[0].id, stream: true });
  });

  test("anthropic Stream.tee(): both branches get every chunk, one logical span", async () => {
    const stream = await anthropic.messages.create({ model: "claude-haiku-4-5", max_tokens: 9, messages: user, stream: true });
    const [left, right] = stream.tee();
    const a: any[] = [];
    const b: any[] = [];
    for await (const ev of left) a.push(ev);
    for await (const ev of right) b.push(ev);
    assert.equal(a.length, 8);
    assert.deepEqual(a, b);
    oneCall({ name: "chat claude-haiku-4-5", operation: "chat", provider: "anthropic", model: "claude-haiku-4-5", input: 11, output: 7, finish: ["end_turn"], id: a[0].message.id, stream: true });
  });

  test("Stream.toReadableStream(): NDJSON of every chunk, round-trips through Stream.fromReadableStream", async () => {
    const stream = await anthropic.messages.create({ model: "claude-haiku-4-5", max_tokens: 9, messages: user, stream: true });
    const rs = stream.toReadableStream();
    const events: any[] = [];
    for await (const ev of AnthropicStream.fromReadableStream<any>(rs, new AbortController())) events.push(ev);
    assert.equal(events.length, 8);
    assert.equal(events.filter((e) => e.type === "content_block_delta").map((e) => e.delta.text).join(""), expectedText(3));
    oneCall({ name: "chat claude-haiku-4-5", operation: "chat", provider: "anthropic", model: "claude-haiku-4-5", input: 11, output: 7, finish: ["end_turn"], id: events[0].message.id, stream: true });
  });

  test("Stream.controller: abort() stops the stream (the SDK ends the loop), the span ends", async () => {
    fake.setDefaults({ chunks: 500, chunkDelayMs: 1 });
    const stream = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: user, stream: true });
    assert.ok(stream.controller instanceof AbortController);
    let n = 0;
    for await (const _ of stream) if (++n === 3) stream.controller.abort();
    assert.ok(n < 50, `stopped early (${n} chunks)`);
    assert.ok(stream.controller.signal.aborted);
    await settle();
    assert.equal(tel.logical().length, 1);
  });
});

test("a Responses call whose body says status failed is recorded as an error with the response's error code", async () => {
  const { startFakeProvider } = await import("./fake-provider/index.ts");
  const OpenAI = (await import("openai")).default;
  const fake2 = await startFakeProvider();
  try {
    const body = JSON.stringify({ id: "resp_1", object: "response", status: "failed", model: "gpt-4.1", output: [], error: { code: "server_error", message: "x" }, usage: null });
    fake2.script({ match: { path: "/responses" }, action: { rawBody: body, contentType: "application/json" } });
    const client = new OpenAI({ apiKey: "sk-x", baseURL: fake2.openaiBaseURL });
    const before = tel.logical().length;
    const r = await client.responses.create({ model: "gpt-4.1", input: "hi" });
    assert.equal(r.status, "failed");
    const span = tel.logical()[before]!;
    assert.equal(span.attributes["error.type"], "server_error");
    assert.equal(span.status.code, 2);
  } finally {
    await fake2.close();
  }
});
