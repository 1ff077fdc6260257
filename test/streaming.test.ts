// Streams: usage (include_usage and the openaiStreamUsage opt-in), time to first chunk, nothing
// buffered, and one end per span however a stream ends, for both SDKs and their stream helpers.
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { register } from "../src/index.ts";
import { expectedText, startFakeProvider, type FakeProvider } from "./fake-provider/index.ts";
import { attr, captureOtelWarnings, installCountingTelemetry } from "./helpers/otel.ts";

const { tel, counter } = installCountingTelemetry();
const warnings = captureOtelWarnings();
let fake: FakeProvider;
let openai: OpenAI;
let anthropic: Anthropic;

const BASE_OPTIONS = { startSdk: false, logLevel: "silent", baseDelayMs: 1, maxDelayMs: 5, breaker: false } as const;
const configure = (extra: Record<string, unknown> = {}) => register({ ...BASE_OPTIONS, ...extra } as any);

before(async () => {
  fake = await startFakeProvider();
  configure();
  openai = new OpenAI({ apiKey: "sk-test", baseURL: fake.openaiBaseURL });
  anthropic = new Anthropic({ apiKey: "sk-ant-test", baseURL: fake.anthropicBaseURL });
});
after(() => fake.close());
beforeEach(() => {
  configure();
  fake.reset();
  fake.setDefaults({ chunks: 3, chunkDelayMs: 0, latencyMs: 0 });
  tel.reset();
  warnings.reset();
});
afterEach(async () => {
  await settle();
  assert.deepEqual(counter.open(), [], "every span started has ended");
  assert.deepEqual(counter.endedTwice(), [], "no end reported twice");
  assert.deepEqual(warnings.endedSpanMisuse(), [], "no span was ended twice or changed after its end");
});

const user = [{ role: "user" as const, content: "hi" }];
const settle = () => new Promise((r) => setTimeout(r, 20));

function onlyLogical(): ReadableSpan {
  const logical = tel.logical();
  assert.equal(logical.length, 1, `one logical span, got ${logical.map((s) => s.name).join(", ")}`);
  assert.equal(counter.started.size, counter.ends.size, "started == ended");
  return logical[0]!;
}

const contentOf = (chunks: any[]) => chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");

