#!/usr/bin/env node
// Where the bytes that outlive a scavenge are allocated: V8's sampling heap profiler, keeping only objects
// no minor GC collected (promoted to the old generation, or still alive), per allocation site and per
// nearest llm-resilience frame on the stack. Run it with the Node and young generation to study, e.g.
//   test/compat/node_modules/node24/bin/node --max-semi-space-size=16 --min-semi-space-size=16 \
//     bench/promoted-sites.mjs [openai|anthropic] [raw|ours|otel-contrib|...] [calls] [top]
// Configurations as in bench/lib/common.mjs; BENCH_LLMR=<checkout with dist/> profiles another build.
import { Session } from "node:inspector/promises";
import { makeClient } from "./lib/common.mjs";

const [provider = "openai", config = "ours", callsArg = "20000", topArg = "25"] = process.argv.slice(2);
const CALLS = Number(callsArg);
const TOP = Number(topArg);
const setup = makeClient(provider, config);
await setup.otel.steady();
for (let i = 0; i < 3000; i++) await setup.chat();

const session = new Session();
session.connect();
await session.post("HeapProfiler.enable");
await session.post("HeapProfiler.startSampling", { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false });
for (let i = 0; i < CALLS; i++) await setup.chat();
const { profile } = await session.post("HeapProfiler.stopSampling");

const bySite = new Map();
const byOurFrame = new Map();
const add = (map, key, bytes) => map.set(key, (map.get(key) ?? 0) + bytes);
function walk(node, ours) {
  const cf = node.callFrame;
  const url = cf.url.replace(/^.*node_modules\//, "").replace(/^.*\/dist\//, "llm-resilience/");
  const site = `${cf.functionName || "(anonymous)"} ${url}:${cf.lineNumber + 1}`;
  const nearest = url.startsWith("llm-resilience/") ? site : ours;
  if (node.selfSize) {
    add(bySite, site, node.selfSize);
    add(byOurFrame, nearest ?? "(no llm-resilience frame on the stack)", node.selfSize);
  }
  for (const child of node.children) walk(child, nearest);
}
walk(profile.head, undefined);
const print = (title, map) => {
  console.log(`-- ${title} --`);
  for (const [k, v] of [...map].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${(v / CALLS).toFixed(0).padStart(6)} B/call  ${k}`);
};
console.log(`${provider} ${config}, ${CALLS} calls, Node ${process.version}: bytes per call that survived a scavenge`);
print("by allocation site", bySite);
print("by the nearest llm-resilience frame", byOurFrame);
process.exit(0);
