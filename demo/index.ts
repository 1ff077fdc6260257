/**
 * llm-resilience demo: `npm run demo`.
 *
 * Starts the fake LLM provider (a real HTTP server speaking the OpenAI and Anthropic wire formats)
 * in this process and drives 8 concurrent workers through the real `openai` and `@anthropic-ai/sdk`
 * clients with llm-resilience registered, through four phases:
 *   healthy traffic → a 429 storm with retry-after → gpt-4o down (503s and connection resets: its
 *   breaker opens, calls fall back to gpt-4o-mini) → recovery (half-open probe, breaker closes).
 * It then prints a summary per provider and model computed from the library's spans and metrics,
 * and the span tree of a retried call (or, with OTEL_EXPORTER_OTLP_ENDPOINT set, sends everything
 * over OTLP: with `docker compose up -d` the traces appear in Jaeger).
 *
 * Options (flags or environment):
 *   DEMO_SPEED=fast | --fast   every phase ×0.25 (about 8 s in all); DEMO_SPEED=<factor> for any other
 *   DEMO_WORKERS=<n>           concurrent workers (default 8)
 *   DEMO_LOG_FILE=<path>       where the library's pino log lines go (default: a file in the temp dir)
 *   --real                     the same traffic shape against the real APIs (needs OPENAI_API_KEY
 *                              and/or ANTHROPIC_API_KEY; no faults are injected; makes ~40 small calls)
 *   --stack                    through the viewing stack without Docker (scripts/stack.sh up: collector,
 *                              Jaeger, Prometheus; build it first with scripts/stack.sh build)
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import pino from "pino";
import { register } from "llm-resilience";
import { startFakeProvider, type FakeProvider } from "../test/fake-provider/index.ts";
import {
  breakerLine,
  diff,
  fallbackLines,
  fmtDuration,
  pickFallback,
  pickRetried,
  spanTree,
  SUMMARY_LEGEND,
  summaryTable,
  totals,
  transitionLines,
  type Totals,
} from "./report.ts";
import { buildStory, FALLBACKS, MODELS, prng, Scripter, type ModelSpec, type Phase } from "./story.ts";
import { printFromJaeger, type Stack, stackUp } from "./stack.ts";
import { startTelemetry } from "./telemetry.ts";

const argv = process.argv.slice(2);
const REAL = argv.includes("--real");
// Before the telemetry starts: --stack points OTEL_EXPORTER_OTLP_ENDPOINT at the stack's collector.
const STACK: Stack | undefined = argv.includes("--stack") ? stackUp() : undefined;
const speedArg = argv.includes("--fast") ? "fast" : (process.env.DEMO_SPEED ?? "").trim().toLowerCase();
const SCALE = speedArg === "fast" ? 0.25 : speedArg === "" || speedArg === "normal" ? 1 : Number(speedArg);
if (!(SCALE > 0 && SCALE <= 10)) {
  console.error(`DEMO_SPEED must be "fast", "normal" or a factor in (0, 10], got ${JSON.stringify(process.env.DEMO_SPEED)}`);
  process.exit(2);
}
const WORKERS = Number(process.env.DEMO_WORKERS ?? 8);
if (!Number.isInteger(WORKERS) || WORKERS < 1 || WORKERS > 64) {
  console.error(`DEMO_WORKERS must be an integer in 1..64, got ${JSON.stringify(process.env.DEMO_WORKERS)}`);
  process.exit(2);
}
const LOG_FILE = process.env.DEMO_LOG_FILE || join(tmpdir(), `llm-resilience-demo-${process.pid}.log`);
const TTY = process.stdout.isTTY === true;

// 1. OpenTelemetry first (the application's own SDK), then the library: register() finds the
//    providers registered and adds its spans and metrics to them instead of starting its own SDK.
const tel = startTelemetry();
const story = buildStory(SCALE);
// debug: the per-call summary lines ("llm call") are debug; decisions (retry, fallback, breaker) are warn.
const logger = pino({ level: "debug" }, pino.destination({ dest: LOG_FILE, sync: true, append: false }));
register({
  logger,
  fallbacks: FALLBACKS,
  maxAttempts: 3,
  baseDelayMs: Math.max(1, Math.round(100 * SCALE)),
  maxDelayMs: Math.max(1, Math.round(1_000 * SCALE)),
  maxRetryAfterMs: 5_000,
  breaker: { failures: 5, cooldownMs: story.cooldownMs, halfOpenProbes: 1 },
});

const t0 = performance.timeOrigin + performance.now();
const elapsed = () => ((performance.timeOrigin + performance.now() - t0) / 1000).toFixed(1).padStart(5) + "s";

// ------------------------------------------------------------------------------ traffic

/** What the callers themselves saw (the telemetry is checked against it at the end). */
const seen = { ok: 0, failed: 0, errors: new Map<string, number>() };

