/**
 * Telemetry faults never hurt the call.
 *
 * 1. Child processes (test/fixtures/reliability/telemetry-app.cjs: `llm-resilience/register` first, then
 *    SDK calls of both SDKs, JSON and streamed, 1 in 5 a scripted 400) export to an OTLP endpoint that
 *    refuses connections, hangs, or answers 500 / 503 for the whole run. Compared with a run with
 *    exporting off (OTEL_SDK_DISABLED) and a run against a healthy endpoint (the positive control:
 *    proves exporting was really configured), every call still returns what it should at normal speed
 *    (≤ 3× + 200 ms), memory stays bounded once the span queue is full, nothing is left unhandled, our
 *    logger says what is wrong once (not once per export), and the process ends on its own.
 * 2. In process: an exception thrown by the telemetry pipeline itself — a SpanProcessor whose onStart or
 *    onEnd throws, a meter whose instruments throw on add/record or on creation, a logger whose methods
 *    throw — never reaches the caller: every call of a representative set ends exactly as it does with
 *    healthy telemetry.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { context, metrics, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { stableMessage } from "./helpers/stable-message.ts";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { register } from "../src/index.ts";
import { resetInstruments } from "../src/telemetry/instruments.ts";
import { startFakeProvider, type FakeProvider } from "./fake-provider/index.ts";
import { describeRun, runChild, type ChildResult } from "./helpers/child.ts";
import { memoryLogger, resultLine } from "./helpers/memory-logger.ts";
import { startOtlpReceiver, type OtlpReceiver, type ReceiverMode } from "./helpers/otlp-receiver.ts";

// ------------------------------------------------------------------ in-process telemetry with fault switches
const faults = { startAll: false, startAttempt: false, end: false, record: false, create: false };
const injected = (what: string) => new Error(`INJECTED ${what}`);
const spans = new InMemorySpanExporter();
const throwingProcessor = {
  onStart(span: { name: string }) {
    if (faults.startAll || (faults.startAttempt && span.name.endsWith(" attempt"))) throw injected("SpanProcessor.onStart");
  },
  onEnd() {
    if (faults.end) throw injected("SpanProcessor.onEnd");
  },
  forceFlush: async () => {},
  shutdown: async () => {},
};
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [throwingProcessor, new SimpleSpanProcessor(spans)] }));
class Reader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}
const reader = new Reader();
const realMeters = new MeterProvider({ readers: [reader] });
const wrapInstrument = (inst: any) =>
  new Proxy(inst, {
    get(t, p) {
      const v = t[p];
      if (p === "add" || p === "record")
        return (...a: unknown[]) => {
          if (faults.record) throw injected(`instrument.${String(p)}`);
          return v.apply(t, a);
        };
      return typeof v === "function" ? v.bind(t) : v;
    },
  });
const wrapMeter = (meter: any) =>
  new Proxy(meter, {
    get(t, p) {
      const v = t[p];
      if (typeof v === "function" && String(p).startsWith("create"))
        return (...a: unknown[]) => {
          if (faults.create) throw injected(`meter.${String(p)}`);
          return wrapInstrument(v.apply(t, a));
        };
      return typeof v === "function" ? v.bind(t) : v;
    },
  });
metrics.setGlobalMeterProvider({ getMeter: (...a: Parameters<MeterProvider["getMeter"]>) => wrapMeter(realMeters.getMeter(...a)) });

const mem = memoryLogger("info");
const throwingLogger: any = {
  child: () => throwingLogger,
  isLevelEnabled: () => true,
  level: "info",
  ...Object.fromEntries(["fatal", "error", "warn", "info", "debug", "trace"].map((l) => [l, () => { throw injected(`logger.${l}`); }])),
};

let fake: FakeProvider;
let openai: OpenAI;
let anthropic: Anthropic;
/** A breaker that opens on the first counted failure (only the "down" model of a call set fails that way). */
const OPTIONS = (logger: unknown) => ({ startSdk: false, logger, baseDelayMs: 1, maxDelayMs: 5, breaker: { failures: 1, cooldownMs: 60_000 } });
const uncaught: unknown[] = [];
const onUncaught = (e: unknown) => uncaught.push(e);

