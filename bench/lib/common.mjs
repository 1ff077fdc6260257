// Shared pieces of the in-process benchmarks: canned fetch, OpenTelemetry set-up with dropping
// exporters, the configurations under test, and small statistics helpers.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const require = createRequire(join(ROOT, "package.json"));

// ------------------------------------------------------------------ canned responses

let payloads;
/** The canned payloads (bench/lib/gen-payloads.ts writes them; generated here when missing). */
export function loadPayloads() {
  if (payloads) return payloads;
  const file = process.env.BENCH_PAYLOADS ?? join(ROOT, "bench/results/payloads.tmp");
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    execFileSync(process.execPath, ["--import", "tsx", join(ROOT, "bench/lib/gen-payloads.ts"), file], { cwd: ROOT, stdio: "inherit" });
  }
  payloads = JSON.parse(readFileSync(file, "utf8"));
  return payloads;
}

const enc = new TextEncoder();

/** The SSE frames of a streamed answer with `n` content chunks, produced lazily (nothing buffered). */
export function* sseFrames(provider, n) {
  const p = loadPayloads()[provider].stream;
  yield* p.head;
  const [before, after] = p.chunk0.split("tok0 ");
  for (let i = 0; i < n; i++) yield `${before}tok${i} ${after}`;
  yield* p.tail;
}

/**
 * A `fetch` for the SDK client that answers every request with a canned Response, so only
 * client-side work is timed. Streams are delivered one SSE frame per read, as a real token stream
 * arrives. The answer comes after one turn of the event loop (setImmediate), as a real socket read
 * does: without it a benchmark loop of awaited calls would run on microtasks alone and starve every
 * timer and setImmediate in the process (the span processor's export timer, the event-loop monitor...).
 * `delayMs` > 0 answers after a timer instead (used to hold many calls in flight); `delayMs` may be a
 * function of the call's index.
 */
export function cannedFetch(provider, { streamChunks = 200, lazy = false, delayMs = 0 } = {}) {
  const p = loadPayloads()[provider];
  const jsonHeaders = { "content-type": "application/json", ...p.headers };
  const sseHeaders = { "content-type": "text/event-stream; charset=utf-8", ...p.headers };
  const jsonBody = p.json;
  const frames = lazy ? undefined : [...sseFrames(provider, streamChunks)].map((f) => enc.encode(f));
  const respond = (init) => {
    const body = typeof init?.body === "string" ? init.body : "";
    if (!body.includes('"stream":true')) return new Response(jsonBody, { status: 200, headers: jsonHeaders });
    let stream;
    if (frames) {
      let i = 0;
      stream = new ReadableStream({
        pull(c) {
          if (i < frames.length) c.enqueue(frames[i++]);
          else c.close();
        },
      });
    } else {
      const it = sseFrames(provider, streamChunks);
      stream = new ReadableStream({
        pull(c) {
          const r = it.next();
          if (r.done) c.close();
          else c.enqueue(enc.encode(r.value));
        },
      });
    }
    return new Response(stream, { status: 200, headers: sseHeaders });
  };
  if (typeof delayMs === "function") {
    let k = 0;
    return (_url, init) => new Promise((res) => setTimeout(() => res(respond(init)), delayMs(k++)));
  }
  if (delayMs > 0) return (_url, init) => new Promise((res) => setTimeout(() => res(respond(init)), delayMs));
  return (_url, init) => new Promise((res) => setImmediate(() => res(respond(init))));
}

// ------------------------------------------------------------------ OpenTelemetry (real SDK, dropping exporters)

export class DropSpanExporter {
  exported = 0;
  export(spans, cb) {
    this.exported += spans.length;
    cb({ code: 0 });
  }
  shutdown() {
    return Promise.resolve();
  }
  forceFlush() {
    return Promise.resolve();
  }
}

export class DropMetricExporter {
  exports = 0;
  export(_metrics, cb) {
    this.exports++;
    cb({ code: 0 });
  }
  forceFlush() {
    return Promise.resolve();
  }
  shutdown() {
    return Promise.resolve();
  }
}

/**
 * What an application does at start-up: NodeTracerProvider (AsyncLocalStorage context manager) with a
 * BatchSpanProcessor, a MeterProvider with a PeriodicExportingMetricReader (1 s), exporters that drop.
 */
export function setupOtel() {
  const { metrics } = require("@opentelemetry/api");
  const { NodeTracerProvider, BatchSpanProcessor } = require("@opentelemetry/sdk-trace-node");
  const { MeterProvider, PeriodicExportingMetricReader } = require("@opentelemetry/sdk-metrics");
  const spans = new DropSpanExporter();
  const tp = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(spans)] });
  tp.register();
  const metricExporter = new DropMetricExporter();
  const mp = new MeterProvider({
    readers: [new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 1000 })],
  });
  metrics.setGlobalMeterProvider(mp);
  return {
    tp,
    mp,
    spans,
    metricExporter,
    async flush() {
      await tp.forceFlush();
      await mp.forceFlush();
    },
    /**
     * The state every process with the OTel SDK reaches after its first export interval: the exporters
     * run inside `context.with(suppressTracing(...))`, which on Node 20 switches AsyncLocalStorage's
     * promise hooks on for good. Measuring before that point would time some configurations with the
     * hooks off and others with them on, depending on how long their warm-up took.
     */
    async steady() {
      await mp.forceFlush();
    },
  };
}

