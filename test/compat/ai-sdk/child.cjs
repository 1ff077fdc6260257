"use strict";
/**
 * One cell of the AI SDK compatibility matrix, run as a child process by test/ai-sdk-compat.test.ts
 * with the matrix's Node binary and test/compat/ai-sdk/<set>/ as the working directory, where that
 * set's `ai` and `@ai-sdk/*` packages are installed under their real names.
 *
 * Environment (set by the parent):
 *   AI_COMPAT_MODE   require   require("<repo>/dist/register.js") first, then require("ai"),
 *                              require("@ai-sdk/openai"), require("@ai-sdk/anthropic") from the set
 *                    import    an ES module app whose first import is <repo>/esm/register.mjs, then the
 *                              AI SDK's packages by name (this file is then only the -r preload)
 *                    preload   `node -r child.cjs --import <repo>/esm/register.mjs` and an ES module app
 *                              that imports the AI SDK's packages by name
 *   AI_COMPAT_URL    the fake provider's base URL
 *   AI_COMPAT_TAG    a tag for this cell's model names (the parent scripts the fake with them)
 *
 * The app makes three calls: generateText (answered first with a 429), streamText on Anthropic
 * (answered first with a 429), and generateText with maxRetries: 1 that only ever gets 503s. Prints
 * exactly one line `AI_COMPAT_RESULT {json}` on stdout.
 */
const fs = require("node:fs");
const path = require("node:path");
const { createRequire } = require("node:module");

const REPO_ROOT = path.resolve(__dirname, "..", "..", "..");
const repoRequire = createRequire(path.join(REPO_ROOT, "package.json"));
/** Resolves from the set's folder, by the packages' real names (what the require hook matches on). */
const setRequire = createRequire(path.join(process.cwd(), "package.json"));
const mode = process.env.AI_COMPAT_MODE;
const url = process.env.AI_COMPAT_URL;
const tag = process.env.AI_COMPAT_TAG;

const result = { node: process.version, mode, versions: {}, calls: [], spans: [], error: undefined };

function done(code) {
  process.stdout.write(`AI_COMPAT_RESULT ${JSON.stringify(result)}\n`, () => process.exit(code));
}

// --- telemetry: the application-owned set-up, exporting to memory --------------------------------
const api = repoRequire("@opentelemetry/api");
const { AsyncLocalStorageContextManager } = repoRequire("@opentelemetry/context-async-hooks");
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = repoRequire("@opentelemetry/sdk-trace-base");
const exporter = new InMemorySpanExporter();
api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
api.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));

function spanJson(s) {
  return {
    name: s.name,
    kind: s.kind,
    spanId: s.spanContext().spanId,
    parentSpanId: s.parentSpanContext ? s.parentSpanContext.spanId : s.parentSpanId,
    scope: (s.instrumentationScope || {}).name,
    attributes: s.attributes,
    events: s.events.map((e) => ({ name: e.name, attributes: e.attributes })),
  };
}

async function call(name, fn) {
  try {
    result.calls.push({ name, ok: true, value: await fn() });
  } catch (err) {
    result.calls.push({ name, ok: false, error: `${err && err.name}: ${err && err.message}`.slice(0, 300) });
  }
}

async function run(ai, openaiPkg, anthropicPkg) {
  for (const pkg of ["ai", "@ai-sdk/openai", "@ai-sdk/anthropic"]) {
    result.versions[pkg] = JSON.parse(fs.readFileSync(path.join(process.cwd(), "node_modules", pkg, "package.json"), "utf8")).version;
  }
  globalThis.AI_SDK_LOG_WARNINGS = false;
  const openai = openaiPkg.createOpenAI({ apiKey: "sk-compat", baseURL: `${url}/v1` });
  const anthropic = anthropicPkg.createAnthropic({ apiKey: "sk-ant-compat", baseURL: `${url}/v1` });
  await call("generateText", async () => (await ai.generateText({ model: openai.chat(`gpt-${tag}`), prompt: "hi" })).text);
  await call("streamText", async () => {
    const r = ai.streamText({ model: anthropic(`claude-${tag}`), prompt: "hi" });
    let text = "";
    for await (const t of r.textStream) text += t;
    return text;
  });
  await call("exhausted", async () => (await ai.generateText({ model: openai.chat(`gpt-down-${tag}`), prompt: "hi", maxRetries: 1 })).text);
  await new Promise((r) => setImmediate(r));
  result.spans = exporter.getFinishedSpans().map(spanJson);
}

globalThis.__aiCompatRun = async (ai, openaiPkg, anthropicPkg) => {
  try {
    await run(ai, openaiPkg, anthropicPkg);
    done(0);
  } catch (err) {
    result.error = String((err && err.stack) || err);
    done(1);
  }
};

if (mode === "require") {
  try {
    require(path.join(REPO_ROOT, "dist", "register.js"));
    globalThis.__aiCompatRun(setRequire("ai"), setRequire("@ai-sdk/openai"), setRequire("@ai-sdk/anthropic"));
  } catch (err) {
    result.error = String((err && err.stack) || err);
    done(1);
  }
}
