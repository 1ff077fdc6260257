// Scale, one configuration per process (run with --expose-gc), canned fetch, in-process:
//   inflight   <n=10000> <bursts=3>: n calls started at once; the fetch holds every one for 1 s, then
//              answers them spread over the next 4 s (as responses arrive from a network); heap (after
//              a forced GC) and event-loop delay before, during and after each burst.
//   sequential <n=1000000>: n awaited calls one after the other; heap (after GC) every n/10 calls,
//              event-loop delay over the run, and after.
// argv: <provider> <config raw|ours> <mode> [n] [bursts]
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { makeClient, sleep, writeResult } from "../lib/common.mjs";

const [provider, config, mode, nArg, burstsArg] = process.argv.slice(2);
const gc = globalThis.gc ?? (() => {});
const MB = 2 ** 20;
const heapAfterGc = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / MB;
};
const eld = monitorEventLoopDelay({ resolution: 1 });
const eldSnapshot = () => {
  const r = { p50ms: eld.percentile(50) / 1e6, p99ms: eld.percentile(99) / 1e6, maxMs: eld.max / 1e6 };
  eld.reset();
  return r;
};
eld.enable();

async function idle(ms) {
  eld.reset();
  await sleep(ms);
  return eldSnapshot();
}

if (mode === "inflight") {
  const N = Number(nArg ?? 10_000);
  const BURSTS = Number(burstsArg ?? 3);
  const setup = makeClient(provider, config, { delayMs: (k) => 1000 + ((k * 7919) % N) * (4000 / N) });
  // warm-up: a few small bursts
  for (let i = 0; i < 3; i++) await Promise.all(Array.from({ length: 500 }, () => setup.chat()));
  await setup.otel.flush();
  const baseline = { heapMB: heapAfterGc(), eld: await idle(1000) };
  // In a function of its own so that nothing of the burst (promises, results) is alive afterwards.
  async function burst() {
    eld.reset();
    let peak = process.memoryUsage().heapUsed;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 20);
    const t0 = performance.now();
    const promises = [];
    for (let i = 0; i < N; i++) promises.push(setup.chat());
    const launchMs = performance.now() - t0;
    await sleep(900);
    const heapInFlightMB = heapAfterGc(); // all N pending (held for 1 s), after GC
    let failed = 0;
    for (const p of promises) await p.catch(() => failed++);
    const totalMs = performance.now() - t0;
    clearInterval(sampler);
    return { launchMs, totalMs, failed, heapInFlightMB, peakHeapMB: peak / MB, during: eldSnapshot() };
  }
  const bursts = [];
  for (let b = 0; b < BURSTS; b++) {
    const r = await burst();
    await setup.otel.flush();
    await sleep(200);
    r.after = { heapMB: heapAfterGc(), eld: await idle(500) };
    bursts.push(r);
  }
  await sleep(1000);
  const final = { heapMB: heapAfterGc(), eld: await idle(500) };
  writeResult({ provider, config, mode, n: N, baseline, bursts, final, rssMB: process.memoryUsage().rss / MB });
} else {
  const N = Number(nArg ?? 1_000_000);
  const setup = makeClient(provider, config);
  for (let i = 0; i < 2000; i++) await setup.chat();
  await setup.otel.flush();
  const baseline = { heapMB: heapAfterGc(), eld: await idle(500) };
  const samples = [];
  const step = Math.max(1, Math.floor(N / 10));
  eld.reset();
  const t0 = performance.now();
  let gcMs = 0;
  for (let i = 1; i <= N; i++) {
    await setup.chat();
    if (i % step === 0) {
      const g0 = performance.now();
      samples.push({ calls: i, heapMB: heapAfterGc() });
      gcMs += performance.now() - g0;
    }
  }
  const during = eldSnapshot(); // includes the forced GCs at the sample points (~10)
  const runMs = performance.now() - t0 - gcMs;
  await setup.otel.flush();
  await sleep(1000);
  const final = { heapMB: heapAfterGc(), eld: await idle(500) };
  writeResult({
    provider,
    config,
    mode,
    n: N,
    runMs,
    usPerCall: (runMs * 1000) / N,
    baseline,
    samples,
    during,
    final,
    spansExported: setup.otel.spans.exported,
    rssMB: process.memoryUsage().rss / MB,
  });
}
process.exit(0);
