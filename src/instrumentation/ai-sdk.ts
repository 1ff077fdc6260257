import { AsyncLocalStorage } from "node:async_hooks";
import * as diagnosticsChannel from "node:diagnostics_channel";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type AiSdkCallSite, runAiSdkCall } from "../call/ai-sdk-call.js";
import type { AiSdkFamily, AiSdkMethod } from "../providers/ai-sdk.js";
import { getRuntime } from "../runtime.js";
import { reportOnce } from "../telemetry/logger.js";
import { ownerOf } from "./owner-of.js";
import { readJson, readVersion } from "./package-files.js";
import { RequireHook } from "./require-hook.js";
import { warnOnce } from "./warn-once.js";

/**
 * The Vercel AI SDK's providers call `fetch` themselves, below the AI SDK's own retry loop. The seam is
 * the provider's model classes: every `generateText` / `streamText` / `generateObject` / `embed` … call
 * reaches the model's `doGenerate` / `doStream` / `doEmbed` once per try. Those methods live on the
 * classes' prototypes, which the providers' public factories lead to (`createOpenAI().chat(id)` …), so
 * the already-loaded ES module instance an application imported can be patched as well as a CommonJS one.
 */

const AI_SDK_PACKAGES = ["@ai-sdk/openai", "@ai-sdk/anthropic", "@ai-sdk/azure"] as const;
export type AiSdkPackage = (typeof AI_SDK_PACKAGES)[number];

/** The provider packages of `ai` 6 (3.x) and 7 (4.x); README "Compatibility" states the same range. */
const SUPPORTED_MAJORS = { min: 3, belowMajor: 5, range: ">=3.0.0 <5" };

export function isAiSdkPackage(name: string): name is AiSdkPackage {
  return (AI_SDK_PACKAGES as readonly string[]).includes(name);
}

function isSupported(version: string | undefined): boolean {
  const major = Number(/^(\d+)\./.exec(version ?? "")?.[1]);
  return major >= SUPPORTED_MAJORS.min && major < SUPPORTED_MAJORS.belowMajor;
}

const PROBE = "llm-resilience-probe";

/** Models of every kind a provider builds; their prototypes are where the patches go. Nothing is sent. */
function probeModels(pkg: AiSdkPackage, ns: any): Array<{ model: any; family: AiSdkFamily }> {
  const out: Array<{ model: any; family: AiSdkFamily }> = [];
  const add = (family: AiSdkFamily, make: () => unknown) => {
    try {
      const model = make();
      if (model && typeof model === "object") out.push({ model, family });
    } catch {
      // this provider version has no such model kind
    }
  };
  if (pkg === "@ai-sdk/anthropic") {
    const p = ns?.createAnthropic?.({ apiKey: PROBE, baseURL: "http://127.0.0.1/v1" });
    if (p) add("anthropic", () => p.messages?.(PROBE) ?? p.languageModel(PROBE));
    return out;
  }
  const p =
    pkg === "@ai-sdk/openai"
      ? ns?.createOpenAI?.({ apiKey: PROBE, baseURL: "http://127.0.0.1/v1" })
      : ns?.createAzure?.({ apiKey: PROBE, resourceName: PROBE });
  if (!p) return out;
  add("openai", () => p.chat(PROBE));
  add("openai", () => p.responses(PROBE));
  add("openai", () => p.completion(PROBE));
  add("openai", () => (p.embedding ?? p.textEmbedding)(PROBE));
  return out;
}

const PATCHED = Symbol.for("llm-resilience.ai-sdk-patched");
const METHODS: readonly AiSdkMethod[] = ["doGenerate", "doStream", "doEmbed"];

