/**
 * Secrets: the API keys are unique marker strings; a representative set of calls (successes, errors,
 * streams, retries, timeouts, breaker + fallback, both SDKs, an Anthropic client with an auth token)
 * runs with content capture off and on. Every exported span (name, attributes, events, status), every
 * metric data point and every log line (a real pino logger writing to memory) is searched: zero
 * occurrences of any key or Authorization / x-api-key header value, and no attribute that carries a
 * header of that kind. Content capture stays off unless opted in (the prompt marker is absent), and
 * once on (`register({ captureContent: true })` or OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)
 * `gen_ai.input.messages` holds exactly the messages sent — content, never headers.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { instrument, register } from "../src/index.ts";
import { startFakeProvider, type FakeProvider } from "./fake-provider/index.ts";
import { memoryLogger } from "./helpers/memory-logger.ts";
import { installTestTelemetry } from "./helpers/otel.ts";

const tel = installTestTelemetry();
const mem = memoryLogger("trace"); // every level we might ever log at
const tag = randomBytes(6).toString("hex");
const OPENAI_KEY = `sk-proj-SECRETOPENAI${tag}`;
const ANTHROPIC_KEY = `sk-ant-api03-SECRETANTHROPIC${tag}`;
const ANTHROPIC_TOKEN = `SECRETBEARER${tag}`;
const PROMPT = `PROMPTMARKER${randomBytes(6).toString("hex")}`;
const SECRETS = [OPENAI_KEY, ANTHROPIC_KEY, ANTHROPIC_TOKEN];
/** Also catch a key cut in half (e.g. a message truncated at 300 chars) — its distinctive part. */
const FRAGMENTS = [`SECRETOPENAI${tag}`, `SECRETANTHROPIC${tag}`, `SECRETBEARER${tag}`, tag];
// (the prompt marker uses another random tag, so `tag` alone is a secret fragment too)

let fake: FakeProvider;
let openai: OpenAI;
let anthropic: Anthropic;
let anthropicBearer: Anthropic;
let seq = 0;
const BASE = { startSdk: false, logger: mem.logger, baseDelayMs: 1, maxDelayMs: 5, attemptTimeoutMs: 300, breaker: { failures: 2, cooldownMs: 60_000 } };

before(async () => {
  fake = await startFakeProvider();
  register(BASE);
  openai = new OpenAI({ apiKey: OPENAI_KEY, baseURL: fake.openaiBaseURL });
  anthropic = new Anthropic({ apiKey: ANTHROPIC_KEY, baseURL: fake.anthropicBaseURL });
  anthropicBearer = new Anthropic({ authToken: ANTHROPIC_TOKEN, apiKey: null, baseURL: fake.anthropicBaseURL });
});
after(() => fake.close());

const userMessages = [{ role: "user" as const, content: `tell me about ${PROMPT}` }];
const settle = (p: Promise<unknown>) => p.then(() => "ok", (e) => e?.constructor?.name ?? "error");
async function drain(s: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of s);
}

