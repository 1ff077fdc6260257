/**
 * Start-up in every module system, telemetry set-up and "nothing lost", end to end: each test runs a
 * fixture app (test/fixtures/startup/) as a real child process that drives the real openai and
 * @anthropic-ai/sdk clients against the fake provider and exports OTLP over HTTP to a real receiver.
 *
 * Every app makes its calls and then ends; OTEL_BSP_SCHEDULE_DELAY is 60 s, so spans only reach the
 * receiver through the flush at exit (beforeExit / signal / shutdown()). One fake provider and one
 * receiver are shared; each app gets its own service name (spans are told apart by it) and its own
 * model for the call the fake answers with a 429 first.
 *
 * Needs `npm run build` first (the apps load the package through its exports: dist/ and esm/).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type FakeProvider, startFakeProvider } from "./fake-provider/index.ts";
import { type ChildResult, describeRun, FIXTURES, REPO_ROOT, type RunningChild, spawnChild } from "./helpers/child.ts";
import {
  OTLP_KIND,
  type OtlpReceiver,
  type ReceivedMetric,
  type ReceivedSpan,
  type ReceiverMode,
  startOtlpReceiver,
} from "./helpers/otlp-receiver.ts";

let fake: FakeProvider;
let rx: OtlpReceiver;
const extraReceivers: OtlpReceiver[] = [];

before(async () => {
  assert.ok(existsSync(join(REPO_ROOT, "dist", "register.js")), "run `npm run build` first");
  [fake, rx] = await Promise.all([startFakeProvider(), startOtlpReceiver()]);
});
after(async () => {
  await Promise.all([fake?.close(), rx?.close(), ...extraReceivers.map((r) => r.close())]);
});

// ---------------------------------------------------------------------------------------------------
// Running apps

/** At most this many fixture apps at once (2-core machines; each app start is CPU-bound). */
const MAX_CHILDREN = 4;
let running = 0;
const queue: (() => void)[] = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= MAX_CHILDREN) await new Promise<void>((r) => queue.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    queue.shift()?.();
  }
}

const fixture = (name: string) => join(FIXTURES, name);

interface App {
  tag: string;
  service: string;
  retryModel: string;
  env: Record<string, string>;
}

let seq = 0;
/** A fresh identity for one app run, with its one scripted 429. */
function newApp(tag: string, receiver: OtlpReceiver = rx): App {
  const id = `${tag}-${++seq}`;
  const retryModel = `retry-${id}`;
  fake.script({ match: { model: retryModel }, times: 1, action: { status: 429, headers: { "retry-after-ms": "10" } } });
  return {
    tag: id,
    service: `startup-${id}`,
    retryModel,
    env: {
      FAKE_URL: fake.url,
      RETRY_MODEL: retryModel,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: `startup-${id}`,
      OTEL_METRIC_EXPORT_INTERVAL: "1000",
      OTEL_BSP_SCHEDULE_DELAY: "60000",
      LLM_RESILIENCE_LOG_LEVEL: "warn",
    },
  };
}

interface Run {
  app: App;
  result: ChildResult;
  spans: ReceivedSpan[];
  metrics: ReceivedMetric[];
}

/** Runs `node <args>` for `app` and returns what the receiver holds for it once the child ended. */
async function runApp(
  app: App,
  args: string[],
  opts: { env?: Record<string, string>; receiver?: OtlpReceiver; timeoutMs?: number; drive?: (c: RunningChild) => Promise<void> } = {},
): Promise<Run> {
  const receiver = opts.receiver ?? rx;
  const result = await slot(async () => {
    const child = spawnChild(args, { env: { ...app.env, ...opts.env }, timeoutMs: opts.timeoutMs ?? 90_000 });
    if (opts.drive) {
      try {
        await opts.drive(child);
      } catch (err) {
        child.process.kill("SIGKILL");
        throw err;
      }
    }
    return child.result;
  });
  // The export finished before the child could exit; a short grace for the receiver's own bookkeeping.
  await new Promise((r) => setTimeout(r, 50));
  return { app, result, spans: receiver.spansOf(app.service), metrics: receiver.metricsOf(app.service) };
}

/** Our warning lines (pino JSON on stdout). */
function warnings(run: Run): { msg: string; [k: string]: unknown }[] {
  return run.result.stdout
    .split("\n")
    .filter((l) => l.startsWith("{") && l.includes('"level":40'))
    .map((l) => JSON.parse(l));
}