function patchModelClass(model: any, family: AiSdkFamily): boolean {
  let patched = false;
  for (const method of METHODS) {
    const owner = ownerOf(Object.getPrototypeOf(model), method);
    const original = owner?.[method];
    if (typeof original !== "function") continue;
    if (original[PATCHED]) {
      patched = true;
      continue;
    }
    const replacement = function (this: any, options: any) {
      const rt = getRuntime();
      if (!rt?.enabled) return original.call(this, options);
      const site: AiSdkCallSite = { family, method, model: this, options, original, maxRetries: callSettings()?.maxRetries, retryError };
      return runAiSdkCall(rt, site);
    };
    Object.defineProperty(replacement, "name", { value: original.name || method });
    Object.defineProperty(replacement, PATCHED, { value: true });
    Object.defineProperty(replacement, "__original", { value: original });
    Object.defineProperty(owner, method, { value: replacement, writable: true, configurable: true, enumerable: false });
    patched = true;
  }
  return patched;
}

/** Patches one loaded build (CommonJS exports or ES module namespace) of a provider package. */
function instrumentAiSdkPackage(pkg: AiSdkPackage, ns: unknown, version: string | undefined): boolean {
  if (!isSupported(version)) {
    warnOnce(
      `version:${pkg}@${version}`,
      `llm-resilience: ${pkg}@${version ?? "unknown"} is outside the supported range ${SUPPORTED_MAJORS.range}; its calls pass through untouched`,
      {
        package: pkg,
        version,
      },
    );
    return false;
  }
  installCallSettingsChannel();
  let patched = false;
  for (const { model, family } of probeModels(pkg, ns)) patched = patchModelClass(model, family) || patched;
  if (!patched) {
    warnOnce(
      `shape:${pkg}@${version}`,
      `llm-resilience: ${pkg}@${version} does not have the expected model shape; its calls pass through untouched`,
      {
        package: pkg,
        version,
      },
    );
  }
  return patched;
}

/** An ES module build the loader hook (esm/hook.mjs) saw evaluated after registering. */
export function instrumentAiSdkModule(pkg: AiSdkPackage, ns: unknown, url: string): void {
  let dir = dirname(fileURLToPath(url));
  while (dirname(dir) !== dir && readJson(join(dir, "package.json"))?.name !== pkg) dir = dirname(dir);
  instrumentAiSdkPackage(pkg, ns, readVersion(dir));
}

let requireHook: RequireHook | undefined;

/**
 * CommonJS apps: each provider package as it is first required (`ai` 7's packages are ES modules that
 * Node's `require` loads too; that namespace is the one instance `import` also gets), and those
 * already required.
 */
export function installAiSdkRequireHook(): void {
  if (requireHook) return;
  requireHook = new RequireHook([...AI_SDK_PACKAGES], { internals: false }, (exports, name, baseDir) => {
    try {
      if (isAiSdkPackage(name)) instrumentAiSdkPackage(name, exports, readVersion(baseDir));
    } catch (err) {
      reportOnce(`could not instrument ${name}`, err);
    }
    return exports;
  });
  for (const pkg of AI_SDK_PACKAGES) {
    const marker = `${sep}node_modules${sep}${pkg.split("/").join(sep)}${sep}dist${sep}`;
    for (const [file, mod] of Object.entries(require.cache)) {
      if (!mod?.loaded || !file.includes(marker) || !/[\\/]dist[\\/]index\.c?js$/.test(file)) continue;
      try {
        instrumentAiSdkPackage(pkg, mod.exports, readVersion(file.slice(0, file.indexOf(marker) + marker.length - 5)));
      } catch (err) {
        reportOnce(`could not instrument ${pkg}`, err);
      }
    }
  }
}

export function uninstallAiSdkRequireHook(): void {
  requireHook?.unhook();
  requireHook = undefined;
}

/** Where the application resolves packages from: its entry script, else the working directory. */
function appRequire(): NodeJS.Require {
  const main = process.argv[1];
  return createRequire(main && existsSync(main) ? main : join(process.cwd(), "noop.js"));
}

function packageRoot(req: NodeJS.Require, pkg: string): string | undefined {
  let file: string;
  try {
    file = req.resolve(pkg);
  } catch {
    return undefined; // not installed
  }
  for (let dir = dirname(file); dirname(dir) !== dir; dir = dirname(dir)) {
    if (readJson(join(dir, "package.json"))?.name === pkg) return dir;
  }
  return undefined;
}

