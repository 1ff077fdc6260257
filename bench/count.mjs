#!/usr/bin/env node
// Work per call, for comparing two builds or pricing one piece on a noisy machine: CPU instructions per call
// (valgrind's callgrind, counted only around the measured calls: repeatable to ~0.5 %), promises created
// and bytes allocated per call, and bytes per call that outlive a scavenge (--what promoted: not by
// default; the garbage collector's work grows with them). One process per configuration (bench/overhead/count-child.mjs).
//
//   node bench/count.mjs [--node 20|22|24] [--mode canned|loopback] [--provider openai|anthropic] [--workload chat|stream]
//                        [--configs raw,ours,...] [--what instructions,allocations,promoted] [--warm N] [--calls N] [--chunks N]
//
// Configurations as in bench/lib/common.mjs (raw, raw-ctx, ours, ours-<ablation>, otel-contrib, traceloop,
// builtin-tracing). BENCH_LLMR=<checkout with dist/> counts another build.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./lib/common.mjs";
import { nodeBinary, startLoopbackProvider } from "./lib/loopback.mjs";

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
};
const node = nodeBinary(opt("--node", "24"));
const mode = opt("--mode", "canned");
const provider = opt("--provider", "openai");
const workload = opt("--workload", "chat");
const configs = opt("--configs", "raw,ours").split(",");
const what = opt("--what", "instructions,allocations").split(",");
const stream = workload === "stream";
const chunks = Number(opt("--chunks", mode === "loopback" ? 20 : 200));
// Long warm-ups: with fewer calls the JIT still tiers functions up inside the counted window (±5 %).
const short = stream && mode === "canned";
const warm = Number(opt("--warm", short ? 400 : 6000));
const calls = Number(opt("--calls", short ? 100 : 1000));

// BENCH_NODE_FLAGS replaces the Node/V8 flags of the counted process.
// Flags that make the count repeat (to ~0.5 %): --single-threaded: the JIT and the GC run on the main thread, in
// order; no full GC at all (--no-incremental-marking, --no-memory-reducer, a 1 GB initial old space; the process
// lives a minute): a full GC deoptimises the code that embeds objects it found dead and the JIT recompiles it,
// so where full GCs fell (wall-clock driven) moved the count by ±5 %; a 64 MB young generation: fewer scavenges.
// The GC's and JIT's own instructions are then split off (splitInstructions); bytes allocated stand for the GC.
const NODE_FLAGS = (
  process.env.BENCH_NODE_FLAGS ??
  "--single-threaded --no-incremental-marking --no-memory-reducer --no-flush-bytecode --initial-old-space-size=1024 --max-semi-space-size=64 --min-semi-space-size=64"
)
  .split(" ")
  .filter(Boolean);
/**
 * The garbage collector's and the JIT compilers' share of a callgrind profile (inclusive counts of their
 * entry points, --single-threaded so they run on the main thread). What is left, the mutator, is the
 * code that ran: repeatable to ~1 %, where the total varies by ±10 % with when scavenges and late
 * optimisations happen to fall into the counted window.
 */
