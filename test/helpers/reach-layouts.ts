/**
 * The install layouts the reach matrix runs its apps in, each a real directory tree the apps resolve
 * their packages from:
 * - npm:  node_modules/<pkg> links to the repository's own node_modules (npm's hoisted tree with
 *         its nested copies: @langchain/anthropic's @anthropic-ai/sdk 0.x, @langchain/openai's openai 6).
 * - pnpm: a real `pnpm install` of test/fixtures/reach/pnpm (committed lockfile): `direct/` uses the
 *         SDKs, `wrappers/` depends only on LangChain, @openai/agents and the Bedrock/Vertex SDKs, whose
 *         SDK copies live in node_modules/.pnpm and cannot be resolved by name from the app.
 * In both, node_modules/llm-resilience links to this repository, as `npm install <path>` would.
 * The pnpm install and its store are cached in the OS temp dir, keyed by the fixture's lockfile.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./child.ts";

const FIXTURE = join(REPO_ROOT, "test", "fixtures", "reach");
const PNPM_FIXTURE = join(FIXTURE, "pnpm");

function link(target: string, path: string): void {
  rmSync(path, { recursive: true, force: true });
  symlinkSync(target, path, "dir");
}

function fixtureHash(): string {
  const h = createHash("sha256");
  for (const f of ["pnpm-lock.yaml", "pnpm-workspace.yaml", "package.json", "direct/package.json", "wrappers/package.json"]) {
    h.update(readFileSync(join(PNPM_FIXTURE, f)));
  }
  return h.digest("hex").slice(0, 12);
}

/** The npm layout: a project dir whose node_modules entries link to the repository's. */
export function npmLayout(root: string): string {
  const dir = join(root, "npm");
  const nm = join(dir, "node_modules");
  mkdirSync(nm, { recursive: true });
  for (const entry of readdirSync(join(REPO_ROOT, "node_modules"))) {
    if (entry.startsWith(".")) continue;
    link(join(REPO_ROOT, "node_modules", entry), join(nm, entry));
  }
  link(REPO_ROOT, join(nm, "llm-resilience"));
  // The app's manifest, as `npm install` leaves it: what it depends on (the SDKs and the wrappers).
  const dependencies: Record<string, string> = { "llm-resilience": `file:${REPO_ROOT}` };
  for (const project of ["direct", "wrappers"]) {
    Object.assign(dependencies, JSON.parse(readFileSync(join(PNPM_FIXTURE, project, "package.json"), "utf8")).dependencies);
  }
  writeFileSync(join(dir, "package.json"), `${JSON.stringify({ name: "reach-npm", private: true, dependencies }, null, 2)}\n`);
  return dir;
}

/** The pnpm workspace (installed once per lockfile); returns its `direct` and `wrappers` project dirs. */
export function pnpmLayout(): { direct: string; wrappers: string; installMs: number } {
  const cache = join(tmpdir(), `llm-resilience-reach-pnpm-${fixtureHash()}`);
  const stamp = join(cache, ".installed");
  let installMs = 0;
  if (!existsSync(stamp)) {
    const started = Date.now();
    rmSync(cache, { recursive: true, force: true });
    cpSync(PNPM_FIXTURE, cache, { recursive: true });
    const pnpm = join(REPO_ROOT, "node_modules", "pnpm", "bin", "pnpm.mjs");
    execFileSync(
      process.execPath,
      [
        pnpm,
        "install",
        "--frozen-lockfile",
        "--prefer-offline",
        "--store-dir",
        join(tmpdir(), "llm-resilience-reach-pnpm-store"),
        "--reporter=silent",
      ],
      { cwd: cache, stdio: ["ignore", "pipe", "pipe"], timeout: 240_000, env: { ...process.env, CI: "true" } },
    );
    writeFileSync(stamp, new Date().toISOString());
    installMs = Date.now() - started;
  }
  const direct = join(cache, "direct");
  const wrappers = join(cache, "wrappers");
  for (const project of [direct, wrappers]) link(REPO_ROOT, join(project, "node_modules", "llm-resilience"));
  return { direct, wrappers, installMs };
}

const IMPORT_LINE = /^import \{([^}]*)\} from ("[^"]+");$/gm;

/** The CommonJS twin of an ES module fixture written with named imports and exported functions only. */
export function toCommonJs(source: string): string {
  return source
    .replace(IMPORT_LINE, (_, names: string, from: string) => `const {${names.replace(/ as /g, ": ")}} = require(${from});`)
    .replace(/^export async function (\w+)/gm, "exports.$1 = async function $1");
}

export type Style = "cjs" | "esm" | "import" | "tsx";

/** Writes the set-ups, the reporter and one entry per (set-up, style) into `dir/<name>/`; returns that dir. */
export function writeApps(dir: string, name: string, setups: readonly string[], styles: readonly Style[]): string {
  const out = join(dir, name);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, "setups"), { recursive: true });
  const report = readFileSync(join(FIXTURE, "report.mjs"), "utf8");
  writeFileSync(join(out, "report.mjs"), report);
  writeFileSync(join(out, "report.cjs"), toCommonJs(report));
  for (const setup of setups) {
    const source = readFileSync(join(FIXTURE, "setups", `${setup}.mjs`), "utf8");
    writeFileSync(join(out, "setups", `${setup}.mjs`), source);
    writeFileSync(join(out, "setups", `${setup}.cjs`), toCommonJs(source));
    for (const style of styles) writeFileSync(join(out, entryName(setup, style)), entrySource(setup, style));
  }
  return out;
}

export function entryName(setup: string, style: Style): string {
  return `${setup}.${style}.${style === "cjs" ? "cjs" : style === "tsx" ? "mts" : "mjs"}`;
}

function entrySource(setup: string, style: Style): string {
  if (style === "cjs") {
    return `require("llm-resilience/register");\nconst { run } = require("./setups/${setup}.cjs");\nrequire("./report.cjs").report(run);\n`;
  }
  const first = style === "import" ? "" : `import "llm-resilience/register";\n`;
  return `${first}import { run } from "./setups/${setup}.mjs";\nimport { report } from "./report.mjs";\nawait report(run);\n`;
}
