// Streaming costs of one configuration, in one process (run with --expose-gc):
// - time to first chunk (create() called -> first chunk in the consumer's hands), 200-chunk streams;
// - per-chunk cost (the faster of two timed streams) and heap over a 100,000-chunk stream (heap sampled
//   after a forced GC every 10,000 chunks).
// config: raw | raw-ctx (raw SDK, each call inside context.with) | ours
// argv: <provider> <config raw|ours> [chunks=100000] [ttfcCalls=600]
import { performance } from "node:perf_hooks";
import { cannedFetch, makeClient, quantile, writeResult } from "../lib/common.mjs";

const [provider, config, chunksArg, ttfcArg] = process.argv.slice(2);
const CHUNKS = Number(chunksArg ?? 100_000);
const TTFC_CALLS = Number(ttfcArg ?? 600);
const gc = globalThis.gc ?? (() => {});

const setup = makeClient(provider, config);
await setup.otel.steady();
const client = setup.client;

// ---- time to first chunk (200-chunk streams, canned fetch that answers at once)
async function ttfcOnce() {
  const t0 = performance.now();
  const stream = await setup.stream();
  let ttfc;
  for await (const _ of stream) {
    if (ttfc === undefined) ttfc = performance.now() - t0;
  }
  return ttfc;
}
for (let i = 0; i < 150; i++) await ttfcOnce(); // warm-up
const ttfcs = [];
for (let i = 0; i < TTFC_CALLS; i++) ttfcs.push(await ttfcOnce());
ttfcs.sort((a, b) => a - b);

// ---- one long stream, frames generated lazily by the fetch (nothing pre-built)
const longFetch = cannedFetch(provider, { streamChunks: CHUNKS, lazy: true });
// Same client configuration, with the long-stream fetch (withOptions keeps everything else).
const longClient = client.withOptions({ fetch: longFetch });
const create0 = () =>
  provider === "openai"
    ? longClient.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Say hi" }], stream: true, stream_options: { include_usage: true } })
    : longClient.messages.create({ model: "claude-haiku-4-5", max_tokens: 256, messages: [{ role: "user", content: "Say hi" }], stream: true });

let create = create0;
if (config === "raw-ctx") {
  const { context, trace } = (await import("../lib/common.mjs")).require("@opentelemetry/api");
  const ctx = trace.setSpan(context.active(), trace.getTracer("bench").startSpan("bench parent"));
  create = () => context.with(ctx, create0);
}

async function longStream(sampleEvery) {
  const heap = [];
  gc();
  heap.push(process.memoryUsage().heapUsed);
  let n = 0;
  let gcMs = 0;
  const t0 = performance.now();
  const stream = await create();
  for await (const _ of stream) {
    n++;
    if (sampleEvery && n % sampleEvery === 0) {
      const g0 = performance.now();
      gc();
      heap.push(process.memoryUsage().heapUsed);
      gcMs += performance.now() - g0;
    }
  }
  const ms = performance.now() - t0 - gcMs;
  gc();
  heap.push(process.memoryUsage().heapUsed);
  return { n, ms, heap };
}

await longStream(0); // warm-up at full length
const timed = await longStream(0);
const sampled = await longStream(CHUNKS / 10); // also timed, its forced GCs left out
const perChunk = [timed, sampled].map((t) => (t.ms * 1000) / t.n);
const usPerChunk = Math.min(...perChunk);

writeResult({
  provider,
  config,
  chunks: sampled.n,
  ttfcP50Us: quantile(ttfcs, 0.5) * 1000,
  ttfcP90Us: quantile(ttfcs, 0.9) * 1000,
  usPerChunk,
  perChunk,
  heapMB: sampled.heap.map((b) => b / 2 ** 20),
  rssMB: process.memoryUsage().rss / 2 ** 20,
});
process.exit(0);
