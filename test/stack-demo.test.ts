/**
 * `npm run demo -- --stack` end to end: the demo (the same `node demo/index.mjs` the npm script runs)
 * brings the native viewing stack up with `scripts/stack.sh up` (background, on free ports, in a
 * temporary run folder), sends its traffic through the collector, and prints a retried call and a
 * call that fell back as Jaeger's HTTP API returns them. `scripts/stack.sh down` then stops all three
 * programs. Tail sampling decides after TRACES_DECISION_WAIT=1s here (the demo asks for 10 s).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";

const ROOT = resolve(__dirname, "..");
const STACK = resolve(ROOT, "scripts", "stack.sh");

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

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test("npm run demo -- --stack: stack up, the demo through it, its calls read back from Jaeger, stack down", { timeout: 180_000 }, async () => {
  const built = spawnSync("bash", [STACK, "check"], { encoding: "utf8" });
  if (built.status !== 0) assert.fail(built.stderr.trim());
  assert.ok(!spawnSync("prometheus", ["--version"]).error, "prometheus is not on PATH: apt-get install prometheus (.ci/run does)");

  const dir = mkdtempSync(join(tmpdir(), "llm-resilience-stack-demo-"));
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(OTEL_|LLM_RESILIENCE_|DEMO_|OPENAI_|ANTHROPIC_|STACK_|TRACES_|OTELCOL_|JAEGER_|NODE_OPTIONS$|NODE_TEST_CONTEXT$)/.test(k)) env[k] = v;
  }
  for (const n of [
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
  ])
    env[`STACK_${n}_PORT`] = String(await freePort());
  Object.assign(env, { STACK_RUN_DIR: join(dir, "run"), TRACES_DECISION_WAIT: "1s", DEMO_SPEED: "0.15", OTEL_SERVICE_NAME: "stack-demo-test" });
  const down = () => spawnSync("bash", [STACK, "down"], { env, encoding: "utf8" });
  try {
    const demo = spawn(process.execPath, ["demo/index.mjs", "--stack"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    demo.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    demo.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
    const timer = setTimeout(() => demo.kill("SIGKILL"), 150_000);
    const code = await new Promise<number | null>((r) => demo.once("close", r));
    clearTimeout(timer);
    assert.equal(code, 0, out);

    const pid = Number(readFileSync(join(dir, "run", "stack.pid"), "utf8"));
    assert.ok(alive(pid), "the stack keeps running after the demo");
    assert.match(out, new RegExp(`Jaeger +http://127\\.0\\.0\\.1:${env.STACK_JAEGER_PORT}`));
    assert.match(out, new RegExp(`Prometheus +http://127\\.0\\.0\\.1:${env.STACK_PROMETHEUS_PORT}`));
    assert.match(out, new RegExp(`exported over OTLP to http://127\\.0\\.0\\.1:${env.STACK_OTLP_HTTP_PORT}`));
    // The trace ids the demo recorded in-process are the ones it then read back from Jaeger.
    for (const [label, event] of [
      ["A retried call", "llm_resilience.retry"],
      ["A call that fell back", "llm_resilience.fallback"],
    ] as const) {
      const id = new RegExp(`${label === "A retried call" ? "A retried call: " : "A fallback call:"} +trace ([0-9a-f]{32})`).exec(out)?.[1];
      assert.ok(id, `${label}: no trace id printed\n${out}`);
      const start = out.indexOf(`${label}, from Jaeger (http://127.0.0.1:${env.STACK_JAEGER_PORT}/api/traces/${id}):`);
      assert.ok(start >= 0, `${label} was not read back from Jaeger\n${out}`);
      const block = out
        .slice(start)
        .split("\n")
        .slice(1)
        .join("\n")
        .split(/\n(?! {2})/)[0]!;
      assert.match(block, /^ {2}chat \S+ +\d+ ms +llm_resilience\.attempts=\d/, block);
      assert.match(block, new RegExp(`\\(log\\) ${event.replace(/\./g, "\\.")} `), block);
      assert.match(block, /\n {4}chat \S+ attempt +\d+ ms +.*http\.response\.status_code=\d{3}/, block);
    }

    const stopped = down();
    assert.equal(stopped.status, 0, stopped.stderr);
    assert.ok(!alive(pid), "scripts/stack.sh down stopped the stack");
    for (const port of [env.STACK_JAEGER_PORT, env.STACK_PROMETHEUS_PORT, env.STACK_COLLECTOR_HEALTH_PORT])
      assert.ok(
        await fetch(`http://127.0.0.1:${port}/`).then(
          () => false,
          () => true,
        ),
        `port ${port} still answers after down`,
      );
    for (const name of ["collector", "jaeger", "prometheus"]) assert.ok(existsSync(join(dir, "run", `${name}.log`)));
    const again = spawnSync("bash", [STACK, "down"], { env, encoding: "utf8" });
    assert.match(again.stderr, /not running/);
  } finally {
    down();
    rmSync(dir, { recursive: true, force: true });
  }
});
