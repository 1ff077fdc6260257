/**
 * `npm run demo -- --stack`: the demo through the viewing stack without Docker (scripts/stack.sh):
 * brings the stack up (or finds it running), points the demo's OTLP exporters at its collector, and
 * at the end reads calls back from Jaeger's HTTP API, so what is printed is what Jaeger stored.
 */
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";

const SCRIPT = resolve(__dirname, "..", "scripts", "stack.sh");

export interface Stack {
  jaeger: string;
  prometheus: string;
  otlp: string;
}

/** Starts the stack (scripts/stack.sh up) and sends this process's telemetry to it. */
export function stackUp(): Stack {
  // Tail sampling decides after decision_wait (60 s in collector-config.yaml); when the demo starts
  // the stack it asks for 10 s, so its traces show up while you watch.
  const env = { ...process.env, TRACES_DECISION_WAIT: process.env.TRACES_DECISION_WAIT ?? "10s" };
  const up = spawnSync("bash", [SCRIPT, "up"], { env, stdio: ["ignore", "inherit", "inherit"] });
  if (up.status !== 0) {
    console.error("demo --stack: scripts/stack.sh up failed (see above)");
    process.exit(1);
  }
  const vars = new Map(
    spawnSync("bash", [SCRIPT, "env"], { encoding: "utf8" })
      .stdout.trim()
      .split("\n")
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] as const),
  );
  const stack = { jaeger: vars.get("JAEGER_URL")!, prometheus: vars.get("PROMETHEUS_URL")!, otlp: vars.get("OTLP_HTTP_URL")! };
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = stack.otlp;
  process.env.OTEL_SERVICE_NAME ??= "llm-demo";
  return stack;
}

interface JaegerSpan {
  spanID: string;
  operationName: string;
  references: { spanID: string }[];
  startTime: number;
  duration: number;
  tags: { key: string; value: unknown }[];
  logs: { fields: { key: string; value: unknown }[] }[];
}

/** Waits (up to `timeoutMs`) until Jaeger has the trace, then prints its span tree as Jaeger stored it. */
export async function printFromJaeger(stack: Stack, traceId: string, title: string, timeoutMs = 90_000): Promise<boolean> {
  const url = `${stack.jaeger}/api/traces/${traceId}`;
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(url).catch(() => undefined);
    if (res?.ok) {
      const spans: JaegerSpan[] = ((await res.json()) as any).data?.[0]?.spans ?? [];
      if (spans.length > 0) {
        console.log(`${title}, from Jaeger (${url}):`);
        for (const line of tree(spans)) console.log(line);
        return true;
      }
    }
    if (Date.now() > until) {
      console.log(`${title}: not in Jaeger after ${timeoutMs / 1000} s (${url}); see the collector log (scripts/stack.sh env prints its folder).`);
      return false;
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

function tree(spans: JaegerSpan[]): string[] {
  const ids = new Set(spans.map((s) => s.spanID));
  const childrenOf = (id: string | undefined) =>
    spans.filter((s) => (id === undefined ? !s.references.some((r) => ids.has(r.spanID)) : s.references.some((r) => r.spanID === id))).sort((a, b) => a.startTime - b.startTime);
  const tag = (s: JaegerSpan, key: string) => s.tags.find((t) => t.key === key)?.value;
  const lines: string[] = [];
  const walk = (s: JaegerSpan, indent: string, parent?: JaegerSpan) => {
    // An attempt's model differs from its call's after a fallback.
    const keys = ["llm_resilience.attempts", "http.response.status_code", "error.type"];
    if (parent && tag(s, "gen_ai.request.model") !== tag(parent, "gen_ai.request.model")) keys.unshift("gen_ai.request.model");
    const attrs = keys.filter((k) => tag(s, k) !== undefined).map((k) => `${k}=${tag(s, k)}`);
    lines.push(`${indent}${s.operationName}  ${(s.duration / 1000).toFixed(0)} ms  ${attrs.join("  ")}`);
    for (const log of s.logs) {
      const fields = Object.fromEntries(log.fields.map((f) => [f.key, f.value]));
      const { event, ...rest } = fields;
      lines.push(`${indent}   (log) ${String(event)} ${Object.entries(rest).map(([k, v]) => `${k.replace(/^llm_resilience\./, "")}=${v}`).join(" ")}`);
    }
    for (const c of childrenOf(s.spanID)) walk(c, `${indent}  `, s);
  };
  for (const root of childrenOf(undefined)) walk(root, "  ");
  return lines;
}
