/**
 * Conformance: registering llm-resilience changes nothing an SDK user relies on in the SDK's own retry
 * loop, which ours replaces. Every scenario of test/conformance/scenarios.ts (what is retried and how
 * often, retry-after / retry-after-ms / x-should-retry, maxRetries per client and per request, timeouts
 * before the headers and while reading the body, abort, X-Stainless-Retry-Count and the caller's
 * overrides, idempotency and auth headers, streaming request bodies, Anthropic's credential refresh,
 * asResponse / withResponse, streams) runs in two child processes per SDK version: without the library,
 * and with it registered. Per scenario the test asserts
 * - the SDK's own behaviour on the run without the library (so no scenario passes vacuously),
 * - the same outcome (value, or error class, status, type and message),
 * - the same requests at the server (count, method, path, headers, bodies),
 * - the scenario's timing semantics on both runs,
 * - with the library, every logical span ended (responses and streams the scenario dropped: at GC).
 * Scenarios named "DESIGN …" are deliberate differences of our policies: both sides are asserted, each
 * its own way. Timing is compared by semantics (waited at least the server's delay, gave the attempt its
 * timeout, ended at the abort), never by equal delays: our backoff and the SDK's draw different jitter.
 *
 * Versions: each SDK's oldest and newest of the compatibility matrix (test/compat/, installed by
 * scripts/compat-install.sh) and the newest installed here (the root dev dependency).
 * CONFORMANCE_VERSIONS=all runs every supported version of the matrix; CONFORMANCE_ONLY=<regexp>
 * restricts the scenarios by name.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { before, describe, test } from "node:test";
import { compareVersions, isPending, type SdkName, type SideResult, scenariosFor, type Version, versionInfo } from "./conformance/scenarios.ts";
import type { SeenRequest } from "./conformance/server.ts";
import { childEnv } from "./helpers/child.ts";

const REPO = resolve(__dirname, "..");
const COMPAT = join(REPO, "test", "compat");
const INSTALL_HINT = "run `bash scripts/compat-install.sh` (installs the SDK versions of the compatibility matrix)";

interface Target {
  label: string;
  sdk: SdkName;
  version: string;
  /** The folder the SDK resolves from by its real name. */
  dir: string;
}

function rootTarget(sdk: SdkName): Target {
  const pkg = sdk === "openai" ? "openai" : "@anthropic-ai/sdk";
  const version = JSON.parse(readFileSync(join(REPO, "node_modules", pkg, "package.json"), "utf8")).version;
  return { label: `${sdk} ${version} (installed)`, sdk, version, dir: REPO };
}

function matrixTargets(): Target[] {
  const deps = JSON.parse(readFileSync(join(COMPAT, "package.json"), "utf8")).dependencies as Record<string, string>;
  const out: Target[] = [];
  for (const [alias, spec] of Object.entries(deps)) {
    const m = /^npm:(openai|@anthropic-ai\/sdk)@(.+)$/.exec(spec);
    if (!m || alias.includes("unsupported")) continue;
    out.push({ label: `${alias} (${m[2]})`, sdk: m[1] === "openai" ? "openai" : "anthropic", version: m[2]!, dir: join(COMPAT, "v", alias) });
  }
  return out;
}

function targets(): Target[] {
  const matrix = matrixTargets();
  const chosen =
    process.env.CONFORMANCE_VERSIONS === "all"
      ? matrix
      : (["openai", "anthropic"] as const).flatMap((sdk) => {
          const own = matrix.filter((t) => t.sdk === sdk).sort((a, b) => compareVersions(a.version, b.version));
          return [own[0]!, own[own.length - 1]!];
        });
  // The installed dev dependency too, unless the matrix already has that version.
  const roots = [rootTarget("openai"), rootTarget("anthropic")].filter((r) => !chosen.some((t) => t.sdk === r.sdk && t.version === r.version));
  return [...chosen, ...roots];
}

interface ChildOutput {
  version: string;
  results: SideResult[];
  spans: Record<string, { started: number; ended: number; longestMs: number; attempts: unknown[] }>;
  loaded: string[];
}

