// One configuration, one workload, one process: µs per call of sequential awaited calls.
// argv: <provider openai|anthropic> <config> <workload chat|stream> [measureMs]
import { performance } from "node:perf_hooks";
import { drain, makeClient, median, writeResult } from "../lib/common.mjs";

const [provider, config, workload, measureArg] = process.argv.slice(2);
const MEASURE_MS = Number(measureArg ?? 1200);
const WARMUP_MS = Math.round(MEASURE_MS * 0.6);
const BATCHES = 8;

const setup = makeClient(provider, config);
const call = workload === "stream" ? async () => drain(await setup.stream()) : () => setup.chat();

// Sanity: the call works and (for streams) yields every chunk.
const first = await call();
if (workload === "stream" && first < 200) throw new Error(`stream yielded ${first} chunks`);

async function runFor(ms) {
  const end = performance.now() + ms;
  let n = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 20; i++) await call();
    n += 20;
  }
  return n;
}

// Warm up (JIT, pools), then estimate the batch size that lasts MEASURE_MS / BATCHES.
const warmN = await runFor(WARMUP_MS);
const perBatch = Math.max(20, Math.round((warmN / WARMUP_MS) * (MEASURE_MS / BATCHES)));
const batches = [];
const cpuBatches = [];
let calls = 0;
for (let b = 0; b < BATCHES; b++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < perBatch; i++) await call();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  batches.push((wall * 1000) / perBatch);
  cpuBatches.push((c.user + c.system) / perBatch);
  calls += perBatch;
}
await setup.otel.flush();
// Every call made in this process (sanity call + warm-up + measured) against every span exported.
const spansPerCall = setup.otel.spans.exported / (1 + warmN + calls);

writeResult({
  provider,
  config,
  workload,
  usPerCall: median(batches),
  cpuUsPerCall: median(cpuBatches),
  batches,
  cpuBatches,
  calls,
  spansPerCall,
  notes: setup.notes,
});
process.exit(0);
