/**
 * The alert rules end to end, with nothing mocked between the library and Prometheus:
 *
 *   fake provider (this process) ◀── HTTP ── app child (`node --import llm-resilience/register`,
 *                                             OTEL_METRICS_EXPORTER=prometheus on 127.0.0.1:<port>)
 *                                                   ▲ scrape every 1 s
 *   this test ── GET /api/v1/alerts, /api/v1/query ── prometheus (Debian binary, temp config + storage)
 *
 * Phase 1 (healthy): the app's calls all succeed; Prometheus scrapes them, the traffic half of
 * LLMCallErrorRatioHigh holds (> 0.02 calls/s) and the alert must stay inactive. Phase 2 (failing):
 * the fake provider answers every request with 500, the app's calls fail after their retries (later
 * with breaker_open), and the alert must go pending and then firing.
 *
 * Why a test copy of alerts.yml: the real rules wait `for: 10m` (and 5m…30m for the others), far
 * beyond a test. The copy is generated from deploy/prometheus/alerts.yml by rewriting only the
 * `for:` durations (to FOR_IN_TEST); every `expr` stays byte-identical, which the test asserts. The
 * `[5m]` range windows are kept as they are: with 1 s scrapes a window holds every sample since the
 * app started, and rate() needs only two samples of a series. The error series
 * (error_type="500"/"breaker_open") first appears with the failures, so its rate is its increase since
 * then, extrapolated, over 300 s; the total's rate also covers the healthy phase. With ~20 calls/s the
 * error share passes 10% about a second after the failures start, and the traffic condition
 * (> 0.02 calls/s, i.e. > 6 calls in the 5m window) holds from the first scrapes of the healthy phase.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { startFakeProvider } from "./fake-provider/index.ts";
import { sleep } from "./helpers/wait.ts";

const ROOT = resolve(__dirname, "..");
const RULES = resolve(ROOT, "deploy", "prometheus", "alerts.yml");
const APP = resolve(ROOT, "test", "fixtures", "alert-app", "app.mjs");
const ALERT = "LLMCallErrorRatioHigh";
/** Replaces every rule's `for:` in the test copy (the real file says 10m for this alert). */
const FOR_IN_TEST = "2s";
const HEALTHY_MS = 8_000;

/** alerts.yml with only its `for:` durations rewritten. */
function testRules(source: string, forDuration: string): string {
  return source.replace(/^(\s+for:\s*)\S+(\s*)$/gm, `$1${forDuration}$2`);
}

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

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(OTEL_|LLM_RESILIENCE_|OPENAI_|ANTHROPIC_|NODE_OPTIONS$|NODE_TEST_CONTEXT$)/.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

interface Proc {
  child: ChildProcess;
  out: () => string;
  exited: Promise<void>;
}

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out = (out + d).slice(-20_000)));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (out = (out + d).slice(-20_000)));
  const exited = new Promise<void>((r) => child.once("close", () => r()));
  return { child, out: () => out, exited };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
async function stop(p: Proc | undefined, graceMs = 3_000): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill("SIGTERM");
  const t = setTimeout(() => p.child.kill("SIGKILL"), graceMs);
  await p.exited;
  clearTimeout(t);
}

interface ApiAlert {
  labels: Record<string, string>;
  state: "pending" | "firing";
  activeAt: string;
  value: string;
}

