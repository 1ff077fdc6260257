/**
 * The AI SDK's compatibility matrix: each set in test/compat/ai-sdk/<set>/ (`ai` with its providers,
 * installed under their real names) × Node 20 / 22 / 24 (test/compat's Node binaries) × start-up path,
 * each cell a child process (test/compat/ai-sdk/child.cjs) that calls the fake provider and reports
 * its spans. Sets: ai 7.0.0 and 7.0.185 (the current major's oldest and newest release; 7.0 is its only
 * minor), ai 6's newest (the previous major), and ai 5 (unsupported: one warning, calls untouched).
 *
 * Start-up paths: `require` (CommonJS app, register first), `import` (ES module app, register as its
 * first import), `preload` (`node --import llm-resilience/register`).
 *
 * Needs `scripts/compat-install.sh` (fails, not skips, without it) and a built dist/.
 * AI_COMPAT_ONLY=<regexp> restricts the cells (matched against "node22 ai7-min import").
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { expectedText, type FakeProvider, startFakeProvider } from "./fake-provider/index.ts";
import { childEnv } from "./helpers/child.ts";

const REPO_ROOT = resolve(__dirname, "..");
const COMPAT = join(REPO_ROOT, "test", "compat");
const SETS_DIR = join(COMPAT, "ai-sdk");
const CHILD = join(SETS_DIR, "child.cjs");
const INSTALL_HINT = "run `bash scripts/compat-install.sh` (installs test/compat and test/compat/ai-sdk/<set>)";

interface AiSet {
  name: string;
  ai: string;
  /** Reads each call's maxRetries (ai 7's telemetry channel); ai 6 falls back to the AI SDK's default. */
  readsMaxRetries: boolean;
  supported: boolean;
}
const SETS: AiSet[] = [
  { name: "ai7-min", ai: "7.0.0", readsMaxRetries: true, supported: true },
  { name: "ai7-max", ai: "7.0.185", readsMaxRetries: true, supported: true },
  { name: "ai6-max", ai: "6.0.333", readsMaxRetries: false, supported: true },
  { name: "ai5-unsupported", ai: "5.0.277", readsMaxRetries: false, supported: false },
];
const NODES = ["node20", "node22", "node24"];
type Mode = "require" | "import" | "preload";
const MODES: Mode[] = ["require", "import", "preload"];

interface SpanJson {
  name: string;
  kind: number;
  spanId: string;
  parentSpanId?: string;
  scope?: string;
  attributes: Record<string, unknown>;
  events: { name: string }[];
}
interface Report {
  node: string;
  versions: Record<string, string>;
  calls: { name: string; ok: boolean; value?: string; error?: string }[];
  spans: SpanJson[];
  error?: string;
}

let fake: FakeProvider;
before(async () => {
  for (const n of NODES) assert.ok(existsSync(join(COMPAT, "node_modules", n, "bin", "node")), `${n} missing: ${INSTALL_HINT}`);
  for (const s of SETS) assert.ok(existsSync(join(SETS_DIR, s.name, "node_modules", "ai", "package.json")), `${s.name} missing: ${INSTALL_HINT}`);
  assert.ok(existsSync(join(REPO_ROOT, "dist", "register.js")), "run `npm run build` first");
  fake = await startFakeProvider();
});
after(() => fake?.close());

function argsFor(mode: Mode): string[] {
  const register = join(REPO_ROOT, "esm", "register.mjs");
  const imports = 'import * as ai from "ai"; import * as o from "@ai-sdk/openai"; import * as a from "@ai-sdk/anthropic";';
  const run = "await globalThis.__aiCompatRun(ai, o, a);";
  if (mode === "require") return [CHILD];
  if (mode === "import") return ["-r", CHILD, "--input-type=module", "-e", `import ${JSON.stringify(register)}; ${imports} ${run}`];
  return ["-r", CHILD, "--import", register, "--input-type=module", "-e", `${imports} ${run}`];
}

interface CellRun {
  code: number | null;
  stdout: string;
  stderr: string;
  report?: Report;
}

