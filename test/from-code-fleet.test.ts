/**
 * Breaker state for health checks with the Redis store: fleet-wide (a breaker another process opened
 * is listed), and readable while Redis is down.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import OpenAI from "openai";
import { breakerStates, health, register, shutdown } from "../src/index.ts";
import { type FakeProvider, startFakeProvider } from "./fake-provider/index.ts";
import { installTestTelemetry } from "./helpers/otel.ts";
import { hasRedisServer, RedisServer } from "./helpers/redis-server.ts";
import { runSdkReplica } from "./helpers/sdk-replica.ts";
import { sleep } from "./helpers/wait.ts";

installTestTelemetry();
let fake: FakeProvider;
let redis: RedisServer;

before(async () => {
  assert.ok(hasRedisServer(), "redis-server is not installed: apt-get install -y redis-server (.ci/run does)");
  redis = await RedisServer.start();
  fake = await startFakeProvider();
});
after(async () => {
  await shutdown();
  await fake.close();
  await redis.kill();
});

/** Another process of the fleet: one call to `model` with a breaker that opens on its first failure. */
const replica = (model: string) =>
  runSdkReplica(redis.url, fake.openaiBaseURL, model, { LLM_RESILIENCE_BREAKER_FAILURES: "1", LLM_RESILIENCE_BREAKER_COOLDOWN_MS: "60000" });

test("fleet-wide breaker states, and what this process last knew while Redis is down", async () => {
  register({ startSdk: false, logLevel: "silent", redisUrl: redis.url, maxAttempts: 1, breaker: { failures: 2, cooldownMs: 60_000 } });
  const client = new OpenAI({ apiKey: "sk-x", baseURL: fake.openaiBaseURL });
  const ours = `fleet-ours-${process.pid}`;
  const theirs = `fleet-theirs-${process.pid}`;
  await sleep(300); // the store's first connection
  fake.script(
    { match: { model: ours }, times: Infinity, action: { status: 503 } },
    { match: { model: theirs }, times: Infinity, action: { status: 503 } },
  );
  for (let i = 0; i < 2; i++) await assert.rejects(client.chat.completions.create({ model: ours, messages: [{ role: "user", content: "x" }] }));
  assert.equal((await replica(theirs)).ok, false);

  const states = await breakerStates();
  const mine = states.find((s) => s.model === ours);
  const other = states.find((s) => s.model === theirs);
  assert.ok(mine, JSON.stringify(states));
  assert.ok(other, "a breaker only another process used is listed from Redis");
  assert.deepEqual([mine.state, mine.store], ["open", "redis"]);
  assert.deepEqual([other.state, other.store], ["open", "redis"]);
  assert.ok(other.openUntil! > Date.now() + 50_000 && other.openUntil! <= Date.now() + 61_000, String(other.openUntil));
  assert.equal(other.key, `openai|127.0.0.1:${fake.port}|${theirs}`);

  const h = await health();
  assert.equal(h.status, "degraded");
  assert.deepEqual(h.store, { kind: "redis", degraded: false });
  assert.ok(h.unavailable.some((b) => b.model === theirs));

  await redis.kill();
  const until = Date.now() + 10_000;
  let down = await health();
  while (!down.store.degraded && Date.now() < until) {
    await sleep(50);
    down = await health();
  }
  assert.equal(down.store.degraded, true, "health says the store is unreachable");
  const known = down.unavailable.find((b) => b.model === ours);
  assert.equal(known?.state, "open", "what this process last knew is still reported");
});
