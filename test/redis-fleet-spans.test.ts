// The fleet, through the public path: 3 processes with the library registered on one Redis store and
// a real OpenAI client each, against the fake provider. Each breaker transition the fleet makes is an
// `llm_resilience.breaker.transition` event on the span of exactly one call: the one that caused it.
import assert from "node:assert/strict";
import { type ChildProcess, fork } from "node:child_process";
import path from "node:path";
import { after, before, test } from "node:test";
import { Redis } from "ioredis";
import { type FakeProvider, startFakeProvider } from "./fake-provider/index.ts";
import { hasRedisServer, RedisServer } from "./helpers/redis-server.ts";
import type { FromSdkWorker, SpanSummary, ToSdkWorker } from "./fixtures/fleet/sdk-worker.ts";
import { sleep, waitFor } from "./helpers/wait.ts";

const N = 3;
const FAILURES = 4;
const COOLDOWN_MS = 250;
const MODEL = "gpt-fleet-spans";
const PREFIX = `fleetspans${process.pid}:`;

let redis: RedisServer;
let fake: FakeProvider;
let listener: Redis;
const procs: ChildProcess[] = [];

before(async () => {
  assert.ok(hasRedisServer(), "redis-server is not installed: apt-get install -y redis-server (.ci/run does)");
  redis = await RedisServer.start();
  fake = await startFakeProvider();
});

after(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  listener?.disconnect();
  await fake?.close();
  await redis?.kill();
});

test("fleet mode: every breaker transition is an event with store=redis on the span of the call that caused it", { timeout: 60_000 }, async (t) => {
  // What the fleet decided: every transition is published once, by the script run that made it.
  const published: Array<{ s: string; g: number }> = [];
  listener = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  await listener.connect();
  listener.on("message", (_channel: string, message: string) => {
    const m = JSON.parse(message) as { s: string; g: number; f?: number };
    if (m.f !== 1) published.push({ s: m.s, g: m.g });
  });
  await listener.subscribe(`${PREFIX}breaker-events`);

  const messages: Array<FromSdkWorker> = [];
  for (let id = 0; id < N; id++) {
    const proc = fork(path.join(__dirname, "fixtures", "fleet", "sdk-worker.ts"), [], {
      execArgv: ["--import", "tsx"],
      env: {
        ...process.env,
        WORKER_ID: String(id),
        REDIS_URL: redis.url,
        KEY_PREFIX: PREFIX,
        FAKE_URL: fake.openaiBaseURL,
        MODEL,
        FAILURES: String(FAILURES),
        COOLDOWN_MS: String(COOLDOWN_MS),
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    proc.on("message", (m: FromSdkWorker) => messages.push(m));
    procs.push(proc);
  }
  const of = <T extends FromSdkWorker["type"]>(type: T) => messages.filter((m) => m.type === type) as Array<Extract<FromSdkWorker, { type: T }>>;
  await waitFor("workers ready", () => of("ready").length === N, 25_000);
  for (const p of procs) p.send({ type: "start" } satisfies ToSdkWorker);
  await waitFor("warm-up", () => fake.requests.filter((r) => r.model === MODEL).length >= 3 * N, 10_000);

  // Outage: the fleet opens, then probes fail a few times (half_open -> open), then recovery closes it.
  fake.script({ match: { model: MODEL }, times: Infinity, action: { status: 503 } });
  await waitFor("the fleet opens", () => published.some((p) => p.s === "open"), 5000);
  await waitFor("a failed probe re-opens", () => published.filter((p) => p.s === "open").length >= 2, 5000);
  fake.clearRules();
  await waitFor("the fleet closes", () => published.some((p) => p.s === "closed"), 5000);
  await sleep(100);
  for (const p of procs) p.send({ type: "stop" } satisfies ToSdkWorker);
  await waitFor("workers stopped", () => of("stopped").length === N, 10_000);
  await sleep(50); // the last published messages

  assert.deepEqual(
    of("degraded").filter((m) => m.degraded),
    [],
    "no process went degraded",
  );
  const spans: SpanSummary[] = of("stopped").flatMap((m) => m.spans);
  const events = spans.flatMap((s) => s.transitions.map((tr) => ({ ...tr, span: s })));
  t.diagnostic(`published transitions: ${published.map((p) => p.s).join(" ")}; span events: ${events.length} on ${spans.length} call spans`);

  // Exactly one call carries each transition the fleet made.
  assert.equal(events.length, published.length, "one span event per fleet transition");
  assert.deepEqual(events.map((e) => e.to).sort(), published.map((p) => p.s).sort());
  for (const e of events) {
    assert.equal(e.store, "redis");
    assert.match(e.key, new RegExp(`\\|${MODEL}$`));
    if (e.from === "closed" && e.to === "open") assert.ok(e.span.errorType !== undefined, "an opening is on a failed call");
    if (e.from === "open") {
      assert.equal(e.to, "half_open");
      assert.ok(e.span.probe || e.span.rejected, "open -> half_open is on the call whose admission moved it");
    }
    if (e.from === "half_open") {
      assert.ok(e.span.probe, "a probe's outcome moves half_open on");
      assert.equal(e.span.errorType === undefined, e.to === "closed", "a probe success closes, a failure re-opens");
    }
  }
  assert.equal(events.filter((e) => e.from === "closed" && e.to === "open").length, 1, "one opening");
  assert.equal(events.filter((e) => e.to === "closed").length, 1, "one closing");
  assert.ok(events.filter((e) => e.from === "half_open" && e.to === "open").length >= 1, "a failed probe re-opened it");
});
