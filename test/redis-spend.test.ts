// The spend limit shared by a fleet through a real redis-server: atomic across processes, this
// process's share while Redis is down, and a tight loop in several processes stopped at the limit.
import assert from "node:assert/strict";
import { type ChildProcess, fork } from "node:child_process";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { createRedisStore, type RedisStore } from "../src/fleet/redis-store.ts";
import type { SpendDecision } from "../src/policy/spend-cell.ts";
import { SpendLimit } from "../src/policy/spend-limit.ts";
import { type FakeProvider, startFakeProvider } from "./fake-provider/index.ts";
import type { SpendFromWorker, SpendToWorker } from "./fixtures/fleet/spend-worker.ts";
import { hasRedisServer, RedisServer } from "./helpers/redis-server.ts";
import { sleep, waitFor } from "./helpers/wait.ts";

const skip = hasRedisServer() ? false : "redis-server not installed (apt-get install -y redis-server)";
let seq = 0;
const freshKey = () => `spend-test-${process.pid}-${++seq}`;

function stores(url: string, n: number, warnings: string[] = []): RedisStore[] {
  return Array.from({ length: n }, (_, i) =>
    createRedisStore({
      url,
      commandTimeoutMs: 250,
      reconnectMaxDelayMs: 100,
      recoveryCheckMs: 100,
      resyncIntervalMs: 50,
      logger: { warn: (_o, msg) => warnings.push(`${i}: ${msg}`), info: () => {} },
    }),
  );
}

describe("spend limit through Redis", { skip }, () => {
  let server: RedisServer;
  before(async () => {
    server = await RedisServer.start();
  });
  after(() => server?.kill());

  test("two stores (two processes' worth) share one window: concurrent holds never pass the limit", async () => {
    const [a, b] = stores(server.url, 2);
    try {
      assert.deepEqual(await Promise.all([a!.ready(3000), b!.ready(3000)]), [true, true]);
      const key = freshKey();
      const la = new SpendLimit<"async">(key, { limitUsd: 1, store: a });
      const lb = new SpendLimit<"async">(key, { limitUsd: 1, store: b });
      const calls = await Promise.all(
        Array.from({ length: 40 }, async (_, i) => {
          const limit = i % 2 ? la : lb;
          return { limit, d: (await limit.reserve(0.1)) as SpendDecision };
        }),
      );
      const admitted = calls.filter((c) => c.d.admitted);
      assert.equal(admitted.length, 10, "0.1 × 10 = the limit, from both stores together");
      assert.ok(calls.every((c) => c.d.store === "redis"));
      // Each call settles through its own process's limit: 10 holds of 0.1 become 0.3 spent in all.
      await Promise.all(admitted.map((c) => c.limit.settle((c.d as { hold: string }).hold, 0.03)));
      const seen = await lb.spent();
      assert.ok(Math.abs(seen - 0.3) < 1e-9, `spent seen by the other store: ${seen}`);
      const again = await la.reserve(0.7);
      assert.ok(again.admitted, `0.3 spent + 0.7 fits: ${JSON.stringify(again)}`);
      const over = await lb.reserve(0.01);
      assert.ok(!over.admitted);
      assert.ok(Math.abs(over.spentUsd - 0.3) < 1e-9 && Math.abs(over.reservedUsd - 0.7) < 1e-9);
    } finally {
      await Promise.all([a!.close(), b!.close()]);
    }
  });

  test("Redis down: this process's share of the limit, one warning; back: the fallback's spend reaches the shared window", async () => {
    const own = await RedisServer.start();
    const warnings: string[] = [];
    const [a, b] = stores(own.url, 2, warnings);
    try {
      assert.deepEqual(await Promise.all([a!.ready(3000), b!.ready(3000)]), [true, true]);
      await waitFor("both stores count the fleet", () => a!.fleetSize === 2, 3000);
      const key = freshKey();
      const la = new SpendLimit<"async">(key, { limitUsd: 1, store: a });
      const first = await la.reserve(0.2);
      assert.ok(first.admitted);
      await la.settle(first.hold, 0.2);
      await sleep(50);
      await own.kill();
      await waitFor("degraded", () => a!.degraded);
      // Share: (1 / 2 processes) = 0.5, seeded with half the fleet's 0.2 spent → 0.4 left here.
      const local: SpendDecision[] = [];
      for (let i = 0; i < 10; i++) local.push(await la.reserve(0.1));
      const ok = local.filter((d) => d.admitted);
      assert.equal(ok.length, 4);
      assert.ok(local.every((d) => d.store === "local"));
      assert.equal(warnings.filter((w) => w.startsWith("0:")).length, 1, "one warning");
      for (const d of ok) await la.settle((d as { hold: string }).hold, 0.1);

      await own.restart(); // empty: the 0.2 settled before the outage is gone with it
      await waitFor("recovered", () => a!.usable, 5000);
      let shared = 0;
      await waitFor("the fallback's spend in the shared window", () => {
        (la.spent() as Promise<number>).then((v) => (shared = v));
        return Math.abs(shared - 0.4) < 1e-9;
      });
    } finally {
      await Promise.all([a!.close(), b!.close()]);
      await own.kill();
    }
  });
});