/** The file `import "<pkg>"` loads: the "." export under the import / node / default conditions. */
function importEntryOf(root: string): string | undefined {
  const manifest = readJson(join(root, "package.json"));
  const pick = (target: unknown): string | undefined => {
    if (typeof target === "string") return target;
    if (target && typeof target === "object" && !Array.isArray(target)) {
      for (const [cond, value] of Object.entries(target)) {
        if (cond === "import" || cond === "node" || cond === "default") {
          const found = pick(value);
          if (found) return found;
        }
      }
    }
    return undefined;
  };
  const exp = manifest?.exports;
  const dot = exp && typeof exp === "object" && "." in exp ? exp["."] : exp;
  const rel = pick(dot) ?? manifest?.module;
  if (typeof rel !== "string") return undefined;
  const entry = join(root, rel);
  return existsSync(entry) ? entry : undefined;
}

/**
 * ES module apps: their static imports were linked before the register module runs. Importing the
 * provider packages' ES module builds here evaluates the very instances the app linked (same URL),
 * whose model classes are then patched before any app code runs.
 */
export async function instrumentAiSdkEsmBuilds(): Promise<void> {
  const req = appRequire();
  for (const pkg of AI_SDK_PACKAGES) {
    const root = packageRoot(req, pkg);
    const entry = root && importEntryOf(root);
    if (!entry) continue;
    try {
      instrumentAiSdkPackage(pkg, await import(pathToFileURL(entry).href), readVersion(root));
    } catch (err) {
      reportOnce(`could not instrument the ES module build of ${pkg}`, err);
    }
  }
}

/** What the AI SDK call around a model call told its telemetry channel: its `maxRetries`. */
interface CallSettings {
  readonly maxRetries: number | undefined;
}

const SETTINGS = Symbol.for("llm-resilience.ai-sdk-call-settings");

/**
 * `ai` 7 publishes each operation (`generateText`, `streamText`, `embed`, `embedMany`, …) on the
 * diagnostics tracing channel "ai:telemetry", with its settings, around all of the operation's work.
 * A store bound to that channel carries the operation's `maxRetries` down to its model calls.
 * Process-wide: one binding, whichever copy of this package gets here first.
 */
function installCallSettingsChannel(): void {
  const g = globalThis as { [SETTINGS]?: AsyncLocalStorage<CallSettings> };
  if (g[SETTINGS]) return;
  const store = new AsyncLocalStorage<CallSettings>();
  g[SETTINGS] = store;
  try {
    const channel = diagnosticsChannel.tracingChannel?.("ai:telemetry");
    channel?.start.bindStore(store, (message: any) => {
      const outer = store.getStore();
      const maxRetries = message?.event?.maxRetries;
      if (typeof maxRetries !== "number" || maxRetries === outer?.maxRetries) return outer as CallSettings;
      return { maxRetries };
    });
  } catch (err) {
    reportOnce("could not subscribe to the AI SDK's telemetry channel; its maxRetries is not read", err);
  }
}

function callSettings(): CallSettings | undefined {
  return (globalThis as { [SETTINGS]?: AsyncLocalStorage<CallSettings> })[SETTINGS]?.getStore();
}

let retryErrorClass: any;

/**
 * The AI SDK's own `RetryError` for a call our policies gave up on after several attempts: what its
 * retry loop would have thrown. Found in the application's `ai` only when first needed.
 */
function retryError(message: string, reason: string, errors: unknown[]): Error | undefined {
  if (retryErrorClass === undefined) {
    try {
      retryErrorClass = appRequire()("ai")?.RetryError ?? null;
    } catch {
      retryErrorClass = null;
    }
  }
  if (typeof retryErrorClass !== "function") return undefined;
  try {
    return new retryErrorClass({ message, reason, errors });
  } catch {
    return undefined;
  }
}
