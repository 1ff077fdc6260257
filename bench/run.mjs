#!/usr/bin/env node
// Benchmark entry (`npm run bench` builds first): runs every part, one configuration per child process,
// prints one table per part and writes them as markdown to bench/results/latest.md (raw numbers in
// bench/results/latest.json).
//
//   node bench/run.mjs [--part overhead|profile|ablation|streaming|faults|scale|peers|all] [--rounds N] [--quick]
//                      [--seq-calls N | --full] [--out FILE]
//                      [--nodes 20,22,24] [--modes canned,loopback] [--loopback-chunks N]   (part "peers")
//
// --quick: fewer rounds and shorter measurements (a smoke run, numbers are rough).
// --full : part 4 runs the full 1,000,000 sequential calls (default 100,000, to keep `npm run bench`
//          under ~10 minutes on a 2-core machine; the heap is sampled every n/10 calls either way).
import { spawn, execFileSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { nodeBinary, startLoopbackProvider } from "./lib/loopback.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");
const RESULTS = join(HERE, "results");
mkdirSync(RESULTS, { recursive: true });

// ------------------------------------------------------------------ arguments

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
};
const PARTS = ["overhead", "profile", "ablation", "streaming", "faults", "scale", "peers"];
const partArg = opt("--part", "all");
const requested = partArg === "all" ? PARTS : partArg.split(",");
for (const p of requested) if (!PARTS.includes(p)) throw new Error(`--part: unknown part "${p}" (one of ${PARTS.join(", ")}, all)`);
const parts = PARTS.filter((p) => requested.includes(p)); // always in report order
const QUICK = flag("--quick");
const ROUNDS = Number(opt("--rounds", QUICK ? 2 : 4));
const SEQ_CALLS = Number(opt("--seq-calls", flag("--full") ? 1_000_000 : QUICK ? 20_000 : 100_000));
const OUT = opt("--out", join(RESULTS, "latest.md"));

// ------------------------------------------------------------------ child processes

const PAYLOADS = join(RESULTS, "payloads.tmp");
let jobSeq = 0;

/**
 * Runs one child (stdout to /dev/null, so pino lines cost a real write), returns its JSON result.
 * `node` = the Node binary (default: the one running this script), `env` = extra environment.
 */
function runChild(nodeArgs, { timeoutMs = 180_000, label, node = process.execPath, env = {} } = {}) {
  const out = join(RESULTS, `job-${process.pid}-${jobSeq++}.tmp`);
  const devnull = openSync("/dev/null", "w");
  return new Promise((resolve, reject) => {
    const child = spawn(node, nodeArgs, {
      cwd: ROOT,
      stdio: ["ignore", devnull, "pipe"],
      env: { ...process.env, BENCH_OUT: out, BENCH_PAYLOADS: PAYLOADS, OTEL_SDK_DISABLED: undefined, LLM_RESILIENCE_DISABLED: undefined, ...env },
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-8000)));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      closeSync(devnull);
      if (code === 0 && existsSync(out)) {
        const r = JSON.parse(readFileSync(out, "utf8"));
        rmSync(out, { force: true });
        resolve(r);
      } else {
        rmSync(out, { force: true });
        reject(new Error(`${label ?? nodeArgs.join(" ")} failed (code ${code}, signal ${signal}):\n${stderr}`));
      }
    });
  });
}

