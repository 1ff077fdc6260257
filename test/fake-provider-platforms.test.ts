/**
 * The fake provider's cloud-platform routes, through the platforms' real SDKs: AzureOpenAI
 * (/openai/deployments/<name>/...), AnthropicBedrock (/model/<id>/invoke, and
 * invoke-with-response-stream in AWS event-stream framing, decoded and CRC-checked by the SDK's smithy codec) and AnthropicVertex (...:rawPredict,
 * ...:streamRawPredict). No llm-resilience here: this checks the fake itself.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { AnthropicBedrock } from "@anthropic-ai/bedrock-sdk";
import { AnthropicVertex } from "@anthropic-ai/vertex-sdk";
import { AzureOpenAI } from "openai";
import { expectedText, type FakeProvider, startFakeProvider } from "./fake-provider/index.ts";

let fake: FakeProvider;
before(async () => {
  fake = await startFakeProvider();
});
after(() => fake.close());
beforeEach(() => fake.reset());

const azure = () => new AzureOpenAI({ baseURL: fake.azureBaseURL, apiKey: "azure-key", apiVersion: "2024-10-21", maxRetries: 0 });
const bedrock = () => new AnthropicBedrock({ baseURL: fake.bedrockBaseURL, apiKey: "bedrock-key", awsRegion: "us-east-1", maxRetries: 0 });
const vertex = () =>
  new AnthropicVertex({
    baseURL: fake.vertexBaseURL,
    region: "us-east5",
    projectId: "proj",
    maxRetries: 0,
    authClient: { getRequestHeaders: async () => new Headers({ authorization: "Bearer vertex-token" }) } as any,
  });
const BEDROCK_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0";
const MESSAGE = { max_tokens: 64, messages: [{ role: "user" as const, content: "hi" }] };

describe("azure", () => {
  test("chat JSON and stream on /openai/deployments/<model>/chat/completions", async () => {
    const client = azure();
    const json = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
    assert.equal(json.choices[0]!.message.content, expectedText(3));
    assert.equal(json.usage?.prompt_tokens, 11);
    let text = "";
    for await (const c of await client.chat.completions.create({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "hi" }] })) {
      text += c.choices[0]?.delta.content ?? "";
    }
    assert.equal(text, expectedText(3));
    assert.deepEqual(
      fake.requests.map((r) => [r.path, r.platform, r.provider, r.model, r.stream]),
      [
        ["/openai/deployments/gpt-4o-mini/chat/completions", "azure", "openai", "gpt-4o-mini", false],
        ["/openai/deployments/gpt-4o-mini/chat/completions", "azure", "openai", "gpt-4o-mini", true],
      ],
    );
    assert.match(fake.requests[0]!.url, /api-version=2024-10-21/);
  });

  test("responses and errors keep the OpenAI shapes; rules match on platform", async () => {
    fake.script({ match: { platform: "azure" }, action: { status: 429, headers: { "retry-after-ms": "5" } } });
    const err: any = await azure()
      .chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] })
      .catch((e) => e);
    assert.equal(err.status, 429);
    assert.equal(err.code, "rate_limit_exceeded");
    const r = await azure().responses.create({ model: "gpt-4o", input: "hi" });
    assert.equal(r.output_text, expectedText(3));
    assert.equal(fake.requests.at(-1)!.path, "/openai/responses");
  });
});

describe("bedrock", () => {
  test("invoke (JSON) and invoke-with-response-stream (event-stream) carry the Anthropic bodies", async () => {
    const client = bedrock();
    const json = await client.messages.create({ model: BEDROCK_MODEL, ...MESSAGE });
    assert.equal((json.content[0] as any).text, expectedText(3));
    assert.equal(json.usage.output_tokens, 7);
    const stream = await client.messages.create({ model: BEDROCK_MODEL, ...MESSAGE, stream: true });
    const types: string[] = [];
    let text = "";
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
    }
    assert.equal(text, expectedText(3));
    assert.equal(types[0], "message_start");
    assert.equal(types.at(-1), "message_stop");
    const [a, b] = fake.requests;
    assert.equal(a!.path, `/model/${BEDROCK_MODEL}/invoke`);
    assert.equal(b!.path, `/model/${BEDROCK_MODEL}/invoke-with-response-stream`);
    assert.deepEqual([a!.platform, a!.provider, a!.model, a!.stream, b!.stream], ["bedrock", "anthropic", BEDROCK_MODEL, false, true]);
    assert.equal(typeof a!.body.anthropic_version, "string", "the version travels in the body");
    assert.equal(a!.body.model, undefined);
  });

  test("errors are AWS-shaped; a mid-stream error is an exception frame", async () => {
    fake.script({ match: { platform: "bedrock", stream: false }, action: { status: 429 } });
    const err: any = await bedrock()
      .messages.create({ model: BEDROCK_MODEL, ...MESSAGE })
      .catch((e) => e);
    assert.equal(err.status, 429);
    assert.equal(err.constructor.name, "RateLimitError");
    assert.match(err.headers.get("x-amzn-errortype"), /^ThrottlingException:/);
    assert.match(err.message, /Too many requests/);

    fake.script({ match: { platform: "bedrock", stream: true }, action: { streamErrorAfter: 1, errorType: "overloaded_error" } });
    const stream = await bedrock().messages.create({ model: BEDROCK_MODEL, ...MESSAGE, stream: true });
    const seen: string[] = [];
    const failure: any = await (async () => {
      for await (const ev of stream) seen.push(ev.type);
    })().catch((e) => e);
    assert.ok(failure instanceof Error, "the stream fails");
    assert.match(String(failure.message), /serviceUnavailableException|Overloaded/);
    assert.ok(seen.includes("content_block_delta"), "the chunk before the error arrived");
  });
});

describe("vertex", () => {
  test("rawPredict (JSON) and streamRawPredict (SSE) carry the Anthropic bodies", async () => {
    const client = vertex();
    const json = await client.messages.create({ model: "claude-sonnet-4-5", ...MESSAGE });
    assert.equal((json.content[0] as any).text, expectedText(3));
    let text = "";
    for await (const ev of await client.messages.create({ model: "claude-sonnet-4-5", ...MESSAGE, stream: true })) {
      if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
    }
    assert.equal(text, expectedText(3));
    const base = "/v1/projects/proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5";
    assert.deepEqual(
      fake.requests.map((r) => [r.path, r.platform, r.model, r.stream]),
      [
        [`${base}:rawPredict`, "vertex", "claude-sonnet-4-5", false],
        [`${base}:streamRawPredict`, "vertex", "claude-sonnet-4-5", true],
      ],
    );
    assert.equal(fake.requests[0]!.headers.authorization, "Bearer vertex-token");
  });

  test("count-tokens:rawPredict and Anthropic-shaped errors", async () => {
    const n = await vertex().messages.countTokens({ model: "claude-sonnet-4-5", messages: MESSAGE.messages });
    assert.equal(n.input_tokens, 11);
    fake.script({ match: { platform: "vertex" }, action: { status: 529 } });
    const err: any = await vertex()
      .messages.create({ model: "claude-sonnet-4-5", ...MESSAGE })
      .catch((e) => e);
    assert.equal(err.status, 529);
    assert.equal(err.error?.error?.type, "overloaded_error");
  });
});
