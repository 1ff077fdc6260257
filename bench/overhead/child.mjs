// One configuration, one workload, one process: µs per call of sequential awaited calls, measured in
// 16 batches (median and fastest batch reported).
// argv: <provider openai|anthropic> <config> <workload chat|stream> [measureMs] [warmCalls]
// env: BENCH_LOOPBACK=<url of bench/loopback/provider.mts> for real HTTP instead of the canned fetch,
//      BENCH_STREAM_CHUNKS = content chunks a streamed answer has (200 canned; the provider's setting on loopback).
import { performance } from "node:perf_hooks";
import { drain, makeClient, median, writeResult } from "../lib/common.mjs";

const [provider, config, workload, measureArg, warmArg] = process.argv.slice(2);
const MEASURE_MS = Number(measureArg ?? 1000);
// Warm-up by count, the same for every configuration, long enough for the JIT to settle
// (a few hundred calls leave the SDK's and our code half-optimised and double the µs).
const WARM_CALLS = Number(warmArg ?? (workload === "stream" ? 150 : 2500));
const BATCHES = 16;

const setup = makeClient(provider, config);
await setup.otel.steady();
const call = workload === "stream" ? async () => drain(await setup.stream()) : () => setup.chat();

// Sanity: the call works and (for streams) yields every chunk.
const STREAM_CHUNKS = Number(process.env.BENCH_STREAM_CHUNKS ?? 200);
const first = await call();
if (workload === "stream" && first < STREAM_CHUNKS) throw new Error(`stream yielded ${first} chunks, expected ${STREAM_CHUNKS}`);

// Warm up (JIT, pools), then size the batches from the rate of the last warm-up calls.
const warmN = WARM_CALLS;
for (let i = 0; i < warmN - 50; i++) await call();
const w0 = performance.now();
for (let i = 0; i < 50; i++) await call();
const perBatch = Math.max(10, Math.round((50 / (performance.now() - w0)) * (MEASURE_MS / BATCHES)));
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
  node: process.version,
  transport: process.env.BENCH_LOOPBACK ? "loopback" : "canned",
  usPerCall: median(batches),
  // The fastest batch: the least disturbed by other processes sharing the CPUs.
  bestUsPerCall: Math.min(...batches),
  cpuUsPerCall: median(cpuBatches),
  batches,
  cpuBatches,
  calls,
  spansPerCall,
  notes: setup.notes,
});
process.exit(0);