/** The APP-LOADED line of the module-loading fixtures. */
function appLoaded<T>(run: Run): T {
  const line = run.result.stdout.split("\n").find((l) => l.startsWith("APP-LOADED "));
  assert.ok(line, `the app printed what it loaded\n${describeRun(run.result)}`);
  return JSON.parse(line.slice("APP-LOADED ".length));
}

function appResults(run: Run): { model: string; text: string }[] {
  const line = run.result.stdout.split("\n").find((l) => l.startsWith("APP-RESULT "));
  assert.ok(line, `the app printed its results\n${describeRun(run.result)}`);
  return JSON.parse(line.slice("APP-RESULT ".length));
}

function assertAppWorked(run: Run, calls: number): void {
  assert.equal(run.result.timedOut, false, `app timed out\n${describeRun(run.result)}`);
  const results = appResults(run);
  assert.equal(results.length, calls);
  for (const r of results) assert.equal(r.text, "tok0 tok1 tok2 ", `answer of ${r.model}`);
}

// ---------------------------------------------------------------------------------------------------
// Span checks

interface ExpectedCall {
  model: string;
  provider: "openai" | "anthropic";
  attempts: number;
}

const threeCalls = (app: App): ExpectedCall[] => [
  { model: "gpt-4o-mini", provider: "openai", attempts: 1 },
  { model: "claude-haiku-4-5", provider: "anthropic", attempts: 1 },
  { model: app.retryModel, provider: "openai", attempts: 2 },
];

function dump(spans: ReceivedSpan[]): string {
  return spans.map((s) => `  ${s.kind} ${s.name} ${s.spanId} parent=${s.parentSpanId || "-"} scope=${s.scope}`).join("\n");
}

/**
 * Exactly one logical span per call (CLIENT, root, `chat <model>`), exactly its attempts as INTERNAL
 * children (`chat <model> attempt`, same trace, numbered 1..n), nothing else — in particular no
 * span of the Anthropic SDK's own (`anthropic.messages.create`).
 */
function assertCallSpans(run: Run, expected: ExpectedCall[], opts: { allowOtherScopes?: boolean } = {}): void {
  const { spans } = run;
  const ctx = () => `\nspans of ${run.app.service}:\n${dump(spans)}\n${describeRun(run.result)}`;
  const ours = opts.allowOtherScopes ? spans.filter((s) => s.scope === "llm-resilience") : spans;
  if (!opts.allowOtherScopes) {
    assert.deepEqual(
      spans.filter((s) => s.name.startsWith("anthropic.")).map((s) => s.name),
      [],
      `no Anthropic SDK span${ctx()}`,
    );
  }
  const logical = ours.filter((s) => s.kind === OTLP_KIND.CLIENT);
  assert.deepEqual(logical.map((s) => s.name).sort(), expected.map((e) => `chat ${e.model}`).sort(), `one logical span per call${ctx()}`);
  let total = 0;
  for (const e of expected) {
    const span = logical.find((s) => s.name === `chat ${e.model}`)!;
    assert.equal(span.scope, "llm-resilience");
    assert.equal(span.parentSpanId, "", `the logical span is the root (the app has no active span)${ctx()}`);
    assert.equal(span.attributes["gen_ai.operation.name"], "chat");
    assert.equal(span.attributes["gen_ai.provider.name"], e.provider);
    assert.equal(span.attributes["gen_ai.request.model"], e.model);
    assert.equal(span.attributes["gen_ai.usage.output_tokens"], 7);
    assert.equal(span.attributes["llm_resilience.attempts"], e.attempts, `llm_resilience.attempts of ${span.name}${ctx()}`);
    assert.equal(span.attributes["error.type"], undefined);
    const attempts = ours
      .filter((s) => s.parentSpanId === span.spanId)
      .sort((a, b) => Number(a.attributes["llm_resilience.attempt.number"]) - Number(b.attributes["llm_resilience.attempt.number"]));
    assert.equal(attempts.length, e.attempts, `attempt spans of ${span.name}${ctx()}`);
    attempts.forEach((a, i) => {
      assert.equal(a.name, `chat ${e.model} attempt`);
      assert.equal(a.kind, OTLP_KIND.INTERNAL);
      assert.equal(a.traceId, span.traceId);
      assert.equal(a.attributes["llm_resilience.attempt.number"], i + 1);
      assert.equal(a.attributes["http.request.resend_count"], i === 0 ? undefined : i);
      assert.equal(a.attributes["http.response.status_code"], i === e.attempts - 1 ? 200 : 429);
    });
    if (e.attempts > 1) {
      const retry = span.events.find((ev) => ev.name === "llm_resilience.retry");
      assert.ok(retry, `retry event on ${span.name}${ctx()}`);
      assert.equal(retry.attributes["llm_resilience.retry.delay_source"], "retry-after-ms");
      assert.equal(retry.attributes["error.type"], "rate_limit_error");
    }
    total += 1 + e.attempts;
  }
  assert.equal(ours.length, total, `no other span${ctx()}`);
}

