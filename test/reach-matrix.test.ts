/**
 * Reach matrix: every real set-up that calls the two SDKs × start-up style × install layout, each cell
 * a child process running an app (test/fixtures/reach/setups/) that makes one JSON call and one
 * streamed call against the fake provider, exporting OTLP to a receiver on loopback.
 *
 * Set-ups: the SDKs directly, AzureOpenAI, LangChain's ChatOpenAI / ChatAnthropic, @openai/agents on
 * Responses and on Chat Completions, AnthropicBedrock, AnthropicVertex. Styles: CommonJS require-first,
 * ESM first-line `import "llm-resilience/register"`, `node --import llm-resilience/register`, and the
 * first-line import under tsx (three set-ups: a top-level copy, a nested copy, the `/client` entry). Layouts: npm (this repository's node_modules) and pnpm (a real pnpm
 * install; see helpers/reach-layouts.ts).
 *
 * A cell holds when the caller got the same text as without us, each call has exactly one logical span
 * (provider and model right) with its attempt children, no other GenAI span exists (the Anthropic
 * SDKs' own `anthropic.messages.create`, Bedrock's and Vertex's included), and we logged no warning.
 * Where the SDK's own retries would run, each call's first attempt is answered 429: two attempts.
 *
 * Plus an esbuild bundle with both SDKs inlined: one warning per SDK naming it, its version and the
 * fix, never one per call; and with instrument(client) the same bundle is fully instrumented.
 *
 * Needs `npm run build` (the apps load dist/ and esm/). REACH_ONLY=<regexp> runs only the matching cells
 * ("pnpm esm bedrock"). The table of the last run goes to test/reach-last-run.md (git-ignored).
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { build } from "esbuild";
import { expectedText, type FakeProvider, startFakeProvider } from "./fake-provider/index.ts";
import { type ChildResult, describeRun, REPO_ROOT, runChild } from "./helpers/child.ts";
import { OTLP_KIND, type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "./helpers/otlp-receiver.ts";
import { entryName, npmLayout, pnpmLayout, type Style, writeApps } from "./helpers/reach-layouts.ts";

const SCOPE = "llm-resilience";

interface Setup {
  provider: string;
  /** The SDK client keeps its own retries on (LangChain sets maxRetries 0 and retries itself). */
  retried: boolean;
  /** The pnpm project that has it: the SDKs directly, or only the wrappers. */
  pnpm: "direct" | "wrappers";
}

const SETUPS: Record<string, Setup> = {
  openai: { provider: "openai", retried: true, pnpm: "direct" },
  anthropic: { provider: "anthropic", retried: true, pnpm: "direct" },
  azure: { provider: "azure.ai.openai", retried: true, pnpm: "direct" },
  "langchain-openai": { provider: "openai", retried: false, pnpm: "wrappers" },
  "langchain-anthropic": { provider: "anthropic", retried: false, pnpm: "wrappers" },
  "agents-responses": { provider: "openai", retried: true, pnpm: "wrappers" },
  "agents-chat": { provider: "openai", retried: true, pnpm: "wrappers" },
  bedrock: { provider: "aws.bedrock", retried: true, pnpm: "wrappers" },
  vertex: { provider: "gcp.vertex_ai", retried: true, pnpm: "wrappers" },
};
const SETUP_NAMES = Object.keys(SETUPS);
type Layout = "npm" | "pnpm";
const STYLES: Record<Layout, Style[]> = { npm: ["cjs", "esm", "import", "tsx"], pnpm: ["cjs", "esm", "import"] };
/** tsx runs the first-line import through its own loader: one set-up per kind of copy is enough (and tsx start-up is slow). */
const TSX_SETUPS = new Set(["openai", "langchain-anthropic", "bedrock"]);
const ONLY = process.env.REACH_ONLY ? new RegExp(process.env.REACH_ONLY) : undefined;

let fake: FakeProvider;
let rx: OtlpReceiver;
let root: string;
const appDirs: Record<string, string> = {};

before(async () => {
  assert.ok(existsSync(join(REPO_ROOT, "dist", "register.js")), "run `npm run build` first");
  [fake, rx] = await Promise.all([startFakeProvider(), startOtlpReceiver()]);
  root = mkdtempSync(join(tmpdir(), "llm-reach-"));
  const npm = npmLayout(root);
  appDirs.npm = writeApps(npm, "app", SETUP_NAMES, STYLES.npm);
  const pnpm = pnpmLayout();
  const run = `reach-${process.pid}`;
  appDirs["pnpm direct"] = writeApps(
    pnpm.direct,
    run,
    SETUP_NAMES.filter((s) => SETUPS[s]!.pnpm === "direct"),
    STYLES.pnpm,
  );
  appDirs["pnpm wrappers"] = writeApps(
    pnpm.wrappers,
    run,
    SETUP_NAMES.filter((s) => SETUPS[s]!.pnpm === "wrappers"),
    STYLES.pnpm,
  );
});

