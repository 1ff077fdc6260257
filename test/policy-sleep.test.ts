import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { sleep } from "../src/policy/sleep.ts";

// The sleeps are unref()ed: without a ref'd handle the test process itself would exit mid-await.
let keepAlive: NodeJS.Timeout;
before(() => {
  keepAlive = setInterval(() => {}, 1000);
});
after(() => clearInterval(keepAlive));

test("resolves after roughly the delay", async () => {
  const t0 = performance.now();
  await sleep(20);
  assert.ok(performance.now() - t0 >= 18);
  await sleep(0);
  await sleep(-5);
  await sleep(NaN);
});

test("an abort rejects a 10 s sleep at once with signal.reason", async () => {
  const ac = new AbortController();
  const reason = new Error("stop");
  const p = sleep(10_000, ac.signal);
  await new Promise((r) => setImmediate(r)); // the sleep is really pending
  const t0 = performance.now();
  ac.abort(reason);
  await assert.rejects(p, (e) => e === reason);
  const took = performance.now() - t0;
  assert.ok(took < 10, `took ${took} ms`);
});

test("abort without a reason rejects with an AbortError", async () => {
  const ac = new AbortController();
  const p = sleep(10_000, ac.signal);
  ac.abort();
  await assert.rejects(p, (e: any) => e?.name === "AbortError");
});

test("an already aborted signal rejects immediately", async () => {
  const reason = new Error("already");
  await assert.rejects(sleep(10_000, AbortSignal.abort(reason)), (e) => e === reason);
});

test("the abort listener is removed after the sleep resolves", async () => {
  const ac = new AbortController();
  let added = 0;
  let removed = 0;
  const add = ac.signal.addEventListener.bind(ac.signal);
  const remove = ac.signal.removeEventListener.bind(ac.signal);
  ac.signal.addEventListener = ((...a: Parameters<typeof add>) => (added++, add(...a))) as typeof add;
  ac.signal.removeEventListener = ((...a: Parameters<typeof remove>) => (removed++, remove(...a))) as typeof remove;
  await sleep(1, ac.signal);
  assert.equal(added, 1);
  assert.equal(removed, 1);
  ac.abort(); // no late rejection
});

test("a pending sleep does not keep the process alive", async () => {
  const mod = path.resolve(__dirname, "../src/policy/sleep.ts");
  const code = `const { sleep } = require(${JSON.stringify(mod)}); sleep(60_000); sleep(60_000, new AbortController().signal);`;
  const t0 = performance.now();
  const child = spawn(process.execPath, ["--import", "tsx", "-e", code], { stdio: "pipe" });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exitCode = await new Promise<number | null>((resolve) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.on("exit", (c) => (clearTimeout(kill), resolve(c)));
  });
  const took = performance.now() - t0;
  assert.equal(exitCode, 0, stderr);
  assert.ok(took < 15_000, `child took ${took} ms`);
});

test("ref: true keeps the process alive until the sleep ends", async () => {
  const mod = path.resolve(__dirname, "../src/policy/sleep.ts");
  const code = `const { sleep } = require(${JSON.stringify(mod)}); sleep(300, undefined, { ref: true }).then(() => process.stdout.write("done"));`;
  const child = spawn(process.execPath, ["--import", "tsx", "-e", code], { stdio: "pipe" });
  let stdout = "";
  child.stdout.on("data", (d) => (stdout += d));
  const exitCode = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  assert.equal(exitCode, 0);
  assert.equal(stdout, "done");
});
