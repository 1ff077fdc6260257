/**
 * Compatibility matrix: every SDK version in test/compat/package.json (npm aliases, installed side by
 * side) × Node 20 / 22 / 24 (npm's `node` package) × load path, each cell a child process
 * (test/compat/child.cjs) that makes a JSON call and a streamed call against the fake provider, each
 * answered first with one 429, and reports the spans it produced.
 *
 * Load paths:
 * - `alias`:   `require("openai-v4-min")` + `instrument(client)` — an aliased copy is not hooked by name.
 * - `by-name`: `require("llm-resilience/register")` first, then `require("openai")` resolved from
 *              test/compat/v/<alias>/node_modules/openai (a hard-linked copy under the real name), so
 *              the require hook sees the module NAME exactly as in an application.
 * - `esm`:     `node --import llm-resilience/register` (esm/register.mjs) with an ES module app that
 *              statically imports the SDK by name, run from test/compat/v/<alias>/.
 * Unsupported versions (openai 3.x, anthropic < 0.30) run by name and as ESM, and anthropic's also through
 * instrument(client) (alias): one warning line, nothing patched, no spans, and the calls still work.
 *
 * Needs `scripts/compat-install.sh` (fails, not skips, without it) and a built dist/ (`npm test`
 * builds first). COMPAT_CONCURRENCY sets how many children run at once (default 2);
 * COMPAT_ONLY=<regexp> restricts the cells (matched against "node22 openai-v4-min by-name").
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve, sep } from "node:path";
import { before, describe, test } from "node:test";
import { expectedText, type RecordedRequest, startFakeProvider } from "./fake-provider/index.ts";
import { childEnv } from "./helpers/child.ts";
import { attr } from "./helpers/otel.ts";

const REPO_ROOT = resolve(__dirname, "..");
const COMPAT = join(REPO_ROOT, "test", "compat");
const INSTALL_HINT = "run `bash scripts/compat-install.sh` (installs test/compat: SDK versions and Node binaries)";

type Sdk = "openai" | "anthropic";
type Mode = "alias" | "by-name" | "esm";
interface SdkCase {
  alias: string;
  sdk: Sdk;
  version: string;
  supported: boolean;
}
interface Cell {
  node: string;
  sdk: SdkCase;
  mode: Mode;
  key: string;
}
interface SpanJson {
  name: string;
  kind: number;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
  events: { name: string; attributes?: Record<string, unknown> }[];
  status: { code: number };
}
interface ChildReport {
  node: string;
  sdkVersion?: string;
  sdkPath?: string;
  patched?: boolean;
  calls: { kind: "json" | "stream"; ok: boolean; text?: string; id?: string; error?: string; done?: boolean }[];
  spans: SpanJson[];
  error?: string;
}
interface CellRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  report?: ChildReport;
  /** Our pino lines (JSON with a numeric level) on stdout. */
  logLines: { level: number; msg: string }[];
  requests: Pick<RecordedRequest, "path" | "stream" | "retryCount">[];
  problems: string[];
}

// ------------------------------------------------------------------------------------- the matrix

const compatPkg = JSON.parse(readFileSync(join(COMPAT, "package.json"), "utf8")) as { dependencies: Record<string, string> };
const NODES = Object.keys(compatPkg.dependencies)
  .filter((k) => /^node\d+$/.test(k))
  .map((k) => k.slice(4))
  .sort((a, b) => Number(a) - Number(b));
const SDKS: SdkCase[] = Object.entries(compatPkg.dependencies)
  .filter(([k]) => /^(openai|anthropic)-v/.test(k))
  .map(([alias, spec]) => {
    const m = /^npm:(openai|@anthropic-ai\/sdk)@(.+)$/.exec(spec);
    if (!m) throw new Error(`test/compat/package.json: ${alias} is not an npm alias of an SDK: ${spec}`);
    return { alias, sdk: m[1] === "openai" ? "openai" : "anthropic", version: m[2]!, supported: !alias.includes("unsupported") } as SdkCase;
  });