const log = (...a) => console.error(...a);
const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(0)}s`;

// ------------------------------------------------------------------ formatting

const f = (x, d = 1) => (x === undefined || x === null || Number.isNaN(x) ? "–" : Number(x).toFixed(d));
const pct = (x, d = 0) => (Number.isFinite(x) ? `${(x * 100).toFixed(d)}%` : "–");
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = (s.length - 1) / 2;
  return (s[Math.floor(m)] + s[Math.ceil(m)]) / 2;
};
function table(headers, rows, align) {
  const a = align ?? headers.map((_, i) => (i === 0 ? "l" : "r"));
  const sep = a.map((x) => (x === "l" ? ":--" : "--:"));
  return [headers, sep, ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

const sections = [];
const raw = {};

// ------------------------------------------------------------------ part 1: overhead

const CONFIGS = {
  openai: ["raw", "raw-ctx", "ours", "ours-debug", "otel-contrib", "traceloop"],
  anthropic: ["raw", "raw-ctx", "builtin-tracing", "ours", "ours-debug", "traceloop"],
};
const CONFIG_LABEL = {
  openai: {
    raw: "openai SDK alone",
    "raw-ctx": "SDK alone, each call in context.with() (reference: context propagation only)",
    ours: "+ llm-resilience",
    "ours-debug": "+ llm-resilience, logLevel debug (a summary line per call)",
    "otel-contrib": "+ @opentelemetry/instrumentation-openai (forced onto v7)",
    traceloop: "+ @traceloop/instrumentation-openai (manuallyInstrument)",
  },
  anthropic: {
    raw: "anthropic SDK alone (built-in tracing off)",
    "raw-ctx": "SDK alone, each call in context.with() (reference: context propagation only)",
    "builtin-tracing": "anthropic SDK, built-in tracing on",
    ours: "+ llm-resilience",
    "ours-debug": "+ llm-resilience, logLevel debug (a summary line per call)",
    traceloop: "+ @traceloop/instrumentation-anthropic (Messages patched by hand)",
  },
};
const PEERS = ["otel-contrib", "traceloop", "builtin-tracing"];

async function partOverhead() {
  const measureMs = QUICK ? 300 : 400;
  const jobs = [];
  for (const provider of Object.keys(CONFIGS))
    for (const workload of ["chat", "stream"]) for (const config of CONFIGS[provider]) jobs.push({ provider, workload, config });
  const results = new Map(jobs.map((j) => [key(j), []]));
  function key(j) {
    return `${j.provider}/${j.workload}/${j.config}`;
  }
  for (let r = 0; r < ROUNDS; r++) {
    // Interleaved: every configuration once per round, the order rotated from round to round.
    const order = jobs.map((_, i) => jobs[(i + r * 7) % jobs.length]);
    for (const j of order) {
      const res = await runChild(["bench/overhead/child.mjs", j.provider, j.config, j.workload, String(measureMs)], { label: key(j) });
      results.get(key(j)).push(res);
    }
    log(`[overhead] round ${r + 1}/${ROUNDS} done (${elapsed()}, load ${loadavg()[0].toFixed(1)})`);
  }
  raw.overhead = Object.fromEntries(results);

  const out = [];
  const summary = [];
  for (const provider of Object.keys(CONFIGS))
    for (const workload of ["chat", "stream"]) {
      const stat = (config) => {
        const rs = results.get(key({ provider, workload, config }));
        const meds = rs.map((x) => x.usPerCall);
        return {
          med: median(meds),
          min: Math.min(...meds),
          max: Math.max(...meds),
          best: Math.min(...rs.map((x) => x.bestUsPerCall)),
          spans: median(rs.map((x) => x.spansPerCall)),
        };
      };
      const base = stat("raw");
      const ours = stat("ours");
      const rows = CONFIGS[provider].map((config) => {
        const s = config === "raw" ? base : config === "ours" ? ours : stat(config);
        const added = s.med - base.med;
        const addedBest = s.best - base.best;
        const isRef = config === "raw" || config === "ours" || config === "raw-ctx" || config === "ours-debug";
        return [
          CONFIG_LABEL[provider][config],
          `${f(s.med)} (${f(s.min)}–${f(s.max)})`,
          config === "raw" ? "–" : `${f(added)} (${pct(added / base.med)})`,
          isRef ? "–" : `${f(added / (ours.med - base.med), 2)}×`,
          f(s.best),
          config === "raw" ? "–" : `${f(addedBest)} (${pct(addedBest / base.best)})`,
          isRef ? "–" : `${f(addedBest / (ours.best - base.best), 2)}×`,
          f(s.spans, 2),
        ];
      });
      out.push(
        `#### ${provider}, ${workload === "chat" ? "non-streaming chat" : "streamed chat, 200 chunks"}\n\n` +
          table(
            ["configuration", "µs/call: median (min–max of round medians)", "added µs (% of raw)", "peer added ÷ ours added", "µs/call: fastest batch", "added µs, fastest (% of raw)", "peer ÷ ours, fastest", "spans/call"],
            rows,
          ),
      );
      const debugLog = stat("ours-debug");
      const ctx = stat("raw-ctx");
      const peers = CONFIGS[provider]
        .filter((c) => PEERS.includes(c))
        .map((c) => ({ c, added: stat(c).med - base.med, addedBest: stat(c).best - base.best }));
      summary.push({
        provider,
        workload,
        raw: base.med,
        rawBest: base.best,
        oursAdded: ours.med - base.med,
        oursAddedBest: ours.best - base.best,
        logCost: debugLog.med - ours.med,
        logCostBest: debugLog.best - ours.best,
        oursOverCtx: ours.med - ctx.med,
        oursOverCtxBest: ours.best - ctx.best,
        ctx: ctx.med,
        ctxBest: ctx.best,
        ctxFloor: ctx.med - base.med,
        ctxFloorBest: ctx.best - base.best,
        peers,
      });
    }
  raw.overheadSummary = summary;
  const ok = (b) => (b ? "✅" : "❌");
  const targetRows = summary.map((s) => [
    `${s.provider} ${s.workload}`,
    `${f(s.oursAdded)} µs = ${pct(s.oursAdded / s.raw)} ${ok(s.oursAdded <= 0.15 * s.raw)} · fastest: ${f(s.oursAddedBest)} µs = ${pct(s.oursAddedBest / s.rawBest)} ${ok(s.oursAddedBest <= 0.15 * s.rawBest)}`,
    s.peers
      .map((p) => `${p.c}: ours = ${pct(s.oursAdded / p.added)} of its ${f(p.added)} µs ${ok(s.oursAdded <= p.added / 4)} · fastest ${pct(s.oursAddedBest / p.addedBest)} ${ok(s.oursAddedBest <= p.addedBest / 4)}`)
      .join("<br>"),
    `${f(s.logCost)} · ${f(s.logCostBest)}`,
    `${f(s.ctxFloor)} · ${f(s.ctxFloorBest)}`,
    `${f(s.oursOverCtx)} µs = ${pct(s.oursOverCtx / s.ctx)} · fastest ${f(s.oursOverCtxBest)} µs = ${pct(s.oursOverCtxBest / s.ctxBest)}`,
  ]);
  sections.push({
    title: "1. Overhead per call (in-process, canned fetch)",
    body:
      `${ROUNDS} rounds × every configuration, each run in its own process, interleaved (the order rotates each round); per process: warm-up (2,500 calls, 150 for streams, the same for every configuration), then 16 batches of sequential awaited calls (~0.4 s in all). "median" = median over rounds of each process's median batch, with the min–max of those round medians; "fastest batch" = the fastest batch seen in any round, the number least disturbed by other work on the machine. "added" = configuration − raw SDK (same provider, same workload); "peer added ÷ ours added" > 1 means the peer adds more than we do. Every configuration has the same OpenTelemetry SDK registered (NodeTracerProvider + BatchSpanProcessor, MeterProvider + PeriodicExportingMetricReader 1 s, dropping exporters); stdout is /dev/null, so our pino logger really writes what it logs (at the default level, info, a successful call logs nothing: decisions are logged as they happen; "logLevel debug" adds the per-call summary line). Spans/call counts what reached the exporter. Before timing, each process runs one metrics export, the state any process exporting telemetry reaches after its first interval (the exporters run inside context.with(), which turns AsyncLocalStorage's promise hooks on; "raw" records no metrics, so its hooks stay off).\n\n` +
      out.join("\n\n") +
      "\n\n#### Targets: ours added ≤ 15% of the raw call, and ≤ 1/4 of each peer's added cost (median · fastest)\n\n" +
      table(
        ["workload", "ours added (target ≤ 15% of raw)", "vs peers (target ≤ 25% of theirs)", "debug summary line µs (ours-debug − ours)", "context.with floor µs (raw-ctx − raw)", "ours beyond the floor (ours − raw-ctx)"],
        targetRows,
        ["l", "l", "l", "r", "r", "l"],
      ),
  });
}