// ------------------------------------------------------------------ configurations

/**
 * Sets up one configuration and returns a client whose calls are timed. Every configuration has the
 * same OTel SDK registered; only the instrumentation differs. stdout is /dev/null in the children, so
 * our default pino logger writes its JSON lines to /dev/null.
 */
export function makeClient(provider, config, fetchOpts = {}, registerOpts = {}) {
  const otel = setupOtel();
  // BENCH_LOOPBACK=http://127.0.0.1:PORT (bench/loopback/provider.mts): real HTTP with the SDK's own fetch
  // (undici) instead of the canned in-process fetch.
  const loopback = process.env.BENCH_LOOPBACK;
  const transport = loopback
    ? { baseURL: { openai: `${loopback}/v1`, anthropic: loopback } }
    : { baseURL: { openai: "https://api.openai.com/v1", anthropic: "https://api.anthropic.com" }, fetch: cannedFetch(provider, fetchOpts) };
  const notes = [];
  if (config.startsWith("ours")) {
    // BENCH_LLMR: another build of the package (a directory with dist/), to compare two versions.
    const dist = process.env.BENCH_LLMR ? join(process.env.BENCH_LLMR, "dist") : join(ROOT, "dist");
    const { register } = require(join(dist, "index.js"));
    const off = new Set(config === "ours-bare" ? ["log", "body", "metrics", "spans", "policies"] : config === "ours-debug" ? [] : [config.slice(7)]);
    ablate(dist, off, otel, notes);
    register({
      startSdk: false,
      logLevel: off.has("log") ? "silent" : config === "ours-debug" ? "debug" : "info",
      ...(off.has("policies") ? { breaker: false, retryBudget: false } : {}),
      ...registerOpts,
    });
  }
  if (provider === "openai") {
    const mod = require("openai");
    if (config === "otel-contrib") {
      const { OpenAIInstrumentation } = require("@opentelemetry/instrumentation-openai");
      const inst = new OpenAIInstrumentation();
      // As registerInstrumentations() would: without it its metric instruments stay undefined (its class
      // fields are initialised after the base constructor created them) and streamed calls throw.
      inst.setTracerProvider(otel.tp);
      inst.setMeterProvider(otel.mp);
      // Its module definition declares openai ">=4.19.0 <7" and so skips openai 7: apply its patch by hand.
      const [def] = inst.getModuleDefinitions();
      def.patch(mod, JSON.parse(readFileSync(join(ROOT, "node_modules/openai/package.json"), "utf8")).version);
      notes.push(`patched by hand via getModuleDefinitions()[0].patch(); supported range ${def.supportedVersions.join(" ")}`);
    } else if (config === "traceloop") {
      const { OpenAIInstrumentation } = require("@traceloop/instrumentation-openai");
      const inst = new OpenAIInstrumentation();
      inst.setTracerProvider(otel.tp);
      inst.manuallyInstrument(mod.OpenAI);
      notes.push("manuallyInstrument(OpenAI); default config (traceContent on)");
    }
    const client = new mod.OpenAI({ apiKey: "sk-bench", baseURL: transport.baseURL.openai, ...(transport.fetch ? { fetch: transport.fetch } : {}) });
    const body = { model: "gpt-4o-mini", messages: [{ role: "user", content: "Say hi" }] };
    const chat = () => client.chat.completions.create(body);
    const stream = () => client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
    return { otel, notes, client, ...withContext(config, chat, stream) };
  }
  const mod = require("@anthropic-ai/sdk");
  if (config === "traceloop") {
    const { AnthropicInstrumentation } = require("@traceloop/instrumentation-anthropic");
    const inst = new AnthropicInstrumentation();
    inst.setTracerProvider(otel.tp);
    try {
      inst.manuallyInstrument(mod);
      notes.push("manuallyInstrument(module)");
    } catch (err) {
      // 1.x has no Anthropic.Completions: manuallyInstrument throws before patching Messages. Apply its
      // Messages patch by hand, as its manuallyInstrument would.
      inst._wrap(mod.Anthropic.Messages.prototype, "create", inst.patchAnthropic("chat", mod));
      notes.push(`manuallyInstrument threw (${String(err.message).slice(0, 60)}); Messages.create patched by hand via _wrap(patchAnthropic("chat"))`);
    }
  }
  const Anthropic = mod.Anthropic ?? mod.default;
  const client = new Anthropic({
    apiKey: "sk-ant-bench",
    baseURL: transport.baseURL.anthropic,
    ...(transport.fetch ? { fetch: transport.fetch } : {}),
    // raw and the peers: the SDK's own tracing off; builtin-tracing: on (default) with a provider registered;
    // ours: default (llm-resilience replaces the SDK's span with its own).
    ...(config === "raw" || config === "raw-ctx" || config === "traceloop" ? { openTelemetry: false } : {}),
  });
  const body = { model: "claude-haiku-4-5", max_tokens: 256, messages: [{ role: "user", content: "Say hi" }] };
  const chat = () => client.messages.create(body);
  const stream = () => client.messages.create({ ...body, stream: true });
  return { otel, notes, client, ...withContext(config, chat, stream) };
}

