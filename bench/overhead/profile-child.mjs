// CPU profile of the measured loop only (after warm-up), via the inspector — same workload as child.mjs.
// argv: <provider> <config> <workload chat|stream> <calls> <out.cpuprofile>
import { Session } from "node:inspector/promises";
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { drain, makeClient, writeResult } from "../lib/common.mjs";

const [provider, config, workload, callsArg, out] = process.argv.slice(2);
const CALLS = Number(callsArg ?? 5000);
const setup = makeClient(provider, config);
await setup.otel.steady();
const call = workload === "stream" ? async () => drain(await setup.stream()) : () => setup.chat();
for (let i = 0; i < Math.min(3000, CALLS); i++) await call();

const session = new Session();
session.connect();
await session.post("Profiler.enable");
await session.post("Profiler.setSamplingInterval", { interval: 100 });
await session.post("Profiler.start");
const t0 = performance.now();
for (let i = 0; i < CALLS; i++) await call();
const wallMs = performance.now() - t0;
const { profile } = await session.post("Profiler.stop");
writeFileSync(out, JSON.stringify(profile));
writeResult({ provider, config, workload, calls: CALLS, wallMs, usPerCall: (wallMs * 1000) / CALLS });
process.exit(0);