const ONLY = process.env.COMPAT_ONLY ? new RegExp(process.env.COMPAT_ONLY) : undefined;
const CELLS: Cell[] = [];
for (const node of NODES)
  // Unsupported anthropic clients also go through instrument(client) (alias), which must refuse them
  // by the version the client reports; openai 3.x has no client class of the kind instrument() takes.
  for (const sdk of SDKS)
    for (const mode of (sdk.supported || sdk.sdk === "anthropic" ? ["alias", "by-name", "esm"] : ["by-name", "esm"]) as Mode[]) {
      const key = `node${node} ${sdk.alias} ${mode}`;
      if (!ONLY || ONLY.test(key)) CELLS.push({ node, sdk, mode, key });
    }

const nodeBin = (node: string) => join(COMPAT, "node_modules", `node${node}`, "bin", "node");

/** Fails (never skips) when the compat install is missing or was made for another lockfile. */
function checkInstall(): void {
  const stampFile = join(COMPAT, "node_modules", ".compat-stamp");
  const lock = join(COMPAT, "package-lock.json");
  if (!existsSync(stampFile)) throw new Error(`test/compat is not installed: ${INSTALL_HINT}`);
  const want = createHash("sha256")
    .update(Buffer.concat([readFileSync(join(COMPAT, "package.json")), readFileSync(lock)]))
    .digest("hex");
  if (readFileSync(stampFile, "utf8").trim() !== want) throw new Error(`test/compat is out of date with its lockfile: ${INSTALL_HINT}`);
  for (const n of NODES) if (!existsSync(nodeBin(n))) throw new Error(`missing ${nodeBin(n)}: ${INSTALL_HINT}`);
  for (const s of SDKS)
    if (!existsSync(join(COMPAT, "v", s.alias, "node_modules"))) throw new Error(`missing test/compat/v/${s.alias}: ${INSTALL_HINT}`);
  for (const f of ["index.js", "register.js"])
    if (!existsSync(join(REPO_ROOT, "dist", f))) throw new Error(`missing dist/${f}: run \`npm run build\` first (npm test does)`);
}

// ------------------------------------------------------------------------------------- running

const RETRY_AFTER_MS = 10;