/** The representative call set; each run uses fresh models (fresh breaker keys and fault rules). */
async function representativeCalls(): Promise<Record<string, string>> {
  const m = (n: string) => `${n}-secrets-${++seq}`;
  const out: Record<string, string> = {};
  const oa = (model: string, opts?: OpenAI.RequestOptions) => openai.chat.completions.create({ model, messages: userMessages, max_tokens: 20 }, opts);
  const an = (client: Anthropic, model: string) =>
    client.messages.create({ model, max_tokens: 20, system: `system ${PROMPT}`, messages: userMessages });

  let model = m("gpt-ok");
  out.openaiJson = await settle(oa(model));
  model = m("gpt-stream");
  out.openaiStream = await settle(openai.chat.completions.create({ model, messages: userMessages, stream: true }).then(drain));
  model = m("gpt-429");
  fake.script({ match: { model }, action: { status: 429, headers: { "retry-after-ms": "1" } } });
  out.openaiRetried = await settle(oa(model));
  model = m("gpt-401");
  // What OpenAI really says: the key, masked but for its last four characters.
  fake.script({ match: { model }, action: { status: 401, message: `Incorrect API key provided: sk-proj-${"*".repeat(30)}${OPENAI_KEY.slice(-4)}.` } });
  out.openai401 = await settle(oa(model));
  model = m("gpt-500");
  fake.script({ match: { model }, times: 3, action: { status: 500 } });
  out.openai500 = await settle(oa(model));
  model = m("gpt-reset");
  fake.script({ match: { model }, action: { reset: true } });
  out.openaiReset = await settle(oa(model));
  model = m("gpt-hang");
  fake.script({ match: { model }, action: { hang: true } });
  out.openaiTimeout = await settle(oa(model));
  model = m("gpt-midstream");
  fake.script({ match: { model }, action: { streamErrorAfter: 1 } });
  out.openaiMidstream = await settle(openai.chat.completions.create({ model, messages: userMessages, stream: true }).then(drain));
  out.responses = await settle(openai.responses.create({ model: m("gpt-resp"), input: `input ${PROMPT}`, instructions: `instructions ${PROMPT}` }));
  out.embeddings = await settle(openai.embeddings.create({ model: m("emb"), input: `embed ${PROMPT}` }));

  model = m("claude-ok");
  out.anthropicJson = await settle(an(anthropic, model));
  out.anthropicBearer = await settle(an(anthropicBearer, m("claude-bearer")));
  model = m("claude-stream");
  out.anthropicStream = await settle(anthropic.messages.create({ model, max_tokens: 20, messages: userMessages, stream: true }).then(drain));
  model = m("claude-529");
  fake.script({ match: { model }, action: { status: 529, errorType: "overloaded_error" } });
  out.anthropicRetried = await settle(an(anthropic, model));
  model = m("claude-401");
  fake.script({ match: { model }, action: { status: 401 } });
  out.anthropic401 = await settle(an(anthropic, model));
  model = m("claude-midstream");
  fake.script({ match: { model }, action: { streamErrorAfter: 1, errorType: "overloaded_error" } });
  out.anthropicMidstream = await settle(anthropic.messages.create({ model, max_tokens: 20, messages: userMessages, stream: true }).then(drain));

  // Breaker opens on the primary (2 failures), the fallback answers: transition, reject and fallback telemetry.
  const primary = m("claude-primary");
  const backup = m("claude-backup");
  register({ ...BASE, captureContent: capture, fallbacks: { [primary]: [backup] } });
  fake.script({ match: { model: primary }, times: Infinity, action: { status: 529, errorType: "overloaded_error" } });
  out.fallback1 = await settle(an(anthropic, primary));
  out.fallback2 = await settle(an(anthropic, primary));
  await new Promise((r) => setTimeout(r, 30));
  return out;
}
let capture = false;

function exported(): { spans: string; metrics: string; logs: string; attributeKeys: string[] } {
  const spans = tel.finished().map((s) => ({
    name: s.name,
    attributes: s.attributes,
    events: s.events.map((e) => ({ name: e.name, attributes: e.attributes })),
    status: s.status,
    resource: s.resource.attributes,
  }));
  const attributeKeys = tel.finished().flatMap((s) => [...Object.keys(s.attributes), ...s.events.flatMap((e) => Object.keys(e.attributes ?? {}))]);
  return { spans: JSON.stringify(spans), metrics: "", logs: mem.raw(), attributeKeys };
}
async function metricText(): Promise<string> {
  const rm = await tel.metrics();
  return JSON.stringify(rm.scopeMetrics.map((sm) => sm.metrics.map((m) => ({ name: m.descriptor.name, points: m.dataPoints.map((d: any) => ({ a: d.attributes, v: d.value })) }))));
}

function assertNoSecrets(where: string, text: string): void {
  for (const s of [...SECRETS, ...FRAGMENTS]) assert.ok(!text.includes(s), `${where} contains ${s.slice(0, 12)}…`);
  assert.doesNotMatch(text, /Bearer\s+\S/i, `${where}: an Authorization value`);
}