/**
 * "raw-ctx": the raw SDK, each call run inside `context.with()` of a context holding a span — what any
 * OpenTelemetry instrumentation does. On Node 20 the AsyncLocalStorage context manager then turns on
 * async_hooks promise hooks for the whole process; this row isolates that cost from the rest.
 */
function withContext(config, chat, stream) {
  if (config !== "raw-ctx") return { chat, stream };
  const { context, trace } = require("@opentelemetry/api");
  const span = trace.getTracer("bench").startSpan("bench parent");
  const ctx = trace.setSpan(context.active(), span);
  return { chat: () => context.with(ctx, chat), stream: () => context.with(ctx, stream) };
}

/**
 * Ablations (part "ablation"): switch one piece of llm-resilience off inside the benchmark process, to
 * price each piece. Nothing in src/ changes; the built modules are patched in memory.
 *   ours-debug      logLevel debug: the per-call summary line is written (info, the default, logs decisions only)
 *   ours-nolog      logLevel silent (no log lines at all)
 *   ours-nobody     the response-body watchers off (ResponseBody.prototype.bodyRead a no-op, bodyStreamOpen false)
 *   ours-nometrics  getInstruments() returns no-op instruments (no metric records)
 *   ours-nospans    our tracer scope gets a never-sampling tracer (spans created non-recording)
 *   ours-nopolicies breaker and retry budget off
 *   ours-bare       all of the above
 * Finer ones, to price single pieces (bench/count.mjs):
 *   ours-noattemptspan  no attempt span (the attempt gets a non-recording span and the call's context)
 *   ours-nowithin       the attempt is sent without context.with() around it
 *   ours-nometric-<attempts|duration|tokens|ttfc>  that one instrument a no-op
 */
function ablate(dist, off, otel, notes) {
  if (off.has("body")) {
    const { ResponseBody } = require(join(dist, "call/response-body.js"));
    ResponseBody.prototype.bodyRead = function () {};
    ResponseBody.prototype.bodyStreamOpen = function () {
      return false;
    };
    notes.push("response-body watchers disabled");
  }
  if (off.has("metrics")) {
    const noop = { add() {}, record() {} };
    const inst = require(join(dist, "telemetry/instruments.js"));
    const all = new Proxy({}, { get: () => noop });
    inst.getInstruments = () => all;
    notes.push("metric instruments replaced by no-ops");
  }
  const oneMetric = [...off].find((o) => o.startsWith("metric-"))?.slice(7);
  if (oneMetric) {
    const inst = require(join(dist, "telemetry/instruments.js"));
    const real = inst.getInstruments;
    let wrapped;
    inst.getInstruments = () => (wrapped ??= { ...real(), [oneMetric]: { add() {}, record() {} } });
    notes.push(`metric instrument ${oneMetric} replaced by a no-op`);
  }
  if (off.has("attemptspan")) {
    const { CallRecorder } = require(join(dist, "telemetry/call-recorder.js"));
    const { trace, INVALID_SPAN_CONTEXT } = require("@opentelemetry/api");
    const span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
    CallRecorder.prototype.startAttempt = function (model) {
      const number = ++this.attemptCount;
      this.current = { number, model, span, ctx: this.ctx, ended: false };
      return this.current;
    };
    notes.push("no attempt span");
  }
  if (off.has("within")) {
    const { CallRecorder } = require(join(dist, "telemetry/call-recorder.js"));
    CallRecorder.prototype.within = (_attempt, fn, arg) => fn(arg);
    notes.push("attempt sent without context.with()");
  }
  if (off.has("spans")) {
    const { SCOPE } = require(join(dist, "version.js"));
    const { BasicTracerProvider, AlwaysOffSampler } = require("@opentelemetry/sdk-trace-base");
    const offTp = new BasicTracerProvider({ sampler: new AlwaysOffSampler() });
    const getTracer = otel.tp.getTracer.bind(otel.tp);
    otel.tp.getTracer = (name, ...rest) => (name === SCOPE ? offTp.getTracer(name, ...rest) : getTracer(name, ...rest));
    notes.push("our spans not sampled (AlwaysOffSampler for our tracer scope)");
  }
}

/** Consumes a streamed call; returns the number of chunks seen. */
export async function drain(stream) {
  let n = 0;
  for await (const _ of stream) n++;
  return n;
}

// ------------------------------------------------------------------ statistics

export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function median(xs) {
  return quantile([...xs].sort((a, b) => a - b), 0.5);
}

export function writeResult(obj) {
  const out = process.env.BENCH_OUT;
  if (out) writeFileSync(out, JSON.stringify(obj));
  else console.error(JSON.stringify(obj, null, 2));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