describe("a runaway loop in 3 processes sharing Redis", { skip }, () => {
  const N = 3;
  const LIMIT = 0.01;
  let server: RedisServer;
  let fake: FakeProvider;
  const procs: ChildProcess[] = [];
  before(async () => {
    [server, fake] = await Promise.all([RedisServer.start(), startFakeProvider()]);
  });
  after(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
    await fake?.close();
    await server?.kill();
  });

  test("stops at the fleet's limit: the provider receives no request beyond it", { timeout: 60_000 }, async (t) => {
    const messages: SpendFromWorker[][] = [];
    for (let i = 0; i < N; i++) {
      const proc = fork(path.join(__dirname, "fixtures", "fleet", "spend-worker.ts"), [], {
        execArgv: ["--import", "tsx"],
        env: { ...process.env, REDIS_URL: server.url, FAKE_URL: fake.openaiBaseURL, LIMIT_USD: String(LIMIT) },
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      messages.push([]);
      proc.on("message", (m: SpendFromWorker) => messages[i]!.push(m));
      procs.push(proc);
    }
    await waitFor("workers ready", () => messages.every((m) => m.some((x) => x.type === "ready")), 30_000);
    for (const p of procs) p.send({ type: "run", calls: 150 } satisfies SpendToWorker);
    await waitFor("loops done", () => messages.every((m) => m.some((x) => x.type === "done")), 45_000);
    const done = messages.map((m) => m.find((x) => x.type === "done") as Extract<SpendFromWorker, { type: "done" }>);

    const attempted = done.reduce((s, d) => s + d.attempted, 0);
    const ok = done.reduce((s, d) => s + d.ok, 0);
    const refused = done.reduce((s, d) => s + d.refused, 0);
    const sent = fake.requests.length;
    const perCall = (11 * 2.5 + 7 * 10) / 1e6; // gpt-4o, the fake's usage
    const spent = sent * perCall;
    const estimate = done[0]!.firstRefusal!.estimateUsd;
    t.diagnostic(
      `fleet of ${N}: calls attempted ${attempted}, requests the provider saw ${sent} (${done.map((d) => d.ok).join("/")}), refused ${refused}, spent ${spent.toFixed(6)} USD of ${LIMIT}; per-process limits would have let ${N * sent} through`,
    );
    assert.deepEqual(
      done.flatMap((d) => d.otherErrors),
      [],
    );
    assert.equal(ok, sent, "every admitted call reached the provider once");
    assert.equal(ok + refused, attempted);
    assert.ok(spent <= LIMIT, `fleet spend ${spent} within the limit ${LIMIT}`);
    // Stopped only when no more fitted: each process's refusal saw spend + holds + its worst case over the limit.
    assert.ok(spent > LIMIT - N * estimate, `the fleet used its limit (${spent} of ${LIMIT})`);
    assert.ok(
      done.every((d) => d.ok > 0 && d.refused > 0),
      "every process took part and was stopped",
    );
  });
});
