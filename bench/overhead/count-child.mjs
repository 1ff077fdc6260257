// What one call costs in work rather than time (the machine's speed drifts; these numbers do not):
//   instructions: run under `valgrind --tool=callgrind --instr-atstart=no`; instrumentation is switched on
//                 (callgrind_control) only around the measured calls, so start-up and warm-up are not counted.
//   allocations:  promises created per call (async_hooks init of type PROMISE) and bytes allocated on the
//                 JS heap per call (heap growth over short windows of calls during which no GC ran; run
//                 with --expose-gc and a large young generation, --max-semi-space-size=64).
//   promoted:     bytes per call that outlive a scavenge (copied to the old generation, where only a full GC
//                 frees them), from --trace-gc-nvp with a fixed 16 MB young generation: what the scavenger
//                 has to copy, so what makes a call's garbage collection expensive.
// argv: <instructions|allocations|promoted> <provider> <config> <workload chat|stream> <warmCalls> <calls>
// env: as bench/overhead/child.mjs (BENCH_LOOPBACK, BENCH_STREAM_CHUNKS, BENCH_LLMR).
import { execFile } from "node:child_process";
import { createHook } from "node:async_hooks";
import { PerformanceObserver } from "node:perf_hooks";
import { getHeapStatistics } from "node:v8";
import { drain, makeClient, writeResult } from "../lib/common.mjs";

const [what, provider, config, workload, warmArg, callsArg] = process.argv.slice(2);
const WARM = Number(warmArg);
const CALLS = Number(callsArg);
const setup = makeClient(provider, config);
await setup.otel.steady();
const call = workload === "stream" ? async () => drain(await setup.stream()) : () => setup.chat();
let chunks = 0;
for (let i = 0; i < WARM; i++) chunks = (await call()) || 0;
// A full GC deoptimises code that embeds objects it found dead ("embedded weak objects cleared"), and the
// JIT then recompiles it: collect now, let the code reoptimise, so that (most likely) no full GC falls
// into the counted calls. One metrics export right before them, so each run starts from the same state.
if (globalThis.gc && process.env.BENCH_COUNT_GC === "1") {
  globalThis.gc();
  for (let i = 0; i < Math.min(WARM, 2000); i++) await call();
}
await setup.otel.steady();

const result = { what, provider, config, workload, node: process.version, transport: process.env.BENCH_LOOPBACK ? "loopback" : "canned", calls: CALLS, chunksPerCall: chunks, notes: setup.notes };
if (what === "instructions") {
  const ctl = (arg) => new Promise((res, rej) => execFile("callgrind_control", [arg, String(process.pid)], (e, out) => (e ? rej(e) : res(out))));
  await ctl("--instr=on");
  for (let i = 0; i < CALLS; i++) await call();
  await ctl("--instr=off");
} else if (what === "allocations") {
  let gcs = 0;
  const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
  obs.observe({ entryTypes: ["gc"] });
  let promises = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === "PROMISE") promises++;
    },
  });
  // Counting promises needs the promise hooks on, which slows every promise: count in a separate pass.
  hook.enable();
  for (let i = 0; i < CALLS; i++) await call();
  hook.disable();
  // Bytes: heap growth over windows of 20 calls in which no GC ran (the GC observer says so after the
  // window); the median window.
  const tick = () => new Promise((r) => setTimeout(r, 0));
  const windows = [];
  for (let tries = 0; windows.length < 15 && tries < 200; tries++) {
    globalThis.gc?.();
    await tick();
    const gc0 = gcs;
    const before = getHeapStatistics().used_heap_size;
    for (let i = 0; i < 20; i++) await call();
    const after = getHeapStatistics().used_heap_size;
    await tick();
    if (gcs === gc0) windows.push((after - before) / 20);
  }
  obs.disconnect();
  windows.sort((a, b) => a - b);
  Object.assign(result, { promisesPerCall: promises / CALLS, bytesPerCall: windows[Math.floor(windows.length / 2)], byteWindows: windows.length });
} else if (what === "promoted") {
  // Run with --trace-gc-nvp and a fixed young generation (bench/count.mjs): the scavenges between the two
  // marks say how many bytes outlived a scavenge (promoted to the old generation) during the measured calls.
  process.stdout.write("@@measured-start\n");
  for (let i = 0; i < CALLS; i++) await call();
  process.stdout.write("@@measured-end\n");
} else throw new Error(`count-child: "instructions", "allocations" or "promoted", not "${what}"`);
writeResult(result);
process.exit(0);