after(async () => {
  await Promise.all([fake?.close(), rx?.close()]);
  for (const dir of [root, appDirs["pnpm direct"], appDirs["pnpm wrappers"]]) if (dir) rmSync(dir, { recursive: true, force: true });
  writeTable();
});

// ------------------------------------------------------------------------------------ running a cell

let seq = 0;
interface CellRun {
  result: ChildResult;
  spans: ReceivedSpan[];
  model: string;
  service: string;
  /** Our pino lines at warn and above. */
  warnings: { msg: string; [k: string]: unknown }[];
  results?: unknown[];
  error?: string;
}

async function runApp(cwd: string, args: string[], opts: { faults: boolean; env?: Record<string, string> }): Promise<CellRun> {
  const id = ++seq;
  const model = `reach-model-${id}`;
  const service = `reach-${process.pid}-${id}`;
  if (opts.faults) {
    for (const m of [model, `${model}-claude`]) {
      for (const stream of [false, true]) {
        fake.script({ match: { model: m, stream }, times: 1, action: { status: 429, headers: { "retry-after-ms": "10" } } });
      }
    }
  }
  const result = await runChild(args, {
    cwd,
    timeoutMs: 60_000,
    env: {
      FAKE_URL: fake.url,
      MODEL: model,
      OPENAI_BASE_URL: `${fake.url}/v1`,
      OPENAI_API_KEY: "sk-reach",
      OPENAI_AGENTS_DISABLE_TRACING: "1",
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_SERVICE_NAME: service,
      OTEL_METRICS_EXPORTER: "none",
      OTEL_BSP_SCHEDULE_DELAY: "60000",
      LLM_RESILIENCE_LOG_LEVEL: "warn",
      LLM_RESILIENCE_PRICES: JSON.stringify({ [model]: { input: 1, output: 2 }, [`${model}-claude`]: { input: 1, output: 2 } }),
      ...opts.env,
    },
  });
  await new Promise((r) => setTimeout(r, 50));
  const run: CellRun = { result, spans: rx.spansOf(service), model, service, warnings: [] };
  for (const line of result.stdout.split("\n")) {
    if (line.startsWith("REACH-RESULT ")) {
      const parsed = JSON.parse(line.slice("REACH-RESULT ".length));
      run.results = parsed.results;
      run.error = parsed.error;
      continue;
    }
    if (!line.startsWith("{")) continue;
    try {
      const j = JSON.parse(line);
      if (typeof j.level === "number" && j.level >= 40 && String(j.msg).startsWith("llm-resilience")) run.warnings.push(j);
    } catch {
      // not one of our log lines
    }
  }
  return run;
}

/** Another span carrying GenAI data that is not ours: an SDK's or a framework's own tracing. */
function foreignGenAiSpans(spans: ReceivedSpan[]): ReceivedSpan[] {
  return spans.filter(
    (s) => s.scope !== SCOPE && (s.name.startsWith("anthropic.") || Object.keys(s.attributes).some((k) => k.startsWith("gen_ai."))),
  );
}

/** What is wrong with one call's telemetry; [] when it holds. */
function checkSpans(run: CellRun, provider: string, attemptsPerCall: number, calls: number, model = run.model): string[] {
  const problems: string[] = [];
  const ours = run.spans.filter((s) => s.scope === SCOPE);
  const logical = ours.filter((s) => s.kind === OTLP_KIND.CLIENT);
  if (logical.length !== calls) problems.push(`${logical.length} logical spans for ${calls} calls`);
  for (const span of logical) {
    const attempts = ours.filter((s) => s.kind === OTLP_KIND.INTERNAL && s.parentSpanId === span.spanId && s.traceId === span.traceId);
    if (span.attributes["gen_ai.provider.name"] !== provider)
      problems.push(`${span.name}: provider ${String(span.attributes["gen_ai.provider.name"])}, expected ${provider}`);
    if (span.attributes["gen_ai.request.model"] !== model) problems.push(`${span.name}: model ${String(span.attributes["gen_ai.request.model"])}`);
    if (attempts.length !== attemptsPerCall || span.attributes["llm_resilience.attempts"] !== attemptsPerCall) {
      problems.push(
        `${span.name}: ${attempts.length} attempt spans, llm_resilience.attempts=${String(span.attributes["llm_resilience.attempts"])}, expected ${attemptsPerCall}`,
      );
    }
  }
  const foreign = foreignGenAiSpans(run.spans);
  if (foreign.length > 0) problems.push(`other GenAI spans: ${foreign.map((s) => `${s.name} (${s.scope})`).join(", ")}`);
  return problems;
}

