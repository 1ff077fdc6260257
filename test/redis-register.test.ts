import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import OpenAI from "openai";
import { BreakerOpenError, register, shutdown } from "../src/index.ts";
import { type FakeProvider, startFakeProvider } from "./fake-provider/index.ts";
import { installTestTelemetry } from "./helpers/otel.ts";
import { hasRedisServer, RedisServer } from "./helpers/redis-server.ts";
import { runSdkReplica } from "./helpers/sdk-replica.ts";

// Fleet mode through the public entry points: LLM_RESILIENCE_REDIS_URL / register({ redisUrl }).
const tel = installTestTelemetry();
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

const replica = (model: string) => runSdkReplica(redis.url, fake.openaiBaseURL, model);

test("a breaker opened in this process rejects the call of another replica; events say store=redis", async () => {
  register({ startSdk: false, logLevel: "silent", redisUrl: redis.url, maxAttempts: 1, breaker: { failures: 3, cooldownMs: 60_000 } });
  const model = "gpt-4o-fleet";
  const client = new OpenAI({ apiKey: "sk-x", baseURL: fake.openaiBaseURL });
  await new Promise((r) => setTimeout(r, 300)); // the store's first connection
  fake.script({ match: { model }, times: Infinity, action: { status: 503 } });
  for (let i = 0; i < 3; i++) await assert.rejects(client.chat.completions.create({ model, messages: [{ role: "user", content: "x" }] }));
  // The opening is decided in Redis; this process learns it within one round trip (README: staleness).
  await new Promise((r) => setTimeout(r, 150));
  const err = await client.chat.completions.create({ model, messages: [{ role: "user", content: "x" }] }).catch((e) => e);
  assert.ok(err instanceof BreakerOpenError, `expected BreakerOpenError, got ${err}`);
  assert.equal(err.store, "redis");
  assert.equal(
    tel
      .logical()
      .at(-1)!
      .events.filter((e) => e.name === "llm_resilience.breaker.reject").length,
    1,
  );
  assert.equal(
    await tel.metricValue("llm_resilience.breaker.transitions", { "llm_resilience.breaker.to": "open", "llm_resilience.breaker.store": "redis" }),
    1,
  );
  assert.equal(await tel.metricValue("llm_resilience.store.degraded"), 0);

  const sent = fake.requests.length;
  // Another process, same Redis, same provider/server/model key: rejected before sending anything.
  const other = await replica(model);
  assert.deepEqual({ ok: other.ok, breakerOpen: other.breakerOpen, store: other.store }, { ok: false, breakerOpen: true, store: "redis" });
  assert.equal(fake.requests.length, sent, "the replica sent nothing into the outage");
  // A healthy model is unaffected in the replica.
  assert.deepEqual(await replica("gpt-4o-mini-fleet"), { ok: true });
});
