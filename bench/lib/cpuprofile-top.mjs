// Summarises a .cpuprofile (node --cpu-prof): top self-time frames, and self time grouped by package.
// Usage: node bench/lib/cpuprofile-top.mjs <file.cpuprofile> [topN] [filter-substring]
import { readFileSync } from "node:fs";

export function summarise(file, topN = 25, filter = "") {
  const prof = JSON.parse(readFileSync(file, "utf8"));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = prof.timeDeltas;
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i];
    self.set(id, (self.get(id) ?? 0) + (dt[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const frames = new Map();
  const groups = new Map();
  for (const [id, us] of self) {
    const n = byId.get(id);
    const cf = n.callFrame;
    const url = cf.url.replace(/^file:\/\//, "");
    const key = `${cf.functionName || "(anonymous)"} ${short(url)}:${cf.lineNumber + 1}`;
    frames.set(key, (frames.get(key) ?? 0) + us);
    const g = group(url, cf.functionName);
    groups.set(g, (groups.get(g) ?? 0) + us);
  }
  const pct = (us) => ((100 * us) / total).toFixed(1).padStart(5) + "%";
  const lines = [];
  lines.push(`total sampled: ${(total / 1000).toFixed(0)} ms`);
  lines.push("-- self time by package --");
  for (const [g, us] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 15)) lines.push(`${pct(us)}  ${g}`);
  lines.push(`-- top ${topN} self-time frames${filter ? ` matching "${filter}"` : ""} --`);
  for (const [k, us] of [...frames].filter(([k]) => k.includes(filter)).sort((a, b) => b[1] - a[1]).slice(0, topN)) {
    lines.push(`${pct(us)}  ${k}`);
  }
  if (filter) {
    // Inclusive time: each sample counts once for every distinct matching frame on its stack.
    const parent = new Map();
    for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const incl = new Map();
    for (let i = 0; i < prof.samples.length; i++) {
      const seen = new Set();
      for (let id = prof.samples[i]; id !== undefined; id = parent.get(id)) {
        const cf = byId.get(id).callFrame;
        const key = `${cf.functionName || "(anonymous)"} ${short(cf.url.replace(/^file:\/\//, ""))}:${cf.lineNumber + 1}`;
        if (key.includes(filter)) seen.add(key);
      }
      for (const k of seen) incl.set(k, (incl.get(k) ?? 0) + (dt[i] ?? 0));
    }
    lines.push(`-- top ${topN} inclusive-time frames matching "${filter}" --`);
    for (const [k, us] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, topN)) lines.push(`${pct(us)}  ${k}`);
  }
  return lines.join("\n");
}

export function short(url) {
  const i = url.lastIndexOf("node_modules/");
  if (i >= 0) return url.slice(i + 13);
  const j = url.indexOf("/dist/");
  if (j >= 0) return "llm-resilience" + url.slice(j);
  return url.replace(/^.*\/bench\//, "bench/");
}

/** Self time per group and per frame, in µs per call (samples of "(idle)" left out). */
export function breakdown(file, calls) {
  const prof = JSON.parse(readFileSync(file, "utf8"));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const groups = new Map();
  const frames = new Map();
  for (let i = 0; i < prof.samples.length; i++) {
    const cf = byId.get(prof.samples[i]).callFrame;
    if (cf.functionName === "(idle)") continue;
    const us = prof.timeDeltas[i] ?? 0;
    const url = cf.url.replace(/^file:\/\//, "");
    const g = group(url, cf.functionName);
    groups.set(g, (groups.get(g) ?? 0) + us / calls);
    const key = `${cf.functionName || "(anonymous)"} ${short(url)}:${cf.lineNumber + 1}`;
    frames.set(key, { us: (frames.get(key)?.us ?? 0) + us / calls, group: g });
  }
  return { groups, frames };
}

export function group(url, fn) {
  if (!url) return fn.startsWith("(") ? fn : "(native/V8 builtins)";
  if (/^node:(internal\/)?async_(hooks|local_storage)|^node:internal\/async_local_storage/.test(url)) return "node: async_hooks (AsyncLocalStorage context)";
  if (url.startsWith("node:")) return "node: core";
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url.slice(url.lastIndexOf("node_modules/")));
  if (m) return m[1];
  if (url.includes("/dist/")) return "llm-resilience (dist)";
  return url;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(summarise(process.argv[2], Number(process.argv[3] ?? 25), process.argv[4] ?? ""));
}
