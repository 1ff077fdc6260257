/**
 * The viewing stack end to end, with nothing mocked between the library and what a user looks at:
 *
 *   fake provider (this process) ◀── HTTP ── app child (`node --import llm-resilience/register`, OTLP/HTTP)
 *                                                 │ spans every 200 ms, metrics every 1 s
 *                                                 ▼
 *   scripts/stack.sh run:  collector (collector-config.yaml) ── tail-sampled traces ──▶ Jaeger (deploy/jaeger/config.yaml)
 *                          └─ prometheus exporter ◀── scrape ── Prometheus (deploy/prometheus/prometheus.yml, alerts.yml)
 *   this test ── Jaeger HTTP API (/api/services, /api/traces) and Prometheus HTTP API
 *
 * The phases, each scripted on the fake provider so that every call's kind is known from its phase:
 *   healthy  HEALTHY calls round-robin over gpt-4o, gpt-4o-mini and gpt-4.1, every third streamed;
 *            nothing fails, so only tail sampling's probabilistic policy keeps these traces.
 *   retry    RETRIED calls of gpt-4o-mini, each answered 429 (retry-after-ms: 5) once and then 200:
 *            llm_resilience.attempts=2 and a retry event.
 *   outage   gpt-4o and gpt-4.1 answer 500 until LLMCallErrorRatioHigh fires: gpt-4o calls retry and
 *            fall back to gpt-4o-mini (once its breaker opens: rejected, then fall back); gpt-4.1
 *            (no fallback) calls give up, then are rejected by their open breaker.
 *   spend    one gpt-4o-mini answer reports 2,000,000 output tokens (~1.2 USD), which exhausts
 *            LLM_RESILIENCE_SPEND_LIMIT_USD=1; the next SPEND_REJECTED calls are refused before sending.
 * Every call of the retry and outage phases and every refused call must reach Jaeger; the healthy
 * calls (and the one expensive call) are kept at the collector's default percentage.
 *
 * Short waits come from configuration, not from other files: TRACES_DECISION_WAIT=5s (tail
 * sampling's wait, 60s by default; a call's spans reach the collector within a few hundred ms of
 * each other, so 5 s leaves room on a loaded machine); Prometheus loads a copy of prometheus.yml with only `global`
 * changed (1 s scrape and evaluation) and a copy of alerts.yml with only the `for:` durations
 * changed (2 s), both checked against the originals; everything else is the files compose mounts.
 *
 * The binomial bound: the probabilistic policy keeps a trace when a hash of its (random) trace id
 * falls under the percentage, so the number of healthy traces kept is Binomial(n, p). The test
 * accepts the central interval that holds with probability at least 1 - 1e-6, computed exactly
 * from the binomial distribution (n = 1001, p = 0.10: 57..149 of an expected 100).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { startFakeProvider } from "./fake-provider/index.ts";
import { sleep } from "./helpers/wait.ts";

const ROOT = resolve(__dirname, "..");
const STACK = resolve(ROOT, "scripts", "stack.sh");
const APP = resolve(ROOT, "test", "fixtures", "stack-app", "app.mjs");
const ALERT = "LLMCallErrorRatioHigh";
const HEALTHY = 1000;
const RETRIED = 10;
const SPEND_REJECTED = 5;
/** The decision events of the contract that make tail sampling keep a trace. */
const DECISIONS = [
  "llm_resilience.retry",
  "llm_resilience.fallback",
  "llm_resilience.give_up",
  "llm_resilience.breaker.transition",
  "llm_resilience.breaker.reject",
];

// ------------------------------------------------------------------------------ helpers

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

/** This process's environment without anything that configures OpenTelemetry, us or the stack. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(OTEL_|LLM_RESILIENCE_|OPENAI_|ANTHROPIC_|STACK_|TRACES_|OTELCOL_|JAEGER_|NODE_OPTIONS$|NODE_TEST_CONTEXT$)/.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

/**
 * The central interval [lo, hi] of Binomial(n, p) whose two tails each hold at most alpha/2
 * (exact: the pmf is built by the recurrence pmf(k+1) = pmf(k)·(n-k)/(k+1)·p/(1-p)).
 */