function checkResults(run: CellRun, expected: unknown[]): string[] {
  if (run.result.timedOut) return ["timed out"];
  if (run.error !== undefined) return [`the app failed: ${run.error.split("\n")[0]}`];
  if (!run.results) return [`no result (exit ${run.result.code})`];
  try {
    assert.deepEqual(run.results, expected);
    return [];
  } catch {
    return [`the caller got ${JSON.stringify(run.results)}, expected ${JSON.stringify(expected)}`];
  }
}

// ------------------------------------------------------------------------------------ the table

const table = new Map<string, string>();
function verdict(problems: string[], run: CellRun): string {
  if (problems.length === 0) return "ok";
  if (run.error !== undefined || run.result.timedOut || !run.results) return "broken";
  if (!run.spans.some((s) => s.scope === SCOPE)) return foreignGenAiSpans(run.spans).length > 0 ? "missed (SDK's own span only)" : "missed";
  if (foreignGenAiSpans(run.spans).length > 0) return "two GenAI spans";
  return "partial";
}

function writeTable(): void {
  if (table.size === 0) return;
  const columns = (["npm", "pnpm"] as Layout[]).flatMap((l) => STYLES[l].map((s) => `${l} ${s}`));
  const lines = [
    `Reach matrix, ${new Date().toISOString()}, Node ${process.versions.node}`,
    "",
    `| set-up | ${columns.join(" | ")} |`,
    `|---|${columns.map(() => "---").join("|")}|`,
  ];
  for (const setup of SETUP_NAMES) lines.push(`| ${setup} | ${columns.map((c) => table.get(`${c} ${setup}`) ?? "–").join(" | ")} |`);
  for (const [key, value] of table) if (!columns.some((c) => key.startsWith(`${c} `))) lines.push("", `${key}: ${value}`);
  writeFileSync(join(REPO_ROOT, "test", "reach-last-run.md"), `${lines.join("\n")}\n`);
}

// ------------------------------------------------------------------------------------ the cells

describe("reach matrix", { concurrency: 2 }, () => {
  for (const layout of ["npm", "pnpm"] as Layout[]) {
    for (const style of STYLES[layout]) {
      for (const setup of SETUP_NAMES) {
        const key = `${layout} ${style} ${setup}`;
        if ((ONLY && !ONLY.test(key)) || (style === "tsx" && !TSX_SETUPS.has(setup))) continue;
        test(key, async () => {
          const s = SETUPS[setup]!;
          const cwd = layout === "npm" ? appDirs.npm! : appDirs[`pnpm ${s.pnpm}`]!;
          const args = [
            ...(style === "import" ? ["--import", "llm-resilience/register"] : style === "tsx" ? ["--import", "tsx"] : []),
            entryName(setup, style),
          ];
          const run = await runApp(cwd, args, { faults: s.retried });
          const problems = [
            ...checkResults(run, [expectedText(3), expectedText(3)]),
            ...checkSpans(run, s.provider, s.retried ? 2 : 1, 2),
            ...run.warnings.map((w) => `warning: ${w.msg}`),
          ];
          table.set(key, verdict(problems, run));
          assert.deepEqual(problems, [], `${key}\n${describeRun(run.result)}`);
        });
      }
    }
  }
});