// ------------------------------------------------------------------ child-process runs
interface Run {
  name: string;
  mode: ReceiverMode | "off";
  env?: Record<string, string>;
  receiver?: OtlpReceiver;
  result?: ChildResult;
  out?: any;
  /** ms from the RESULT line to the child's exit. */
  exitAfterMs?: number;
  diagnostics?: any[];
}
const CALLS = 100;
const WARMUP = 20;
/** Our own flush bound at exit (src/telemetry/sdk.ts FLUSH_LIMIT_MS) and OTel's default export timeout. */
const FLUSH_LIMIT_MS = 5_000;
const OTLP_DEFAULT_TIMEOUT_MS = 10_000;
/** The fault runs use a short OTLP timeout (1 s) so a dead endpoint costs seconds, not tens of seconds. */
const SHORT = { OTEL_EXPORTER_OTLP_TIMEOUT: "1000" };
const runs: Run[] = [
  { name: "exporting off", mode: "off" },
  // A queue big enough for every span: all of them must arrive. Generous timeouts: this is the control
  // run, and eight children share two cores with the receiver, which may answer late.
  {
    name: "healthy endpoint",
    mode: "ok",
    env: { OTEL_BSP_MAX_QUEUE_SIZE: "2048", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "512", OTEL_EXPORTER_OTLP_TIMEOUT: "10000", OTEL_METRIC_EXPORT_INTERVAL: "5000", OTEL_METRIC_EXPORT_TIMEOUT: "5000" },
  },
  { name: "endpoint refuses connections", mode: "refuse", env: SHORT },
  // A long outage compressed: the BatchSpanProcessor's drop warning once per flush, a new count each time.
  { name: "long outage (50 drop warnings)", mode: "refuse", env: { ...SHORT, DIAG_STORM: "50" } },
  { name: "endpoint hangs", mode: "hang", env: SHORT },
  { name: "endpoint answers 500", mode: { status: 500 }, env: SHORT },
  { name: "endpoint answers 503 (retryable)", mode: { status: 503 }, env: SHORT },
  // OTel's exporter retries a failed export (ref'd timers) for up to its timeout; when that is longer
  // than the metric export interval, the next periodic export starts before the last one gave up.
  {
    name: "endpoint refuses, metric interval (1 s) shorter than the OTLP timeout (3 s)",
    mode: "refuse",
    env: { OTEL_EXPORTER_OTLP_TIMEOUT: "3000", OTEL_METRIC_EXPORT_INTERVAL: "1000", OTEL_METRIC_EXPORT_TIMEOUT: "1000" },
  },
];
const run = (name: string) => runs.find((r) => r.name === name)!;

async function runFixture(r: Run): Promise<void> {
  if (r.mode !== "off") r.receiver = await startOtlpReceiver(r.mode);
  const env: Record<string, string> = {
    FAKE_URL: fake.url,
    CALLS: String(CALLS),
    WARMUP: String(WARMUP),
    OTEL_SERVICE_NAME: "telemetry-faults",
    OTEL_EXPORTER_OTLP_ENDPOINT: r.receiver?.url ?? "http://127.0.0.1:9",
    // Export often, and keep the span queue small, so a short run exercises full queues and dropping.
    OTEL_BSP_SCHEDULE_DELAY: "100",
    OTEL_BSP_MAX_QUEUE_SIZE: "32",
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "16",
    OTEL_METRIC_EXPORT_INTERVAL: "2000",
    OTEL_METRIC_EXPORT_TIMEOUT: "2000",
    LLM_RESILIENCE_LOG_LEVEL: "warn",
    // The fixture's models are priced: the diagnostics counted here are the exporters' alone.
    LLM_RESILIENCE_PRICES: JSON.stringify({ "tf-gpt": { input: 1, output: 2 }, "tf-claude": { input: 1, output: 2 } }),
    ...r.env,
  };
  if (r.mode === "off") env.OTEL_SDK_DISABLED = "true";
  r.result = await runChild(["--expose-gc", "test/fixtures/reliability/telemetry-app.cjs"], { env, timeoutMs: 60_000 });
  const exitedAt = Date.now();
  r.out = resultLine(r.result.stdout);
  if (r.out) r.exitAfterMs = exitedAt - r.out.doneAt;
  r.diagnostics = r.result.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l))
    .filter((l) => typeof l.msg === "string" && l.msg.startsWith("llm-resilience:"));
}