// ------------------------------------------------------------------ part 1c: ablation

async function partAblation() {
  const rounds = QUICK ? 1 : 2;
  const variants = ["raw", "raw-ctx", "ours", "ours-debug", "ours-nobody", "ours-nometrics", "ours-nospans", "ours-nopolicies", "ours-bare"];
  const label = {
    raw: "openai SDK alone",
    "raw-ctx": "SDK alone in context.with() (context propagation only)",
    ours: "+ llm-resilience (everything on)",
    "ours-debug": "… with logLevel debug (a summary line per call written)",
    "ours-nobody": "… without the response-body watchers",
    "ours-nometrics": "… without metric records (no-op instruments)",
    "ours-nospans": "… with our spans not sampled (AlwaysOffSampler for our scope)",
    "ours-nopolicies": "… without breaker and retry budget",
    "ours-bare": "… with all five off (the patching, the attempt loop and context.with remain)",
  };
  const results = new Map(variants.map((v) => [v, []]));
  for (let r = 0; r < rounds; r++) {
    const order = variants.map((_, i) => variants[(i + r * 4) % variants.length]);
    for (const v of order) results.get(v).push(await runChild(["bench/overhead/child.mjs", "openai", v, "chat", QUICK ? "300" : "500"], { label: `ablation ${v}` }));
    log(`[ablation] round ${r + 1}/${rounds} done (${elapsed()}, load ${loadavg()[0].toFixed(1)})`);
  }
  raw.ablation = Object.fromEntries(results);
  const st = (v) => ({ med: median(results.get(v).map((x) => x.usPerCall)), best: Math.min(...results.get(v).map((x) => x.bestUsPerCall)) });
  const ours = st("ours");
  const base = st("raw");
  const rows = variants.map((v) => {
    const s = st(v);
    return [
      label[v],
      f(s.med),
      f(s.best),
      v === "raw" ? "–" : `${f(s.best - base.best)}`,
      v.startsWith("ours-") ? `${f(ours.best - s.best)} (${pct((ours.best - s.best) / (ours.best - base.best))} of our added)` : "–",
    ];
  });
  sections.push({
    title: "1c. What each piece of llm-resilience costs (openai non-streaming chat, ablation)",
    body:
      `Each variant switches one piece off inside the benchmark process (the built modules are patched in memory; src/ untouched), ${rounds} interleaved rounds, one process per variant and round. Savings are computed on the fastest batches (least noise); with noise of tens of µs, read them as ±30 µs.\n\n` +
      table(["variant", "µs/call median", "µs/call fastest", "added vs raw (fastest)", "saving vs everything on (fastest)"], rows),
  });
}

// ------------------------------------------------------------------ part 1b: where our added time goes

async function partProfile() {
  const { breakdown } = await import("./lib/cpuprofile-top.mjs");
  const cases = [
    { provider: "openai", workload: "chat", calls: QUICK ? 1500 : 5000 },
    { provider: "openai", workload: "stream", calls: QUICK ? 100 : 400 },
    { provider: "anthropic", workload: "stream", calls: QUICK ? 100 : 400 },
  ];
  const configs = ["raw", "raw-ctx", "ours"];
  const out = [];
  raw.profile = {};
  for (const c of cases) {
    const prof = {};
    for (const config of configs) {
      const file = join(RESULTS, `profile-${c.provider}-${c.workload}-${config}.cpuprofile.tmp`);
      const r = await runChild(["bench/overhead/profile-child.mjs", c.provider, config, c.workload, String(c.calls), file], { label: `profile ${config}` });
      prof[config] = { ...breakdown(file, c.calls), usPerCall: r.usPerCall };
      rmSync(file, { force: true });
    }
    const sum = (m) => [...m.values()].reduce((a, b) => a + b, 0);
    const groups = [...new Set(configs.flatMap((k) => [...prof[k].groups.keys()]))]
      .map((g) => [g, ...configs.map((k) => prof[k].groups.get(g) ?? 0)])
      .map(([g, a, b, o]) => ({ g, a, b, o, d: o - a }))
      .filter((x) => Math.abs(x.d) >= 0.5 || Math.abs(x.b - x.a) >= 0.5)
      .sort((x, y) => y.d - x.d);
    const rowsG = groups.map((x) => [x.g, f(x.a), f(x.b), f(x.o), f(x.d)]);
    rowsG.push(["**total sampled**", ...configs.map((k) => f(sum(prof[k].groups))), f(sum(prof.ours.groups) - sum(prof.raw.groups))]);
    const ours = [...prof.ours.frames].filter(([, v]) => v.group === "llm-resilience (dist)").sort((a, b) => b[1].us - a[1].us).slice(0, 12);
    const deps = [...prof.ours.frames]
      .filter(([k, v]) => /^(@opentelemetry|pino|sonic-boom|node: async_hooks)/.test(v.group) || /^writeString /.test(k))
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, 12);
    const per = c.workload === "stream" ? " (per 200-chunk call)" : "";
    out.push(
      `#### ${c.provider} ${c.workload}: self time in µs per call${per}, by package

` +
        table(["package", "raw SDK", "raw SDK in context.with (ALS on)", "+ llm-resilience", "ours − raw"], rowsG) +
        `

Top self-time frames in our code (µs per call): ${ours.map(([k, v]) => `\`${k}\` ${f(v.us, 2)}`).join(", ")}.

