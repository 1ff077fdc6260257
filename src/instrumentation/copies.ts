import { existsSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { readJson, readText } from "./package-files.js";

/**
 * Finding SDK copies on disk without loading them: where Node would resolve a package from a folder,
 * and which copies the application's direct dependencies (LangChain, @openai/agents, the Bedrock and
 * Vertex SDKs, ...) resolve: a nested copy (npm), a sibling in pnpm's `.pnpm` store, the hoisted one.
 */

/** The real folder of package `name` as Node resolves it from `fromDir`: the first node_modules/<name> up the tree. */
function findPackage(fromDir: string, name: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) {
      try {
        return realpathSync(candidate);
      } catch {
        return undefined;
      }
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** The folder and manifest of the nearest package.json at or above `dir`. */
function nearestManifest(dir: string): { dir: string; manifest: any } | undefined {
  for (let d = dir; ; d = dirname(d)) {
    const manifest = readJson(join(d, "package.json"));
    if (manifest) return { dir: d, manifest };
    if (dirname(d) === d) return undefined;
  }
}

const DEPENDENCY_FIELDS = ["dependencies", "optionalDependencies", "peerDependencies", "devDependencies"] as const;

/** The copies of `packages` that the application in `appDir` declares in its package.json and resolves by name. */
export function declaredCopies(appDir: string, packages: readonly string[]): Array<{ pkg: string; root: string }> {
  const app = nearestManifest(appDir);
  if (!app) return [];
  const out: Array<{ pkg: string; root: string }> = [];
  for (const pkg of packages) {
    if (!DEPENDENCY_FIELDS.some((field) => app.manifest[field]?.[pkg] !== undefined)) continue;
    const root = findPackage(app.dir, pkg);
    if (root) out.push({ pkg, root });
  }
  return out;
}

/** Whether a copy's build shows itself to the evaluation probe: its `file` contains `marker`. */
export function buildCarries(root: string, file: string, marker: string): boolean {
  return readText(join(root, file))?.includes(marker) === true;
}

/**
 * The ES module file that defines a copy's client class: `client.mjs` in the current builds (what
 * `import "<pkg>"` and the Bedrock/Vertex SDKs' `<pkg>/client` both load), else the package's ESM
 * entry (older builds define the client there); undefined for a CommonJS-only build.
 */
export function esmClientFile(root: string): string | undefined {
  const client = join(root, "client.mjs");
  if (existsSync(client)) return client;
  const rel = esmEntryOf(readJson(join(root, "package.json")));
  if (!rel?.endsWith(".mjs")) return undefined;
  const entry = join(root, rel);
  return existsSync(entry) ? entry : undefined;
}

/** The file `import "<pkg>"` loads: the "." export under the import/node/default conditions. */
function esmEntryOf(manifest: any): string | undefined {
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
  return pick(dot) ?? (typeof manifest?.module === "string" ? manifest.module : undefined) ?? "index.mjs";
}

/** The root of the package named `name` that contains `file`, if the file is inside one (not inside a bundle). */
export function packageRootOf(file: string, name: string): string | undefined {
  for (let dir = dirname(file), i = 0; i < 8; dir = dirname(dir), i++) {
    const manifest = readJson(join(dir, "package.json"));
    if (manifest?.name === name) return dir;
    if (dirname(dir) === dir) return undefined;
  }
  return undefined;
}