before(async () => {
  process.on("uncaughtException", onUncaught);
  fake = await startFakeProvider();
  fake.script({ match: { model: "tf-bad" }, times: Infinity, action: { status: 400 } });
  // All children at once: they share the machine alike, so their call timings stay comparable.
  await Promise.all(runs.map(runFixture));
  await Promise.all(runs.map((r) => r.receiver?.close()));

  register(OPTIONS(mem.logger));
  openai = new OpenAI({ apiKey: "sk-tf", baseURL: fake.openaiBaseURL });
  anthropic = new Anthropic({ apiKey: "sk-ant-tf", baseURL: fake.anthropicBaseURL });
});
after(async () => {
  process.off("uncaughtException", onUncaught);
  await fake.close();
});

describe("OTLP endpoint down for the whole run (child processes)", () => {
  test("the healthy-endpoint control run really exported (so the fault runs exercise a live exporter)", () => {
    const r = run("healthy endpoint");
    assert.equal(r.result!.code, 0, describeRun(r.result!));
    const expectedSpans = 2 * (CALLS + WARMUP); // a logical span and one attempt span per call
    assert.ok(r.receiver!.spans.length >= expectedSpans * 0.9, `received ${r.receiver!.spans.length} of ~${expectedSpans} spans`);
    assert.ok(r.receiver!.metrics.some((m) => m.name === "gen_ai.client.operation.duration"));
    assert.deepEqual(r.diagnostics, [], "no diagnostics when exporting works");
  });

  for (const r of runs) {
    test(`${r.name}: every call ends as scripted, no unhandled rejection, clean exit`, () => {
      const res = r.result!;
      assert.ok(r.out, `no RESULT line\n${describeRun(res)}`);
      if (!res.timedOut) assert.equal(res.code, 0, describeRun(res)); // a late exit is the exit test's business
      assert.equal(r.out.unhandled, 0);
      assert.equal(r.out.unexpected, 0, "no call failed other than the scripted 400s");
      assert.equal(r.out.expectedErrors, r.out.calls / 5, "every scripted 400 reached the caller as the SDK's error");
      assert.equal(r.out.ok, (r.out.calls * 4) / 5);
      assert.doesNotMatch(res.stderr, /UNHANDLED|UNCAUGHT|Error/, "nothing on stderr");
    });
  }

  for (const r of runs.filter((x) => x.mode !== "off" && x.mode !== "ok" && !x.env?.DIAG_STORM)) {
    test(`${r.name}: calls at normal speed, bounded memory, one clear diagnostic`, () => {
      const base = run("exporting off").out;
      assert.ok(r.out.ms <= 3 * base.ms + 200, `calls took ${Math.round(r.out.ms)} ms vs ${Math.round(base.ms)} ms with exporting off`);
      // The span queue (32) is full long before the second half of the run: from then on nothing may grow.
      const secondHalf = (r.out.heapEnd - r.out.heapMid) / 2 ** 20;
      const total = (r.out.heapEnd - r.out.heapStart) / 2 ** 20;
      assert.ok(secondHalf < 8, `heap grew ${secondHalf.toFixed(1)} MiB over the second ${CALLS / 2} calls`);
      assert.ok(total < 24, `heap grew ${total.toFixed(1)} MiB over ${CALLS} calls`);
      const lines = r.diagnostics!;
      assert.ok(lines.length >= 1, "the exporter failure is reported");
      // Each distinct problem once (a loaded machine may add a timeout next to the scripted cause), never a flood.
      const msgs = lines.map((l) => l.msg);
      assert.equal(new Set(msgs).size, msgs.length, `each diagnostic once:\n${msgs.join("\n")}`);
      assert.ok(lines.length <= 10, `not a flood: ${lines.length} diagnostic lines\n${msgs.join("\n")}`);
      assert.ok(lines.every((l) => l.level === 40), "as warnings");
      const cause = typeof r.mode === "object" ? (r.mode.status === 500 ? /Internal Server Error/ : /retryable status/) : r.mode === "refuse" ? /ECONNREFUSED/ : /timed out/i;
      assert.match(lines.map((l) => l.msg).join("\n"), cause, "the diagnostic names the cause");
    });
  }

  test("a long outage: the BatchSpanProcessor's 'Dropped N spans' warnings (new N each flush) stay one line", () => {
    const r = run("long outage (50 drop warnings)");
    const dropped = r.diagnostics!.filter((l) => /Dropped (\d+|N) spans/.test(l.msg));
    assert.ok(dropped.length >= 1, "the drop is reported");
    assert.equal(dropped.length, 1, `one line, not one per flush: got ${dropped.length}`);
  });

  test("the process ends on its own, within 2 OTLP timeouts (in-flight export, exit flush) + our flush limit", (t) => {
    const summary = runs.map((r) => `${r.name}: ${r.exitAfterMs === undefined ? "no RESULT" : `exit ${r.exitAfterMs} ms after the last call`}${r.result?.timedOut ? " (KILLED)" : ""}`).join("\n");
    t.diagnostic(summary.replace(/\n/g, "; "));
    t.diagnostic(runs.map((r) => `${r.name}: calls ${Math.round(r.out?.ms)} ms, heap +${((r.out?.heapEnd - r.out?.heapStart) / 2 ** 20).toFixed(1)} MiB, ${r.diagnostics?.length} diagnostic line(s)`).join("; "));
    for (const r of runs) {
      assert.ok(r.exitAfterMs !== undefined && !r.result!.timedOut, `${r.name} did not end on its own\n${summary}`);
      const otlpTimeout = Number(r.env?.OTEL_EXPORTER_OTLP_TIMEOUT ?? OTLP_DEFAULT_TIMEOUT_MS);
      const bound = r.mode === "off" || r.mode === "ok" ? 2_000 : 2 * otlpTimeout + FLUSH_LIMIT_MS + 2_000;
      assert.ok(r.exitAfterMs! < bound, `${r.name}: exit took ${r.exitAfterMs} ms (bound ${bound})\n${summary}`);
    }
  });
});