describe("usage from streams", () => {
  test("openai chat with stream_options.include_usage: usage recorded, the caller still gets its usage chunk", async () => {
    const stream = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: user, stream: true, stream_options: { include_usage: true } });
    const chunks: any[] = [];
    for await (const c of stream) chunks.push(c);
    assert.equal(contentOf(chunks), expectedText(3));
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.completion_tokens, 7);
    const span = onlyLogical();
    assert.equal(attr(span, "gen_ai.usage.input_tokens"), 11);
    assert.equal(attr(span, "gen_ai.usage.output_tokens"), 7);
    assert.deepEqual(attr(span, "gen_ai.response.finish_reasons"), ["stop"]);
  });

  test("the caller's own include_usage is kept with the opt-in on", async () => {
    configure({ openaiStreamUsage: true });
    const stream = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: user, stream: true, stream_options: { include_usage: true } });
    const chunks: any[] = [];
    for await (const c of stream) chunks.push(c);
    assert.equal(chunks.at(-1).usage.prompt_tokens, 11, "the usage chunk the caller asked for is delivered");
    assert.ok(chunks.slice(0, -1).every((c) => c.usage === null), "and the usage: null fields");
    assert.equal(attr(onlyLogical(), "gen_ai.usage.output_tokens"), 7);
  });

  async function chatChunks(): Promise<{ chunks: any[]; span: ReadableSpan; body: any }> {
    fake.reset();
    tel.reset();
    const stream = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: user, stream: true, n: 2 });
    const chunks: any[] = [];
    for await (const c of stream) chunks.push(c);
    await settle();
    return { chunks, span: onlyLogical(), body: fake.requests[0]!.body };
  }
  /** The fake's random parts (id, created) aside, two answers must be identical. */
  const stable = (chunks: any[]) => chunks.map(({ id: _id, created: _created, ...rest }) => rest);

  test("register({ openaiStreamUsage: true }) asks for usage without changing what the caller's loop receives", async () => {
    const off = await chatChunks();
    configure({ openaiStreamUsage: true });
    const on = await chatChunks();

    assert.equal(off.body.stream_options, undefined, "off: nothing asked");
    assert.deepEqual(on.body.stream_options, { include_usage: true }, "on: usage asked on the wire");
    assert.equal(on.chunks.length, off.chunks.length);
    assert.deepEqual(stable(on.chunks), stable(off.chunks), "identical chunks (no usage chunk, no usage: null)");
    assert.equal(contentOf(on.chunks.filter((c) => c.choices[0]?.index === 0)), expectedText(3));

    assert.equal(attr(off.span, "gen_ai.usage.input_tokens"), undefined);
    assert.equal(attr(off.span, "gen_ai.usage.output_tokens"), undefined);
    assert.equal(attr(on.span, "gen_ai.usage.input_tokens"), 11);
    assert.equal(attr(on.span, "gen_ai.usage.output_tokens"), 7);
    assert.deepEqual(attr(on.span, "gen_ai.response.finish_reasons"), ["stop", "stop"]);
    assert.equal(attr(on.span, "gen_ai.request.choice.count"), 2);
  });

  test("the opt-in leaves ChatCompletionStream's final completion as it was", async () => {
    const final = async () => {
      tel.reset();
      const c = await openai.chat.completions.stream({ model: "gpt-4o-mini", messages: user }).finalChatCompletion();
      await settle();
      return { c, span: onlyLogical() };
    };
    const off = await final();
    configure({ openaiStreamUsage: true });
    const on = await final();
    const { id: _a, created: _b, ...offRest } = off.c as any;
    const { id: _c, created: _d, ...onRest } = on.c as any;
    assert.deepEqual(onRest, offRest);
    assert.equal((on.c as any).usage, undefined);
    assert.equal(attr(on.span, "gen_ai.usage.output_tokens"), 7);
    assert.equal(attr(off.span, "gen_ai.usage.output_tokens"), undefined);
  });

  test("LLM_RESILIENCE_OPENAI_STREAM_USAGE=true turns the opt-in on", async () => {
    process.env.LLM_RESILIENCE_OPENAI_STREAM_USAGE = "true";
    try {
      register({ ...BASE_OPTIONS } as any);
      const on = await chatChunks();
      assert.deepEqual(on.body.stream_options, { include_usage: true });
      assert.equal(attr(on.span, "gen_ai.usage.output_tokens"), 7);
      assert.ok(on.chunks.every((c) => !("usage" in c)));
    } finally {
      delete process.env.LLM_RESILIENCE_OPENAI_STREAM_USAGE;
      configure();
    }
    const off = await chatChunks();
    assert.equal(off.body.stream_options, undefined);
  });
});

describe("time to first chunk", () => {
  const ttfcCount = () => tel.metricValue("gen_ai.client.operation.time_to_first_chunk");

  for (const sdk of ["openai", "anthropic"] as const) {
    test(`${sdk}: attribute and metric measure the first chunk, not the end`, async () => {
      fake.setDefaults({ latencyMs: 40, chunkDelayMs: 30, chunks: 4 });
      const before = await ttfcCount();
      if (sdk === "openai") {
        const s = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: user, stream: true });
        for await (const _ of s);
      } else {
        const s = await anthropic.messages.create({ model: "claude-haiku-4-5", max_tokens: 9, messages: user, stream: true });
        for await (const _ of s);
      }
      const span = onlyLogical();
      const ttfc = attr(span, "gen_ai.response.time_to_first_chunk") as number;
      const duration = span.duration[0] + span.duration[1] / 1e9;
      assert.ok(ttfc >= 0.035, `ttfc ${ttfc} includes the wait for the answer`);
      assert.ok(ttfc <= duration - 0.09, `ttfc ${ttfc} is well before the end (${duration})`);
      assert.equal((await ttfcCount()) - before, 1, "one metric point");
      const labelled = await tel.metricValue("gen_ai.client.operation.time_to_first_chunk", {
        "gen_ai.provider.name": sdk,
        "gen_ai.operation.name": "chat",
      });
      assert.ok(labelled >= 1);
    });
  }

  test("a JSON call records no time to first chunk", async () => {
    const before = await ttfcCount();
    await openai.chat.completions.create({ model: "gpt-4o-mini", messages: user });
    assert.equal(attr(onlyLogical(), "gen_ai.response.time_to_first_chunk"), undefined);
    assert.equal(await ttfcCount(), before);
  });
});