interface Clients {
  openai?: OpenAI;
  anthropic?: Anthropic;
}

const PROMPTS = ["Summarise this ticket in one line.", "Translate 'good morning' to French.", "Name a prime above 100.", "Suggest a title for a blog post about retries."];

async function callOnce(clients: Clients, spec: ModelSpec, stream: boolean, prompt: string, maxTokens: number): Promise<void> {
  if (spec.provider === "openai") {
    const client = clients.openai!;
    const messages = [{ role: "user" as const, content: prompt }];
    if (stream) {
      const s = await client.chat.completions.create({ model: spec.model, messages, max_tokens: maxTokens, stream: true, stream_options: { include_usage: true } });
      for await (const _chunk of s) {
        // consume
      }
    } else {
      await client.chat.completions.create({ model: spec.model, messages, max_tokens: maxTokens });
    }
  } else {
    const client = clients.anthropic!;
    const messages = [{ role: "user" as const, content: prompt }];
    if (stream) {
      const s = await client.messages.create({ model: spec.model, max_tokens: maxTokens, messages, stream: true });
      for await (const _event of s) {
        // consume
      }
    } else {
      await client.messages.create({ model: spec.model, max_tokens: maxTokens, messages });
    }
  }
}

interface TrafficShape {
  models: ModelSpec[];
  /** Probability of asking for a primary model (the rest ask for the cheaper one directly). */
  primaryShare: number;
  streamShare: number;
  thinkMs: [number, number];
  maxTokens: number;
}

async function worker(id: number, clients: Clients, shape: TrafficShape, running: () => boolean, budget?: { left: number }): Promise<void> {
  const rand = prng(1_000 + id);
  const primaries = shape.models.filter((m) => FALLBACKS[m.model]);
  const cheap = shape.models.filter((m) => !FALLBACKS[m.model]);
  while (running() && (!budget || budget.left-- > 0)) {
    const pool = rand() < shape.primaryShare || cheap.length === 0 ? primaries : cheap;
    const spec = pool[Math.floor(rand() * pool.length)]!;
    try {
      await callOnce(clients, spec, rand() < shape.streamShare, PROMPTS[Math.floor(rand() * PROMPTS.length)]!, shape.maxTokens);
      seen.ok++;
    } catch (err: any) {
      seen.failed++;
      const name = String(err?.constructor?.name ?? err?.name ?? "Error");
      seen.errors.set(name, (seen.errors.get(name) ?? 0) + 1);
    }
    const [lo, hi] = shape.thinkMs;
    await new Promise((r) => setTimeout(r, lo + rand() * (hi - lo)));
  }
}

// ------------------------------------------------------------------------------ progress

async function snapshot(): Promise<Totals> {
  return totals(await tel.reader.points());
}

function phaseLine(i: number, n: number, p: Phase): string {
  return `[${elapsed()}] ▶ phase ${i}/${n} ${p.title} (${fmtDuration(p.durationMs)}): ${p.what}`;
}

function statsLine(t: Totals): string {
  return `calls ${t.calls} (ok ${t.ok}), attempts ${t.attempts}, retries ${t.retries}, fallbacks ${t.fallbacks}, rejected ${t.rejections}, breaker transitions ${t.transitions}`;
}