// ------------------------------------------------------------------ exceptions inside our own telemetry
const msgs = [{ role: "user" as const, content: "hi" }];
let scenario = 0;

function shape(v: unknown): string {
  return `ok ${JSON.stringify(v)}`;
}
function errShape(e: any): string {
  return `${e?.constructor?.name} ${e?.status ?? ""} ${stableMessage(String(e?.message))}`;
}
async function outcome(f: () => Promise<unknown>): Promise<string> {
  try {
    return shape(await f());
  } catch (e) {
    return errShape(e);
  }
}
async function drain(s: AsyncIterable<any>, pick: (c: any) => string | undefined): Promise<string> {
  let text = "";
  for await (const c of s) text += pick(c) ?? "";
  return text;
}

/** A representative set of calls; each scenario uses models of its own (fresh breaker keys and rules). */
async function callSet(): Promise<Record<string, string>> {
  const tag = `inj${++scenario}`;
  const m = (n: string) => `${tag}-${n}`;
  fake.script(
    { match: { model: m("retry") }, action: { status: 429, headers: { "retry-after-ms": "1" } } },
    { match: { model: m("bad") }, times: 5, action: { status: 400 } },
    { match: { model: m("midstream") }, action: { streamErrorAfter: 1, errorType: "overloaded_error", message: "Overloaded" } },
    { match: { model: m("malformed") }, action: { malformedJson: true } },
    { match: { model: m("down") }, times: Infinity, action: { status: 503 } },
  );
  const out: Record<string, string> = {};
  const chatText = (r: any) => r.choices[0].message.content;
  out.json = await outcome(async () => chatText(await openai.chat.completions.create({ model: m("ok"), messages: msgs })));
  out.retried = await outcome(async () => chatText(await openai.chat.completions.create({ model: m("retry"), messages: msgs })));
  out.bad = await outcome(() => openai.chat.completions.create({ model: m("bad"), messages: msgs }));
  out.malformed = await outcome(() => openai.chat.completions.create({ model: m("malformed"), messages: msgs }));
  out.openaiStream = await outcome(async () =>
    drain(await openai.chat.completions.create({ model: m("ok"), messages: msgs, stream: true }), (c) => c.choices[0]?.delta?.content),
  );
  const anthropicText = (c: any) => (c.type === "content_block_delta" ? c.delta.text : undefined);
  out.anthropicJson = await outcome(async () => (await anthropic.messages.create({ model: m("ok"), max_tokens: 5, messages: msgs })).content);
  out.anthropicStream = await outcome(async () =>
    drain(await anthropic.messages.create({ model: m("ok"), max_tokens: 5, messages: msgs, stream: true }), anthropicText),
  );
  out.midstream = await outcome(async () =>
    drain(await anthropic.messages.create({ model: m("midstream"), max_tokens: 5, messages: msgs, stream: true }), anthropicText),
  );
  // Breaker (1 failure opens it): a 503, then rejected before sending.
  const breaker: string[] = [];
  for (let i = 0; i < 3; i++) breaker.push(await outcome(() => openai.chat.completions.create({ model: m("down"), messages: msgs }, { maxRetries: 0 })));
  out.breaker = breaker.map((b) => b.split(" ")[0]).join(",");
  await new Promise((r) => setTimeout(r, 20)); // late telemetry (body watchers run on setImmediate)
  return out;
}