function binomialInterval(n: number, p: number, alpha: number): [number, number] {
  if (p <= 0) return [0, 0];
  if (p >= 1) return [n, n];
  const pmf = [(1 - p) ** n];
  for (let k = 0; k < n; k++) pmf.push((pmf[k]! * (n - k) * p) / ((k + 1) * (1 - p)));
  let lo = 0;
  for (let tail = 0; tail + pmf[lo]! <= alpha / 2; lo++) tail += pmf[lo]!;
  let hi = n;
  for (let tail = 0; tail + pmf[hi]! <= alpha / 2; hi--) tail += pmf[hi]!;
  return [lo, hi];
}

/** Metric names in a PromQL expression of ours (label names and matchers removed first). */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\$\{?[a-zA-Z_]+\}?/g, " ");
  return [...new Set(bare.match(/\b(?:gen_ai|llm_resilience)_[a-z0-9_]+\b/g) ?? [])];
}

interface JaegerKV {
  key: string;
  type: string;
  value: unknown;
}
interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: { refType: string; spanID: string }[];
  duration: number;
  tags: JaegerKV[];
  logs: { timestamp: number; fields: JaegerKV[] }[];
}
interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
}

const tag = (s: JaegerSpan, key: string) => s.tags.find((t) => t.key === key)?.value;
const events = (s: JaegerSpan) => s.logs.map((l) => String(l.fields.find((f) => f.key === "event")?.value));
const logical = (t: JaegerTrace) => t.spans.filter((s) => tag(s, "span.kind") === "client" && tag(s, "otel.scope.name") === "llm-resilience");

/** Whether tail sampling must keep this trace: an error, a retry, or a decision event. */
function mustKeep(t: JaegerTrace): boolean {
  return t.spans.some(
    (s) =>
      tag(s, "error") === true ||
      tag(s, "error.type") !== undefined ||
      Number(tag(s, "llm_resilience.attempts") ?? 0) >= 2 ||
      events(s).some((e) => DECISIONS.includes(e)),
  );
}

interface PhaseResult {
  done: string;
  ok: number;
  failed: number;
  errors: Record<string, number>;
}

// ------------------------------------------------------------------------------ the test