` +
        `Top frames of the libraries we call (µs per call): ${deps.map(([k, v]) => `\`${k}\` ${f(v.us, 2)}`).join(", ")}.`,
    );
    raw.profile[`${c.provider}/${c.workload}`] = { groups, usPerCall: Object.fromEntries(configs.map((k) => [k, prof[k].usPerCall])) };
    log(`[profile] ${c.provider} ${c.workload} done (${elapsed()})`);
  }
  sections.push({
    title: "1b. Where the added time goes (CPU profiles of the measured loop)",
    body:
      "V8 CPU profile (inspector, 100 µs sampling) of the measured loop only, after warm-up; self time summed per package and divided by the calls. \"raw SDK in context.with\" runs each raw call inside `context.with()` of a span context, as every OpenTelemetry instrumentation does: on Node 20 that switches on AsyncLocalStorage's async_hooks promise hooks for every promise in the process (the SDK's own included), a cost no instrumentation that propagates context can avoid there. Profiles inflate every number by the sampling overhead; compare rows, not absolute values with part 1.\n\n" +
      out.join("\n\n"),
  });
}

// ------------------------------------------------------------------ part 2: streaming

async function partStreaming() {
  const chunks = QUICK ? 20_000 : 100_000;
  const rounds = QUICK ? 1 : 2;
  const jobs = [];
  for (const provider of ["openai", "anthropic"]) for (const config of ["raw", "raw-ctx", "ours"]) jobs.push({ provider, config });
  const results = new Map(jobs.map((j) => [`${j.provider}/${j.config}`, []]));
  for (let r = 0; r < rounds; r++) {
    for (const j of r % 2 ? [...jobs].reverse() : jobs) {
      const res = await runChild(["--expose-gc", "bench/streaming/child.mjs", j.provider, j.config, String(chunks), QUICK ? "200" : "400"], {
        label: `streaming ${j.provider}/${j.config}`,
      });
      results.get(`${j.provider}/${j.config}`).push(res);
    }
    log(`[streaming] round ${r + 1}/${rounds} done (${elapsed()}, load ${loadavg()[0].toFixed(1)})`);
  }
  raw.streaming = Object.fromEntries(results);
  const rows = [];
  for (const provider of ["openai", "anthropic"]) {
    const get = (config) => {
      const rs = results.get(`${provider}/${config}`);
      const last = rs[rs.length - 1];
      return {
        chunk: median(rs.map((x) => x.usPerChunk)),
        chunkMin: Math.min(...rs.map((x) => x.usPerChunk)),
        chunkMax: Math.max(...rs.map((x) => x.usPerChunk)),
        ttfc: median(rs.map((x) => x.ttfcP50Us)),
        heap: last.heapMB,
        growth: Math.max(...rs.map((x) => x.heapMB[x.heapMB.length - 2] - x.heapMB[1])),
        spread: Math.max(...rs.map((x) => Math.max(...x.heapMB.slice(1, -1)) - Math.min(...x.heapMB.slice(1, -1)))),
        n: last.chunks,
      };
    };
    const r0 = get("raw");
    for (const config of ["raw", "raw-ctx", "ours"]) {
      const s = get(config);
      rows.push([
        `${provider} ${config === "raw" ? "SDK alone" : config === "raw-ctx" ? "SDK alone in context.with() (reference)" : "+ llm-resilience"}`,
        `${f(s.chunk, 2)} (${f(s.chunkMin, 2)}–${f(s.chunkMax, 2)})`,
        config === "raw" ? "–" : f(s.chunk - r0.chunk, 2),
        f(s.ttfc, 0),
        config === "raw" ? "–" : f(s.ttfc - r0.ttfc, 0),
        `${f(s.heap[0])} / ${f(s.heap[5])} / ${f(s.heap[s.heap.length - 2])} / ${f(s.heap[s.heap.length - 1])}`,
        `${f(s.growth, 2)} (band ${f(s.spread, 2)})`,
      ]);
    }
  }
  sections.push({
    title: `2. Streaming (${chunks.toLocaleString("en")}-chunk stream, in-process)`,
    body:
      `${rounds} rounds × {raw, raw in context.with(), ours} per provider, one process each. µs/chunk: a ${chunks.toLocaleString("en")}-chunk stream consumed with \`for await\` (the faster of 2 timed streams after a warm-up stream, median over rounds; the fetch generates SSE frames lazily, one per read). The reference row runs the raw SDK's stream inside \`context.with()\`: on Node 20 that alone makes every promise of the SDK's stream machinery pay AsyncLocalStorage's promise hooks. TTFC: \`create()\` called → first chunk in the consumer's hands, p50 over 200-chunk streams. Heap: \`heapUsed\` after a forced GC, before the stream / at 50% / at 100% of the chunks / after it ended — a flat line means nothing is buffered per chunk.\n\n` +
      table(["configuration", "µs/chunk median (min–max)", "added µs/chunk", "TTFC p50 µs", "added TTFC µs", "heap MB: start / 50% / 100% / after", "heap growth 10%→100% MB"], rows),
  });
}

// ------------------------------------------------------------------ part 3: faults

