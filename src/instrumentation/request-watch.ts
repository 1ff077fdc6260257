import { createRequire } from "node:module";
import { basename, dirname, extname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { log, reportOnce } from "../telemetry/logger.js";
import { packageRootOf } from "./copies.js";
import { instrumentSdk, isSupported, type SdkPackage, warnUnsupported } from "./sdks.js";
import { kSentByPatched } from "./sent-by-patched.js";

/**
 * Never silent: notices the first request of an SDK copy that no hook reached — an SDK inlined into a
 * bundle, a copy in an ES module graph that a first-line `import "llm-resilience/register"` could not
 * see, a class loaded before register ran — and says so once per copy: the SDK, its version, where it
 * was loaded from, and the fix. A copy that is a package on disk is patched then, so its later calls
 * are instrumented.
 *
 * The seam is `globalThis.fetch`, which the SDKs (openai >= 5, @anthropic-ai/sdk >= 0.50) take as their
 * default at construction. Their requests carry `x-stainless-*` headers and a User-Agent naming the SDK
 * and its version; a patched client's requests carry our mark (`sent-by-patched.ts`) and cost one
 * property read here.
 */

const kWatched = Symbol.for("llm-resilience.request-watch");
const noticed = new Set<string>();

export function watchSdkRequests(): void {
  const g = globalThis as { fetch?: any };
  const original = g.fetch;
  if (typeof original !== "function" || original[kWatched]) return;
  const fetch = function fetch(this: unknown, _input: unknown, init?: any) {
    if (init != null && init[kSentByPatched] !== true && init.headers != null) {
      try {
        noticeRequest(init.headers);
      } catch (err) {
        reportOnce("telemetry error watching SDK requests", err);
      }
    }
    // biome-ignore lint/complexity/noArguments: pass through exactly what the caller passed
    return Reflect.apply(original, this, arguments);
  };
  Object.defineProperty(fetch, kWatched, { value: original });
  g.fetch = fetch;
}

function headerOf(headers: any, name: string): string | undefined {
  if (typeof headers.get === "function") return headers.get(name) ?? undefined;
  if (Array.isArray(headers)) {
    for (const pair of headers) if (String(pair?.[0]).toLowerCase() === name) return String(pair[1]);
    return undefined;
  }
  if (typeof headers === "object") {
    for (const key of Object.keys(headers)) if (key.toLowerCase() === name) return String(headers[key]);
  }
  return undefined;
}

function sdkOf(userAgent: string | undefined): SdkPackage | undefined {
  if (!userAgent) return undefined;
  // openai names its class (a bundler's rename included: OpenAI2); other Stainless SDKs name theirs.
  if (/^(Azure)?OpenAI\d*\/JS /.test(userAgent)) return "openai";
  if (/^Anthropic\w*\/JS /.test(userAgent)) return "@anthropic-ai/sdk";
  return undefined;
}

function noticeRequest(headers: any): void {
  if (headerOf(headers, "x-stainless-lang") === undefined) return;
  const userAgent = headerOf(headers, "user-agent");
  const sdk = sdkOf(userAgent);
  if (!sdk) return; // another Stainless-generated SDK
  const version = headerOf(headers, "x-stainless-package-version") ?? /\/JS (\S+)/.exec(userAgent ?? "")?.[1];
  const file = sendingFile();
  const key = `${sdk}@${version}|${file ?? ""}`;
  if (noticed.has(key)) return;
  noticed.add(key);
  if (!isSupported(sdk, version)) {
    warnUnsupported(sdk, version);
    return;
  }
  const root = file ? packageRootOf(file, sdk) : undefined;
  if (file && root) {
    patchLater(sdk, file, version);
    log().warn(
      { package: sdk, version, path: root },
      `llm-resilience: ${sdk}@${version} at ${root} was not instrumented when its first request went out ` +
        "(loaded before llm-resilience registered, or statically imported in an ES module graph that a first-line " +
        '`import "llm-resilience/register"` cannot see); its calls are instrumented from the next one on. ' +
        "To cover every call, start the app with `node --import llm-resilience/register`, or call instrument(client) on the client.",
    );
    return;
  }
  log().warn(
    { package: sdk, version, file },
    `llm-resilience: ${sdk}@${version ?? "unknown"} ${file ? `is bundled into ${file}` : "was loaded where no hook can reach it"}; ` +
      `its calls are not instrumented. Call instrument(client) on each of its clients, or keep ${sdk} out of the bundle (external).`,
  );
}

const STACK_LINE = /\(?((?:file:\/\/)?\/[^():]+|[A-Za-z]:\\[^():]+):\d+:\d+\)?$/;

/** The file of the SDK code that called `fetch`: the frame of its `fetchWithTimeout`, else the first frame not ours. */
function sendingFile(): string | undefined {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 30;
  const stack = new Error().stack ?? "";
  Error.stackTraceLimit = limit;
  const frames = stack.split("\n").slice(1);
  const own = dirname(__filename);
  let firstForeign: string | undefined;
  for (const frame of frames) {
    const file = STACK_LINE.exec(frame.trim())?.[1];
    if (!file) continue;
    const path = file.startsWith("file://") ? fileURLToPath(file) : file;
    if (path.startsWith(own)) continue;
    if (/\.fetchWithTimeout \(/.test(frame)) return path;
    firstForeign ??= path;
  }
  return firstForeign;
}

/**
 * Patches the copy that sent the request, for its later calls. The file is loaded already (it is on the
 * stack), so this loads nothing new: `require` returns the CommonJS build's exports, `import()` the ES
 * module's namespace. The client class lives in the file that defines `fetchWithTimeout` (client.*),
 * or, in older builds that keep it in core.*, in the package's index next to it.
 */
function patchLater(sdk: SdkPackage, file: string, version: string | undefined): void {
  const ext = extname(file);
  const target = basename(file, ext) === "core" ? join(dirname(file), `index${ext}`) : file;
  const done = (ns: unknown) => {
    if (!instrumentSdk(sdk, ns, version)) reportOnce(`could not instrument ${sdk}@${version} at ${target}`);
  };
  try {
    if (ext === ".mjs") {
      import(pathToFileURL(target).href).then(done, (err) => reportOnce(`could not instrument ${sdk} at ${target}`, err));
    } else {
      done(createRequire(target)(target));
    }
  } catch (err) {
    reportOnce(`could not instrument ${sdk} at ${target}`, err);
  }
}
