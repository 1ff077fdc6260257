import { existsSync, readFileSync } from "node:fs";
import { createRequire, register as registerModuleHooks } from "node:module";
import { dirname, join, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Hook as RequireHook } from "require-in-the-middle";
import { reportOnce } from "../telemetry/logger.js";
import { type AiSdkPackage, instrumentAiSdkModule, isAiSdkPackage } from "./ai-sdk.js";
import { instrumentSdk, isSupported, readVersion, SDK_PACKAGES, type SdkPackage } from "./sdks.js";

let requireHook: RequireHook | undefined;

/** CommonJS: instruments each SDK build when it is first required, and those already required. */
export function installRequireHook(): void {
  if (requireHook) return;
  requireHook = new RequireHook([...SDK_PACKAGES], { internals: false }, (exports, name, baseDir) => {
    try {
      instrumentSdk(name as SdkPackage, exports, readVersion(baseDir));
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
    const suffix = `${sep}node_modules${sep}${pkg.split("/").join(sep)}${sep}index.js`;
    for (const [file, mod] of Object.entries(require.cache)) {
      if (mod?.loaded && file.endsWith(suffix)) {
        try {
          instrumentSdk(pkg, mod.exports, readVersion(dirname(file)));
        } catch (err) {
          reportOnce(`could not instrument ${pkg}`, err);
        }
      }
    }
  }
}

/** Where the application resolves packages from: its entry script, else the working directory. */
function appRequire(): NodeJS.Require {
  const main = process.argv[1];
  const base = main && existsSync(main) ? main : join(process.cwd(), "noop.js");
  return createRequire(base);
}

function readJson(file: string): any {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
}

/**
 * The root folder of `pkg` as the application resolves it. Neither SDK exports "./package.json", so
 * `require.resolve("openai/package.json")` throws: resolve the main entry and walk up to the
 * package.json that carries the package's name.
 */
function packageRoot(req: NodeJS.Require, pkg: string): string | undefined {
  let file: string;
  try {
    file = req.resolve(pkg);
  } catch {
    return undefined; // not installed
  }
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if (readJson(join(dir, "package.json"))?.name === pkg) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}

/** The file `import "<pkg>"` loads: the "." export under the import/node/default conditions. */
function esmEntryOf(root: string): string | undefined {
  const manifest = readJson(join(root, "package.json"));
  const pick = (target: unknown): string | undefined => {
    if (typeof target === "string") return target;
    if (Array.isArray(target)) {
      for (const t of target) {
        const found = pick(t);
        if (found) return found;
      }
      return undefined;
    }
    if (target && typeof target === "object") {
      for (const [cond, value] of Object.entries(target)) {
        if (cond === "import" || cond === "node" || cond === "default" || cond === "module-sync") {
          const found = pick(value);
          if (found) return found;
        }
      }
    }
    return undefined;
  };
  const exp = manifest?.exports;
  const dot = exp && typeof exp === "object" && !Array.isArray(exp) && "." in exp ? exp["."] : exp;
  const rel = pick(dot) ?? (typeof manifest?.module === "string" ? manifest.module : undefined) ?? "index.mjs";
  if (!/\.mjs$/.test(rel)) return undefined; // no separate ESM build: the CommonJS hook covers it
  const entry = join(root, rel);
  return existsSync(entry) ? entry : undefined;
}

/**
 * ESM: the app's static imports are linked before our register module runs, so a loader hook would
 * come too late for them. Importing the SDKs' ESM builds here evaluates the very module instances the
 * app linked (same URL), whose class prototypes we then patch before any app code runs.
 */
export async function instrumentEsmBuilds(): Promise<void> {
  const req = appRequire();
  for (const pkg of SDK_PACKAGES) {
    const baseDir = packageRoot(req, pkg);
    if (!baseDir) continue; // not installed
    const entry = esmEntryOf(baseDir);
    if (!entry) {
      // A CommonJS-only build (openai 3.x) imported from an ES module never passes through require(),
      // so the require hook never sees it: still give an unsupported version its one warning.
      const version = readVersion(baseDir);
      if (!isSupported(pkg, version)) instrumentSdk(pkg, undefined, version);
      continue;
    }
    try {
      const ns = await import(pathToFileURL(entry).href);
      instrumentSdk(pkg, ns, readVersion(baseDir));
    } catch (err) {
      reportOnce(`could not instrument the ESM build of ${pkg}`, err);
    }
  }
}