/** The 429'd call reached the provider exactly twice: our retry only, not the SDK's on top of it. */
function assertRetryRequests(app: App, n = 2): void {
  assert.equal(fake.requests.filter((r) => r.model === app.retryModel).length, n, `requests for ${app.retryModel}`);
}

const total = (m: ReceivedMetric | undefined) => (m?.points ?? []).reduce((s, p) => s + p.value, 0);
/**
 * Metrics are cumulative: the fullest export of a metric holds its final values (a periodic export
 * that timed out may still land after the final flush, so "fullest", not "last").
 */
function finalOf(metrics: ReceivedMetric[], name: string): ReceivedMetric | undefined {
  return metrics
    .filter((m) => m.name === name)
    .sort((a, b) => total(a) - total(b))
    .at(-1);
}

// ---------------------------------------------------------------------------------------------------

/** The metrics of a three-call run: durations, attempts, retries, tokens; all in one encoding. */
function assertMetrics(run: Run, encoding: "protobuf" | "json"): void {
  const ctx = `\nmetrics: ${run.metrics.map((m) => m.name).join(" ")}`;
  assert.ok(run.spans.length > 0 && run.spans.every((s) => s.encoding === encoding), `spans came as ${encoding}`);
  assert.ok(run.metrics.length > 0 && run.metrics.every((m) => m.encoding === encoding), `metrics came as ${encoding}${ctx}`);
  const duration = finalOf(run.metrics, "gen_ai.client.operation.duration");
  assert.equal(duration?.type, "histogram", ctx);
  assert.equal(duration?.unit, "s");
  assert.equal(total(duration), 3, "one duration per call");
  assert.equal(total(finalOf(run.metrics, "llm_resilience.attempts")), 4, "1 + 1 + 2 attempts");
  assert.equal(total(finalOf(run.metrics, "llm_resilience.retries")), 1);
  const tokens = finalOf(run.metrics, "gen_ai.client.token.usage");
  assert.deepEqual([...new Set(tokens?.points.map((p) => p.attributes["gen_ai.token.type"]))].sort(), ["input", "output"]);
}

