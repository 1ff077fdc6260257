import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { Hook as RequireHook } from "require-in-the-middle";
import { reportOnce } from "../telemetry/logger.js";
import { instrumentSdk, readVersion, SDK_PACKAGES, type SdkPackage } from "./sdks.js";

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

/**
 * ESM: the app's static imports are linked before our register module runs, so a loader hook would
 * come too late for them. Importing the SDKs' ESM builds here evaluates the very module instances the
 * app linked (same URL), whose class prototypes we then patch before any app code runs.
 */
export async function instrumentEsmBuilds(): Promise<void> {
  const req = appRequire();
  for (const pkg of SDK_PACKAGES) {
    let baseDir: string;
    try {
      baseDir = dirname(req.resolve(`${pkg}/package.json`));
    } catch {
      continue; // not installed
    }
    const entry = join(baseDir, "index.mjs");
    if (!existsSync(entry)) continue;
    try {
      const ns = await import(pathToFileURL(entry).href);
      instrumentSdk(pkg, ns, readVersion(baseDir));
    } catch (err) {
      reportOnce(`could not instrument the ESM build of ${pkg}`, err);
    }
  }
}