async function runCell(cell: Cell): Promise<CellRun> {
  const fake = await startFakeProvider();
  try {
    // One 429 before each call's answer, with retry-after-ms. openai 3.x has no retries at all, so it
    // gets none (its calls must simply still work).
    if (!(cell.sdk.sdk === "openai" && !cell.sdk.supported)) {
      for (const stream of [false, true]) {
        fake.script({ match: { stream }, action: { status: 429, headers: { "retry-after-ms": String(RETRY_AFTER_MS) } } });
      }
    }
    const started = Date.now();
    const pkgName = cell.sdk.sdk === "openai" ? "openai" : "@anthropic-ai/sdk";
    const args =
      cell.mode === "esm"
        ? [
            "-r",
            join(COMPAT, "child.cjs"),
            "--import",
            join(REPO_ROOT, "esm", "register.mjs"),
            "--input-type=module",
            "-e",
            `import * as sdk from ${JSON.stringify(pkgName)};\nawait globalThis.__compatRun(sdk);`,
          ]
        : [join(COMPAT, "child.cjs")];
    const child = spawn(nodeBin(cell.node), args, {
      // esm: the app's bare `import "openai"` resolves from its working directory.
      cwd: cell.mode === "esm" ? join(COMPAT, "v", cell.sdk.alias) : COMPAT,
      env: childEnv({
        COMPAT_SDK: cell.sdk.sdk,
        COMPAT_ALIAS: cell.sdk.alias,
        COMPAT_MODE: cell.mode,
        COMPAT_URL: fake.url,
        // The by-name path configures llm-resilience/register through its variables.
        LLM_RESILIENCE_BASE_DELAY_MS: "1",
        LLM_RESILIENCE_MAX_DELAY_MS: "5",
        LLM_RESILIENCE_BREAKER_FAILURES: "0",
        LLM_RESILIENCE_LOG_LEVEL: "warn",
      }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const code = await new Promise<number | null>((res, rej) => {
      child.once("error", rej);
      child.once("close", (c) => res(c));
    }).finally(() => clearTimeout(timer));

    const run: CellRun = {
      code,
      stdout,
      stderr,
      ms: Date.now() - started,
      logLines: [],
      requests: fake.requests.map((r) => ({ path: r.path, stream: r.stream, retryCount: r.retryCount })),
      problems: [],
    };
    for (const line of stdout.split("\n")) {
      if (line.startsWith("COMPAT_RESULT ")) run.report = JSON.parse(line.slice("COMPAT_RESULT ".length));
      else if (line.startsWith("{")) {
        try {
          const j = JSON.parse(line);
          if (typeof j.level === "number") run.logLines.push({ level: j.level, msg: String(j.msg) });
        } catch {
          // not a log line
        }
      }
    }
    run.problems = cell.sdk.supported ? checkSupported(cell, run) : checkUnsupported(cell, run);
    return run;
  } finally {
    await fake.close();
  }
}

async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

// ------------------------------------------------------------------------------------- checks

function checkCommon(cell: Cell, run: CellRun, p: string[]): ChildReport | undefined {
  const r = run.report;
  if (!r) {
    p.push(`no COMPAT_RESULT line (exit ${run.code})`);
    return undefined;
  }
  if (run.code !== 0) p.push(`child exit code ${run.code}`);
  if (r.error) p.push(`child error: ${r.error.split("\n").slice(0, 3).join(" | ")}`);
  if (r.node.split(".")[0] !== `v${cell.node}`) p.push(`ran on ${r.node}, expected Node ${cell.node}`);
  if (r.sdkVersion !== cell.sdk.version) p.push(`loaded SDK ${r.sdkVersion}, expected ${cell.sdk.version}`);
  if (cell.mode !== "alias" && !r.sdkPath?.startsWith(join(COMPAT, "v", cell.sdk.alias, "node_modules") + sep)) {
    p.push(`by-name load resolved to ${r.sdkPath}, not test/compat/v/${cell.sdk.alias}`);
  }
  for (const kind of ["json", "stream"] as const) {
    const c = r.calls.find((x) => x.kind === kind);
    if (!c) p.push(`${kind} call did not run`);
    else if (!c.ok) p.push(`${kind} call failed: ${c.error}`);
    else if (c.text !== expectedText(3)) p.push(`${kind} call text ${JSON.stringify(c.text)}, expected ${JSON.stringify(expectedText(3))}`);
  }
  if (/llm-resilience/i.test(run.stderr)) p.push(`llm-resilience wrote to stderr: ${run.stderr.slice(0, 300)}`);
  return r;
}

function checkSupported(cell: Cell, run: CellRun): string[] {
  const p: string[] = [];
  const r = checkCommon(cell, run, p);
  if (!r) return p;
  if (r.patched !== true) p.push("client class not patched");
  // Our own problems are logged as "llm-resilience: ..." (retry decisions are warn lines too: not those).
  const warnings = run.logLines.filter((l) => l.level >= 40 && l.msg.startsWith("llm-resilience"));
  if (warnings.length) p.push(`warnings logged: ${warnings.map((w) => w.msg).join(" | ")}`);

  const provider = cell.sdk.sdk;
  const model = provider === "openai" ? "gpt-4o-mini" : "claude-haiku-4-5";
  const finish = provider === "openai" ? "stop" : "end_turn";
  const requestIdAttr = "llm_resilience.provider.request_id";
  const sdkSpans = r.spans.filter((s) => !s.name.startsWith("chat "));
  if (sdkSpans.length) p.push(`unexpected spans: ${sdkSpans.map((s) => s.name).join(", ")}`);
  const logical = r.spans.filter((s) => s.kind === 2);
  if (logical.length !== 2) p.push(`${logical.length} logical (CLIENT) spans, expected 2 (one per call)`);
  if (r.spans.length !== 6) p.push(`${r.spans.length} spans in all, expected 6 (2 logical + 2×2 attempts)`);

  for (const kind of ["json", "stream"] as const) {
    const stream = kind === "stream";
    const mine = logical.filter((s) => attr(s, "gen_ai.request.stream") === stream);
    if (mine.length !== 1) {
      p.push(`${kind}: ${mine.length} logical spans with gen_ai.request.stream=${stream}`);
      continue;
    }
    const l = mine[0]!;
    const want: Record<string, unknown> = {
      "gen_ai.operation.name": "chat",
      "gen_ai.provider.name": provider,
      "gen_ai.request.model": model,
      "gen_ai.usage.input_tokens": 11,
      "gen_ai.usage.output_tokens": 7,
      "llm_resilience.attempts": 2,
      "error.type": undefined,
      "server.address": "127.0.0.1",
      "gen_ai.response.id": r.calls.find((c) => c.kind === kind)?.id,
    };
    if (l.name !== `chat ${model}`) p.push(`${kind}: logical span name ${l.name}`);
    for (const [k, v] of Object.entries(want))
      if (attr(l, k) !== v) p.push(`${kind}: ${k}=${JSON.stringify(attr(l, k))}, expected ${JSON.stringify(v)}`);
    if (JSON.stringify(attr(l, "gen_ai.response.finish_reasons")) !== JSON.stringify([finish])) {
      p.push(`${kind}: gen_ai.response.finish_reasons=${JSON.stringify(attr(l, "gen_ai.response.finish_reasons"))}`);
    }
    if (stream && typeof attr(l, "gen_ai.response.time_to_first_chunk") !== "number") p.push(`${kind}: no gen_ai.response.time_to_first_chunk`);

    const attempts = r.spans
      .filter((s) => s.parentSpanId === l.spanId)
      .sort((a, b) => Number(attr(a, "llm_resilience.attempt.number")) - Number(attr(b, "llm_resilience.attempt.number")));
    if (attempts.length !== 2) {
      p.push(`${kind}: ${attempts.length} attempt spans, expected 2`);
    } else {
      const [a1, a2] = attempts as [SpanJson, SpanJson];
      for (const a of attempts) {
        if (a.name !== `chat ${model} attempt`) p.push(`${kind}: attempt span name ${a.name}`);
        if (a.kind !== 0) p.push(`${kind}: attempt span kind ${a.kind}`);
      }
      const checks: [SpanJson, string, unknown][] = [
        [a1, "llm_resilience.attempt.number", 1],
        [a1, "http.response.status_code", 429],
        [a1, "error.type", "rate_limit_error"],
        [a1, "http.request.resend_count", undefined],
        [a2, "llm_resilience.attempt.number", 2],
        [a2, "http.response.status_code", 200],
        [a2, "http.request.resend_count", 1],
        [a2, "error.type", undefined],
        [a2, "gen_ai.usage.output_tokens", 7],
      ];
      for (const [a, k, v] of checks)
        if (attr(a, k) !== v)
          p.push(`${kind}: attempt ${attr(a, "llm_resilience.attempt.number")} ${k}=${JSON.stringify(attr(a, k))}, expected ${JSON.stringify(v)}`);
      for (const a of attempts) {
        if (!/^req_/.test(String(attr(a, requestIdAttr))))
          p.push(`${kind}: attempt ${attr(a, "llm_resilience.attempt.number")} has no ${requestIdAttr}`);
      }
    }
    const names = l.events.map((e) => e.name);
    if (JSON.stringify(names) !== JSON.stringify(["llm_resilience.retry"]))
      p.push(`${kind}: events ${JSON.stringify(names)}, expected ["llm_resilience.retry"]`);
    const retry = l.events.find((e) => e.name === "llm_resilience.retry");
    if (retry) {
      const want2: Record<string, unknown> = {
        "llm_resilience.attempt.number": 1,
        "llm_resilience.retry.delay_ms": RETRY_AFTER_MS,
        "llm_resilience.retry.delay_source": "retry-after-ms",
        "error.type": "rate_limit_error",
      };
      for (const [k, v] of Object.entries(want2)) {
        if (retry.attributes?.[k] !== v) p.push(`${kind}: retry event ${k}=${JSON.stringify(retry.attributes?.[k])}, expected ${JSON.stringify(v)}`);
      }
    }
    const reqs = run.requests.filter((q) => q.stream === stream);
    if (reqs.length !== 2) p.push(`${kind}: the provider got ${reqs.length} requests, expected 2 (SDK retries off underneath)`);
    // The SDK numbers the attempt itself; openai 4.0.0 sends no X-Stainless-Retry-Count at all (4.104 does).
    else if (reqs[1]!.retryCount !== (cell.sdk.alias === "openai-v4-min" ? undefined : 1)) {
      p.push(`${kind}: 2nd request x-stainless-retry-count=${reqs[1]!.retryCount}, expected ${cell.sdk.alias === "openai-v4-min" ? "none" : 1}`);
    }
  }
  return p;
}

function checkUnsupported(cell: Cell, run: CellRun): string[] {
  const p: string[] = [];
  const r = checkCommon(cell, run, p);
  if (!r) return p;
  if (r.patched !== false) p.push("client class was patched");
  if (r.spans.length) p.push(`${r.spans.length} spans recorded: ${r.spans.map((s) => s.name).join(", ")}`);
  const pkg = cell.sdk.sdk === "openai" ? "openai" : "@anthropic-ai/sdk";
  const others = run.stdout.split("\n").filter((l) => l.trim() && !l.startsWith("COMPAT_RESULT "));
  if (others.length !== 1) p.push(`${others.length} lines besides the result, expected exactly one warning: ${others.join(" | ")}`);
  const warning = run.logLines.filter((l) => l.level === 40);
  if (warning.length !== 1 || !warning[0]!.msg.includes(`${pkg}@${cell.sdk.version} is outside the supported range`)) {
    p.push(`expected one warning "${pkg}@${cell.sdk.version} is outside the supported range", got ${JSON.stringify(run.logLines)}`);
  }
  // Untouched: the SDK's own retry loop (anthropic) answered the 429s; openai 3.x got no 429.
  const perCall = cell.sdk.sdk === "openai" ? 1 : 2;
  if (run.requests.length !== 2 * perCall) p.push(`the provider got ${run.requests.length} requests, expected ${2 * perCall}`);
  return p;
}

// ------------------------------------------------------------------------------------- report

function table(cells: Cell[], runs: Map<string, CellRun>): string {
  const nodes = [...new Set(cells.map((c) => c.node))];
  const lines = [`| SDK version | ${nodes.map((n) => `Node ${n}`).join(" | ")} |`, `|---|${nodes.map(() => "---").join("|")}|`];
  for (const sdk of SDKS) {
    const row = nodes.map((node) => {
      const mine = cells.filter((c) => c.sdk === sdk && c.node === node);
      if (!mine.length) return "–";
      return mine.map((c) => `${c.mode} ${runs.get(c.key)?.problems.length === 0 ? "pass" : "FAIL"}`).join(", ");
    });
    if (row.every((x) => x === "–")) continue;
    const name = `${sdk.sdk === "openai" ? "openai" : "@anthropic-ai/sdk"} ${sdk.version}${sdk.supported ? "" : " (unsupported)"}`;
    lines.push(`| ${name} | ${row.join(" | ")} |`);
  }
  return lines.join("\n");
}

// ------------------------------------------------------------------------------------- tests

const runs = new Map<string, CellRun>();
let setupError: Error | undefined;

describe("compatibility matrix (test/compat)", () => {
  before(async () => {
    try {
      checkInstall();
    } catch (e) {
      setupError = e as Error;
      return;
    }
    const limit = Number(process.env.COMPAT_CONCURRENCY) || Math.max(1, Math.min(2, availableParallelism()));
    const started = Date.now();
    const results = await pool(CELLS, limit, (c) => runCell(c));
    CELLS.forEach((c, i) => runs.set(c.key, results[i]!));
    const summary = table(CELLS, runs);
    const failed = [...runs.values()].filter((r) => r.problems.length).length;
    const text = `${summary}\n\n${CELLS.length - failed} passed, ${failed} failed cells in ${((Date.now() - started) / 1000).toFixed(1)} s (${limit} at a time)\n`;
    const details = CELLS.filter((c) => runs.get(c.key)!.problems.length)
      .map(
        (c) =>
          `- ${c.key}:\n${runs
            .get(c.key)!
            .problems.map((x) => `  - ${x}`)
            .join("\n")}`,
      )
      .join("\n");
    writeFileSync(join(COMPAT, "last-run.md"), `${text}${details ? `\n## Failures\n${details}\n` : ""}`);
    process.stdout.write(`\n${text}\n`);
  });

  test("the compat install is present and current", () => {
    if (setupError) throw setupError;
    assert.ok(CELLS.length > 0, `no cells${ONLY ? ` match COMPAT_ONLY=${ONLY}` : ""}`);
  });

  for (const cell of CELLS) {
    const title = `${cell.sdk.supported ? "" : "unsupported: "}${cell.sdk.sdk === "openai" ? "openai" : "@anthropic-ai/sdk"}@${cell.sdk.version} on Node ${cell.node} (${cell.mode})`;
    test(title, () => {
      if (setupError) throw setupError;
      const run = runs.get(cell.key);
      assert.ok(run, "cell did not run");
      assert.deepEqual(
        run.problems,
        [],
        `${cell.key}: ${run.problems.length} problem(s)\n  ${run.problems.join("\n  ")}\n--- child stderr ---\n${run.stderr.slice(0, 2000)}`,
      );
    });
  }
});
