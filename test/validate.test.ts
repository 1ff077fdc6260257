// Opt-in request validation through the real SDKs over HTTP against the fake provider: what the
// provider would refuse with a 400 is refused before sending, and nothing the API accepts is.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { type InvalidRequestError, instrument, type RegisterOptions, register } from "../src/index.ts";
import { type FakeProvider, startFakeProvider } from "./fake-provider/index.ts";
import { CORPUS, type Outcome, rulesFor, runCorpus } from "./fixtures/reliability/corpus.ts";
import { installTestTelemetry } from "./helpers/otel.ts";
import { expectInvalidRequest } from "./helpers/refusals.ts";

const tel = installTestTelemetry();
let fake: FakeProvider;
let openai: OpenAI;
let anthropic: Anthropic;
const BASE: RegisterOptions = { startSdk: false, logLevel: "silent", baseDelayMs: 1, maxDelayMs: 5 };
const setup = (o: RegisterOptions = {}) => register({ ...BASE, validate: true, ...o });
const events = (span: any, name: string) => span.events.filter((e: any) => e.name === name);
const lastLogical = () => tel.logical().at(-1)!;
const user = { role: "user" as const, content: "hi" };

before(async () => {
  fake = await startFakeProvider();
  openai = new OpenAI({ apiKey: "sk-test", baseURL: fake.openaiBaseURL, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: "sk-ant-test", baseURL: fake.anthropicBaseURL, maxRetries: 0 });
});
after(() => fake.close());
beforeEach(() => {
  fake.reset();
  tel.reset();
  setup();
});

/** Sends `call`, expects an InvalidRequestError, no request on the wire and the give-up on the span. */
async function refused(call: () => Promise<unknown>, problem: RegExp, errorType = "invalid_request_error"): Promise<InvalidRequestError> {
  const err = await expectInvalidRequest(call, problem, () => fake.requests.length);
  const span = lastLogical();
  assert.equal(tel.attemptsOf(span).length, 0);
  assert.equal(events(span, "llm_resilience.give_up")[0].attributes["llm_resilience.give_up.reason"], "invalid_request");
  assert.equal(span.attributes["error.type"], errorType);
  return err;
}

describe("the 400s the seeds list are refused before sending", () => {
  test("OpenAI: empty messages", () =>
    refused(() => openai.chat.completions.create({ model: "gpt-4o", messages: [] }), /^messages: must not be empty$/));

  test("OpenAI: an unknown role", () =>
    refused(
      () => openai.chat.completions.create({ model: "gpt-4o", messages: [{ role: "human", content: "x" } as any] }),
      /^messages\[0\]\.role: unknown role "human"/,
    ));

  test("OpenAI: content of the wrong type", () =>
    refused(
      () => openai.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: { type: "text", text: "x" } } as any] }),
      /^messages\[0\]\.content: must be a string or an array of content parts/,
    ));

  test("Anthropic: a first message that is not user", () =>
    refused(
      () => anthropic.messages.create({ model: "claude-haiku-4-5", max_tokens: 10, messages: [{ role: "assistant", content: "x" }, user] }),
      /^messages\[0\]\.role: the first message must be "user"/,
    ));

  test("Anthropic: a system role inside messages", () =>
    refused(
      () =>
        anthropic.messages.create({ model: "claude-haiku-4-5", max_tokens: 10, messages: [{ role: "system", content: "be brief" } as any, user] }),
      /top-level system parameter/,
    ));

  test("Anthropic: max_tokens missing", () =>
    refused(() => anthropic.messages.create({ model: "claude-haiku-4-5", messages: [user], stream: true } as any), /^max_tokens: required/));

  test("Anthropic: max_tokens above the model's output limit", () =>
    refused(
      () => anthropic.messages.create({ model: "claude-3-5-haiku-20241022", max_tokens: 10_000, messages: [user] }),
      /above the output limit of claude-3-5-haiku-20241022 \(8192\)/,
    ));

  test("Anthropic: content of the wrong type", () =>
    refused(
      () => anthropic.messages.create({ model: "claude-haiku-4-5", max_tokens: 10, messages: [{ role: "user", content: 42 } as any] }),
      /must be a string or an array of content blocks/,
    ));
});

