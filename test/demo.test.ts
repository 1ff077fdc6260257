/**
 * `npm run demo` end to end: the demo runs as a child process (the same `node demo/index.mjs` the
 * npm script runs, against the built dist/) with DEMO_SPEED=fast (every phase ×0.25, ~9 s), and its
 * output is checked for the story: retries, a breaker that opened and closed again, fallbacks, the
 * summary table and the span tree. A second run sends its telemetry to an OTLP receiver instead.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";

const ROOT = resolve(__dirname, "..");

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** The demo with a scrubbed environment (no OTEL_* / LLM_RESILIENCE_* / API keys from the parent). */
function runDemo(env: Record<string, string>, timeoutMs = 60_000): Promise<Run> {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(OTEL_|LLM_RESILIENCE_|DEMO_|OPENAI_|ANTHROPIC_|NODE_OPTIONS$|NODE_TEST_CONTEXT$)/.test(k)) clean[k] = v;
  }
  const started = Date.now();
  const child = spawn(process.execPath, ["demo/index.mjs"], { cwd: ROOT, env: { ...clean, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((res, rej) => {
    child.once("error", rej);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

const describe = (r: Run) => `exit ${r.code} signal ${r.signal} after ${r.ms} ms\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

/** The summary table's rows as objects keyed by its header. */
function tableRows(stdout: string): Record<string, string>[] {
  const lines = stdout.split("\n");
  const h = lines.findIndex((l) => /^provider\s+model\s+calls\s+ok\s+attempts\s+retries\s+breaker\s+rejected\s+fallbacks/.test(l));
  assert.ok(h >= 0, "summary table header");
  const headers = lines[h]!.trim().split(/\s{2,}/);
  const rows: Record<string, string>[] = [];
  for (const line of lines.slice(h + 1)) {
    if (/^-+(\s+-+)*$/.test(line.trim())) continue;
    if (!/^(openai|anthropic)\s/.test(line)) break;
    const cells = line.trim().split(/\s{2,}/);
    rows.push(Object.fromEntries(headers.map((k, i) => [k, cells[i] ?? ""])));
  }
  return rows;
}

function totalsLine(stdout: string): Record<string, number> {
  const m = /^Totals: calls (\d+) \(ok (\d+)\), attempts (\d+), retries (\d+), fallbacks (\d+), rejected (\d+), breaker transitions (\d+)$/m.exec(
    stdout,
  );
  assert.ok(m, "Totals line");
  const [, calls, ok, attempts, retries, fallbacks, rejected, transitions] = m.map(Number);
  return { calls: calls!, ok: ok!, attempts: attempts!, retries: retries!, fallbacks: fallbacks!, rejected: rejected!, transitions: transitions! };
}

test("the demo plays the whole story in fast mode and prints the summary and the span tree", { timeout: 90_000 }, async () => {
  assert.ok(existsSync(resolve(ROOT, "dist", "index.js")), "dist/ is built (npm run build)");
  const dir = mkdtempSync(join(tmpdir(), "llm-resilience-demo-test-"));
  const logFile = join(dir, "calls.log");
  let r: Run;
  let logLines: any[];
  try {
    r = await runDemo({ DEMO_SPEED: "fast", DEMO_LOG_FILE: logFile });
    logLines = existsSync(logFile)
      ? readFileSync(logFile, "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l))
      : [];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const out = r.stdout;
  assert.equal(r.code, 0, describe(r));
  assert.ok(r.ms < 45_000, `fast mode took ${r.ms} ms`);
  assert.equal(r.stderr.trim(), "", `nothing on stderr\n${describe(r)}`);

  // Progress: one line per phase start and end, in order.
  const phases = [...out.matchAll(/▶ phase (\d)\/4 ([^(]+) \(/g)].map((m) => `${m[1]} ${m[2]!.trim()}`);
  assert.deepEqual(phases, ["1 healthy traffic", "2 429 storm", "3 gpt-4o down", "4 recovery"], describe(r));
  assert.equal([...out.matchAll(/^\[\s*[\d.]+s\]\s+done: calls \d+/gm)].length, 4, describe(r));

  // Summary table, per provider and model, from the telemetry.
  const rows = tableRows(out);
  const row = (provider: string, model: string) => rows.find((x) => x.provider === provider && x.model === model);
  for (const [p, m] of [
    ["openai", "gpt-4o"],
    ["openai", "gpt-4o-mini"],
    ["openai", "(all)"],
    ["anthropic", "claude-sonnet-4-6"],
    ["anthropic", "claude-haiku-4-5"],
    ["anthropic", "(all)"],
  ] as const) {
    const x = row(p, m);
    assert.ok(x, `row ${p} ${m}\n${out}`);
    assert.ok(Number(x.calls) > 0 && Number(x.ok) > 0, `${p} ${m} has successful calls`);
    assert.match(x["tokens in/out"]!, /^[1-9]\d*\/[1-9]\d*$/);
    assert.match(x.cost!, /^\$\d+\.\d{4}$/);
    assert.ok(Number(x.cost!.slice(1)) > 0, `${p} ${m} is priced: ${x.cost}`);
    assert.match(x.p50!, /^\d+(ms|\.\d\ds)$/);
    assert.match(x.p95!, /^\d+(ms|\.\d\ds)$/);
  }
  const gpt4o = row("openai", "gpt-4o")!;
  assert.ok(Number(gpt4o.breaker) >= 2, `gpt-4o breaker opened and closed: ${JSON.stringify(gpt4o)}`);
  assert.ok(Number(gpt4o.fallbacks) > 0, `gpt-4o fell back: ${JSON.stringify(gpt4o)}`);
  assert.ok(Number(gpt4o.rejected) > 0, `the open breaker rejected calls: ${JSON.stringify(gpt4o)}`);
  assert.ok(Number(row("openai", "(all)")!.retries) > 0);
  assert.ok(Number(row("anthropic", "(all)")!.retries) > 0);

  const t = totalsLine(out);
  assert.ok(t.retries > 0 && t.fallbacks > 0 && t.transitions >= 2, JSON.stringify(t));
  assert.ok(t.attempts > t.calls - t.rejected, "retries add attempts");
  // The telemetry agrees with what the callers saw.
  assert.doesNotMatch(out, /^WARNING: telemetry counted/m);
  const seen = /^The callers saw (\d+) answers and (\d+) errors/m.exec(out);
  assert.ok(seen);
  assert.equal(Number(seen[1]), t.ok);
  assert.equal(Number(seen[1]) + Number(seen[2]), t.calls);

  // One pino line per logical call, with its trace id.
  assert.ok(
    out.split("\n").some((l) => l.startsWith("Logs: ") && l.endsWith(` in ${logFile}`)),
    "says where the logs went",
  );
  const callLines = logLines.filter((l) => l.msg === "llm call" || l.msg === "llm call failed");
  assert.equal(callLines.length, t.calls, "a log line per call");
  assert.ok(callLines.every((l) => /^[0-9a-f]{32}$/.test(l.trace_id)));
  assert.ok(logLines.some((l) => l.msg === "llm circuit breaker transition"));

  // The breaker's story: opened in the outage, probed, closed in the recovery.
  const transitions = /^ {2}openai\|127\.0\.0\.1:\d+\|gpt-4o: closed → open @[\d.]+s( → \S+ @[\d.]+s)* → closed @[\d.]+s {3}\(now closed\)$/m;
  assert.match(out, transitions, describe(r));
  assert.match(out, /→ half_open @[\d.]+s → closed/);
  assert.match(out, /^ {2}openai gpt-4o → gpt-4o-mini: \d+ \(.*breaker_open \d+/m);

  // Span tree of a retried call (no OTLP endpoint: printed to stdout).
  assert.match(out, /^Traces: kept in this process/m);
  const tree = out.slice(out.indexOf("Span tree of a retried call:"));
  assert.ok(tree.length > 30, "span tree printed");
  const [, rootLine, traceLine, ...rest] = tree.split("\n");
  assert.match(rootLine!, /^chat \S+ +CLIENT +\d+(ms|\.\d\ds) +gen_ai\.provider\.name=\w+ llm_resilience\.attempts=[2-9]/);
  assert.match(traceLine!, /trace_id=[0-9a-f]{32}$/);
  assert.match(rest[0]!, /^├─ chat \S+ attempt +INTERNAL .*attempt\.number=1 .*error\.type=\S+/);
  assert.match(
    rest[1]!,
    /^│ +\(event on parent, \+\d+ms\) llm_resilience\.retry +attempt\.number=1 delay_ms=\d+ delay_source=(retry-after-ms|retry-after|backoff)/,
  );
  assert.match(tree, /^└─ chat \S+ attempt +INTERNAL .*attempt\.number=\d http\.request\.resend_count=\d .*http\.response\.status_code=200/m);
  assert.match(out, /Span tree of a call that fell back:[\s\S]*llm_resilience\.fallback +from=\S+ to=\S+ reason=\w+/);
});

test("with OTEL_EXPORTER_OTLP_ENDPOINT the demo exports traces and metrics over OTLP instead of printing the tree", { timeout: 60_000 }, async () => {
  const received: Record<string, number> = {};
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      received[req.url ?? ""] = (received[req.url ?? ""] ?? 0) + 1;
      res.writeHead(200, { "content-type": req.headers["content-type"] ?? "application/x-protobuf" });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const dir = mkdtempSync(join(tmpdir(), "llm-resilience-demo-test-"));
  try {
    const { port } = server.address() as AddressInfo;
    const r = await runDemo({ DEMO_SPEED: "0.1", DEMO_LOG_FILE: join(dir, "calls.log"), OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` });
    assert.equal(r.code, 0, describe(r));
    assert.match(r.stdout, new RegExp(`^Traces and metrics: exported over OTLP to http://127\\.0\\.0\\.1:${port} `, "m"));
    assert.match(r.stdout, /^ {2}A retried call: +trace [0-9a-f]{32} /m);
    assert.doesNotMatch(r.stdout, /Span tree of/);
    assert.ok(tableRows(r.stdout).length >= 6, "summary still printed");
    assert.ok((received["/v1/traces"] ?? 0) > 0, `traces posted: ${JSON.stringify(received)}`);
    assert.ok((received["/v1/metrics"] ?? 0) > 0, `metrics posted: ${JSON.stringify(received)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await new Promise((r) => server.close(r));
  }
});