// Open-loop arrivals by default (`--faults-mode closed` brings back the first version's 20 paced callers;
// `--faults-load N` = calls/s open, callers closed); `--rounds N` applies here too (default 2, 1 with --quick).
// 3 contenders × {no fallback, with fallback}, each run in its own process.
async function partFaults() {
  const rounds = argv.includes("--rounds") ? ROUNDS : QUICK ? 1 : 2;
  const mode = opt("--faults-mode", "open");
  if (!["open", "closed"].includes(mode)) throw new Error(`--faults-mode: open or closed, not "${mode}"`);
  const load = Number(opt("--faults-load", mode === "open" ? 150 : 20));
  const contenders = ["sdk", "cockatiel", "ours"];
  const variants = ["plain", "fallback"];
  const configs = variants.flatMap((v) => contenders.map((c) => `${c}/${v}`));
  const results = new Map(configs.map((c) => [c, []]));
  for (let r = 0; r < rounds; r++) {
    for (const key of r % 2 ? [...configs].reverse() : configs) {
      const [c, v] = key.split("/");
      results.get(key).push(await runChild(["--import", "tsx", "bench/faults/child.mts", c, v, mode, String(load)], { label: `faults ${key}` }));
    }
    log(`[faults] round ${r + 1}/${rounds} done (${elapsed()}, load ${loadavg()[0].toFixed(1)})`);
  }
  raw.faults = { mode, load, runs: Object.fromEntries(results) };
  const label = {
    sdk: "openai SDK built-in retries (maxRetries 2)",
    cockatiel: "cockatiel retry + breaker (SDK maxRetries 0)",
    ours: "llm-resilience",
  };
  const fbLabel = {
    sdk: "+ try/catch → fallback model",
    cockatiel: "+ cockatiel fallback policy → fallback model",
    ours: "+ `fallbacks` option",
  };
  const finite = (xs) => xs.filter((x) => Number.isFinite(x));
  const agg = (rs, k) => median(finite(rs.map((x) => x[k])));
  const first = results.get(configs[0])[0];
  const s = first.schedule;
  const cooldown = first.breakerCooldownMs;
  const primary = first.primaryModel;
  const fallbackModel = first.fallbackModel;

  const rowsFor = (v) =>
    contenders.map((c) => {
      const rs = results.get(`${c}/${v}`);
      const per = (k, d = 0) => rs.map((x) => f(x[k], d)).join(" / ");
      const pr = (k) => rs.map((x) => pct(x[k], 1)).join(" / ");
      return [
        v === "plain" ? label[c] : `${label[c]} ${fbLabel[c]}`,
        per("calls"),
        per("successes"),
        pr("successRate"),
        pr("successRateStorm"),
        pr("successRateOutage"),
        pr("successRateAfter"),
        per("requestsInOutage"),
        per("retries"),
        ...(v === "fallback" ? [rs.map((x) => `${f(x.servedByFallback, 0)} (${f(x.fallbackTried, 0)})`).join(" / ")] : []),
        `${per("p50ms")} ; ${per("p99ms")}`,
        per("recoveryMs"),
        rs.map((x) => f(x.launchLagMs?.[1], 0)).join(" / "),
      ];
    });
  const headersFor = (v) => [
    "configuration",
    mode === "open" ? "calls (arrived)" : "calls",
    "successful calls",
    "success rate",
    "success, arrived in the storm",
    "success, arrived in the outage",
    "success, arrived after recovery",
    `requests into the outage (to ${primary})`,
    "retries sent",
    ...(v === "fallback" ? [`served by ${fallbackModel} (calls that tried it)`] : []),
    "latency p50 ; p99 ms",
    `recovery ms (→ first ${primary} success)`,
    "launch lag p99 ms (noise)",
  ];
  const details = (v) =>
    contenders
      .map((c) => {
        const rs = results.get(`${c}/${v}`);
        const phase = (x) => ["healthy", "storm", "outage", "after"].map((p) => `${x.phaseOk[p]}/${x.phaseCalls[p]}${v === "fallback" ? ` (${x.phaseServedByFallback[p]} by fallback)` : ""}`).join(", ");
        return (
          `- ${label[c]}${v === "fallback" ? ` ${fbLabel[c]}` : ""}: errors ${rs.map((x) => JSON.stringify(x.errors)).join(" / ")}; ok/calls by arrival phase (healthy, storm, outage, after) ${rs.map(phase).join(" | ")}; ` +
          `requests ${rs.map((x) => `${x.requests} (${x.requestsPrimary} ${primary}, ${x.requestsFallback} ${fallbackModel}; ${x.fallbackRequestsInOutage} to ${fallbackModel} in the outage)`).join(" / ")}; ` +
          `successful calls p50 ; p99 ${rs.map((x) => `${f(x.okP50ms)} ; ${f(x.okP99ms)}`).join(" / ")} ms, failed p50 ${rs.map((x) => f(x.failP50ms)).join(" / ")} ms; ` +
          `first ${primary} request after recovery +${rs.map((x) => f(x.firstPrimaryRequestAfterMs, 0)).join(" / ")} ms` +
          (mode === "open" ? `; launch lag p50/p99/max ${rs.map((x) => (x.launchLagMs ?? []).map((y) => f(y, 0)).join("/")).join(" | ")} ms; last call done ${rs.map((x) => f(x.drainedMs, 0)).join(" / ")} ms after the schedule's end` : "") +
          `. ${rs[0].notes.join(" ")}`
        );
      })
      .join("\n");

  // Targets, per variant: success rate ≥ the best peer's (median over runs), requests into the outage
  // ≤ 1/5 of the SDK's, recovery (→ first success on the primary model) ≤ one breaker cooldown in every run.
  const targetsFor = (v) => {
    const R = (c) => results.get(`${c}/${v}`);
    const peers = ["sdk", "cockatiel"].map((c) => ({ c, rate: agg(R(c), "successRate") }));
    const best = peers.reduce((a, b) => (b.rate > a.rate ? b : a));
    const oursRate = agg(R("ours"), "successRate");
    const sdkReq = agg(R("sdk"), "requestsInOutage");
    const oursReq = agg(R("ours"), "requestsInOutage");
    const recoveryMs = R("ours").map((x) => x.recoveryMs);
    const t = {
      bestPeer: best.c,
      bestPeerRate: best.rate,
      oursRate,
      rateMet: oursRate >= best.rate,
      sdkReq,
      oursReq,
      reqMet: oursReq <= sdkReq / 5,
      recoveryMs,
      cooldownMs: cooldown,
      recoveryBoundMs: cooldown + 2 * s.latencyMs + (mode === "open" ? 1000 / load : 100 / load),
      recoveryMet: recoveryMs.every((x) => Number.isFinite(x) && x <= cooldown),
    };
    return { ...t, met: t.rateMet && t.reqMet && t.recoveryMet };
  };
  const targets = { mode, plain: targetsFor("plain"), fallback: targetsFor("fallback") };
  raw.faultsTargets = targets;
  const yn = (b) => (b ? "**met**" : "**not met**");
  const targetLine = (v) => {
    const t = targets[v];
    return (
      `${v === "fallback" ? "With fallback" : "Without fallback"}: success rate ≥ best peer (${label[t.bestPeer]}, ${pct(t.bestPeerRate, 1)}) → ours ${pct(t.oursRate, 1)} ${yn(t.rateMet)}; ` +
      `requests into the outage ≤ 1/5 of the SDK's (${f(t.sdkReq, 0)} → ≤ ${f(t.sdkReq / 5, 0)}) → ours ${f(t.oursReq, 0)} ${yn(t.reqMet)}; ` +
      `recovery ≤ one breaker cooldown (${t.cooldownMs} ms) → ours ${t.recoveryMs.map((x) => f(x, 0)).join(" / ")} ms ${yn(t.recoveryMet)}` +
      ` (a breaker with half-open probes can take up to cooldown + the failed probe's and the next probe's round trips + the wait for the next call ≈ ${f(t.recoveryBoundMs, 0)} ms, depending on where in the probe cycle the recovery falls: ${t.recoveryMs.every((x) => Number.isFinite(x) && x <= t.recoveryBoundMs) ? "within that bound" : "**beyond that bound**"}).`
    );
  };
  const loadText =
    mode === "open"
      ? `Open-loop arrivals: ${load} calls/s spread evenly over the ${s.endAt / 1000} s schedule (one every ${f(1000 / load, 2)} ms), the same arrival times for every configuration whatever happens to the calls in flight, so every configuration handles the same ${first.arrivals} calls; success rate = successful calls / calls that arrived; phases are by arrival time; latency counts from the scheduled arrival, so it includes how late the process launched a call (event-loop stalls from the configuration's own work or from other processes on the machine). "Launch lag" = how late the driver launched arrivals: a p99 above a few tens of ms means the process was starved of CPU, and a stall near the storm's end pushes storm arrivals past it, where they succeed more easily.`
      : `Closed loop: ${load} concurrent callers, each starting at most one call per 100 ms slot until the end (a configuration that fails fast makes more, failing, calls in the outage, so "success rate" penalises failing fast; compare "successful calls").`;
  sections.push({
    title: "3. Resilience under faults (fake provider, real HTTP on 127.0.0.1)",
    body:
      `Schedule (ms from start): healthy 0–${s.stormAt}; 429 storm ${s.stormAt}–${s.outageAt} (the provider admits ${s.stormCapacity} requests per ${s.stormWindowMs} ms window, all models together, the rest get 429 + \`retry-after-ms: ${s.stormWindowMs}\`); hard outage of \`${s.model}\` ${s.outageAt}–${s.recoverAt} (every request for it → 503; \`${fallbackModel}\` stays healthy); recovered ${s.recoverAt}–${s.endAt}. Provider latency ${s.latencyMs} ms. Every call asks for \`${primary}\`. ${loadText} ${rounds} run(s) per configuration, each in its own process, the order reversed every other round (values listed per run, "a / b"). Requests are counted by the provider (each call carries an id header); "requests into the outage" = requests for \`${primary}\` that arrived during its outage; "retries" = requests beyond the first of each call on each model (the first request to the fallback model is a fallback, not a retry); recovery = provider recovered → first call served by \`${primary}\` completes (with a fallback, calls succeed throughout, so this is when traffic is back on the primary). Breakers (cockatiel, ours): 5 consecutive failures, ${cooldown} ms cooldown, one per model.\n\n` +
      `**Without fallback** (every call only asks for \`${primary}\`)\n\n` +
      table(headersFor("plain"), rowsFor("plain")) +
      `\n\n${details("plain")}\n\n` +
      `**With fallback to \`${fallbackModel}\`** (the SDK: a try/catch calling \`${fallbackModel}\` after the SDK gave up on a 429/408/5xx/connection error; cockatiel: its \`fallback\` policy around the primary's retry + breaker, on those errors and on an open breaker, calling \`${fallbackModel}\` through its own retry + breaker; ours: \`register({ fallbacks: { "${primary}": ["${fallbackModel}"] } })\`)\n\n` +
      table(headersFor("fallback"), rowsFor("fallback")) +
      `\n\n${details("fallback")}\n\n` +
      `Targets (medians over runs; recovery in every run).\n\n- ${targetLine("fallback")}\n- ${targetLine("plain")}`,
  });
}