function splitInstructions(file) {
  const text = execFileSync("callgrind_annotate", ["--inclusive=yes", "--threshold=100", file], { encoding: "utf8", maxBuffer: 256 << 20 });
  const max = (re) => {
    let best = 0;
    for (const line of text.split("\n")) if (re.test(line)) best = Math.max(best, Number(line.trim().split(" ")[0].replaceAll(",", "")) || 0);
    return best;
  };
  return {
    gc: max(/v8::internal::Heap::CollectGarbage\(/) + max(/ContributeToSweeping/) + max(/v8::internal::IncrementalMarking::Step\(/),
    compile: max(/v8::internal::Compiler::CompileOptimized\(/) + max(/v8::internal::Runtime_CompileLazy\(/),
    fullGc: max(/v8::internal::MarkCompactCollector::CollectGarbage\(/) > 0,
  };
}

let seq = 0;
function run(kind, config, env) {
  const out = `/tmp/llmr-count-${process.pid}-${seq++}.json`;
  const childArgs = ["bench/overhead/count-child.mjs", kind, provider, config, workload, String(warm), String(kind === "allocations" ? Math.min(calls, 500) : kind === "promoted" ? Math.max(calls, stream ? 1000 : 20000) : calls)];
  const [cmd, args] =
    kind === "instructions"
      ? ["valgrind", ["--tool=callgrind", "--instr-atstart=no", `--callgrind-out-file=${out}.cg`, node.file, "--expose-gc", ...NODE_FLAGS, ...childArgs]]
      : kind === "promoted"
        ? [node.file, ["--trace-gc-nvp", "--max-semi-space-size=16", "--min-semi-space-size=16", ...childArgs]]
        : [node.file, ["--expose-gc", "--max-semi-space-size=64", "--min-semi-space-size=64", ...childArgs]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", kind === "promoted" ? "pipe" : "ignore", "pipe"], env: { ...process.env, ...env, BENCH_OUT: out } });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-20000)));
    const scavenges = { n: 0, promoted: 0, pauseMs: 0, measuring: false };
    let pending = "";
    child.stdout?.on("data", (d) => {
      const lines = (pending + d).split("\n");
      pending = lines.pop();
      for (const line of lines) {
        if (line === "@@measured-start") scavenges.measuring = true;
        else if (line === "@@measured-end") scavenges.measuring = false;
        else if (scavenges.measuring && / gc=s /.test(line)) {
          scavenges.n++;
          scavenges.promoted += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0);
          scavenges.pauseMs += Number(/ pause=([\d.]+)/.exec(line)?.[1] ?? 0);
        }
      }
    });
    child.on("close", (code) => {
      const split = kind === "instructions" && code === 0 ? splitInstructions(`${out}.cg`) : undefined;
      rmSync(`${out}.cg`, { force: true });
      if (code !== 0 || !existsSync(out)) return reject(new Error(`${config} ${kind} failed (${code}):\n${stderr}`));
      const r = JSON.parse(readFileSync(out, "utf8"));
      rmSync(out, { force: true });
      if (kind === "promoted") {
        r.promotedPerCall = scavenges.promoted / r.calls;
        r.scavengesPerKCall = (1000 * scavenges.n) / r.calls;
      }
      if (kind === "instructions") {
        const m = /I\s+refs:\s+([\d,]+)/.exec(stderr);
        if (!m) return reject(new Error(`${config}: no instruction count in callgrind's output:\n${stderr}`));
        const total = Number(m[1].replaceAll(",", ""));
        r.instructionsPerCall = total / r.calls;
        r.gcPerCall = split.gc / r.calls;
        r.compilePerCall = split.compile / r.calls;
        r.mutatorPerCall = (total - split.gc - split.compile) / r.calls;
        r.fullGc = split.fullGc;
      }
      resolve(r);
    });
  });
}

const lb = mode === "loopback" ? await startLoopbackProvider(chunks) : undefined;
const env = lb ? { BENCH_LOOPBACK: lb.url, BENCH_STREAM_CHUNKS: String(chunks) } : {};
const rows = [];
try {
  for (const config of configs) {
    const row = { config };
    if (what.includes("instructions")) {
      const r = await run("instructions", config, env);
      Object.assign(row, { instructionsPerCall: r.instructionsPerCall, gcPerCall: r.gcPerCall, compilePerCall: r.compilePerCall, mutatorPerCall: r.mutatorPerCall, fullGc: r.fullGc });
    }
    if (what.includes("allocations")) Object.assign(row, await run("allocations", config, env));
    if (what.includes("promoted")) {
      const r = await run("promoted", config, env);
      Object.assign(row, { promotedPerCall: r.promotedPerCall, scavengesPerKCall: r.scavengesPerKCall });
    }
    rows.push(row);
    process.stderr.write(`${config} done\n`);
  }
} finally {
  await lb?.stop();
}
const raw = rows.find((r) => r.config === "raw");
const k = (x) => (x === undefined ? "–" : (x / 1000).toFixed(1));
const d = (r, f, scale) => (raw && r !== raw && r[f] !== undefined ? `${r[f] - raw[f] >= 0 ? "+" : "−"}${(Math.abs(r[f] - raw[f]) / scale).toFixed(1)}` : "–");
console.log(
  `Node ${node.version}, ${mode}, ${provider} ${workload}${stream ? ` (${chunks} chunks)` : ""}; warm-up ${warm} calls, then ${calls} counted; ${NODE_FLAGS.join(" ")}${process.env.BENCH_LLMR ? `; build ${process.env.BENCH_LLMR}` : ""}`,
);
console.log("| configuration | k instr / call, mutator | added vs raw | GC | JIT | total | promises / call | added | KB allocated / call | added | KB promoted / call | added |");
console.log("| :-- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |");
for (const r of rows) {
  console.log(
    `| ${r.config} | ${k(r.mutatorPerCall)}${r.fullGc ? " (full GC in the window)" : ""} | ${d(r, "mutatorPerCall", 1000)} | ${k(r.gcPerCall)} | ${k(r.compilePerCall)} | ${k(r.instructionsPerCall)} | ${r.promisesPerCall?.toFixed(1) ?? "–"} | ${d(r, "promisesPerCall", 1)} | ${r.bytesPerCall !== undefined ? (r.bytesPerCall / 1024).toFixed(1) : "–"} | ${d(r, "bytesPerCall", 1024)} | ${r.promotedPerCall !== undefined ? (r.promotedPerCall / 1024).toFixed(2) : "–"} | ${d(r, "promotedPerCall", 1024)} |`,
  );
}
