#!/usr/bin/env node
// What instrumenting the AI SDK costs per call: generateText and streamText (200 chunks) through
// @ai-sdk/openai with a canned in-process fetch (only client-side work is timed), the AI SDK alone
// ("plain") against the AI SDK under llm-resilience ("ours"), both with the same OTel SDK registered.
// One configuration per child process, rounds alternating; µs per call is the median of 16 batches.
// Run it with the Node binary to measure (e.g. test/compat/node_modules/node24/bin/node).
//
//   npm run build && node bench/ai-sdk.mjs [--rounds N] [--measure-ms N]
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { cannedFetch, median, ROOT, require, setupOtel } from "./lib/common.mjs";

const HERE = fileURLToPath(import.meta.url);
const [mode, config, workload, measureArg] = process.argv.slice(2);

if (mode === "--child") {
  const otel = setupOtel();
  if (config === "ours") {
    const { register, _internal } = await import(`${ROOT}/dist/index.js`);
    register({ startSdk: false, logLevel: "silent", breaker: false });
    await _internal.instrumentEsmBuilds();
  }
  const { generateText, streamText } = await import("ai");
  const { createOpenAI } = await import("@ai-sdk/openai");
  const openai = createOpenAI({ apiKey: "sk-bench", baseURL: "https://api.openai.com/v1", fetch: cannedFetch("openai", { streamChunks: 200 }) });
  const model = openai.chat("gpt-4o-mini");
  const call =
    workload === "stream"
      ? async () => {
          let n = 0;
          for await (const _ of streamText({ model, prompt: "hi" }).textStream) n++;
          return n;
        }
      : async () => (await generateText({ model, prompt: "hi" })).text.length;
  await otel.steady();
  // Context propagation in use, as in any traced application (on Node 20 / 22 this switches
  // AsyncLocalStorage's promise hooks on for good; without it "plain" would time a process without them).
  const api = require("@opentelemetry/api");
  api.context.with(api.context.active(), () => {});
  if (!(await call())) throw new Error("the call returned nothing");
  for (let i = 0; i < (workload === "stream" ? 150 : 1500); i++) await call();
  const w0 = performance.now();
  for (let i = 0; i < 50; i++) await call();
  const perBatch = Math.max(10, Math.round((50 / (performance.now() - w0)) * (Number(measureArg) / 16)));
  const batches = [];
  for (let b = 0; b < 16; b++) {
    const t0 = performance.now();
    for (let i = 0; i < perBatch; i++) await call();
    batches.push(((performance.now() - t0) * 1000) / perBatch);
  }
  const spans = (await otel.flush(), otel.spans.exported);
  process.stdout.write(`${JSON.stringify({ us: median(batches), spans })}\n`);
  process.exit(0);
}

const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : dflt);
const ROUNDS = opt("--rounds", 3);
const MEASURE_MS = opt("--measure-ms", 1500);

function child(config, workload) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [HERE, "--child", config, workload, String(MEASURE_MS)], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.on("close", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop())) : reject(new Error(`${config} ${workload}: exit ${code}`))));
  });
}

const rows = [];
for (const workload of ["generate", "stream"]) {
  const us = { plain: [], ours: [] };
  let spans = 0;
  for (let r = 0; r < ROUNDS; r++) {
    for (const config of r % 2 ? ["ours", "plain"] : ["plain", "ours"]) {
      const res = await child(config, workload);
      us[config].push(res.us);
      if (config === "ours") spans = res.spans;
    }
  }
  const plain = median(us.plain);
  const ours = median(us.ours);
  rows.push({ workload, plain, ours, added: ours - plain, pct: ((ours - plain) / plain) * 100, spans });
}
console.log(`Node ${process.version}, ${ROUNDS} rounds × ${MEASURE_MS} ms per configuration`);
console.log("| workload | AI SDK alone µs/call | with llm-resilience µs/call | added µs | added % |");
console.log("|---|---|---|---|---|");
for (const r of rows) {
  if (r.spans === 0) throw new Error(`${r.workload}: the instrumented run exported no spans`);
  console.log(`| ${r.workload === "stream" ? "streamText, 200 chunks" : "generateText"} | ${r.plain.toFixed(0)} | ${r.ours.toFixed(0)} | ${r.added.toFixed(0)} | ${r.pct.toFixed(1)} % |`);
}