function runChild(t: Target, side: "sdk" | "ours"): Promise<ChildOutput> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", join(REPO, "test", "conformance", "child.ts")], {
      cwd: REPO,
      env: childEnv({ CONFORMANCE_SIDE: side, CONFORMANCE_SDK: t.sdk, CONFORMANCE_DIR: t.dir, CONFORMANCE_ONLY: process.env.CONFORMANCE_ONLY }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      const line = stdout.split("\n").find((l) => l.startsWith("CONFORMANCE_RESULT "));
      if (code !== 0 || !line) {
        reject(new Error(`${t.label} (${side}) exited ${code}\n--- stderr\n${stderr.slice(-3000)}\n--- stdout\n${stdout.slice(-2000)}`));
        return;
      }
      resolvePromise(JSON.parse(line.slice("CONFORMANCE_RESULT ".length)));
    });
  });
}

/**
 * What the caller and the server see of a run, comparable across two runs: the outcome, the notes,
 * and each request (method, path, headers, body); headers the SDK generates per run are replaced by
 * which request first carried that value.
 */
function observable(r: SideResult, generated: string[] = []) {
  const seen = new Map<string, number>();
  const requests = r.requests.map((q: SeenRequest, i) => {
    const headers = { ...q.headers };
    for (const h of generated) {
      const v = headers[h];
      if (v === undefined) continue;
      if (!seen.has(`${h}\0${v}`)) seen.set(`${h}\0${v}`, i + 1);
      headers[h] = `<value first sent in request ${seen.get(`${h}\0${v}`)}>`;
    }
    return { method: q.method, path: q.path, headers, body: q.body };
  });
  return { outcome: r.outcome, notes: r.notes, requests };
}

for (const t of targets()) {
  const v: Version = versionInfo(t.sdk, t.version);
  const scenarios = scenariosFor(v).filter((s) => !process.env.CONFORMANCE_ONLY || new RegExp(process.env.CONFORMANCE_ONLY).test(s.name));

  describe(`conformance: ${t.label}`, () => {
    let sdk: ChildOutput;
    let ours: ChildOutput;
    before(async () => {
      if (t.dir !== REPO && !existsSync(join(t.dir, "node_modules"))) throw new Error(`missing ${t.dir}: ${INSTALL_HINT}`);
      [sdk, ours] = await Promise.all([runChild(t, "sdk"), runChild(t, "ours")]);
      assert.equal(sdk.version, t.version, "the SDK version loaded");
      assert.equal(ours.version, t.version, "the SDK version loaded");
      assert.deepEqual(sdk.loaded, [], "the run without the library must not load it");
    });

    for (const s of scenarios) {
      test(s.name, () => {
        const a = sdk.results.find((r) => r.scenario === s.name);
        const b = ours.results.find((r) => r.scenario === s.name);
        assert.ok(a && b, "ran on both sides");
        s.sdk(a, v);
        s.timing?.(a, "sdk", v);
        if (s.design && (s.design.applies?.(v) ?? true)) {
          s.design.ours(b, v);
          assert.notDeepEqual(observable(b, s.generatedHeaders), observable(a, s.generatedHeaders), "a DESIGN scenario shows its difference");
        } else {
          const got = observable(b, s.generatedHeaders);
          const want = observable(a, s.generatedHeaders);
          assert.deepEqual(got.outcome, want.outcome, "the caller gets the same value or error with the library");
          assert.deepEqual(got.notes, want.notes, "the same side effects (provider / apiKey calls)");
          assert.equal(got.requests.length, want.requests.length, "the server sees as many requests");
          assert.deepEqual(got.requests, want.requests, "the server sees the same requests: method, path, headers, bodies");
        }
        s.timing?.(b, "ours", v);
        // A call that never settles (isPending) has a span that never ends either.
        const { longestMs, attempts, ...counts } = ours.spans[s.name]!;
        assert.deepEqual(counts, { started: 1, ended: isPending(b) ? 0 : 1 }, "one logical span, ended when the call did");
        // It covers the call and no more, also when it ended later (a response left unread ends at GC,
        // seconds later, timestamped when it was handed out). The call began after the scenario's clock
        // started; a body read that failed is recorded on the next turn of the event loop (the slack).
        if (!isPending(b)) {
          assert.ok(longestMs <= b.endMs + 50, `the logical span lasted ${longestMs} ms, the call ${b.endMs} ms`);
          if (s.unsentAttempts) assert.ok(Number(attempts[0]) >= b.requests.length, "llm_resilience.attempts: at least the requests the server saw");
          else assert.deepEqual(attempts, [b.requests.length], "llm_resilience.attempts: one attempt per request the server saw");
        }
      });
    }
  });
}