for (const mode of ["off", "on (register option)", "on (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)"] as const) {
  describe(`content capture ${mode}`, () => {
    let outcomes: Record<string, string>;
    let metricsText: string;
    let dump: ReturnType<typeof exported>;
    before(async () => {
      tel.reset();
      mem.reset();
      fake.reset();
      capture = mode !== "off";
      if (mode.includes("OTEL_")) {
        process.env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT = "true";
        register(BASE);
      } else {
        delete process.env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT;
        register({ ...BASE, captureContent: capture });
      }
      try {
        outcomes = await representativeCalls();
      } finally {
        delete process.env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT;
        register(BASE);
      }
      dump = exported();
      metricsText = await metricText();
    });

    test("the calls ran as scripted and the keys really were sent", () => {
      assert.deepEqual(outcomes, {
        openaiJson: "ok",
        openaiStream: "ok",
        openaiRetried: "ok",
        openai401: "AuthenticationError",
        openai500: "InternalServerError",
        openaiReset: "ok",
        openaiTimeout: "ok",
        openaiMidstream: "APIError",
        responses: "ok",
        embeddings: "ok",
        anthropicJson: "ok",
        anthropicBearer: "ok",
        anthropicStream: "ok",
        anthropicRetried: "ok",
        anthropic401: "AuthenticationError",
        anthropicMidstream: "APIError",
        fallback1: "ok",
        fallback2: "ok",
      });
      const sent = JSON.stringify(fake.requests.map((r) => r.headers));
      assert.ok(sent.includes(`Bearer ${OPENAI_KEY}`) && sent.includes(ANTHROPIC_KEY) && sent.includes(`Bearer ${ANTHROPIC_TOKEN}`));
      assert.ok(tel.logical().length >= 18, `${tel.logical().length} logical spans`);
      assert.ok(mem.lines.length >= 18, `${mem.lines.length} log lines`);
      const names = dump.spans;
      for (const e of ["llm_resilience.retry", "llm_resilience.breaker.transition", "llm_resilience.fallback", "llm_resilience.give_up"]) assert.ok(names.includes(e), e);
    });

    test("zero occurrences of any key or Authorization value in spans, metrics and logs", (t) => {
      t.diagnostic(`searched ${tel.finished().length} spans (${tel.logical().length} logical), ${(metricsText.match(/"a":/g) ?? []).length} metric data points, ${mem.lines.length} log lines: 0 secrets`);
      assertNoSecrets("spans", dump.spans);
      assertNoSecrets("metrics", metricsText);
      assertNoSecrets("logs", dump.logs);
    });

    test("no span or event attribute carries a credential header", () => {
      const bad = dump.attributeKeys.filter((k) => /authorization|api[-_.]?key|x-api-key|cookie|auth[-_]token/i.test(k));
      assert.deepEqual([...new Set(bad)], []);
    });

    if (mode === "off") {
      test("content is not captured unless opted in: the prompt marker is nowhere", () => {
        assert.ok(!dump.spans.includes(PROMPT), "spans");
        assert.ok(!metricsText.includes(PROMPT), "metrics");
        assert.ok(!dump.logs.includes(PROMPT), "logs");
        assert.ok(!dump.attributeKeys.includes("gen_ai.input.messages"));
        assert.ok(!dump.attributeKeys.includes("gen_ai.output.messages"));
      });
    } else {
      test("gen_ai.input.messages holds exactly the content sent, and nothing else", () => {
        const chats = tel.logical().filter((s) => s.attributes["gen_ai.operation.name"] === "chat");
        assert.ok(chats.length >= 10);
        for (const s of chats) {
          const raw = s.attributes["gen_ai.input.messages"];
          assert.equal(typeof raw, "string", `${s.name} has gen_ai.input.messages`);
          assert.ok(String(raw).includes(PROMPT), s.name);
          assertNoSecrets(`${s.name} gen_ai.input.messages`, String(raw));
        }
        const openaiChat = chats.find((s) => s.attributes["gen_ai.provider.name"] === "openai" && !s.attributes["gen_ai.request.stream"] && String(s.attributes["gen_ai.request.model"]).startsWith("gpt-ok"))!;
        assert.deepEqual(JSON.parse(String(openaiChat.attributes["gen_ai.input.messages"])), userMessages);
        const anthropicChat = chats.find((s) => String(s.attributes["gen_ai.request.model"]).startsWith("claude-ok"))!;
        const content = JSON.parse(String(anthropicChat.attributes["gen_ai.input.messages"]));
        assert.equal(JSON.stringify(content).includes(`system ${PROMPT}`), true, "the system prompt is content too");
        assert.ok(JSON.stringify(content).includes(userMessages[0]!.content));
        assert.ok(!/headers|x-api-key|authorization/i.test(JSON.stringify(content)), "no headers in captured content");
      });
      test("logs never carry content, even with capture on (it goes to spans only)", () => {
        assert.ok(!dump.logs.includes(PROMPT));
        assert.ok(!metricsText.includes(PROMPT));
      });
    }
  });
}

describe("a provider that echoes the key in its error message", () => {
  test("the key does not reach the span status or logs", async () => {
    tel.reset();
    mem.reset();
    const model = `gpt-echo-${++seq}`;
    // Some gateways and OpenAI-compatible servers put the whole key in a 401 message.
    fake.script({ match: { model }, action: { status: 401, message: `Invalid API key: ${OPENAI_KEY}` } });
    const err = await openai.chat.completions.create({ model, messages: userMessages }).catch((e) => e);
    assert.equal(err?.status, 401);
    assert.ok(String(err.message).includes(OPENAI_KEY), "the caller's own error has it (the SDK's business)");
    const { spans, logs } = exported();
    assertNoSecrets("spans", spans);
    assertNoSecrets("logs", logs);
  });

  test("an instrument()ed client's per-client override keeps the same guarantees", async () => {
    tel.reset();
    mem.reset();
    const c = instrument(new OpenAI({ apiKey: OPENAI_KEY, baseURL: fake.openaiBaseURL }), { maxAttempts: 2 });
    const model = `gpt-inst-${++seq}`;
    fake.script({ match: { model }, action: { status: 500 } });
    await c.chat.completions.create({ model, messages: userMessages });
    const { spans, logs } = exported();
    assertNoSecrets("spans", spans);
    assertNoSecrets("logs", logs);
    assertNoSecrets("metrics", await metricText());
  });
});