function runCell(node: string, set: AiSet, mode: Mode, tag: string): Promise<CellRun> {
  return new Promise((done) => {
    const child = spawn(join(COMPAT, "node_modules", node, "bin", "node"), argsFor(mode), {
      cwd: join(SETS_DIR, set.name),
      env: childEnv({
        AI_COMPAT_MODE: mode,
        AI_COMPAT_URL: fake.url,
        AI_COMPAT_TAG: tag,
        LLM_RESILIENCE_LOG_LEVEL: "warn",
        LLM_RESILIENCE_BASE_DELAY_MS: "1",
      }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      const line = stdout.split("\n").find((l) => l.startsWith("AI_COMPAT_RESULT "));
      done({ code, stdout, stderr, report: line ? JSON.parse(line.slice("AI_COMPAT_RESULT ".length)) : undefined });
    });
  });
}

const only = process.env.AI_COMPAT_ONLY ? new RegExp(process.env.AI_COMPAT_ONLY) : undefined;
let seq = 0;

describe("AI SDK compatibility matrix", { concurrency: 2 }, () => {
  for (const node of NODES) {
    for (const set of SETS) {
      for (const mode of MODES) {
        const key = `${node} ${set.name} ${mode}`;
        if (only && !only.test(key)) continue;
        test(key, async () => {
          const tag = `c${++seq}`;
          fake.script(
            { match: { model: `gpt-${tag}` }, times: 1, action: { status: 429, headers: { "retry-after-ms": "10" } } },
            { match: { model: `claude-${tag}` }, times: 1, action: { status: 429, headers: { "retry-after-ms": "10" } } },
            { match: { model: `gpt-down-${tag}` }, times: Infinity, action: { status: 503, headers: { "retry-after-ms": "5" } } },
          );
          const run = await runCell(node, set, mode, tag);
          const why = `\n--- stdout\n${run.stdout.slice(-3000)}\n--- stderr\n${run.stderr.slice(-3000)}`;
          const r = run.report;
          assert.ok(r, `no result line${why}`);
          assert.equal(r.error, undefined, `${r.error}${why}`);
          assert.equal(r.node.split(".")[0], `v${node.slice(4)}`);
          assert.equal(r.versions.ai, set.ai);
          const byName = Object.fromEntries(r.calls.map((c) => [c.name, c]));
          assert.equal(byName.generateText?.value, expectedText(3), why);
          assert.equal(byName.streamText?.value, expectedText(3), why);
          assert.equal(byName.exhausted?.ok, false);
          const requests = (model: string) => fake.requests.filter((q) => q.model === model).length;

          if (!set.supported) {
            assert.equal(r.spans.filter((s) => s.scope === "llm-resilience").length, 0, "nothing patched");
            const warnings = run.stdout.split("\n").filter((l) => l.includes("is outside the supported range"));
            assert.ok(warnings.length >= 1 && warnings.every((l) => /@ai-sdk\/(openai|anthropic)@2\./.test(l)), `one warning per package${why}`);
            assert.equal(requests(`gpt-down-${tag}`), 2, "the AI SDK's own retry loop, untouched");
            return;
          }
          const logical = r.spans.filter((s) => s.scope === "llm-resilience" && s.kind === 2);
          assert.deepEqual(logical.map((s) => s.name).sort(), [`chat claude-${tag}`, `chat gpt-${tag}`, `chat gpt-down-${tag}`], why);
          for (const s of logical) {
            const attempts = r.spans.filter((a) => a.parentSpanId === s.spanId).length;
            assert.equal(s.attributes["llm_resilience.attempts"], attempts, s.name);
          }
          const span = (name: string) => logical.find((s) => s.name === name)!;
          assert.equal(span(`chat gpt-${tag}`).attributes["llm_resilience.attempts"], 2);
          assert.equal(span(`chat gpt-${tag}`).attributes["gen_ai.usage.output_tokens"], 7);
          assert.equal(span(`chat claude-${tag}`).attributes["llm_resilience.attempts"], 2);
          assert.equal(span(`chat claude-${tag}`).attributes["gen_ai.usage.output_tokens"], 7);
          assert.equal(typeof span(`chat claude-${tag}`).attributes["gen_ai.response.time_to_first_chunk"], "number");
          // maxRetries: 1 is read where the AI SDK publishes it; elsewhere its default (2) applies.
          const exhaustedAttempts = set.readsMaxRetries ? 2 : 3;
          assert.equal(span(`chat gpt-down-${tag}`).attributes["llm_resilience.attempts"], exhaustedAttempts);
          assert.match(byName.exhausted!.error!, /RetryError: Failed after/);
          assert.equal(requests(`gpt-${tag}`), 2);
          assert.equal(requests(`claude-${tag}`), 2);
          assert.equal(requests(`gpt-down-${tag}`), exhaustedAttempts, "the provider saw exactly our attempts");
        });
      }
    }
  }
});