/** A live line on a terminal (rewritten in place); nothing extra when stdout is a pipe or file. */
function startLive(phaseName: () => string): () => void {
  if (!TTY) return () => {};
  let busy = false;
  let stopped = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const points = await tel.reader.points();
      const t = totals(points);
      if (!stopped) process.stdout.write(`\r\x1b[2K[${elapsed()}]   ${phaseName()}: calls ${t.calls} ok ${t.ok} retries ${t.retries} fallbacks ${t.fallbacks} · ${breakerLine(points)}`);
    } finally {
      busy = false;
    }
  }, 250);
  return () => {
    stopped = true;
    clearInterval(timer);
    process.stdout.write("\r\x1b[2K");
  };
}

// ------------------------------------------------------------------------------ runs

async function runFake(): Promise<void> {
  const fake: FakeProvider = await startFakeProvider();
  const clients: Clients = {
    openai: new OpenAI({ apiKey: "sk-demo-no-key-needed", baseURL: fake.openaiBaseURL }),
    anthropic: new Anthropic({ apiKey: "sk-ant-demo-no-key-needed", baseURL: fake.anthropicBaseURL }),
  };
  const scripter = new Scripter(fake);
  const total = story.phases.reduce((s, p) => s + p.durationMs, 0);
  console.log(`llm-resilience demo: fake provider on ${fake.url}, ${WORKERS} workers, 4 phases, about ${fmtDuration(total)} (speed ×${SCALE})`);
  console.log(`  models: gpt-4o → gpt-4o-mini, claude-sonnet-4-6 → claude-haiku-4-5 (fallbacks); breaker: 5 failures, cooldown ${story.cooldownMs} ms`);

  let running = true;
  let current = story.phases[0]!;
  const stopLive = startLive(() => current.title);
  const shape: TrafficShape = { models: MODELS, primaryShare: 0.75, streamShare: 0.2, thinkMs: [40, 160], maxTokens: 64 };
  const workers = Array.from({ length: WORKERS }, (_, i) => worker(i, clients, shape, () => running));

  for (const [i, phase] of story.phases.entries()) {
    current = phase;
    const before = await snapshot();
    if (TTY) process.stdout.write("\r\x1b[2K");
    console.log(phaseLine(i + 1, story.phases.length, phase));
    scripter.start(phase);
    await new Promise((r) => setTimeout(r, phase.durationMs));
    const points = await tel.reader.points();
    if (TTY) process.stdout.write("\r\x1b[2K");
    console.log(`[${elapsed()}]   done: ${statsLine(diff(totals(points), before))}; ${breakerLine(points)}`);
  }
  running = false;
  await Promise.all(workers);
  stopLive();
  scripter.stop();
  await fake.close();
}

async function runReal(): Promise<void> {
  const clients: Clients = {};
  if (process.env.OPENAI_API_KEY) clients.openai = new OpenAI();
  if (process.env.ANTHROPIC_API_KEY) clients.anthropic = new Anthropic();
  if (!clients.openai && !clients.anthropic) {
    console.error("--real needs OPENAI_API_KEY and/or ANTHROPIC_API_KEY");
    process.exit(2);
  }
  const models = MODELS.filter((m) => (m.provider === "openai" ? clients.openai : clients.anthropic));
  const calls = 40;
  console.log(`llm-resilience demo against the real APIs (${models.map((m) => m.model).join(", ")}): ${calls} short calls, 4 workers, no injected faults`);
  const budget = { left: calls };
  const shape: TrafficShape = { models, primaryShare: 0.5, streamShare: 0.25, thinkMs: [100, 300], maxTokens: 16 };
  const stopLive = startLive(() => "real traffic");
  await Promise.all(Array.from({ length: 4 }, (_, i) => worker(i, clients, shape, () => true, budget)));
  stopLive();
}