// ------------------------------------------------------------------ part 4: scale

async function partScale() {
  const inflight = {};
  for (const config of ["raw", "ours"]) {
    inflight[config] = await runChild(["--expose-gc", "bench/scale/child.mjs", "openai", config, "inflight", "10000", "2"], {
      label: `scale inflight ${config}`,
      timeoutMs: 300_000,
    });
    log(`[scale] 10k in flight ${config} done (${elapsed()})`);
  }
  const seq = await runChild(["--expose-gc", "bench/scale/child.mjs", "openai", "ours", "sequential", String(SEQ_CALLS)], {
    label: "scale sequential",
    timeoutMs: 3_600_000,
  });
  log(`[scale] ${SEQ_CALLS} sequential done (${elapsed()})`);
  raw.scale = { inflight, seq };
  const eldS = (e) => `${f(e.p50ms, 1)} / ${f(e.p99ms, 1)} / ${f(e.maxMs, 0)}`;
  const rows1 = ["raw", "ours"].map((c) => {
    const r = inflight[c];
    return [
      c === "raw" ? "openai SDK alone" : "+ llm-resilience",
      f(r.baseline.heapMB),
      r.bursts.map((b) => f(b.heapInFlightMB)).join(" / "),
      f(((median(r.bursts.map((b) => b.heapInFlightMB)) - r.baseline.heapMB) * 1024) / r.n, 1),
      r.bursts.map((b) => f(b.after.heapMB)).join(" / "),
      f(r.final.heapMB),
      r.bursts.map((b) => f(b.launchMs, 0)).join(" / "),
      r.bursts.map((b) => f(b.totalMs / 1000, 1)).join(" / "),
      eldS(r.baseline.eld),
      r.bursts.map((b) => eldS(b.during)).join("<br>"),
      eldS(r.final.eld),
      r.bursts.reduce((a, b) => a + b.failed, 0),
    ];
  });
  const heaps = seq.samples.map((s) => s.heapMB);
  const rows2 = [
    [
      `+ llm-resilience, ${seq.n.toLocaleString("en")} sequential calls`,
      f(seq.usPerCall),
      f(seq.baseline.heapMB),
      seq.samples.map((s) => f(s.heapMB)).join(" "),
      f(Math.max(...heaps) - Math.min(...heaps), 2),
      f(seq.final.heapMB),
      eldS(seq.baseline.eld),
      eldS(seq.during),
      eldS(seq.final.eld),
      `${f(seq.spansExported / (seq.n + 2000), 2)}`,
    ],
  ];
  sections.push({
    title: "4. Scale (canned fetch, in-process)",
    body:
      "**10,000 calls in flight at once** (non-streaming chat; the fetch holds every call 1 s, then answers them spread over the next 4 s, ~2,500/s). 2 bursts in one process; heap = `heapUsed` after forced GC; event-loop delay (`monitorEventLoopDelay`, 1 ms resolution) p50 / p99 / max in ms.\n\n" +
      table(
        ["configuration", "heap before MB", "heap, 10k in flight MB", "KB per in-flight call", "heap after each burst MB", "heap at end MB", "launch 10k ms", "burst total s", "ELD before", "ELD during (per burst)", "ELD after", "failed"],
        rows1,
      ) +
      `\n\n**${seq.n.toLocaleString("en")} sequential calls** (one process; heap after forced GC every ${(seq.n / 10).toLocaleString("en")} calls).\n\n` +
      table(["run", "µs/call", "heap before MB", "heap every 10% MB", "heap range MB", "heap at end MB", "ELD before", "ELD during", "ELD after", "spans/call exported"], rows2),
  });
}

