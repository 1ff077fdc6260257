"use strict";
/**
 * One cell of the compatibility matrix, run as a child process by test/compat.test.ts with the
 * matrix's Node binary. Plain CommonJS on purpose: it must run unchanged on every Node version and
 * load nothing but the built library (dist/), its OpenTelemetry dependencies and one SDK copy.
 *
 * Environment (set by the parent):
 *   COMPAT_SDK      openai | anthropic
 *   COMPAT_ALIAS    the npm alias folder in test/compat/node_modules, e.g. openai-v4-min
 *   COMPAT_MODE     alias    register({...}) + require("<alias>") + instrument(client)
 *                   by-name  require("<repo>/dist/register.js") first (the start-up entry, configured
 *                            by LLM_RESILIENCE_* variables), then require("openai") /
 *                            require("@anthropic-ai/sdk") resolved from test/compat/v/<alias>/, so the
 *                            module NAME is the real one and the require hook sees it
 *                   esm      `node -r child.cjs --import <repo>/esm/register.mjs --input-type=module -e
 *                            'import * as sdk from "openai"; await globalThis.__compatRun(sdk)'` with cwd
 *                            test/compat/v/<alias>/: the ESM start-up path, a static import of the SDK by
 *                            its real name (this file is then only the -r preload: telemetry + the run)
 *   COMPAT_URL      the fake provider's base URL (http://127.0.0.1:PORT)
 *
 * Prints exactly one line `COMPAT_RESULT {json}` on stdout (the library's pino lines also go to
 * stdout; the parent counts those separately).
 */
const path = require("node:path");
const fs = require("node:fs");
const { createRequire } = require("node:module");

const COMPAT_DIR = __dirname;
const REPO_ROOT = path.resolve(COMPAT_DIR, "..", "..");
const repoRequire = createRequire(path.join(REPO_ROOT, "package.json"));

const sdk = process.env.COMPAT_SDK;
const alias = process.env.COMPAT_ALIAS;
const mode = process.env.COMPAT_MODE;
const url = process.env.COMPAT_URL;

const result = {
  node: process.version,
  sdk,
  alias,
  mode,
  sdkVersion: undefined,
  sdkPath: undefined,
  patched: undefined,
  calls: [],
  spans: [],
  error: undefined,
};

function done(code) {
  process.stdout.write(`COMPAT_RESULT ${JSON.stringify(result)}\n`, () => process.exit(code));
}

// --- telemetry: the application-owned set-up, exporting to memory --------------------------------
const api = repoRequire("@opentelemetry/api");
const { AsyncLocalStorageContextManager } = repoRequire("@opentelemetry/context-async-hooks");
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = repoRequire("@opentelemetry/sdk-trace-base");
const exporter = new InMemorySpanExporter();
api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
api.trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));

function spanJson(s) {
  const parent = s.parentSpanContext ? s.parentSpanContext.spanId : s.parentSpanId;
  return {
    name: s.name,
    kind: s.kind,
    spanId: s.spanContext().spanId,
    parentSpanId: parent,
    scope: (s.instrumentationScope || s.instrumentationLibrary || {}).name,
    status: s.status,
    attributes: s.attributes,
    events: s.events.map((e) => ({ name: e.name, attributes: e.attributes })),
  };
}

/** Is `post` on the client's prototype chain our wrapper? */
function isPatched(client) {
  for (let p = Object.getPrototypeOf(client); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    if (Object.prototype.hasOwnProperty.call(p, "post")) return typeof p.post.__original === "function";
  }
  return false;
}

function packageDirOf(resolvedMain, name) {
  const marker = `${path.sep}node_modules${path.sep}${name.split("/").join(path.sep)}${path.sep}`;
  const i = resolvedMain.lastIndexOf(marker);
  return i < 0 ? undefined : resolvedMain.slice(0, i + marker.length - 1);
}

/** Loads the SDK copy under test; returns its exports. */
function loadSdk(lib) {
  const pkgName = sdk === "openai" ? "openai" : "@anthropic-ai/sdk";
  let req;
  let id;
  if (mode === "alias") {
    req = createRequire(path.join(COMPAT_DIR, "package.json"));
    id = alias;
  } else if (mode === "by-name" || mode === "esm") {
    const base = path.join(COMPAT_DIR, "v", alias);
    if (!fs.existsSync(path.join(base, "node_modules"))) throw new Error(`missing ${base}/node_modules: run scripts/compat-install.sh`);
    req = createRequire(path.join(base, "app.js"));
    id = pkgName;
  } else {
    throw new Error(`unknown COMPAT_MODE ${mode}`);
  }
  const resolved = req.resolve(id);
  const dir = packageDirOf(resolved, mode === "alias" ? alias : pkgName);
  result.sdkPath = dir;
  result.sdkVersion = dir ? JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).version : undefined;
  // esm: the namespace the app's static import produced (loadSdk only located the package).
  return mode === "esm" ? esmNamespace : req(id);
}
let esmNamespace;

async function readAll(stream) {
  let text = "";
  for await (const chunk of stream) text += chunk.toString("utf8");
  return text;
}