async function main(): Promise<void> {
  if (REAL) await runReal();
  else await runFake();

  // Summary, from the telemetry only.
  const points = await tel.reader.points();
  const all = totals(points);
  console.log("");
  console.log(`Summary (${elapsed().trim()}, from llm-resilience's spans and metrics)`);
  console.log(summaryTable(points, tel.collector));
  console.log(SUMMARY_LEGEND);
  const transitions = transitionLines(tel.collector, t0, points);
  if (transitions.length) {
    console.log("");
    console.log("Breaker transitions (llm_resilience.breaker.transition events, in order):");
    for (const l of transitions) console.log(l);
  }
  const fallbacks = fallbackLines(points);
  if (fallbacks.length) {
    console.log("Fallbacks (llm_resilience.fallbacks by reason):");
    for (const l of fallbacks) console.log(l);
  }
  console.log(`Totals: ${statsLine(all)}`);
  const errs = [...seen.errors].map(([k, v]) => `${k} ${v}`).join(", ");
  console.log(`The callers saw ${seen.ok} answers and ${seen.failed} errors${errs ? ` (${errs})` : ""}.`);
  if (all.calls !== seen.ok + seen.failed || all.ok !== seen.ok) {
    console.log(`WARNING: telemetry counted ${all.calls} calls / ${all.ok} ok, the callers ${seen.ok + seen.failed} / ${seen.ok}.`);
  }
  console.log(`Logs: one pino line per call (plus retries, fallbacks, breaker transitions) in ${LOG_FILE}`);

  const retried = pickRetried(tel.collector);
  const fellBack = pickFallback(tel.collector);
  console.log("");
  if (tel.otlpEndpoint) {
    console.log(`Traces and metrics: exported over OTLP to ${tel.otlpEndpoint} (service ${process.env.OTEL_SERVICE_NAME ?? "llm-resilience-demo"}).`);
    if (!STACK) {
      console.log("  With `docker compose up -d`: Jaeger http://localhost:16686 (traces arrive ~1 min late: tail sampling),");
      console.log("  Prometheus http://localhost:9090, Grafana http://localhost:3000 (dashboard \"LLM resilience\").");
    }
    if (retried) console.log(`  A retried call:  trace ${retried.spanContext().traceId} (${retried.name})`);
    if (fellBack) console.log(`  A fallback call: trace ${fellBack.spanContext().traceId} (${fellBack.name})`);
  } else {
    console.log("Traces: kept in this process (set OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 to send them to the compose stack).");
    const shown = retried ?? tel.collector.logical()[0];
    if (shown) {
      console.log("");
      console.log(retried ? "Span tree of a retried call:" : "Span tree of a call (none was retried):");
      console.log(spanTree(shown, tel.collector));
    }
    if (fellBack) {
      console.log("");
      console.log("Span tree of a call that fell back:");
      console.log(spanTree(fellBack, tel.collector));
    }
  }
  await tel.shutdown();
  if (STACK) {
    console.log("");
    console.log(`Viewing stack (scripts/stack.sh; \`scripts/stack.sh down\` stops it):`);
    console.log(`  Jaeger      ${STACK.jaeger}  service ${process.env.OTEL_SERVICE_NAME}; HTTP API /api/traces?service=${process.env.OTEL_SERVICE_NAME}&tags={"error":"true"}`);
    console.log(`  Prometheus  ${STACK.prometheus}  alerts at /alerts, e.g. query sum by (error_type) (gen_ai_client_operation_duration_count)`);
    console.log("Waiting for the collector's tail-sampling decision, then reading the calls back from Jaeger...");
    if (retried) await printFromJaeger(STACK, retried.spanContext().traceId, "A retried call");
    if (fellBack) await printFromJaeger(STACK, fellBack.spanContext().traceId, "A call that fell back");
  }
  if (all.calls === 0 || all.ok === 0) {
    console.error("demo failed: no successful call was recorded");
    process.exitCode = 1;
  }
}

main().catch((err) => {
  console.error("demo failed:", err);
  process.exit(1);
});