// ------------------------------------------------------------------ part 5: ours against each peer, two transports, three Node versions

// Every cell (Node version × transport × provider × workload) runs the raw SDK, llm-resilience and each peer,
// one process each, back to back in an order rotated per round; the cells' order rotates too. "added" is
// paired within a round (configuration − raw of the same round, then the median over rounds), so a slow
// minute of the machine hits both sides of each difference.
const PEER_NODES = opt("--nodes", "20,22,24").split(",");
const PEER_MODES = opt("--modes", "canned,loopback").split(",");
const LOOPBACK_CHUNKS = Number(opt("--loopback-chunks", 20));
const PEER_CONFIGS = { openai: ["raw", "ours", "otel-contrib", "traceloop"], anthropic: ["raw", "ours", "builtin-tracing", "traceloop"] };
const PEER_LABEL = { "otel-contrib": "@opentelemetry/instrumentation-openai", traceloop: "traceloop", "builtin-tracing": "Anthropic built-in tracing" };

async function partPeers() {
  const rounds = argv.includes("--rounds") || !QUICK ? ROUNDS : 1;
  const nodes = Object.fromEntries(PEER_NODES.map((n) => [n, nodeBinary(n)]));
  for (const m of PEER_MODES) if (!["canned", "loopback"].includes(m)) throw new Error(`--modes: canned and/or loopback, not "${m}"`);
  const provider = PEER_MODES.includes("loopback") ? await startLoopbackProvider(LOOPBACK_CHUNKS) : undefined;
  try {
    const cells = [];
    for (const node of PEER_NODES)
      for (const mode of PEER_MODES) for (const p of Object.keys(PEER_CONFIGS)) for (const workload of ["chat", "stream"]) cells.push({ node, mode, provider: p, workload });
    const cellKey = (c) => `${c.node}/${c.mode}/${c.provider}/${c.workload}`;
    const results = new Map(cells.map((c) => [cellKey(c), Object.fromEntries(PEER_CONFIGS[c.provider].map((k) => [k, []]))]));
    // Per process: canned as part 1; loopback calls take ~10× longer, so fewer warm-up calls and a longer measurement.
    const params = (c) =>
      c.mode === "canned"
        ? { measureMs: QUICK ? 300 : 400, warm: c.workload === "stream" ? 150 : 2500, env: {} }
        : { measureMs: QUICK ? 400 : 800, warm: c.workload === "stream" ? 300 : 1000, env: { BENCH_LOOPBACK: provider.url, BENCH_STREAM_CHUNKS: String(LOOPBACK_CHUNKS) } };
    for (let r = 0; r < rounds; r++) {
      const order = cells.map((_, i) => cells[(i + r * 5) % cells.length]);
      for (const c of order) {
        const configs = PEER_CONFIGS[c.provider];
        const { measureMs, warm, env } = params(c);
        for (let i = 0; i < configs.length; i++) {
          const config = configs[(i + r) % configs.length];
          const res = await runChild(["bench/overhead/child.mjs", c.provider, config, c.workload, String(measureMs), String(warm)], {
            label: `peers ${cellKey(c)}/${config}`,
            node: nodes[c.node].file,
            env,
          });
          results.get(cellKey(c))[config].push(res);
        }
      }
      log(`[peers] round ${r + 1}/${rounds} done (${elapsed()}, load ${loadavg()[0].toFixed(1)})`);
    }
    raw.peers = { rounds, nodes, modes: PEER_MODES, loopbackChunks: LOOPBACK_CHUNKS, results: Object.fromEntries(results) };

    // Statistics per cell: added = config − raw, paired per round, median over rounds; fastest = best batch − raw's best batch.
    const summary = cells.map((c) => {
      const rs = results.get(cellKey(c));
      const added = (k, field) => median(rs[k].map((x, i) => x[field] - rs.raw[i][field]));
      const best = (k) => Math.min(...rs[k].map((x) => x.bestUsPerCall));
      const stat = (k) => ({ added: added(k, "usPerCall"), addedBest: best(k) - best("raw"), addedCpu: added(k, "cpuUsPerCall"), spans: median(rs[k].map((x) => x.spansPerCall)) });
      return {
        ...c,
        raw: median(rs.raw.map((x) => x.usPerCall)),
        rawBest: best("raw"),
        ours: stat("ours"),
        peers: PEER_CONFIGS[c.provider].filter((k) => k !== "raw" && k !== "ours").map((k) => ({ peer: k, ...stat(k) })),
      };
    });
    raw.peersSummary = summary;
    const ratio = (ours, peer) => (peer > 0 ? `${f(ours / peer, 2)}` : `(peer ${f(peer, 0)})`);
    const plus = (x) => `${x >= 0 ? "+" : "−"}${f(Math.abs(x), 0)}`;
    const mark = (s, p) => {
      const ok = (a, b) => (s.node === "20" ? a <= b : a < b);
      return ok(s.ours.added, p.added) && ok(s.ours.addedBest, p.addedBest) ? "✅" : ok(s.ours.added, p.added) || ok(s.ours.addedBest, p.addedBest) ? "◐" : "❌";
    };
    const out = [];
    for (const p of Object.keys(PEER_CONFIGS)) {
      const peerNames = PEER_CONFIGS[p].filter((k) => k !== "raw" && k !== "ours");
      const rows = summary
        .filter((s) => s.provider === p)
        .sort((a, b) => a.workload.localeCompare(b.workload) || a.mode.localeCompare(b.mode) || Number(b.node) - Number(a.node))
        .map((s) => [
          `${s.workload === "chat" ? "chat" : `stream (${s.mode === "canned" ? 200 : LOOPBACK_CHUNKS} chunks)`}, ${s.mode}, Node ${nodes[s.node].version}`,
          `${f(s.raw, 0)} · ${f(s.rawBest, 0)}`,
          `${plus(s.ours.added)} · ${plus(s.ours.addedBest)}`,
          ...s.peers.flatMap((x) => [`${plus(x.added)} · ${plus(x.addedBest)}`, `${ratio(s.ours.added, x.added)} · ${ratio(s.ours.addedBest, x.addedBest)} ${mark(s, x)}`]),
          s.peers.map((x) => ratio(s.ours.addedCpu, x.addedCpu)).join(" / "),
        ]);
      out.push(
        `#### ${p}\n\n` +
          table(
            ["workload, transport, Node", "raw SDK µs/call", "llm-resilience added µs", ...peerNames.flatMap((k) => [`${PEER_LABEL[k]} added µs`, `ours ÷ ${PEER_LABEL[k]}`]), `ours ÷ peer, client CPU (${peerNames.map((k) => PEER_LABEL[k]).join(" / ")})`],
            rows,
          ),
      );
    }
    sections.push({
      title: "5. Ours against each peer: canned fetch and loopback HTTP, Node 20 / 22 / 24",
      body:
        `${rounds} round(s); every cell (Node × transport × provider × workload) runs the raw SDK, llm-resilience and each peer, one process each, back to back (the order rotated every round, the cells' order too). ` +
        `Canned: the in-process canned fetch of part 1 (200-chunk streams). Loopback: the fake provider (\`bench/loopback/provider.mts\`) in its own process on 127.0.0.1, the SDKs' own fetch (undici, keep-alive), ${LOOPBACK_CHUNKS}-chunk streams. ` +
        `Each cell reads "median · fastest": median over rounds of (configuration − raw SDK) measured in the same round, and the fastest batch's difference. ` +
        `"ours ÷ peer" < 1 means we add less: ✅ below the peer on both (at most the peer on Node 20), ◐ on one of the two, ❌ on neither. The last column divides the client process's CPU time per call (user + system, paired medians), which does not count time spent waiting for the provider or for other processes.\n\n` +
        out.join("\n\n"),
    });
  } finally {
    await provider?.stop();
  }
}