describe("a copy no hook reached before its first request", () => {
  test("ESM, the SDK imported before the register import: one warning, patched from the next call on", async () => {
    if (ONLY && !ONLY.test("unreached")) return;
    // LangChain (and its nested SDK copy) is evaluated before register runs: nothing can patch it up front.
    const apps = appDirs.npm!;
    writeFileSync(
      join(apps, "late-register.mjs"),
      'import { run } from "./setups/langchain-anthropic.mjs";\nimport "llm-resilience/register";\nimport { report } from "./report.mjs";\nawait report(run);\n',
    );
    const run = await runApp(apps, ["late-register.mjs"], { faults: false });
    const problems = checkResults(run, [expectedText(3), expectedText(3)]);
    const ours = run.spans.filter((s) => s.scope === SCOPE && s.kind === OTLP_KIND.CLIENT);
    table.set("unreached copy (first request)", problems.length === 0 && ours.length === 1 && run.warnings.length === 1 ? "ok" : "broken");
    assert.deepEqual(problems, [], describeRun(run.result));
    assert.equal(run.warnings.length, 1, `one warning\n${describeRun(run.result)}`);
    assert.match(run.warnings[0]!.msg, /@anthropic-ai\/sdk@0\.\d+\.\d+ at \S+@langchain\/anthropic\/node_modules\/@anthropic-ai\/sdk /);
    assert.match(run.warnings[0]!.msg, /--import llm-resilience\/register/);
    assert.equal(ours.length, 1, "the first call went out untraced, the second is instrumented");
    assert.equal(ours[0]!.attributes["gen_ai.request.stream"], true, "the instrumented call is the second (streamed) one");
  });
});

describe("bundled app (esbuild, both SDKs inlined)", () => {
  let bundle: string;
  before(async () => {
    bundle = join(appDirs.npm!, "bundle.cjs");
    await build({
      entryPoints: [join(REPO_ROOT, "test", "fixtures", "reach", "bundle-app.mjs")],
      outfile: bundle,
      bundle: true,
      platform: "node",
      format: "cjs",
      external: ["llm-resilience", "llm-resilience/*"],
      nodePaths: [join(REPO_ROOT, "node_modules")],
      logLevel: "silent",
    });
  });

  const sdkResults = [expectedText(3), expectedText(3), expectedText(3), expectedText(3)];

  test("uninstrumented: the calls work and one warning per SDK names it, its version and the fix", async () => {
    if (ONLY && !ONLY.test("bundle")) return;
    const run = await runApp(appDirs.npm!, ["bundle.cjs"], { faults: false });
    const problems = checkResults(run, sdkResults);
    const ours = run.spans.filter((s) => s.scope === SCOPE);
    const notice = (sdk: string, version: string) =>
      run.warnings.filter((w) => w.msg.includes(`${sdk}@${version}`) || (w.msg.includes(sdk) && w.msg.includes(version)));
    const openai = notice("openai", "7.60.0");
    const anthropic = notice("@anthropic-ai/sdk", "1.17.0");
    table.set(
      "bundle without instrument(client)",
      `${problems.length === 0 && ours.length === 0 && openai.length === 1 && anthropic.length === 1 ? "ok" : "broken"}: ${run.warnings.length} warnings`,
    );
    assert.deepEqual(problems, [], describeRun(run.result));
    assert.equal(ours.length, 0, "nothing can be instrumented in a bundle without instrument(client)");
    assert.equal(openai.length, 1, `one warning for openai\n${describeRun(run.result)}`);
    assert.equal(anthropic.length, 1, `one warning for @anthropic-ai/sdk\n${describeRun(run.result)}`);
    assert.equal(run.warnings.length, 2, `no other warning\n${describeRun(run.result)}`);
    for (const w of run.warnings) assert.match(w.msg, /instrument\(client\)/, "the warning says how to fix it");
  });

  test("instrument(client) on the bundled clients: every call instrumented, no warning", async () => {
    if (ONLY && !ONLY.test("bundle")) return;
    const run = await runApp(appDirs.npm!, ["bundle.cjs"], { faults: true, env: { INSTRUMENT: "1" } });
    const problems = [...checkResults(run, sdkResults), ...run.warnings.map((w) => `warning: ${w.msg}`)];
    const byProvider = (p: string) => ({
      ...run,
      spans: run.spans.filter((s) => s.scope !== SCOPE || s.attributes["gen_ai.provider.name"] === p || s.kind === OTLP_KIND.INTERNAL),
    });
    for (const provider of ["openai", "anthropic"]) {
      const mine = byProvider(provider);
      const logicalIds = new Set(mine.spans.filter((s) => s.scope === SCOPE && s.kind === OTLP_KIND.CLIENT).map((s) => s.spanId));
      mine.spans = mine.spans.filter((s) => s.scope !== SCOPE || s.kind === OTLP_KIND.CLIENT || logicalIds.has(s.parentSpanId));
      problems.push(
        ...checkSpans(mine, provider, 2, 2, provider === "anthropic" ? `${run.model}-claude` : run.model).map((p) => `${provider}: ${p}`),
      );
    }
    table.set("bundle with instrument(client)", problems.length === 0 ? "ok" : "broken");
    assert.deepEqual(problems, [], describeRun(run.result));
  });
});