describe("nothing buffered", () => {
  test("a 20,000-chunk stream passes through with a flat heap", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const N = 20_000;
    fake.setDefaults({ chunks: N });
    const stream = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: user, stream: true });
    let n = 0;
    let chars = 0;
    let early = 0;
    let late = 0;
    for await (const c of stream) {
      n++;
      chars += c.choices[0]?.delta?.content?.length ?? 0;
      if (n === 2_000) {
        gc();
        early = process.memoryUsage().heapUsed;
      } else if (n === N - 1_000) {
        gc();
        late = process.memoryUsage().heapUsed;
      }
    }
    assert.equal(n, N + 2, "role chunk + every content chunk + finish chunk");
    assert.equal(chars, expectedText(N).length);
    const growth = late - early;
    // 17,000 chunk objects kept alive would be ~10 MB.
    assert.ok(growth < 3 * 1024 * 1024, `heap grew by ${(growth / 1048576).toFixed(1)} MB over 17,000 chunks`);
    const span = onlyLogical();
    assert.deepEqual(attr(span, "gen_ai.response.finish_reasons"), ["stop"]);
  });
});

// ------------------------------------------------------------------ one end per span

type Ending = "complete" | "error" | "cut" | "abort" | "signal" | "break";
const ENDINGS: Ending[] = ["complete", "error", "cut", "abort", "signal", "break"];
const STOP_AT = 2;

/** Scripts the fake for an ending; slow, long streams for the caller-side endings. */
function scriptFor(ending: Ending): void {
  if (ending === "error") fake.script({ action: { streamErrorAfter: STOP_AT } });
  else if (ending === "cut") fake.script({ action: { streamCutAfter: STOP_AT } });
  else if (ending !== "complete") fake.setDefaults({ chunks: 100, chunkDelayMs: 2 });
}

/** What the caller saw: how many items, and the error it got if any. */
interface Seen {
  items: number;
  error?: unknown;
}

/** Iterates a stream the way the ending needs: to the end, aborting, or breaking after STOP_AT items. */
async function consume(iterable: AsyncIterable<unknown>, ending: Ending, abort: () => void): Promise<Seen> {
  const seen: Seen = { items: 0 };
  try {
    for await (const _ of iterable) {
      seen.items++;
      if (seen.items === STOP_AT) {
        if (ending === "break") break;
        if (ending === "abort" || ending === "signal") abort();
      }
    }
  } catch (error) {
    seen.error = error;
  }
  return seen;
}

function checkEnding(ending: Ending, seen: Seen, errorType: string): void {
  const span = onlyLogical();
  assert.equal(tel.attemptsOf(span).length, 1, "one attempt");
  if (ending === "error" || ending === "cut") {
    assert.ok(seen.error, "the caller got the error");
    assert.equal(attr(span, "error.type"), ending === "cut" ? "connection_error" : errorType);
    assert.equal(span.status.code, 2 /* ERROR */);
    assert.equal(span.events.filter((e) => e.name === "llm_resilience.give_up").length, 1);
    return;
  }
  assert.equal(attr(span, "error.type"), undefined, "not an error");
  assert.equal(span.status.code, 0);
  if (ending === "complete") {
    assert.equal(seen.error, undefined);
    assert.ok(attr(span, "gen_ai.response.finish_reasons"), "finish reason of a complete stream");
  } else {
    assert.ok(seen.items < 50, `stopped early (${seen.items} items)`);
    assert.equal(attr(span, "gen_ai.response.finish_reasons"), undefined, "never reached the end");
  }
}