// ------------------------------------------------------------------ main

function versions() {
  const v = (p) => {
    try {
      return JSON.parse(readFileSync(join(ROOT, "node_modules", p, "package.json"), "utf8")).version;
    } catch {
      return "not installed";
    }
  };
  const pkgs = [
    "openai",
    "@anthropic-ai/sdk",
    "@opentelemetry/api",
    "@opentelemetry/sdk-trace-node",
    "@opentelemetry/sdk-metrics",
    "pino",
    "@opentelemetry/instrumentation-openai",
    "@traceloop/instrumentation-openai",
    "@traceloop/instrumentation-anthropic",
    "cockatiel",
  ];
  const self = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
  return [`llm-resilience ${self}`, ...pkgs.map((p) => `${p} ${v(p)}`)].join(", ");
}

function machine() {
  let model = cpus()[0]?.model ?? "unknown";
  try {
    model = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? model;
  } catch {}
  let nproc = String(cpus().length);
  try {
    nproc = execFileSync("nproc", { encoding: "utf8" }).trim();
  } catch {}
  return { model, nproc };
}

async function main() {
  log(`generating canned payloads from test/fake-provider ...`);
  execFileSync(process.execPath, ["--import", "tsx", "bench/lib/gen-payloads.ts", PAYLOADS], { cwd: ROOT, stdio: "inherit" });
  if (!existsSync(join(ROOT, "dist/index.js"))) throw new Error("dist/ is missing: run `npm run build` (or `npm run bench`)");
  const loadBefore = loadavg();
  const started = new Date();
  for (const p of parts) {
    log(`== part ${p} (${elapsed()})`);
    if (p === "overhead") await partOverhead();
    if (p === "ablation") await partAblation();
    if (p === "profile") await partProfile();
    if (p === "streaming") await partStreaming();
    if (p === "faults") await partFaults();
    if (p === "scale") await partScale();
    if (p === "peers") await partPeers();
  }
  const loadAfter = loadavg();
  const m = machine();
  const header =
    `# llm-resilience benchmark results\n\n` +
    `- date: ${started.toISOString()}, duration ${elapsed()}, command: \`node bench/run.mjs ${argv.join(" ")}\`\n` +
    `- machine: ${m.nproc} CPUs (\`nproc\`), ${m.model}; Node ${process.version}\n` +
    `- load average (1/5/15 min) before: ${loadBefore.map((x) => x.toFixed(2)).join(" ")}, after: ${loadAfter.map((x) => x.toFixed(2)).join(" ")} — anything above ~0.5 means other work shared the CPUs (noise)\n` +
    `- versions: ${versions()}\n`;
  const md = [header, ...sections.map((s) => `## ${s.title}\n\n${s.body}\n`)].join("\n");
  writeFileSync(OUT, md);
  writeFileSync(OUT.replace(/\.md$/, ".json"), JSON.stringify({ argv, started, loadBefore, loadAfter, machine: m, raw }, null, 1));
  console.log(md);
  log(`written ${OUT} (${elapsed()})`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
