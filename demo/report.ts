/**
 * Everything the demo prints about the run is computed here from the library's telemetry: the
 * metric points the OnDemandReader collected and the spans the SpanCollector kept.
 */
import type { Attributes, HrTime } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { total, type MetricPoint, type SpanCollector } from "./telemetry.ts";

const M = {
  duration: "gen_ai.client.operation.duration",
  tokens: "gen_ai.client.token.usage",
  cost: "llm_resilience.cost",
  attempts: "llm_resilience.attempts",
  retries: "llm_resilience.retries",
  state: "llm_resilience.breaker.state",
  transitions: "llm_resilience.breaker.transitions",
  rejections: "llm_resilience.breaker.rejections",
  fallbacks: "llm_resilience.fallbacks",
} as const;
const PROVIDER = "gen_ai.provider.name";
const MODEL = "gen_ai.request.model";

const hrMs = (t: HrTime) => t[0] * 1e3 + t[1] / 1e6;
export const spanMs = (s: ReadableSpan) => hrMs(s.duration);

/** USD with 4 decimals (a demo call costs fractions of a cent). */
export function fmtUsd(usd: number): string {
  return `$${usd.toFixed(4)}`;
}

export function fmtDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "-";
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(2)}s`;
}

function quantile(sorted: number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

const STATE_NAMES = ["closed", "half_open", "open"];

/** Counters of one phase or of the whole run (a difference of two cumulative snapshots). */
export interface Totals {
  calls: number;
  ok: number;
  attempts: number;
  retries: number;
  fallbacks: number;
  rejections: number;
  transitions: number;
}

export function totals(points: MetricPoint[], match: Attributes = {}): Totals {
  const calls = total(points, M.duration, match);
  return {
    calls,
    ok: calls - points.filter((p) => p.name === M.duration && p.attributes["error.type"] !== undefined && matches(p, match)).reduce((s, p) => s + p.value, 0),
    attempts: total(points, M.attempts, match),
    retries: total(points, M.retries, match),
    fallbacks: total(points, M.fallbacks, match),
    rejections: total(points, M.rejections, match),
    transitions: total(points, M.transitions, match),
  };
}

function matches(p: MetricPoint, match: Attributes): boolean {
  return Object.entries(match).every(([k, v]) => p.attributes[k] === v);
}

export function diff(a: Totals, b: Totals): Totals {
  const out = { ...a };
  for (const k of Object.keys(out) as (keyof Totals)[]) out[k] = a[k] - b[k];
  return out;
}

/** Current breaker state per model, from the llm_resilience.breaker.state gauge. */
export function breakerStates(points: MetricPoint[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of points) {
    if (p.name !== M.state) continue;
    out.set(String(p.attributes[MODEL] ?? p.attributes["llm_resilience.breaker.key"]), STATE_NAMES[p.value] ?? String(p.value));
  }
  return out;
}

/** "gpt-4o open, claude-sonnet-4-6 half_open" — breakers that are not closed, or "all closed". */
export function breakerLine(points: MetricPoint[]): string {
  const notClosed = [...breakerStates(points)].filter(([, s]) => s !== "closed").map(([m, s]) => `${m} ${s}`);
  return notClosed.length ? `breaker ${notClosed.join(", ")}` : "breakers closed";
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

function table(headers: string[], rows: string[][], rightFrom: number): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => pad(c, widths[i]!, i >= rightFrom)).join("  ").trimEnd();
  const sep = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(headers), sep, ...rows.map((r) => (r[0] === "" && r.every((c) => c === "") ? sep : line(r)))].join("\n");
}

/**
 * The summary table: one row per provider and model (the model the caller asked for; attempts,
 * retries and breaker numbers are those of the model the attempts went to), plus a row per provider.
 */
export function summaryTable(points: MetricPoint[], collector: SpanCollector): string {
  const keys = new Map<string, { provider: string; model: string }>();
  for (const p of points) {
    const provider = p.attributes[PROVIDER];
    const model = p.attributes[MODEL];
    if (typeof provider === "string" && typeof model === "string") keys.set(`${provider}|${model}`, { provider, model });
  }
  const logical = collector.logical();
  const latencies = (f: (s: ReadableSpan) => boolean) => logical.filter(f).map(spanMs).sort((a, b) => a - b);
  const rowFor = (label: string, model: string, match: Attributes, lat: number[]): string[] => {
    const t = totals(points, match);
    const tokIn = total(points, M.tokens, { ...match, "gen_ai.token.type": "input" }, "sum");
    const tokOut = total(points, M.tokens, { ...match, "gen_ai.token.type": "output" }, "sum");
    const cost = total(points, M.cost, match);
    return [
      label,
      model,
      String(t.calls),
      String(t.ok),
      String(t.attempts),
      String(t.retries),
      String(t.transitions),
      String(t.rejections),
      String(t.fallbacks),
      `${tokIn}/${tokOut}`,
      fmtUsd(cost),
      fmtDuration(quantile(lat, 0.5)),
      fmtDuration(quantile(lat, 0.95)),
    ];
  };
  const rows: string[][] = [];
  const providers = [...new Set([...keys.values()].map((k) => k.provider))].sort();
  for (const provider of providers) {
    const models = [...keys.values()].filter((k) => k.provider === provider).map((k) => k.model).sort();
    for (const model of models) {
      rows.push(rowFor(provider, model, { [PROVIDER]: provider, [MODEL]: model }, latencies((s) => s.attributes[PROVIDER] === provider && s.attributes[MODEL] === model)));
    }
    rows.push(rowFor(provider, "(all)", { [PROVIDER]: provider }, latencies((s) => s.attributes[PROVIDER] === provider)));
    rows.push(new Array(13).fill(""));
  }
  rows.pop();
  const headers = ["provider", "model", "calls", "ok", "attempts", "retries", "breaker", "rejected", "fallbacks", "tokens in/out", "cost", "p50", "p95"];
  return table(headers, rows, 2);
}

export const SUMMARY_LEGEND =
  "calls/ok and tokens: logical calls by the model the caller asked for (gen_ai.client.operation.duration, gen_ai.client.token.usage);\n" +
  "attempts/retries: HTTP attempts by the model they went to (llm_resilience.attempts/.retries); breaker: state transitions,\n" +
  "rejected: calls an open breaker turned away, fallbacks: calls moved off this model (llm_resilience.breaker.*, .fallbacks);\n" +
  "cost: USD by the bundled price table for the calls that asked for this model, whichever model answered (llm_resilience.cost);\n" +
  "p50/p95: durations of the logical spans (every attempt and wait included).";

/** Breaker transitions in the order the spans recorded them (events on the logical spans). */
export function transitionLines(collector: SpanCollector, t0: number, points: MetricPoint[]): string[] {
  const byKey = new Map<string, { at: number; from: string; to: string }[]>();
  for (const s of collector.logical()) {
    for (const e of s.events) {
      if (e.name !== "llm_resilience.breaker.transition") continue;
      const a = e.attributes ?? {};
      const key = String(a["llm_resilience.breaker.key"]);
      const list = byKey.get(key) ?? [];
      list.push({ at: hrMs(e.time) - t0, from: String(a["llm_resilience.breaker.from"]), to: String(a["llm_resilience.breaker.to"]) });
      byKey.set(key, list);
    }
  }
  const states = breakerStates(points);
  const out: string[] = [];
  for (const [key, list] of [...byKey].sort()) {
    list.sort((a, b) => a.at - b.at);
    const model = key.split("|").slice(2).join("|");
    const steps = list.map((x) => `${x.to} @${(x.at / 1000).toFixed(1)}s`).join(" → ");
    out.push(`  ${key}: ${list[0]!.from} → ${steps}   (now ${states.get(model) ?? "?"})`);
  }
  return out;
}

export function fallbackLines(points: MetricPoint[]): string[] {
  const agg = new Map<string, Map<string, number>>();
  for (const p of points) {
    if (p.name !== M.fallbacks) continue;
    const edge = `${p.attributes[PROVIDER]} ${p.attributes[MODEL]} → ${p.attributes["llm_resilience.fallback.to"]}`;
    const reasons = agg.get(edge) ?? new Map<string, number>();
    const reason = String(p.attributes["llm_resilience.fallback.reason"]);
    reasons.set(reason, (reasons.get(reason) ?? 0) + p.value);
    agg.set(edge, reasons);
  }
  return [...agg].map(([edge, reasons]) => {
    const n = [...reasons.values()].reduce((a, b) => a + b, 0);
    const why = [...reasons].sort((a, b) => b[1] - a[1]).map(([r, c]) => `${r} ${c}`).join(", ");
    return `  ${edge}: ${n} (${why})`;
  });
}

// ------------------------------------------------------------------------------ span tree

const ROOT_KEYS = [
  "gen_ai.provider.name",
  "llm_resilience.attempts",
  "gen_ai.response.model",
  "error.type",
  "gen_ai.request.stream",
];
const ATTEMPT_KEYS = [
  "llm_resilience.attempt.number",
  "http.request.resend_count",
  "gen_ai.request.model",
  "http.response.status_code",
  "error.type",
  "llm_resilience.provider.request_id",
];
const SHORT: Record<string, string> = {
  "llm_resilience.attempt.number": "attempt.number",
  "llm_resilience.retry.delay_ms": "delay_ms",
  "llm_resilience.retry.delay_source": "delay_source",
  "llm_resilience.provider.request_id": "request_id",
  "llm_resilience.fallback.from": "from",
  "llm_resilience.fallback.to": "to",
  "llm_resilience.fallback.reason": "reason",
  "llm_resilience.breaker.key": "key",
  "llm_resilience.breaker.from": "from",
  "llm_resilience.breaker.to": "to",
  "llm_resilience.breaker.store": "store",
  "llm_resilience.give_up.reason": "reason",
};

function attrs(a: Attributes, keys: string[] | undefined): string {
  const list = keys ?? Object.keys(a);
  return list
    .filter((k) => a[k] !== undefined)
    .map((k) => `${SHORT[k] ?? k}=${Array.isArray(a[k]) ? (a[k] as unknown[]).join(",") : String(a[k])}`)
    .join(" ");
}

function usage(a: Attributes): string {
  const i = a["gen_ai.usage.input_tokens"];
  const o = a["gen_ai.usage.output_tokens"];
  return i !== undefined || o !== undefined ? `usage ${i ?? "-"}/${o ?? "-"}` : "";
}

const KIND = ["INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"];

/** The design.md style tree of one logical call: attempts and the decision events between them. */
export function spanTree(root: ReadableSpan, collector: SpanCollector): string {
  const t0 = hrMs(root.startTime);
  const children = collector.childrenOf(root);
  const nameWidth = Math.max(root.name.length, ...children.map((c) => c.name.length + 3)) + 2;
  const lines = [
    `${pad(root.name, nameWidth)}${pad(KIND[root.kind]!, 9)}${pad(fmtDuration(spanMs(root)), 8)}${[attrs(root.attributes, ROOT_KEYS), usage(root.attributes)].filter(Boolean).join("  ")}`,
    `${" ".repeat(nameWidth)}trace_id=${root.spanContext().traceId}`,
  ];
  type Item = { at: number; attempt?: ReadableSpan; event?: ReadableSpan["events"][number] };
  const items: Item[] = [
    ...children.map((c): Item => ({ at: hrMs(c.startTime), attempt: c })),
    ...root.events.map((e): Item => ({ at: hrMs(e.time), event: e })),
  ];
  // Events first on a tie: a decision precedes the attempt it leads to.
  items.sort((a, b) => a.at - b.at || (a.event ? -1 : 1));
  const lastAttempt = items.map((i) => !!i.attempt).lastIndexOf(true);
  items.forEach((it, idx) => {
    const more = idx < lastAttempt;
    if (it.attempt) {
      const c = it.attempt;
      const branch = idx === lastAttempt ? "└─ " : "├─ ";
      const off = `+${fmtDuration(it.at - t0)}`;
      lines.push(
        `${branch}${pad(c.name, nameWidth - 3)}${pad(KIND[c.kind]!, 9)}${pad(fmtDuration(spanMs(c)), 8)}${[off, attrs(c.attributes, ATTEMPT_KEYS), usage(c.attributes)].filter(Boolean).join("  ")}`,
      );
    } else if (it.event) {
      const prefix = more ? "│    " : "     ";
      lines.push(`${prefix}(event on parent, +${fmtDuration(it.at - t0)}) ${it.event.name}  ${attrs(it.event.attributes ?? {}, undefined)}`);
    }
  });
  return lines.join("\n");
}

/** A successful call that was retried after a 429 with a server-sent delay, else any retried call. */
export function pickRetried(collector: SpanCollector): ReadableSpan | undefined {
  const logical = collector.logical().filter((s) => s.events.some((e) => e.name === "llm_resilience.retry"));
  const serverDelay = (s: ReadableSpan) =>
    s.events.some((e) => e.name === "llm_resilience.retry" && String(e.attributes?.["llm_resilience.retry.delay_source"]).startsWith("retry-after"));
  const ok = (s: ReadableSpan) => s.attributes["error.type"] === undefined;
  return (
    logical.find((s) => ok(s) && serverDelay(s) && s.attributes["gen_ai.provider.name"] === "openai" && s.attributes["llm_resilience.attempts"] === 2) ??
    logical.find((s) => ok(s) && serverDelay(s)) ??
    logical.find(ok) ??
    logical[0]
  );
}

/**
 * A call that was served by the fallback model, preferring one from the outage: its own retries
 * failed with 5xx / resets and it carries the breaker's transition to open (or was rejected by it).
 */
export function pickFallback(collector: SpanCollector): ReadableSpan | undefined {
  const logical = collector.logical().filter((s) => s.events.some((e) => e.name === "llm_resilience.fallback"));
  const has = (s: ReadableSpan, name: string, pred: (a: Attributes) => boolean = () => true) =>
    s.events.some((e) => e.name === name && pred(e.attributes ?? {}));
  const score = (s: ReadableSpan) =>
    (s.attributes["error.type"] === undefined ? 8 : 0) +
    (has(s, "llm_resilience.breaker.transition", (a) => a["llm_resilience.breaker.to"] === "open") ? 4 : 0) +
    (has(s, "llm_resilience.retry", (a) => a["error.type"] !== "rate_limit_error") ? 2 : 0) +
    (has(s, "llm_resilience.breaker.reject") ? 1 : 0);
  let best: ReadableSpan | undefined;
  for (const s of logical) if (!best || score(s) > score(best)) best = s;
  return best;
}