describe("an exception inside our own span, metric or log code never reaches the caller", () => {
  let baseline: Record<string, string>;
  before(async () => {
    baseline = await callSet();
  });

  test("baseline with healthy telemetry", () => {
    assert.equal(baseline.json, shape("tok0 tok1 tok2 "));
    assert.equal(baseline.retried, shape("tok0 tok1 tok2 "));
    assert.match(baseline.bad, /^BadRequestError 400 /);
    assert.match(baseline.malformed, /^SyntaxError/);
    assert.equal(baseline.openaiStream, shape("tok0 tok1 tok2 "));
    assert.equal(baseline.anthropicStream, shape("tok0 tok1 tok2 "));
    assert.match(baseline.midstream, /^APIError .*Overloaded/);
    assert.equal(baseline.breaker, "InternalServerError,BreakerOpenError,BreakerOpenError");
    assert.ok(spans.getFinishedSpans().length > 10, "telemetry was recorded");
  });

  const scenarios: [string, () => void, () => void][] = [
    ["SpanProcessor.onStart throws for every span", () => (faults.startAll = true), () => (faults.startAll = false)],
    ["SpanProcessor.onStart throws for attempt spans", () => (faults.startAttempt = true), () => (faults.startAttempt = false)],
    ["SpanProcessor.onEnd throws", () => (faults.end = true), () => (faults.end = false)],
    ["instruments throw on add/record", () => (faults.record = true), () => (faults.record = false)],
    [
      "the meter throws when creating instruments",
      () => {
        faults.create = true;
        resetInstruments();
      },
      () => {
        faults.create = false;
        resetInstruments();
      },
    ],
    [
      "the application's logger throws on every call",
      () => register(OPTIONS(throwingLogger)),
      () => register(OPTIONS(mem.logger)),
    ],
  ];
  for (const [name, on, off] of scenarios) {
    test(name, async () => {
      uncaught.length = 0;
      on();
      let got: Record<string, string>;
      try {
        got = await callSet();
      } finally {
        off();
      }
      assert.deepEqual(uncaught.map(String), [], "nothing thrown out of band (timers, setImmediate)");
      assert.deepEqual(got, baseline, "every call ends exactly as with healthy telemetry");
    });
  }

  test("our own failures are reported once per kind, as warnings of our logger", () => {
    const ours = mem.lines.filter((l) => String(l.msg).startsWith("llm-resilience: telemetry error"));
    const kinds = ours.map((l) => l.kind);
    assert.ok(ours.length >= 1, "reported");
    assert.equal(new Set(kinds).size, kinds.length, `each kind once: ${kinds.join(", ")}`);
    assert.ok(ours.every((l) => l.level === 40 && /INJECTED/.test(l.err?.message ?? "")));
  });
});
