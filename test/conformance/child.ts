/**
 * One run of the conformance scenarios (./scenarios.ts) against one SDK version, in its own process:
 *   CONFORMANCE_SIDE=sdk   plain SDK clients, llm-resilience never loaded (asserted)
 *   CONFORMANCE_SIDE=ours  the library registered first (defaults; telemetry into an in-memory
 *                          exporter), then the SDK required by its real name, as an application does
 *   CONFORMANCE_SDK=openai|anthropic, CONFORMANCE_DIR=<folder the SDK resolves from> (the repo root for
 *   the installed dev dependency, test/compat/v/<alias>/ for a matrix version)
 * Prints one line `CONFORMANCE_RESULT {json}`. Run by test/conformance.test.ts with --expose-gc.
 */

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { modelFor, type Outcome, type RunCtx, type SdkName, type SideResult, scenariosFor, versionInfo } from "./scenarios.ts";
import { startServer } from "./server.ts";

const side = process.env.CONFORMANCE_SIDE as "sdk" | "ours";
const sdkName = process.env.CONFORMANCE_SDK as SdkName;
const dir = process.env.CONFORMANCE_DIR!;
const only = process.env.CONFORMANCE_ONLY ? new RegExp(process.env.CONFORMANCE_ONLY) : undefined;
const REPO = resolve(__dirname, "..", "..");

interface SpanTally {
  /** Logical span id -> the scenario running when it started. */
  started: Map<string, string>;
  /** Logical span id -> its duration in ms and its llm_resilience.attempts. */
  ended: Map<string, { ms: number; attempts: unknown }>;
  current: string;
}

async function main(): Promise<void> {
  let tally: SpanTally | undefined;
  if (side === "ours") {
    tally = installTelemetry();
    const { register } = require("../../src/index.ts");
    register({ startSdk: false, logLevel: "silent" });
  }
  const pkg = sdkName === "openai" ? "openai" : "@anthropic-ai/sdk";
  const req = createRequire(join(dir, "app.js"));
  const mod = req(pkg);
  const version = JSON.parse(readFileSync(packageJsonOf(req.resolve(pkg), pkg), "utf8")).version as string;
  const Client = mod[sdkName === "openai" ? "OpenAI" : "Anthropic"] ?? mod.default ?? mod;
  const v = versionInfo(sdkName, version);

  const server = await startServer();
  const results: SideResult[] = [];
  const spans: Record<string, { started: number; ended: number; longestMs: number; attempts: unknown[] }> = {};
  const all = scenariosFor(v);
  for (const s of all) {
    if (only && !only.test(s.name)) continue;
    const model = modelFor(sdkName, all.indexOf(s));
    const notes: Record<string, unknown> = {};
    const ctx: RunCtx = {
      v,
      model,
      client: (options = {}) =>
        new Client(
          sdkName === "openai"
            ? { apiKey: "sk-conformance", baseURL: `${server.url}/v1`, ...options }
            : { apiKey: "sk-ant-conformance", baseURL: server.url, ...options },
        ),
      create(client, request, body = {}) {
        return sdkName === "openai"
          ? client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], ...body }, request)
          : client.messages.create({ model, max_tokens: 16, messages: [{ role: "user", content: "hi" }], ...body }, request);
      },
      async readStream(stream) {
        let text = "";
        const events: string[] = [];
        for await (const e of stream) {
          events.push(e.type ?? e.object);
          text += e.choices?.[0]?.delta?.content ?? e.delta?.text ?? "";
        }
        return { text, events };
      },
      note: (k, value) => (notes[k] = value),
      now: () => server.now(),
    };
    if (tally) tally.current = s.name;
    if (process.env.CONFORMANCE_TRACE) process.stderr.write(`scenario: ${s.name}\n`);
    server.begin(s.script);
    let outcome: Outcome;
    try {
      outcome = { value: normalise(await s.run(ctx)) };
    } catch (e) {
      outcome = { error: errorOf(e, server.url) };
    }
    const endMs = Math.round(server.now());
    // A request the client gave up on may still be arriving: let the loopback settle.
    await new Promise((r) => setTimeout(r, 30));
    results.push({ scenario: s.name, outcome, requests: [...server.requests], endMs, notes });
    spans[s.name] = { started: 0, ended: 0, longestMs: 0, attempts: [] };
  }
  await server.close();

  let loaded: string[] = [];
  if (tally) {
    // Responses and streams the scenarios dropped end their calls when collected.
    for (let i = 0; i < 10 && tally.ended.size < tally.started.size; i++) {
      (globalThis as any).gc?.();
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const [id, scenario] of tally.started) {
      const counts = spans[scenario]!;
      counts.started++;
      const end = tally.ended.get(id);
      if (end === undefined) continue;
      counts.ended++;
      counts.longestMs = Math.max(counts.longestMs, end.ms);
      counts.attempts.push(end.attempts);
    }
  } else {
    loaded = Object.keys(require.cache).filter((f) => f.startsWith(join(REPO, "src")) || f.startsWith(join(REPO, "dist")));
  }
  process.stdout.write(`CONFORMANCE_RESULT ${JSON.stringify({ version, results, spans, loaded })}\n`);
}

/** Logical spans (kind CLIENT) started and ended, by the scenario that was running. */
function installTelemetry(): SpanTally {
  const api = require("@opentelemetry/api");
  const { AsyncLocalStorageContextManager } = require("@opentelemetry/context-async-hooks");
  const { BasicTracerProvider } = require("@opentelemetry/sdk-trace-base");
  const tally: SpanTally = { started: new Map(), ended: new Map(), current: "" };
  const processor = {
    onStart(span: any) {
      if (span.kind === 2) tally.started.set(span.spanContext().spanId, tally.current);
    },
    onEnd(span: any) {
      if (span.kind !== 2) return;
      tally.ended.set(span.spanContext().spanId, {
        ms: span.duration[0] * 1e3 + span.duration[1] / 1e6,
        attempts: span.attributes["llm_resilience.attempts"],
      });
    },
    forceFlush: async () => {},
    shutdown: async () => {},
  };
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  api.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [processor] }));
  return tally;
}

function packageJsonOf(resolvedMain: string, pkg: string): string {
  const marker = join("node_modules", pkg);
  return join(resolvedMain.slice(0, resolvedMain.lastIndexOf(marker) + marker.length), "package.json");
}

/** JSON round trip: what the caller can observe of a value (own enumerable data). */
function normalise(value: unknown): unknown {
  return value === undefined ? null : JSON.parse(JSON.stringify(value));
}

function errorOf(e: any, serverUrl: string): NonNullable<Outcome["error"]> {
  const host = serverUrl.replace(/^http:\/\//, "");
  const message = String(e?.message ?? e)
    .split(host)
    .join("<server>")
    .split(serverUrl)
    .join("<server>");
  const out: NonNullable<Outcome["error"]> = { class: e?.constructor?.name ?? typeof e, message };
  if (typeof e?.status === "number") out.status = e.status;
  if (e?.cause !== undefined) out.cause = e.cause?.constructor?.name ?? typeof e.cause;
  const type = e?.error?.error?.type ?? e?.error?.type ?? e?.type;
  if (typeof type === "string") out.type = type;
  return out;
}

main().catch((err) => {
  process.stderr.write(`conformance child failed: ${err?.stack ?? err}\n`);
  process.exit(1);
});