describe("each span ends exactly once: openai Stream", () => {
  for (const ending of ENDINGS) {
    test(ending, async () => {
      scriptFor(ending);
      const ac = new AbortController();
      const stream = await openai.chat.completions.create(
        { model: "gpt-4o-mini", messages: user, stream: true },
        ending === "signal" ? { signal: ac.signal } : undefined,
      );
      const seen = await consume(stream, ending, () => (ending === "signal" ? ac.abort() : stream.controller.abort()));
      await settle();
      checkEnding(ending, seen, "server_error");
    });
  }
});

describe("each span ends exactly once: anthropic Stream", () => {
  for (const ending of ENDINGS) {
    test(ending, async () => {
      scriptFor(ending);
      const ac = new AbortController();
      const stream = await anthropic.messages.create(
        { model: "claude-haiku-4-5", max_tokens: 9, messages: user, stream: true },
        ending === "signal" ? { signal: ac.signal } : undefined,
      );
      const seen = await consume(stream, ending, () => (ending === "signal" ? ac.abort() : stream.controller.abort()));
      await settle();
      checkEnding(ending, seen, "overloaded_error");
    });
  }
});

describe("each span ends exactly once: ChatCompletionStream helper", () => {
  for (const ending of ENDINGS) {
    test(ending, async () => {
      scriptFor(ending);
      const ac = new AbortController();
      const runner = openai.chat.completions.stream(
        { model: "gpt-4o-mini", messages: user },
        ending === "signal" ? { signal: ac.signal } : undefined,
      );
      const final = runner.finalChatCompletion();
      final.catch(() => {});
      const seen = await consume(runner, ending, () => (ending === "signal" ? ac.abort() : runner.abort()));
      const outcome = await final.then(
        (c) => ({ c }),
        (e) => ({ e }),
      );
      if (ending === "complete") assert.equal(("c" in outcome && outcome.c.choices[0]!.message.content) || "", expectedText(3));
      else assert.ok("e" in outcome, "finalChatCompletion() rejects on a stream that did not finish");
      await settle();
      checkEnding(ending, seen, "server_error");
    });
  }
});

describe("each span ends exactly once: MessageStream helper", () => {
  for (const ending of ENDINGS) {
    test(ending, async () => {
      scriptFor(ending);
      const ac = new AbortController();
      const ms = anthropic.messages.stream(
        { model: "claude-haiku-4-5", max_tokens: 9, messages: user },
        ending === "signal" ? { signal: ac.signal } : undefined,
      );
      const final = ms.finalMessage();
      final.catch(() => {});
      let text = "";
      ms.on("text", (d) => {
        text += d;
      });
      const seen = await consume(ms, ending, () => (ending === "signal" ? ac.abort() : ms.abort()));
      const outcome = await final.then(
        (m) => ({ m }),
        (e) => ({ e }),
      );
      if (ending === "complete") {
        assert.ok("m" in outcome);
        assert.equal(text, expectedText(3));
      } else assert.ok("e" in outcome, "finalMessage() rejects on a stream that did not finish");
      await settle();
      checkEnding(ending, seen, "overloaded_error");
    });
  }
});