describe("start-up, telemetry set-up, nothing lost (child processes)", { concurrency: true }, () => {
  describe("start-up in every module system", { concurrency: true }, () => {
    const cases: { title: string; args: (app: App) => string[] }[] = [
      { title: 'require("llm-resilience/register") as the first line of a CommonJS app', args: () => [fixture("require-first.cjs")] },
      { title: "node -r llm-resilience/register app.cjs", args: () => ["-r", "llm-resilience/register", fixture("plain.cjs")] },
      {
        title: 'ESM app whose first import is "llm-resilience/register", then static imports of both SDKs',
        args: () => [fixture("import-first.mjs")],
      },
      { title: "node --import llm-resilience/register app.mjs", args: () => ["--import", "llm-resilience/register", fixture("plain.mjs")] },
      {
        title: "node -r llm-resilience/register app.mjs (CommonJS preload, ESM app)",
        args: () => ["-r", "llm-resilience/register", fixture("plain.mjs")],
      },
      {
        title: "node --import llm-resilience/register app.cjs (ESM preload, CommonJS app)",
        args: () => ["--import", "llm-resilience/register", fixture("plain.cjs")],
      },
      { title: "TypeScript app (.ts, CommonJS output) run with node --import tsx", args: () => ["--import", "tsx", fixture("app.ts")] },
      { title: "TypeScript ES module (.mts) run with node --import tsx", args: () => ["--import", "tsx", fixture("app.mts")] },
    ];
    for (const [i, c] of cases.entries()) {
      test(c.title, async () => {
        const app = newApp("boot");
        const run = await runApp(app, c.args(app));
        // Ended on its own: with OTEL_BSP_SCHEDULE_DELAY at 60 s, the spans came from the beforeExit flush.
        assert.equal(run.result.code, 0, describeRun(run.result));
        assertAppWorked(run, 3);
        assertCallSpans(run, threeCalls(app));
        assertRetryRequests(app);
        if (i === 0) assertMetrics(run, "protobuf");
      });
    }

    for (const [title, file] of [
      ["CommonJS app using both builds of each SDK (require + import()) → both instrumented", "dual.cjs"],
      ["ESM app using both builds of each SDK (import + createRequire) → both instrumented", "dual.mjs"],
    ] as const) {
      test(title, async () => {
        const app = newApp("dual");
        const run = await runApp(app, [fixture(file)]);
        assert.equal(run.result.code, 0, describeRun(run.result));
        assertAppWorked(run, 4);
        assertCallSpans(run, [
          { model: "gpt-cjs", provider: "openai", attempts: 1 },
          { model: "gpt-esm", provider: "openai", attempts: 1 },
          { model: "claude-cjs", provider: "anthropic", attempts: 1 },
          { model: "claude-esm", provider: "anthropic", attempts: 1 },
        ]);
      });
    }

    test("registered every way at once (require, register(), import, instrument()) → still one logical span per call", async () => {
      const app = newApp("twice");
      const run = await runApp(app, [fixture("register-twice.cjs")]);
      assert.equal(run.result.code, 0, describeRun(run.result));
      assertAppWorked(run, 4);
      assertCallSpans(run, [...threeCalls(app), { model: "gpt-esm", provider: "openai", attempts: 1 }]);
      assertRetryRequests(app);
    });

    // Clients constructed before register: run once, checked by two tests (the second is a known bug).
    let beforeRegister: Promise<Run> | undefined;
    const runBeforeRegister = () => {
      if (!beforeRegister) {
        const app = newApp("before");
        beforeRegister = runApp(app, [fixture("before-register.cjs")]);
      }
      return beforeRegister;
    };
    test("clients constructed BEFORE register are instrumented", async () => {
      const run = await runBeforeRegister();
      assert.equal(run.result.code, 0, describeRun(run.result));
      assertAppWorked(run, 3);
      assertCallSpans(run, threeCalls(run.app), { allowOtherScopes: true });
      assertRetryRequests(run.app);
    });
    test("clients constructed BEFORE register: no Anthropic SDK span either", async () => {
      const run = await runBeforeRegister();
      assert.deepEqual(
        run.spans.filter((s) => s.name.startsWith("anthropic.")).map((s) => s.name),
        [],
      );
    });
  });

  describe("OTLP protocol and exporters", { concurrency: true }, () => {
    test("OTEL_EXPORTER_OTLP_PROTOCOL=http/json: spans and metrics arrive as JSON", async () => {
      const app = newApp("json");
      const run = await runApp(app, [fixture("import-first.mjs")], { env: { OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" } });
      assertAppWorked(run, 3);
      assertCallSpans(run, threeCalls(app));
      assertMetrics(run, "json");
    });

    test("OTEL_TRACES_EXPORTER=console: the spans are printed, none sent", async () => {
      const app = newApp("console");
      const run = await runApp(app, [fixture("require-first.cjs")], { env: { OTEL_TRACES_EXPORTER: "console" } });
      assertAppWorked(run, 3);
      assert.equal(run.spans.length, 0);
      const printed = [...run.result.stdout.matchAll(/^ {2}name: '([^']+)',$/gm)].map((m) => m[1]).sort();
      assert.deepEqual(
        printed,
        [
          "chat claude-haiku-4-5",
          "chat claude-haiku-4-5 attempt",
          "chat gpt-4o-mini",
          "chat gpt-4o-mini attempt",
          `chat ${app.retryModel}`,
          `chat ${app.retryModel} attempt`,
          `chat ${app.retryModel} attempt`,
        ].sort(),
        describeRun(run.result),
      );
    });

    test("OTEL_TRACES_EXPORTER=none: no span leaves the process and the app still works", async () => {
      const app = newApp("none");
      const run = await runApp(app, [fixture("require-first.cjs")], { env: { OTEL_TRACES_EXPORTER: "none" } });
      assert.equal(run.result.code, 0, describeRun(run.result));
      assertAppWorked(run, 3);
      assertRetryRequests(app);
      assert.equal(run.spans.length, 0);
      assert.doesNotMatch(run.result.stdout, /name: 'chat /);
    });
  });

  describe("nothing lost at exit", { concurrency: true }, () => {
    for (const [signal, file] of [
      ["SIGTERM", "require-first.cjs"],
      ["SIGINT", "import-first.mjs"],
    ] as const) {
      test(`${signal} while idle after its calls: flushes, then dies of the signal (${file})`, async () => {
        const app = newApp(signal.toLowerCase());
        const run = await runApp(app, [fixture(file)], {
          env: { APP_END: "idle" },
          drive: async (child) => {
            await child.waitForStdout(/^APP-IDLE$/m, 60_000);
            child.process.kill(signal);
          },
        });
        assert.equal(run.result.signal, signal, `exited by the signal\n${describeRun(run.result)}`);
        assert.equal(run.result.timedOut, false);
        assertCallSpans(run, threeCalls(app));
      });
    }

    test("shutdown() flushes everything (the app then calls process.exit, which skips beforeExit)", async () => {
      const app = newApp("shutdown");
      const run = await runApp(app, [fixture("require-first.cjs")], { env: { APP_END: "shutdown" } });
      assert.equal(run.result.code, 0, describeRun(run.result));
      assert.match(run.result.stdout, /^APP-SHUTDOWN-DONE$/m);
      assertCallSpans(run, threeCalls(app));
      assert.equal(total(finalOf(run.metrics, "llm_resilience.attempts")), 4);
    });

    async function receiverIn(mode: ReceiverMode): Promise<OtlpReceiver> {
      const r = await startOtlpReceiver(mode);
      extraReceivers.push(r);
      return r;
    }

    test("collector answers 503 once: the exporter retries and the spans arrive", async () => {
      const r503 = await receiverIn({ status: 503, times: 1 });
      const app = newApp("c503", r503);
      const run = await runApp(app, [fixture("require-first.cjs")], { receiver: r503, env: { OTEL_METRICS_EXPORTER: "none" } });
      assert.equal(run.result.code, 0, describeRun(run.result));
      assert.equal(r503.requests[0]?.status, 503, "the first export was refused");
      assertCallSpans(run, threeCalls(app));
    });

    const LINGER_MS = 2_500;
    /**
     * Runs an app against a failing collector. The app lingers LINGER_MS after its calls, so periodic
     * metric exports (every second) fail while it lives; `held` is how long it lived after its calls.
     */
    async function runAgainst(receiver: OtlpReceiver, tag: string, file: string): Promise<{ run: Run; held: number }> {
      const app = newApp(tag, receiver);
      let resultAt = 0;
      const run = await runApp(app, [fixture(file)], {
        receiver,
        env: { APP_LINGER_MS: String(LINGER_MS) },
        timeoutMs: 40_000,
        drive: async (child) => {
          await child.waitForStdout(/^APP-RESULT /m, 60_000);
          resultAt = Date.now();
        },
      });
      return { run, held: Date.now() - resultAt };
    }

    for (const [title, mode, file, cause] of [
      ["hangs", "hang", "require-first.cjs", /no answer from the collector within 5 s/],
      ["is down (connection refused)", "refuse", "import-first.mjs", /^connect ECONNREFUSED /],
      ["answers 500", { status: 500 }, "require-first.cjs", /Internal Server Error|500/],
    ] as const) {
      test(`collector ${title}: calls are unaffected, the app still ends on its own within the flush limit (5 s)`, async () => {
        const receiver = await receiverIn(mode);
        const { run, held } = await runAgainst(receiver, "broken", file);
        assert.equal(run.result.code, 0, describeRun(run.result));
        assertAppWorked(run, 3);
        assertRetryRequests(run.app);
        if (mode !== "refuse")
          assert.ok(
            receiver.requests.some((q) => q.path === "/v1/metrics"),
            "exports were attempted",
          );
        // Without the limit a hanging export holds the process for the exporter's 10 s timeout; with
        // periodic metric exports overlapping, the process never ends at all (killed at 40 s).
        assert.ok(held < LINGER_MS + 8_000, `exit came ${held} ms after the calls\n${describeRun(run.result)}`);
        // One warning counts the spans that never arrived (3 logical + 4 attempt spans), with the cause:
        // a refused connection ends the exit flush at once instead of waiting out the exporter's retries.
        const lost = warnings(run).filter((w) => /spans could not be sent/.test(w.msg));
        assert.equal(lost.length, 1, `one warning about the lost spans\n${describeRun(run.result)}`);
        assert.equal(lost[0].spans, 7);
        assert.equal(lost[0].endpoint, `${receiver.url}/v1/traces`);
        assert.match(lost[0].reason, cause, describeRun(run.result));
      });
    }
  });

  describe("application-owned OpenTelemetry set-up", { concurrency: true }, () => {
    const cases = [
      ["the app starts its NodeSDK, then calls register()", ["app-owned.cjs"], { APP_SDK_ORDER: "before" }],
      ['require("llm-resilience/register") first, the app\'s NodeSDK right after', ["app-owned.cjs"], { APP_SDK_ORDER: "after" }],
      ['ESM: import "llm-resilience/register", then the module that starts the app\'s NodeSDK', ["app-owned-after.mjs"], {}],
    ] as const;
    for (const [title, [file], env] of cases) {
      test(`${title}: our spans go through the app's provider, no second SDK`, async () => {
        const app = newApp("owned");
        const run = await runApp(app, [fixture(file)], { env: { ...env, APP_OTLP_URL: rx.url } });
        assert.equal(run.result.code, 0, describeRun(run.result));
        assertAppWorked(run, 3);
        assertCallSpans(run, threeCalls(app));
        const unmarked = run.spans.filter((s) => s.attributes["app.marker"] !== "app-owned");
        assert.deepEqual(
          unmarked.map((s) => s.name),
          [],
          "every span went through the app's span processor",
        );
        // The app set up no metrics; a second SDK of ours would have exported some under OTEL_SERVICE_NAME.
        assert.deepEqual(
          run.metrics.map((m) => m.name),
          [],
          "no metrics: we started no SDK of our own",
        );
      });
    }
  });

  describe("what start-up loads, and when", { concurrency: true }, () => {
    test("the first call in the same tick as register finds the SDK built: no OpenTelemetry module is loaded during the calls", async () => {
      const app = newApp("tick");
      // No periodic metric export while the calls run (it would load its exporter, lazily, then).
      const run = await runApp(app, [fixture("first-call-same-tick.cjs")], { env: { OTEL_METRIC_EXPORT_INTERVAL: "60000" } });
      assert.equal(run.result.code, 0, describeRun(run.result));
      assertAppWorked(run, 3);
      assertCallSpans(run, threeCalls(app));
      const { atRegister, byCalls } = appLoaded<{ atRegister: string[]; byCalls: string[] }>(run);
      assert.ok(atRegister.includes("llm-resilience:telemetry/own-sdk.js"), "register built our set-up");
      // (a package may still load a file of its own lazily, e.g. the host detector's machine-id reader)
      const packageOf = (m: string) => m.split("/").slice(0, 2).join("/");
      const packagesAtRegister = new Set(atRegister.map(packageOf));
      const newPackages = byCalls.filter((m) => m.startsWith("@opentelemetry/") && !packagesAtRegister.has(packageOf(m)));
      assert.deepEqual(newPackages, [], "OpenTelemetry packages first loaded by the calls");
      assert.deepEqual(
        byCalls.filter((m) => m.startsWith("llm-resilience:telemetry/")),
        [],
        "our telemetry modules first loaded by the calls",
      );
    });

    test("exporters load at their first export (here the flush at exit), and only those OTEL_* selects (default: OTLP http/protobuf)", async () => {
      const app = newApp("mods");
      const run = await runApp(app, [fixture("first-call-same-tick.cjs")], { env: { OTEL_METRIC_EXPORT_INTERVAL: "60000" } });
      assert.equal(run.result.code, 0, describeRun(run.result));
      assertCallSpans(run, threeCalls(app));
      const packagesOf = (mods: string[]) => [
        ...new Set(mods.filter((m) => m.startsWith("@opentelemetry/")).map((m) => m.split("/").slice(0, 2).join("/"))),
      ];
      const { atRegister, byCalls } = appLoaded<{ atRegister: string[]; byCalls: string[] }>(run);
      assert.deepEqual(
        packagesOf([...atRegister, ...byCalls]).filter((p) => p.includes("exporter")),
        [],
        "no exporter loaded before the first export",
      );
      const line = run.result.stdout.split("\n").find((l) => l.startsWith("APP-LOADED-AT-EXIT "));
      assert.ok(line, describeRun(run.result));
      const atExit = packagesOf(JSON.parse(line.slice("APP-LOADED-AT-EXIT ".length)));
      assert.ok(atExit.includes("@opentelemetry/exporter-trace-otlp-proto"), atExit.join(" "));
      assert.ok(atExit.includes("@opentelemetry/exporter-metrics-otlp-proto"), atExit.join(" "));
      for (const never of [
        "@opentelemetry/sdk-node",
        "@opentelemetry/exporter-trace-otlp-http",
        "@opentelemetry/exporter-trace-otlp-grpc",
        "@opentelemetry/exporter-metrics-otlp-grpc",
        "@opentelemetry/exporter-zipkin",
        "@opentelemetry/exporter-prometheus",
        "@opentelemetry/sdk-logs",
      ]) {
        assert.ok(!atExit.includes(never), `${never} was loaded: ${atExit.join(" ")}`);
      }
    });

    test("an application that registered its own provider first: we build nothing and load no exporter", async () => {
      const app = newApp("ownfirst");
      const run = await runApp(app, [fixture("own-provider-first.cjs")]);
      assert.equal(run.result.code, 0, describeRun(run.result));
      assertAppWorked(run, 3);
      const { all, spans } = appLoaded<{ all: string[]; spans: string[] }>(run);
      assert.deepEqual(
        all.filter((m) => m.startsWith("@opentelemetry/exporter-") || m === "llm-resilience:telemetry/own-sdk.js"),
        [],
      );
      assert.ok(spans.includes("chat gpt-4o-mini"), `our spans went to the application's provider: ${spans.join(", ")}`);
      assert.equal(run.spans.length, 0, "nothing of ours exported over OTLP");
    });
  });

  describe("switches and bad configuration", { concurrency: true }, () => {
    test("OTEL_SDK_DISABLED=true: calls (and our retries) still work, nothing is exported", async () => {
      const app = newApp("sdkoff");
      const run = await runApp(app, [fixture("require-first.cjs")], { env: { OTEL_SDK_DISABLED: "true" } });
      assert.equal(run.result.code, 0, describeRun(run.result));
      assertAppWorked(run, 3);
      assertRetryRequests(app);
      assert.equal(run.spans.length + run.metrics.length, 0);
    });

    for (const [how, args] of [["import", [fixture("import-first.mjs")]]] as const) {
      test(`LLM_RESILIENCE_DISABLED=true (${how}): calls still work (the SDK's own retry), nothing is exported`, async () => {
        const app = newApp("off");
        const run = await runApp(app, [...args], { env: { LLM_RESILIENCE_DISABLED: "true" } });
        assert.equal(run.result.code, 0, describeRun(run.result));
        assertAppWorked(run, 3);
        assertRetryRequests(app);
        assert.equal(run.spans.length + run.metrics.length, 0);
      });
    }

    for (const [how, args] of [
      ["-r", ["-r", "llm-resilience/register", fixture("plain.cjs")]],
      ["import first", [fixture("import-first.mjs")]],
      ["--import", ["--import", "llm-resilience/register", fixture("plain.mjs")]],
    ] as const) {
      test(`LLM_RESILIENCE_MAX_ATTEMPTS=abc (${how}): start-up fails fast, naming the variable`, async () => {
        const app = newApp("badcfg");
        const run = await runApp(app, [...args], { env: { LLM_RESILIENCE_MAX_ATTEMPTS: "abc" } });
        assert.notEqual(run.result.code, 0, describeRun(run.result));
        assert.equal(run.result.timedOut, false);
        assert.match(run.result.stderr, /LLM_RESILIENCE_MAX_ATTEMPTS/);
        assert.match(run.result.stderr, /integer/);
        assert.doesNotMatch(run.result.stdout, /APP-RESULT/);
        assert.equal(fake.requests.filter((r) => r.model === app.retryModel).length, 0, "no call was made");
        assert.equal(run.spans.length + run.metrics.length, 0);
      });
    }
  });
});
