import { existsSync } from "node:fs";
import { register as registerModuleHooks } from "node:module";
import { dirname, join, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { reportOnce } from "../telemetry/logger.js";
import { type AiSdkPackage, instrumentAiSdkModule, isAiSdkPackage } from "./ai-sdk.js";
import { buildCarries, declaredCopies, esmClientFile, packageRootOf } from "./copies.js";
import { PROBED_FILES } from "./evaluation-probe.js";
import { readVersion } from "./package-files.js";
import { RequireHook } from "./require-hook.js";
import { instrumentSdk, isSupported, SDK_PACKAGES, type SdkPackage } from "./sdks.js";

let requireHook: RequireHook | undefined;

/**
 * The modules that define a client class: each SDK's main entry and its `/client` module (openai >= 5,
 * @anthropic-ai/sdk >= 0.50), which the Bedrock and Vertex SDKs load without the main entry.
 */
const CLIENT_MODULES = SDK_PACKAGES.flatMap((pkg) => [pkg, `${pkg}/client`]);

function sdkOfModule(name: string): SdkPackage | undefined {
  return SDK_PACKAGES.find((pkg) => name === pkg || name === `${pkg}/client`);
}

/** CommonJS: instruments each SDK build when it is first required, and those already required. */
export function installRequireHook(): void {
  if (requireHook) return;
  requireHook = new RequireHook(CLIENT_MODULES, { internals: false }, (exports, name, baseDir) => {
    const pkg = sdkOfModule(name);
    try {
      if (pkg) instrumentSdk(pkg, exports, readVersion(baseDir));
    } catch (err) {
      reportOnce(`could not instrument ${name}`, err);
    }
    return exports;
  });
  instrumentAlreadyRequired();
}

const ESM_LOADED = Symbol.for("llm-resilience.esm-loaded");
type EsmLoaded = (pkg: SdkPackage | AiSdkPackage, ns: unknown, url: string) => void;
let esmHookInstalled = false;

/**
 * ESM builds loaded AFTER registering (a dynamic `import("openai")` in a CommonJS app, an ES module
 * dependency loaded later, the app's graph under `node --import`): a module customization hook
 * (esm/hook.mjs) appends a call to each SDK's ESM entry that hands its namespace to us as it is
 * evaluated. The hook is process-wide: installed once, whichever copy of this package gets here first.
 */
export function installEsmHook(): void {
  const g = globalThis as { [ESM_LOADED]?: EsmLoaded };
  if (esmHookInstalled || g[ESM_LOADED]) return;
  esmHookInstalled = true;
  g[ESM_LOADED] = (pkg, ns, url) => {
    try {
      if (isAiSdkPackage(pkg)) instrumentAiSdkModule(pkg, ns, url);
      else instrumentSdk(pkg, ns, readVersion(dirname(fileURLToPath(url))));
    } catch (err) {
      reportOnce(`could not instrument the ESM build of ${pkg}`, err);
    }
  };
  const hook = join(__dirname, "..", "..", "esm", "hook.mjs");
  if (typeof registerModuleHooks !== "function" || !existsSync(hook)) return; // Node < 20.6, or bundled
  try {
    registerModuleHooks(pathToFileURL(hook).href);
  } catch (err) {
    reportOnce("could not register the ESM loader hook; SDKs imported later as ES modules are not instrumented", err);
  }
}

export function uninstallRequireHook(): void {
  requireHook?.unhook();
  requireHook = undefined;
}

function instrumentAlreadyRequired(): void {
  for (const pkg of SDK_PACKAGES) {
    const dir = `${sep}node_modules${sep}${pkg.split("/").join(sep)}${sep}`;
    for (const [file, mod] of Object.entries(require.cache)) {
      if (mod?.loaded && (file.endsWith(`${dir}index.js`) || file.endsWith(`${dir}client.js`))) {
        try {
          instrumentSdk(pkg, mod.exports, readVersion(dirname(file)));
        } catch (err) {
          reportOnce(`could not instrument ${pkg}`, err);
        }
      }
    }
  }
}

/** The application's folder: its entry script's, else the working directory. */
function appDir(): string {
  const main = process.argv[1];
  return main && existsSync(main) ? dirname(main) : process.cwd();
}

/**
 * ESM: the app's static imports are linked before our register module runs, so a loader hook would
 * come too late for them. Importing a copy's client module here evaluates the very module instance
 * the app linked (same URL, already loaded: nothing new is read or compiled), whose class prototypes
 * we then patch before any app code runs. Which copies: those the evaluation probe saw evaluating in
 * the app's static graph (a wrapper's nested copy, pnpm's store included), and those the app declares
 * and resolves by name whose build the probe cannot see (older builds). No other copy is imported: a
 * copy used but reached no way here is noticed at its first request (request-watch.ts).
 */
export async function instrumentEsmBuilds(stopProbe?: () => string[]): Promise<void> {
  await null; // the rest of the app's static graph evaluates before this line goes on
  const copies = new Map<string, SdkPackage>();
  for (const file of stopProbe?.() ?? []) {
    for (const pkg of SDK_PACKAGES) {
      const root = packageRootOf(file, pkg);
      if (root) copies.set(root, pkg);
    }
  }
  for (const { pkg, root } of declaredCopies(appDir(), SDK_PACKAGES)) {
    const [file, marker] = PROBED_FILES[pkg as SdkPackage];
    if (!copies.has(root) && !buildCarries(root, file, marker)) copies.set(root, pkg as SdkPackage);
  }
  for (const [root, pkg] of copies) {
    const file = esmClientFile(root);
    if (!file) {
      // A CommonJS-only build (openai 3.x) imported from an ES module never passes through require(),
      // so the require hook never sees it: still give an unsupported version its one warning.
      const version = readVersion(root);
      if (!isSupported(pkg, version)) instrumentSdk(pkg, undefined, version);
      continue;
    }
    try {
      const ns = await import(pathToFileURL(file).href);
      instrumentSdk(pkg, ns, readVersion(root));
    } catch (err) {
      reportOnce(`could not instrument the ESM build of ${pkg} at ${root}`, err);
    }
  }
}