describe("each span ends exactly once: other endings", () => {
  test("aborted while waiting for the answer (before any chunk): error.type aborted", async () => {
    fake.setDefaults({ latencyMs: 2_000 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    await assert.rejects(
      openai.chat.completions.create({ model: "gpt-4o-mini", messages: user, stream: true }, { signal: ac.signal }),
      (e: any) => e instanceof OpenAI.APIUserAbortError,
    );
    await settle();
    const span = onlyLogical();
    assert.equal(attr(span, "error.type"), "aborted");
    assert.equal(span.status.code, 2);
  });

  // (Anthropic's tee() branches have no return(): breaking both never reaches the source stream,
  // which stays open — the SDK's own connection leak — so its span cannot end; see the report.)
  test("openai tee(): both branches break early: one end, not an error", async () => {
    fake.setDefaults({ chunks: 100, chunkDelayMs: 2 });
    const stream = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: user, stream: true });
    const [a, b] = stream.tee();
    const [sa, sb] = await Promise.all([consume(a, "break", () => {}), consume(b, "break", () => {})]);
    assert.deepEqual([sa.items, sb.items], [STOP_AT, STOP_AT]);
    await settle();
    checkEnding("break", sa, "");
  });

  test("a stream dropped without ever being read: its span ends, not as an error, once the stream is garbage-collected", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    fake.setDefaults({ chunks: 5 });
    await (async () => {
      // The caller asks for a stream and walks away (a handler that failed before reading it).
      await openai.chat.completions.create({ model: "gpt-4o-mini", messages: user, stream: true });
    })();
    for (let i = 0; i < 100 && tel.logical().length === 0; i++) {
      gc();
      await settle();
    }
    const span = onlyLogical();
    assert.equal(span.status.code, 0, "not an error");
    assert.equal(attr(span, "error.type"), undefined);
    assert.equal(attr(span, "llm_resilience.attempts"), 1);
    assert.equal(tel.attemptsOf(span).length, 1, "its attempt span ended too");
  });

  test("toReadableStream() cancelled by its reader: one end, not an error", async () => {
    fake.setDefaults({ chunks: 100, chunkDelayMs: 2 });
    const stream = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: user, stream: true });
    const reader = stream.toReadableStream().getReader();
    await reader.read();
    await reader.read();
    await reader.cancel();
    await settle();
    checkEnding("break", { items: 2 }, "");
  });

  test("responses stream with a mid-stream error event: error.type from its code", async () => {
    fake.script({ action: { streamErrorAfter: 1, errorType: "server_error" } });
    const stream = await openai.responses.create({ model: "gpt-4.1", input: "hi", stream: true });
    const seen = await consume(stream, "complete", () => {});
    assert.ok(seen.error);
    await settle();
    const span = onlyLogical();
    assert.equal(attr(span, "error.type"), "server_error");
    assert.equal(span.status.code, 2);
  });

  test("a JSON body cut mid-way (not a stream): connection_error, one end", async () => {
    fake.script({ action: { streamCutAfter: 1 } });
    await assert.rejects(anthropic.messages.create({ model: "claude-haiku-4-5", max_tokens: 9, messages: user }, { maxRetries: 0 }));
    await settle();
    const span = onlyLogical();
    assert.equal(attr(span, "error.type"), "connection_error");
    assert.equal(span.status.code, 2);
  });

  test("many concurrent streams ending in every way: every span ends once", async () => {
    fake.setDefaults({ chunks: 30, chunkDelayMs: 1 });
    const runs: Promise<unknown>[] = [];
    for (let i = 0; i < 24; i++) {
      const ending = ENDINGS[i % ENDINGS.length]!;
      if (ending === "error") fake.script({ match: { model: `m${i}` }, action: { streamErrorAfter: STOP_AT } });
      if (ending === "cut") fake.script({ match: { model: `m${i}` }, action: { streamCutAfter: STOP_AT } });
      runs.push(
        (async () => {
          if (Math.floor(i / ENDINGS.length) % 2 === 0) {
            const s = await openai.chat.completions.create({ model: `m${i}`, messages: user, stream: true });
            return consume(s, ending, () => s.controller.abort());
          }
          const s = await anthropic.messages.create({ model: `m${i}`, max_tokens: 9, messages: user, stream: true });
          return consume(s, ending, () => s.controller.abort());
        })(),
      );
    }
    await Promise.all(runs);
    await settle();
    assert.equal(tel.logical().length, 24);
    assert.equal(counter.started.size, 48, "24 logical + 24 attempt spans");
    assert.equal(counter.ends.size, 48);
    const errors = tel.logical().filter((s) => s.status.code === 2).map((s) => attr(s, "error.type")).sort();
    assert.deepEqual(errors, [...Array(4).fill("connection_error"), "overloaded_error", "overloaded_error", "server_error", "server_error"].sort());
  });
});