test("the viewing stack: register -> OTLP -> collector -> Jaeger and Prometheus, with an outage", { timeout: 240_000 }, async (t) => {
  const built = spawnSync("bash", [STACK, "check"], { encoding: "utf8" });
  if (built.status !== 0) assert.fail(built.stderr.trim());
  assert.ok(!spawnSync("prometheus", ["--version"]).error, "prometheus is not on PATH: apt-get install prometheus (.ci/run does)");
  assert.ok(existsSync(resolve(ROOT, "dist", "index.js")), "dist/ is built (npm run build)");

  const dir = mkdtempSync(join(tmpdir(), "llm-resilience-stack-e2e-"));
  const fake = await startFakeProvider({ defaults: { latencyMs: 2 } });
  const t0 = Date.now();
  const at = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  const timeline: string[] = [];
  let stack: ChildProcess | undefined;
  let stackOut = "";
  let app: ChildProcess | undefined;
  let appOut = "";
  const logs = () =>
    `\n--- stack:\n${stackOut.slice(-4000)}\n--- app:\n${appOut.slice(-2000)}\n--- collector log:\n${tail(join(dir, "run", "collector.log"))}`;
  const tail = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").slice(-3000) : "(none)");
  try {
    // --- Prometheus files: the originals with only the intervals and `for:` shortened
    const promSource = readFileSync(resolve(ROOT, "deploy/prometheus/prometheus.yml"), "utf8");
    const promCopy = promSource.replace(/^(\s+(?:scrape|evaluation)_interval:\s*)\S+$/gm, "$11s");
    const [original, copy] = [parse(promSource), parse(promCopy)];
    assert.deepEqual({ ...copy, global: undefined }, { ...original, global: undefined }, "only `global` differs");
    assert.deepEqual(copy.global, { scrape_interval: "1s", evaluation_interval: "1s" });
    const rulesSource = readFileSync(resolve(ROOT, "deploy/prometheus/alerts.yml"), "utf8");
    const rulesCopy = rulesSource.replace(/^(\s+for:\s*)\S+(\s*)$/gm, "$12s$2");
    const rules = parse(rulesSource).groups.flatMap((g: any) => g.rules);
    parse(rulesCopy)
      .groups.flatMap((g: any) => g.rules)
      .forEach((r: any, i: number) => {
        assert.equal(r.expr, rules[i].expr);
        assert.equal(r.for, "2s");
      });
    writeFileSync(join(dir, "prometheus.yml"), promCopy);
    writeFileSync(join(dir, "alerts.yml"), rulesCopy);
    const samplingDefault = /\$\{env:TRACES_SAMPLING_PERCENTAGE:-(\d+)\}/.exec(readFileSync(resolve(ROOT, "collector-config.yaml"), "utf8"));
    assert.ok(samplingDefault, "collector-config.yaml reads TRACES_SAMPLING_PERCENTAGE with a default");
    const percentage = Number(samplingDefault[1]);

    // --- the stack, on free loopback ports
    const names = [
      "OTLP_GRPC",
      "OTLP_HTTP",
      "COLLECTOR_PROMETHEUS",
      "COLLECTOR_METRICS",
      "COLLECTOR_HEALTH",
      "JAEGER",
      "JAEGER_GRPC",
      "JAEGER_OTLP",
      "PROMETHEUS",
      "APP_METRICS",
    ];
    const port: Record<string, number> = {};
    for (const n of names) port[n] = await freePort();
    const stackEnv: Record<string, string> = Object.fromEntries(names.map((n) => [`STACK_${n}_PORT`, String(port[n])]));
    stack = spawn("bash", [STACK, "run"], {
      cwd: ROOT,
      detached: true, // its own process group: teardown signals the script and all it started
      stdio: ["ignore", "pipe", "pipe"],
      env: cleanEnv({
        ...stackEnv,
        STACK_RUN_DIR: join(dir, "run"),
        STACK_PROMETHEUS_CONFIG: join(dir, "prometheus.yml"),
        STACK_PROMETHEUS_RULES: join(dir, "alerts.yml"),
        TRACES_DECISION_WAIT: "5s",
      }),
    });
    stack.stdout!.setEncoding("utf8").on("data", (d: string) => (stackOut += d));
    stack.stderr!.setEncoding("utf8").on("data", (d: string) => (stackOut += d));
    for (const until = Date.now() + 60_000; !existsSync(join(dir, "run", "ready")); ) {
      assert.ok(stack.exitCode === null, `scripts/stack.sh run exited${logs()}`);
      assert.ok(Date.now() < until, `the stack was not ready within 60 s${logs()}`);
      await sleep(200);
    }
    timeline.push(`${at()} stack up`);

    const jaeger = async (path: string): Promise<any> => {
      const res = await fetch(`http://127.0.0.1:${port.JAEGER}${path}`);
      assert.equal(res.status, 200, `Jaeger ${path}: ${res.status}`);
      return ((await res.json()) as any).data;
    };
    const prom = async (path: string): Promise<any> => {
      const res = await fetch(`http://127.0.0.1:${port.PROMETHEUS}${path}`);
      const body: any = await res.json();
      assert.equal(body.status, "success", `${path}: ${JSON.stringify(body)}`);
      return body.data;
    };
    const query = async (q: string): Promise<any[]> => (await prom(`/api/v1/query?query=${encodeURIComponent(q)}`)).result;
    const scalar = async (q: string): Promise<number> => Number((await query(q))[0]?.value[1] ?? Number.NaN);
    let last = "";
    const observe = async (phase: string) => {
      const active = ((await prom("/api/v1/alerts")).alerts as any[]).filter((a) => a.labels.alertname === ALERT);
      const state = active.some((a) => a.state === "firing") ? "firing" : active.length ? "pending" : "inactive";
      if (state !== last) {
        timeline.push(
          `${at()} [${phase}] ${ALERT} ${state} ${active.map((a) => `${a.labels.gen_ai_request_model}=${Number(a.value).toFixed(2)}`).join(" ")}`,
        );
        last = state;
      }
      return active;
    };

    // --- the app
    const service = `stack-e2e-${process.pid}`;
    app = spawn(process.execPath, ["--import", "llm-resilience/register", APP], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      env: cleanEnv({
        FAKE_OPENAI_BASE_URL: fake.openaiBaseURL,
        OTEL_SERVICE_NAME: service,
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port.OTLP_HTTP}`,
        OTEL_METRIC_EXPORT_INTERVAL: "1000",
        OTEL_BSP_SCHEDULE_DELAY: "200",
        OTEL_LOGS_EXPORTER: "none",
        LLM_RESILIENCE_LOG_LEVEL: "error",
        LLM_RESILIENCE_MAX_ATTEMPTS: "2",
        LLM_RESILIENCE_BASE_DELAY_MS: "5",
        LLM_RESILIENCE_MAX_DELAY_MS: "10",
        LLM_RESILIENCE_BREAKER_FAILURES: "5",
        LLM_RESILIENCE_BREAKER_COOLDOWN_MS: "600000",
        LLM_RESILIENCE_FALLBACKS: JSON.stringify({ "gpt-4o": ["gpt-4o-mini"] }),
        LLM_RESILIENCE_SPEND_LIMIT_USD: "1",
      }),
    });
    app.stdout!.setEncoding("utf8").on("data", (d: string) => (appOut += d));
    app.stderr!.setEncoding("utf8").on("data", (d: string) => (appOut += d));
    const appExited = new Promise<number | null>((r) => app!.once("close", (code) => r(code)));
    const message = () =>
      new Promise<any>((res, rej) => {
        const onExit = () => rej(new Error(`the app exited${logs()}`));
        app!.once("exit", onExit);
        app!.once("message", (m) => {
          app!.off("exit", onExit);
          res(m);
        });
      });
    const ask = async (msg: object): Promise<PhaseResult> => {
      const reply = message();
      app!.send(msg);
      return reply;
    };
    await message(); // ready

    // --- healthy, in two parts: Prometheus must hold a first sample of the series before most of the
    // traffic, or rate() sees no increase and the alert's traffic condition (> 0.02 calls/s) is false.
    const countedCalls = async (expected: number) => {
      for (const until = Date.now() + 30_000; ; ) {
        const n = await scalar("sum(gen_ai_client_operation_duration_count)");
        if (n === expected) return;
        assert.ok(Date.now() < until, `Prometheus counts ${n} calls, the app made ${expected}${logs()}`);
        await observe("healthy");
        await sleep(250);
      }
    };
    const healthyModels = ["gpt-4o", "gpt-4o-mini", "gpt-4.1"];
    const warmUp = await ask({ phase: "calls", models: healthyModels, calls: 30, concurrency: 8, streamEvery: 4 });
    await countedCalls(30);
    const rest = await ask({ phase: "calls", models: healthyModels, calls: HEALTHY - 30, concurrency: 8, streamEvery: 4 });
    assert.deepEqual([warmUp.ok + rest.ok, warmUp.failed + rest.failed], [HEALTHY, 0], JSON.stringify([warmUp, rest]));
    timeline.push(`${at()} [healthy] ${HEALTHY} calls answered`);
    // Every call counted once in Prometheus, through the collector's exporter and the relabel rules.
    await countedCalls(HEALTHY);
    const counted = Date.now();
    timeline.push(`${at()} [healthy] Prometheus counts all ${HEALTHY} calls`);
    const traffic = await query("sum by (gen_ai_request_model) (rate(gen_ai_client_operation_duration_count[5m])) > 0.02");
    assert.ok(
      traffic.some((r) => r.metric.gen_ai_request_model === "gpt-4.1"),
      `the traffic half of ${ALERT} holds while healthy: ${JSON.stringify(traffic)}`,
    );
    for (;;) {
      assert.equal((await observe("healthy")).length, 0, `${ALERT} is active while every call succeeds`);
      const rule = (await prom("/api/v1/rules")).groups.flatMap((g: any) => g.rules).find((r: any) => r.name === ALERT);
      if (new Date(rule.lastEvaluation).getTime() > counted + 1000) {
        assert.equal(rule.health, "ok", JSON.stringify(rule));
        break;
      }
      await sleep(250);
    }

    // --- retry: one 429 then 200, per call
    for (let i = 0; i < RETRIED; i++) {
      fake.script({
        match: { model: "gpt-4o-mini" },
        times: 1,
        action: { status: 429, headers: { "retry-after-ms": "5" }, errorType: "rate_limit_error" },
      });
      const r = await ask({ phase: "calls", models: ["gpt-4o-mini"], calls: 1 });
      assert.equal(r.ok, 1, JSON.stringify(r));
    }
    timeline.push(`${at()} [retry] ${RETRIED} calls retried once`);

    // --- outage, until the alert fires
    fake.script(
      { match: { model: "gpt-4o" }, times: Number.POSITIVE_INFINITY, action: { status: 500, message: "scripted outage" } },
      { match: { model: "gpt-4.1" }, times: Number.POSITIVE_INFINITY, action: { status: 500, message: "scripted outage" } },
    );
    const outageReply = message();
    app.send({ phase: "loop", models: ["gpt-4o", "gpt-4.1"], workers: 4, thinkMs: 100 });
    timeline.push(`${at()} [outage] gpt-4o and gpt-4.1 answer 500`);
    let firing: any;
    for (const until = Date.now() + 60_000; !firing; ) {
      firing = (await observe("outage")).find((a) => a.state === "firing");
      assert.ok(firing || Date.now() < until, `${ALERT} did not fire\n${timeline.join("\n")}${logs()}`);
      if (!firing) await sleep(250);
    }
    app.send({ phase: "stop" });
    const outage = await outageReply;
    timeline.push(`${at()} [outage] ${outage.ok} calls fell back, ${outage.failed} failed ${JSON.stringify(outage.errors)}`);
    assert.ok(
      timeline.some((l) => l.includes(`[outage] ${ALERT} pending`)),
      `went pending before firing\n${timeline.join("\n")}`,
    );
    assert.ok(!timeline.some((l) => /\[(healthy|retry)\] LLMCallErrorRatioHigh (pending|firing)/.test(l)));
    assert.equal(firing.labels.gen_ai_request_model, "gpt-4.1", "the model without a fallback is the one failing");
    assert.ok(outage.ok > 0 && outage.failed > 0, JSON.stringify(outage));

    // --- spend: one expensive answer, then refusals
    fake.clearRules();
    fake.script({ match: { model: "gpt-4o-mini" }, times: 1, action: { success: { outputTokens: 2_000_000 } } });
    const expensive = await ask({ phase: "calls", models: ["gpt-4o-mini"], calls: 1 });
    assert.equal(expensive.ok, 1, JSON.stringify(expensive));
    const refused = await ask({ phase: "calls", models: ["gpt-4o-mini"], calls: SPEND_REJECTED });
    assert.deepEqual(
      refused.errors,
      { SpendLimitError: SPEND_REJECTED },
      `LLM_RESILIENCE_SPEND_LIMIT_USD=1 refuses calls once 1.2 USD are spent: ${JSON.stringify(refused)}`,
    );
    timeline.push(`${at()} [spend] ${SPEND_REJECTED} calls refused`);

    // --- metrics: every call counted, every series of the rules and every dashboard query answered
    const calls = HEALTHY + RETRIED + outage.ok + outage.failed + 1 + SPEND_REJECTED;
    for (const until = Date.now() + 30_000; ; ) {
      const n = await scalar("sum(gen_ai_client_operation_duration_count)");
      if (n === calls) break;
      assert.ok(Date.now() < until, `Prometheus counts ${n} calls, the app made ${calls}`);
      await sleep(250);
    }
    const ruleMetrics = [...new Set(rules.flatMap((r: any) => metricNames(r.expr)))].sort();
    assert.ok(ruleMetrics.length >= 8, ruleMetrics.join(", "));
    for (const name of ruleMetrics)
      assert.ok((await query(`count({__name__="${name}"})`)).length > 0, `alerts.yml uses ${name}, which Prometheus does not have`);
    const dashboard = JSON.parse(readFileSync(resolve(ROOT, "deploy/grafana/dashboards/llm-resilience.json"), "utf8"));
    const panels = dashboard.panels.flatMap((p: any) => [p, ...(p.panels ?? [])]).filter((p: any) => p.targets?.length);
    let panelQueries = 0;
    for (const p of panels) {
      for (const target of p.targets) {
        // Grafana's "All" is ".*"; $__rate_interval is at least 4 scrape intervals, 1m covers the whole run here.
        const expr = String(target.expr)
          .replace(/\$__rate_interval/g, "1m")
          .replace(/\$\{?(provider|model)\}?/g, ".*");
        // A series that appeared a moment ago has one sample, and rate() needs two: Grafana shows it
        // after the next scrape. Wait for that, briefly.
        for (const until = Date.now() + 10_000; (await query(expr)).length === 0 && Date.now() < until; ) await sleep(500);
        if ((await query(expr)).length === 0) {
          const names = ((await prom("/api/v1/label/__name__/values")) as string[]).filter((n) => /^(gen_ai|llm_resilience)_/.test(n));
          assert.fail(`panel "${p.title}" gets no data: ${expr}\nseries in Prometheus: ${names.join(", ")}`);
        }
        panelQueries++;
      }
    }
    for (const v of dashboard.templating.list.filter((x: any) => x.type === "query")) {
      const m = /^label_values\((.*),\s*(\w+)\)$/.exec(v.query.query);
      assert.ok(m, v.query.query);
      const values = await prom(`/api/v1/label/${m[2]}/values?match[]=${encodeURIComponent(m[1]!.replace(/\$\{?provider\}?/g, ".*"))}`);
      assert.ok(values.length > 0, `variable ${v.name} has no values`);
    }
    timeline.push(`${at()} [metrics] ${ruleMetrics.length} rule series present, ${panelQueries} panel queries answered`);

    // --- traces: let the app flush, then wait for tail sampling and Jaeger
    app.send({ phase: "exit" });
    assert.equal(await appExited, 0, `app exit${logs()}`);
    const mustKeepCalls = RETRIED + outage.ok + outage.failed + SPEND_REJECTED;
    const healthyCalls = HEALTHY + 1;
    const window = `start=${(t0 - 60_000) * 1000}&end=${(Date.now() + 60_000) * 1000}`;
    const search = async (tags?: object): Promise<JaegerTrace[]> =>
      jaeger(`/api/traces?service=${service}&limit=100000&${window}${tags ? `&tags=${encodeURIComponent(JSON.stringify(tags))}` : ""}`);
    let traces: JaegerTrace[] = [];
    for (let stableSince = Date.now(), seen = -1, until = Date.now() + 60_000; ; ) {
      traces = await search();
      if (traces.length !== seen) [seen, stableSince] = [traces.length, Date.now()];
      // The collector's batch processor sends within 5 s; stable for 7 s means nothing is on its way.
      if (traces.filter(mustKeep).length >= mustKeepCalls && Date.now() - stableSince > 7_000) break;
      assert.ok(Date.now() < until, `Jaeger has ${traces.filter(mustKeep).length} of ${mustKeepCalls} traces that must be kept${logs()}`);
      await sleep(500);
    }
    assert.ok((await jaeger("/api/services")).includes(service), "the service is listed");

    // One call per trace: one logical span, its attempts as children.
    for (const tr of traces) {
      const [call, ...more] = logical(tr);
      assert.ok(call && more.length === 0, `trace ${tr.traceID}: ${logical(tr).length} logical spans`);
      const attempts = tr.spans.filter((s) => s.references.some((r) => r.refType === "CHILD_OF" && r.spanID === call.spanID));
      assert.ok(
        attempts.every((s) => s.operationName.endsWith(" attempt")),
        `trace ${tr.traceID}: ${attempts.map((s) => s.operationName)}`,
      );
    }
    const kept = traces.filter(mustKeep);
    const boring = traces.filter((tr) => !mustKeep(tr));
    const [lo, hi] = binomialInterval(healthyCalls, percentage / 100, 1e-6);
    timeline.push(
      `${at()} [jaeger] ${kept.length} traces that must be kept (calls: ${mustKeepCalls}), ${boring.length} healthy of ${healthyCalls} (bound ${lo}..${hi} at ${percentage}%)`,
    );
    assert.equal(kept.length, mustKeepCalls, "every call with an error, a retry, a fallback, a give-up or a breaker decision is in Jaeger, once");
    assert.ok(
      boring.length >= lo && boring.length <= hi,
      `${boring.length} healthy traces kept of ${healthyCalls}, expected ${lo}..${hi} at ${percentage}%`,
    );
    for (const tr of boring) {
      const [call] = logical(tr);
      assert.equal(tag(call!, "llm_resilience.attempts"), 1);
      assert.equal(tr.spans.length, 2, `healthy trace ${tr.traceID}: the call and its one attempt`);
    }

    // A call that retried and fell back: the logical span, its attempts, the decisions as span logs.
    const fellBack = kept.find((tr) => {
      const decided = events(logical(tr)[0]!);
      return decided.includes("llm_resilience.retry") && decided.includes("llm_resilience.fallback");
    });
    assert.ok(fellBack, "a trace that retried and fell back");
    const full: JaegerTrace = (await jaeger(`/api/traces/${fellBack.traceID}`))[0];
    const call = logical(full)[0]!;
    const children = full.spans.filter((s) => s.references.some((r) => r.refType === "CHILD_OF" && r.spanID === call.spanID));
    assert.equal(call.operationName, "chat gpt-4o");
    assert.equal(tag(call, "gen_ai.request.model"), "gpt-4o");
    assert.equal(tag(call, "llm_resilience.attempts"), children.length);
    assert.deepEqual(
      children.map((s) => [tag(s, "llm_resilience.attempt.number"), tag(s, "gen_ai.request.model"), tag(s, "http.response.status_code")]).sort(),
      [
        [1, "gpt-4o", 500],
        [2, "gpt-4o", 500],
        [3, "gpt-4o-mini", 200],
      ],
    );
    const retry = call.logs.find((l) => l.fields.some((f) => f.key === "event" && f.value === "llm_resilience.retry"))!;
    assert.ok(
      retry.fields.some((f) => f.key === "llm_resilience.retry.delay_ms"),
      JSON.stringify(retry),
    );
    const fallback = call.logs.find((l) => l.fields.some((f) => f.key === "event" && f.value === "llm_resilience.fallback"))!;
    assert.ok(
      fallback.fields.some((f) => f.key === "llm_resilience.fallback.to" && f.value === "gpt-4o-mini"),
      JSON.stringify(fallback),
    );
    t.diagnostic(`Jaeger /api/traces/${full.traceID} (trimmed): ${JSON.stringify(trimTrace(full))}`);
    for (const event of ["llm_resilience.give_up", "llm_resilience.breaker.transition", "llm_resilience.breaker.reject"])
      assert.ok(
        kept.some((tr) => tr.spans.some((s) => events(s).includes(event))),
        `a kept trace has ${event}`,
      );

    // The README's tag searches.
    const failed = await search({ error: "true" });
    const withError = traces.filter((tr) => tr.spans.some((s) => tag(s, "error") === true));
    assert.deepEqual(
      failed.map((tr) => tr.traceID).sort(),
      withError.map((tr) => tr.traceID).sort(),
      "error=true finds the traces with a failed span",
    );
    const failedCalls = traces.filter((tr) => tag(logical(tr)[0]!, "error") === true).length;
    assert.equal(failedCalls, outage.failed + SPEND_REJECTED, "the failed calls are the calls whose span has error=true");
    const retriedOnce = await search({ "llm_resilience.attempts": "2" });
    const twoAttempts = traces.filter((tr) => tag(logical(tr)[0]!, "llm_resilience.attempts") === 2);
    assert.deepEqual(
      retriedOnce.map((tr) => tr.traceID).sort(),
      twoAttempts.map((tr) => tr.traceID).sort(),
      "llm_resilience.attempts=2 finds the calls with two attempts",
    );
    // Calls whose first attempt failed and a second was sent: a retry, or (when the breaker opened
    // meanwhile) a fallback. Every call of the retry phase is among them.
    for (const tr of retriedOnce) {
      const decided = events(logical(tr)[0]!);
      assert.ok(decided.filter((e) => e === "llm_resilience.retry" || e === "llm_resilience.fallback").length === 1, `${tr.traceID}: ${decided}`);
    }
    assert.ok(retriedOnce.length >= RETRIED);
    timeline.push(
      `${at()} [jaeger] error=true: ${failed.length} traces (${failedCalls} failed calls); llm_resilience.attempts=2: ${retriedOnce.length}`,
    );
    for (const line of timeline) t.diagnostic(line);
  } catch (err) {
    for (const line of timeline) t.diagnostic(line);
    throw err;
  } finally {
    if (app && app.exitCode === null) app.kill("SIGKILL");
    if (stack?.pid && stack.exitCode === null) {
      const closed = new Promise((r) => stack!.once("close", r));
      process.kill(-stack.pid, "SIGTERM");
      const timer = setTimeout(() => process.kill(-stack!.pid!, "SIGKILL"), 10_000);
      await closed;
      clearTimeout(timer);
    }
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A trace as the report shows it: per span its name, parent, a few tags and its logs. */
function trimTrace(tr: JaegerTrace) {
  const keep = /^(span\.kind|error|error\.type|gen_ai\.request\.model|gen_ai\.response\.model|http\.response\.status_code|llm_resilience\..*)$/;
  return tr.spans.map((s) => ({
    span: s.operationName,
    parent: s.references[0]?.spanID,
    id: s.spanID,
    tags: Object.fromEntries(s.tags.filter((x) => keep.test(x.key)).map((x) => [x.key, x.value])),
    logs: s.logs.map((l) => Object.fromEntries(l.fields.map((f) => [f.key, f.value]))),
  }));
}