test("validation per client: instrument(client, { validate: true }) with validation off elsewhere", async () => {
  setup({ validate: false });
  const checked = instrument(new OpenAI({ apiKey: "sk-test", baseURL: fake.openaiBaseURL, maxRetries: 0 }), { validate: true });
  await refused(() => checked.chat.completions.create({ model: "gpt-4o", messages: [] }), /must not be empty/);
  await openai.chat.completions.create({ model: "gpt-4o", messages: [] });
  assert.equal(fake.requests.length, 1, "the other client's request is sent");
});

describe("an input above the model's context window", () => {
  // ~900K non-space characters: at least 150K tokens in any tokenizer, above gpt-4o's 128K.
  const huge = [{ role: "user" as const, content: "lorem ipsum ".repeat(90_000) }];

  test("goes straight to the context fallback: the provider sees only the fallback's request", async () => {
    setup({ contextFallbacks: { "gpt-4o": ["gpt-4.1"] } });
    await openai.chat.completions.create({ model: "gpt-4o", messages: huge });
    assert.deepEqual(
      fake.requests.map((r) => r.model),
      ["gpt-4.1"],
    );
    const [fb] = events(lastLogical(), "llm_resilience.fallback");
    assert.deepEqual(fb.attributes, {
      "llm_resilience.fallback.from": "gpt-4o",
      "llm_resilience.fallback.to": "gpt-4.1",
      "llm_resilience.fallback.reason": "context_length_exceeded",
    });
  });

  test("without a context fallback it is refused (error.type context_length_exceeded)", async () => {
    const err = await refused(
      () => openai.chat.completions.create({ model: "gpt-4o", messages: huge }),
      /above the context window of gpt-4o \(128000\)/,
      "context_length_exceeded",
    );
    assert.equal(err.errorType, "context_length_exceeded");
  });

  test("validation off: the same request is sent (the provider decides)", async () => {
    setup({ validate: false });
    await openai.chat.completions.create({ model: "gpt-4o", messages: huge });
    assert.equal(fake.requests.length, 1);
  });
});

describe("nothing the API accepts is refused", () => {
  test("the differential corpus gives the same outcomes with validation on as with it off", { timeout: 60_000 }, async () => {
    const backup = "dx-backup-gpt";
    const fallbacks = { [CORPUS.find((c) => c.name === "DESIGN fallback model")!.model]: [backup] };
    const clients = {
      openai: new OpenAI({ apiKey: "sk-corpus", baseURL: fake.openaiBaseURL }),
      anthropic: new Anthropic({ apiKey: "sk-ant-corpus", baseURL: fake.anthropicBaseURL }),
    };
    const run = async (validate: boolean) => {
      fake.reset();
      for (const c of CORPUS) fake.script(...rulesFor(c));
      // Each registration has breakers of its own: the DESIGN breaker case starts closed both times.
      register({ ...BASE, validate, fallbacks });
      // Only the breaker's retry-after time differs between the runs.
      const outcomes = JSON.parse(JSON.stringify(await runCorpus(clients)).replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, "<time>"));
      const wire = new Map<string, number>();
      for (const r of fake.requests) wire.set(r.model ?? "?", (wire.get(r.model ?? "?") ?? 0) + 1);
      return { outcomes, wire };
    };
    const off = await run(false);
    const on = await run(true);
    const invalid = Object.entries(on.outcomes as Record<string, Outcome>).filter(([, o]) => o.error?.class === "InvalidRequestError");
    assert.deepEqual(invalid, [], "no corpus call is refused by validation");
    assert.deepEqual(on.outcomes, off.outcomes);
    assert.deepEqual(on.wire, off.wire, "the same requests reached the provider");
    assert.ok(CORPUS.length > 60);
  });
});