async function timed(kind, fn) {
  const call = { kind, ok: false, text: undefined, id: undefined, error: undefined };
  result.calls.push(call);
  try {
    Object.assign(call, await fn());
    call.ok = true;
  } catch (err) {
    call.error = `${err && err.constructor && err.constructor.name}: ${err && err.message} (status ${err && err.status})`;
  }
}

async function runOpenAI(mod, lib) {
  const v3 = typeof mod.OpenAIApi === "function" ? mod : mod.default && typeof mod.default.OpenAIApi === "function" ? mod.default : undefined;
  if (v3) {
    // openai 3.x (unsupported): the axios-based API. No SDK retries there, so no 429 is scripted.
    const { Configuration, OpenAIApi } = v3;
    const apiClient = new OpenAIApi(new Configuration({ apiKey: "sk-test", basePath: `${url}/v1` }));
    result.patched = isPatched(apiClient);
    await timed("json", async () => {
      const r = await apiClient.createChatCompletion({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
      return { text: r.data.choices[0].message.content, id: r.data.id };
    });
    await timed("stream", async () => {
      const r = await apiClient.createChatCompletion({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], stream: true }, { responseType: "stream" });
      const raw = await readAll(r.data);
      let text = "";
      for (const line of raw.split("\n")) {
        if (!line.startsWith("data: ") || line.startsWith("data: [DONE]")) continue;
        const c = JSON.parse(line.slice(6));
        text += (c.choices && c.choices[0] && c.choices[0].delta && c.choices[0].delta.content) || "";
      }
      return { text, done: raw.includes("[DONE]") };
    });
    return;
  }
  const OpenAI = typeof mod.OpenAI === "function" ? mod.OpenAI : typeof mod.default === "function" ? mod.default : mod;
  const client = new OpenAI({ apiKey: "sk-test", baseURL: `${url}/v1` });
  if (mode === "alias") lib.instrument(client);
  result.patched = isPatched(client);
  await timed("json", async () => {
    const r = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], temperature: 0.2, max_tokens: 50 });
    return { text: r.choices[0].message.content, id: r.id };
  });
  await timed("stream", async () => {
    // Usage in an OpenAI stream needs stream_options.include_usage (we do not inject it by default).
    const stream = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true } });
    let text = "";
    let id;
    for await (const chunk of stream) {
      id = id || chunk.id;
      if (chunk.choices && chunk.choices[0] && chunk.choices[0].delta && chunk.choices[0].delta.content) text += chunk.choices[0].delta.content;
    }
    return { text, id };
  });
}

async function runAnthropic(mod, lib) {
  const Anthropic = typeof mod.Anthropic === "function" ? mod.Anthropic : typeof mod.default === "function" ? mod.default : mod;
  const client = new Anthropic({ apiKey: "sk-ant-test", baseURL: url });
  if (mode === "alias") lib.instrument(client);
  result.patched = isPatched(client);
  await timed("json", async () => {
    const r = await client.messages.create({ model: "claude-haiku-4-5", max_tokens: 64, messages: [{ role: "user", content: "hi" }] });
    return { text: r.content.map((b) => b.text || "").join(""), id: r.id };
  });
  await timed("stream", async () => {
    const stream = await client.messages.create({ model: "claude-haiku-4-5", max_tokens: 64, stream: true, messages: [{ role: "user", content: "hi" }] });
    let text = "";
    let id;
    for await (const ev of stream) {
      if (ev.type === "message_start") id = ev.message.id;
      if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
    }
    return { text, id };
  });
}

async function main() {
  let lib;
  if (mode === "esm") {
    // esm/register.mjs (--import) has loaded dist/index.js through the CommonJS loader: same instance.
    lib = require(path.join(REPO_ROOT, "dist", "index.js"));
  } else if (mode === "by-name") {
    // The start-up path: the side-effect entry as the application's first require.
    require(path.join(REPO_ROOT, "dist", "register.js"));
    lib = require(path.join(REPO_ROOT, "dist", "index.js"));
  } else {
    lib = require(path.join(REPO_ROOT, "dist", "index.js"));
    lib.register({ startSdk: false, logLevel: "warn", baseDelayMs: 1, maxDelayMs: 5, breaker: false });
  }
  const mod = loadSdk(lib);
  if (sdk === "openai") await runOpenAI(mod, lib);
  else await runAnthropic(mod, lib);
  // Spans end when the SDK's parsed result / the stream's end is observed; give the last one a tick.
  await new Promise((r) => setTimeout(r, 20));
  result.spans = exporter.getFinishedSpans().map(spanJson);
}

function onError(err) {
  result.error = err && err.stack ? err.stack : String(err);
  try {
    result.spans = exporter.getFinishedSpans().map(spanJson);
  } catch {
    // ignore
  }
  done(1);
}

if (mode === "esm") {
  // Preloaded with -r: the app (the -e module) calls this with the namespace it imported statically.
  globalThis.__compatRun = (ns) => {
    esmNamespace = ns;
    return main().then(() => done(0), onError);
  };
} else {
  main().then(() => done(0), onError);
}