test("LLMCallErrorRatioHigh: inactive while healthy, fires when calls fail (real Prometheus scraping the app)", { timeout: 90_000 }, async (t) => {
  if (spawnSync("prometheus", ["--version"]).error) {
    t.skip("the prometheus binary is not on PATH (apt-get install prometheus)");
    return;
  }
  assert.ok(existsSync(resolve(ROOT, "dist", "index.js")), "dist/ is built (npm run build)");
  const dir = mkdtempSync(join(tmpdir(), "llm-resilience-alert-e2e-"));
  const fake = await startFakeProvider({ defaults: { latencyMs: 5 } });
  let app: Proc | undefined;
  let prom: Proc | undefined;
  const t0 = Date.now();
  const at = () => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  const timeline: string[] = [];
  try {
    // --- the rules under test: the real file with short `for:` only
    const source = readFileSync(RULES, "utf8");
    const copy = testRules(source, FOR_IN_TEST);
    const original = parse(source).groups.flatMap((g: any) => g.rules);
    const rewritten = parse(copy).groups.flatMap((g: any) => g.rules);
    assert.equal(rewritten.length, original.length);
    rewritten.forEach((r: any, i: number) => {
      assert.equal(r.alert, original[i].alert);
      assert.equal(r.expr, original[i].expr, `${r.alert}: expression unchanged`);
      assert.deepEqual(r.labels, original[i].labels);
      assert.equal(r.for, FOR_IN_TEST);
    });
    assert.equal(original.find((r: any) => r.alert === ALERT)?.for, "10m");
    writeFileSync(join(dir, "alerts.yml"), copy);

    const appPort = await freePort();
    const promPort = await freePort();
    writeFileSync(
      join(dir, "prometheus.yml"),
      [
        "global:",
        "  scrape_interval: 1s",
        "  evaluation_interval: 1s",
        "rule_files:",
        "  - alerts.yml",
        "scrape_configs:",
        "  - job_name: llm-app",
        "    static_configs:",
        `      - targets: ["127.0.0.1:${appPort}"]`,
        "",
      ].join("\n"),
    );

    // --- the app: the library's own Prometheus endpoint, env configuration only
    app = start(process.execPath, ["--import", "llm-resilience/register", APP], childEnv({
      FAKE_OPENAI_BASE_URL: fake.openaiBaseURL,
      OTEL_SERVICE_NAME: "alert-e2e-app",
      OTEL_METRICS_EXPORTER: "prometheus",
      OTEL_EXPORTER_PROMETHEUS_HOST: "127.0.0.1",
      OTEL_EXPORTER_PROMETHEUS_PORT: String(appPort),
      OTEL_TRACES_EXPORTER: "none",
      OTEL_LOGS_EXPORTER: "none",
      LLM_RESILIENCE_LOG_LEVEL: "error",
      LLM_RESILIENCE_MAX_ATTEMPTS: "2",
      LLM_RESILIENCE_BASE_DELAY_MS: "10",
      LLM_RESILIENCE_MAX_DELAY_MS: "20",
      ALERT_APP_WORKERS: "4",
      ALERT_APP_INTERVAL_MS: "150",
    }));

    // --- Prometheus (the Debian binary), storage in the temp dir, loopback only
    prom = start("prometheus", [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      "--log.level=warn",
    ], childEnv({}));
    const api = async (path: string): Promise<any> => {
      const res = await fetch(`http://127.0.0.1:${promPort}${path}`);
      const body: any = await res.json();
      assert.equal(body.status, "success", `${path}: ${JSON.stringify(body)}`);
      return body.data;
    };
    const query = async (q: string): Promise<any[]> => (await api(`/api/v1/query?query=${encodeURIComponent(q)}`)).result;
    const alertsNamed = async (name: string): Promise<ApiAlert[]> =>
      ((await api("/api/v1/alerts")).alerts as ApiAlert[]).filter((a) => a.labels.alertname === name);

    // Records every change of the error-ratio alert's state, as Prometheus reports it.
    let last = "";
    const observe = async (phase: string): Promise<ApiAlert[]> => {
      const active = await alertsNamed(ALERT);
      const state = active.some((a) => a.state === "firing") ? "firing" : active.length ? "pending" : "inactive";
      if (state !== last) {
        const detail = active.map((a) => `${a.labels.gen_ai_provider_name}/${a.labels.gen_ai_request_model} value=${Number(a.value).toFixed(3)}`).join(", ");
        timeline.push(`${at()} [${phase}] ${ALERT} ${state}${detail ? ` (${detail})` : ""}`);
        last = state;
      }
      return active;
    };

    // Prometheus up, the rule group loaded, the app's target scraped.
    const deadline = (ms: number) => Date.now() + ms;
    for (const until = deadline(20_000); ; ) {
      try {
        const rules = await api("/api/v1/rules");
        const targets = await api("/api/v1/targets");
        const loaded = rules.groups.flatMap((g: any) => g.rules).some((r: any) => r.name === ALERT);
        const up = targets.activeTargets.some((x: any) => x.health === "up");
        if (loaded && up) break;
      } catch {
        // not listening yet
      }
      assert.ok(Date.now() < until, `Prometheus did not load the rules and scrape the app\nprometheus:\n${prom.out()}\napp:\n${app.out()}`);
      await sleep(250);
    }
    timeline.push(`${at()} Prometheus up, rules loaded, app target up`);

    // --- phase 1: healthy. Wait until the traffic condition of the rule holds, then watch a while.
    const traffic = `sum by (gen_ai_provider_name, gen_ai_request_model) (rate(gen_ai_client_operation_duration_count[5m])) > 0.02`;
    for (const until = deadline(20_000); ; ) {
      if ((await query(traffic)).length > 0) break;
      assert.ok(Date.now() < until, `no call traffic in Prometheus\napp:\n${app.out()}`);
      await observe("healthy");
      await sleep(250);
    }
    timeline.push(`${at()} [healthy] traffic condition holds: ${JSON.stringify((await query(traffic)).map((r) => [r.metric.gen_ai_request_model, Number(r.value[1]).toFixed(2)]))} calls/s`);
    for (const until = deadline(HEALTHY_MS); Date.now() < until; ) {
      const active = await observe("healthy");
      assert.equal(active.length, 0, `${ALERT} must not be pending or firing while every call succeeds: ${JSON.stringify(active)}`);
      await sleep(250);
    }
    const rule = (await api("/api/v1/rules")).groups.flatMap((g: any) => g.rules).find((r: any) => r.name === ALERT);
    assert.equal(rule.health, "ok", JSON.stringify(rule));
    assert.equal(rule.state, "inactive");
    assert.ok(new Date(rule.lastEvaluation).getTime() > t0, "the rule was evaluated during the healthy phase");
    const errorsSoFar = await query(`sum(gen_ai_client_operation_duration_count{error_type!=""})`);
    assert.equal(errorsSoFar.length, 0, "no failed calls recorded while healthy");

    // --- phase 2: every request fails; the logical calls fail after their retries.
    fake.script({ match: { provider: "openai" }, times: Infinity, action: { status: 500, message: "scripted outage" } });
    timeline.push(`${at()} [failing] fake provider answers every request with 500`);
    let firing: ApiAlert | undefined;
    for (const until = deadline(30_000); !firing; ) {
      firing = (await observe("failing")).find((a) => a.state === "firing");
      if (firing) break;
      assert.ok(Date.now() < until, `${ALERT} did not fire\n${timeline.join("\n")}\napp:\n${app.out()}\nprometheus:\n${prom.out()}`);
      await sleep(250);
    }
    const errorTypes = await query(`sum by (error_type) (rate(gen_ai_client_operation_duration_count{error_type!=""}[5m]))`);
    timeline.push(`${at()} [failing] error types: ${errorTypes.map((r) => r.metric.error_type).sort().join(", ")}`);
    const all = ((await api("/api/v1/alerts")).alerts as ApiAlert[]).map((a) => `${a.labels.alertname}=${a.state}`);
    timeline.push(`${at()} [failing] all active alerts: ${[...new Set(all)].sort().join(", ")}`);
    for (const line of timeline) t.diagnostic(line);

    assert.equal(firing!.labels.gen_ai_provider_name, "openai");
    assert.equal(firing!.labels.gen_ai_request_model, "gpt-4o-mini");
    assert.equal(firing!.labels.severity, "critical");
    assert.ok(Number(firing!.value) > 0.1, `error ratio ${firing!.value}`);
    assert.ok(timeline.some((l) => /\[failing\] LLMCallErrorRatioHigh pending/.test(l)), `went through pending (for: ${FOR_IN_TEST})\n${timeline.join("\n")}`);
    assert.ok(!timeline.some((l) => /\[healthy\] LLMCallErrorRatioHigh (pending|firing)/.test(l)));
  } catch (err) {
    for (const line of timeline) t.diagnostic(line);
    throw err;
  } finally {
    await Promise.all([stop(app), stop(prom)]);
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
