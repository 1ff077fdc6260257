#!/usr/bin/env node
// Start-up budgets: time until the first chat call has completed, in ms since the process started,
// for the openai SDK alone, with a bare NodeSDK started first, and with llm-resilience/register first
// — CommonJS and ESM, interleaved round by round. Then the exit: an app of 20 calls whose OTLP
// collector refuses connections, timed from its last call to its exit.
//
//   node bench/startup/run.mjs [--rounds N] [--json FILE] [--only cjs|esm] [--app-dir DIR]
//
// The apps run as a user's would: in a project outside the repository that installed the package
// `npm pack` builds, the repository's openai version and @opentelemetry/sdk-node (made in a temporary
// directory and removed afterwards; --app-dir DIR makes it there once and reuses it). Every app exports
// OTLP/HTTP to a loopback sink that answers 200, and calls a loopback server that answers the fake
// provider's canned chat completion.
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadPayloads } from "../lib/common.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..");
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
};
const ROUNDS = Number(opt("--rounds", 11));
const JSON_OUT = opt("--json", undefined);
const ONLY = opt("--only", undefined); // e.g. cjs: the CommonJS rows only, no exit part
const APP_DIR = opt("--app-dir", undefined);

const APP_FILES = ["app.cjs", "raw.mjs", "nodesdk.mjs", "nodesdk-start.mjs", "ours.mjs", "report.cjs"];
const ALL_VARIANTS = [
  { key: "cjs/raw", label: "CommonJS: openai SDK alone", args: ["app.cjs"], env: { STARTUP_VARIANT: "raw" } },
  { key: "cjs/nodesdk", label: "CommonJS: bare NodeSDK, then the SDK", args: ["app.cjs"], env: { STARTUP_VARIANT: "nodesdk" } },
  { key: "cjs/ours", label: 'CommonJS: require("llm-resilience/register") first', args: ["app.cjs"], env: { STARTUP_VARIANT: "ours" } },
  { key: "esm/raw", label: "ESM: openai SDK alone", args: ["raw.mjs"], env: {} },
  { key: "esm/nodesdk", label: "ESM: bare NodeSDK module, then the SDK", args: ["nodesdk.mjs"], env: {} },
  { key: "esm/ours", label: 'ESM: import "llm-resilience/register" first', args: ["ours.mjs"], env: {} },
];
const VARIANTS = ALL_VARIANTS.filter((v) => !ONLY || v.key.startsWith(`${ONLY}/`));

/** The version of a package installed in the repository. */
function repoVersion(name) {
  return JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version;
}

/**
 * A user's project: the packed package (prepack builds it from a copy of the sources) installed
 * with openai and @opentelemetry/sdk-node, and the start-up apps. Returns its directory.
 */
export function makeAppProject(dir) {
  if (existsSync(join(dir, "node_modules", "llm-resilience"))) {
    for (const f of APP_FILES) cpSync(join(HERE, f), join(dir, f));
    return dir;
  }
  const scratch = mkdtempSync(join(tmpdir(), "llmr-startup-pack-"));
  try {
    const pkg = join(scratch, "package");
    mkdirSync(pkg);
    for (const f of ["package.json", "tsconfig.json", "README.md", "LICENSE", "CHANGELOG.md", "src", "esm"]) cpSync(join(ROOT, f), join(pkg, f), { recursive: true });
    symlinkSync(join(ROOT, "node_modules"), join(pkg, "node_modules"), "dir");
    const [info] = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", scratch], { cwd: pkg, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "startup-bench-app", private: true }));
    const deps = [join(scratch, info.filename), `openai@${repoVersion("openai")}`, `@opentelemetry/sdk-node@${repoVersion("@opentelemetry/sdk-node")}`];
    execFileSync("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", ...deps], { cwd: dir, stdio: "ignore" });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  for (const f of APP_FILES) cpSync(join(HERE, f), join(dir, f));
  return dir;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = (s.length - 1) / 2;
  return (s[Math.floor(m)] + s[Math.ceil(m)]) / 2;
};

/** A loopback server answering every POST with `body`; `refuse: true` gives a port nothing listens on. */
async function listen(handler) {
  const server = createServer(handler);
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

async function refusingUrl() {
  const { server, url } = await listen(() => {});
  await new Promise((r) => server.close(r));
  return url;
}

/** Runs one app; resolves with its FIRST-CALL / LAST-CALL marks, its wall time and when it exited. */
export function runApp(args, env, cwd = ROOT) {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let lastCallSeenAt;
    child.stdout.setEncoding("utf8").on("data", (d) => {
      stdout += d;
      if (lastCallSeenAt === undefined && /^LAST-CALL /m.test(stdout)) lastCallSeenAt = performance.now();
    });
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const exitedAt = performance.now();
      const first = /^FIRST-CALL ([\d.]+) ([\d.]+)$/m.exec(stdout);
      if (code !== 0 || !first) {
        reject(new Error(`${args.join(" ")} failed (code ${code}, signal ${signal})\n${stdout}\n${stderr}`));
        return;
      }
      resolve({
        firstCallMs: Number(first[1]),
        firstCallCpuMs: Number(first[2]),
        wallMs: exitedAt - started,
        exitAfterLastCallMs: lastCallSeenAt === undefined ? NaN : exitedAt - lastCallSeenAt,
        stdout,
        stderr,
      });
    });
  });
}

/** Env of an app: the parent's minus anything OTel / llm-resilience / NODE_OPTIONS, plus `extra`. */
export function appEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(OTEL_|LLM_RESILIENCE_|NODE_OPTIONS$)/.test(k)) env[k] = v;
  return { ...env, ...extra };
}

async function main() {
  const appDir = APP_DIR ?? mkdtempSync(join(tmpdir(), "llmr-startup-app-"));
  process.stderr.write(`[startup] installing the packed package into ${appDir}\n`);
  makeAppProject(appDir);
  const { json, headers } = loadPayloads().openai;
  const provider = await listen((req, res) => {
    req.resume().on("end", () => res.writeHead(200, { "content-type": "application/json", ...headers }).end(json));
  });
  const sink = await listen((req, res) => req.resume().on("end", () => res.writeHead(200, { "content-type": "application/json" }).end("{}")));
  const common = { BASE_URL: `${provider.url}/v1`, OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_SERVICE_NAME: "startup-bench" };
  try {
    const results = Object.fromEntries(VARIANTS.map((v) => [v.key, []]));
    for (const v of VARIANTS) await runApp(v.args, appEnv({ ...common, ...v.env }), appDir); // warm-up (disk cache)
    for (let r = 0; r < ROUNDS; r++) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + r) % VARIANTS.length]);
      for (const v of order) results[v.key].push(await runApp(v.args, appEnv({ ...common, ...v.env }), appDir));
      process.stderr.write(`[startup] round ${r + 1}/${ROUNDS}\n`);
    }

    const refused = await refusingUrl();
    const exits = [];
    for (let r = 0; r < (ONLY ? 0 : Math.max(3, Math.ceil(ROUNDS / 2))); r++) {
      for (const [key, args] of [
        ["cjs", ["app.cjs"]],
        ["esm", ["ours.mjs"]],
      ]) {
        const run = await runApp(args, appEnv({ ...common, STARTUP_VARIANT: "ours", CALLS: "20", OTEL_EXPORTER_OTLP_ENDPOINT: refused }), appDir);
        const warnings = run.stdout
          .split("\n")
          .filter((l) => /"level":40/.test(l))
          .map((l) => JSON.parse(l).msg);
        exits.push({ key, exitAfterLastCallMs: run.exitAfterLastCallMs, warnings });
      }
    }

    const rows = VARIANTS.map((v) => {
      const rs = results[v.key];
      const firsts = rs.map((x) => x.firstCallMs);
      return {
        key: v.key,
        label: v.label,
        firstCallMedian: median(firsts),
        min: Math.min(...firsts),
        max: Math.max(...firsts),
        wallMedian: median(rs.map((x) => x.wallMs)),
        exitMedian: median(rs.map((x) => x.exitAfterLastCallMs)),
        cpuMedian: median(rs.map((x) => x.firstCallCpuMs)),
      };
    });
    const by = Object.fromEntries(rows.map((r) => [r.key, r]));
    const lines = [
      `Start-up (node ${process.version}, ${ROUNDS} interleaved rounds; ms since process start; command: node bench/startup/run.mjs --rounds ${ROUNDS}; apps in a project that installed the packed package)`,
      "",
      "| app | first call completed: median (min–max) | vs bare NodeSDK | CPU until then (all threads) | call → exit | whole process |",
      "|:--|--:|--:|--:|--:|--:|",
      ...rows.map((r) => {
        const base = by[`${r.key.split("/")[0]}/nodesdk`].firstCallMedian;
        const vs = r.key.endsWith("/nodesdk") ? "–" : `${r.firstCallMedian - base >= 0 ? "+" : ""}${(r.firstCallMedian - base).toFixed(0)}`;
        return `| ${r.label} | ${r.firstCallMedian.toFixed(0)} (${r.min.toFixed(0)}–${r.max.toFixed(0)}) | ${vs} | ${r.cpuMedian.toFixed(0)} | ${r.exitMedian.toFixed(0)} | ${r.wallMedian.toFixed(0)} |`;
      }),
      "",
    ];
    if (exits.length > 0) {
      lines.push(
        "",
        "Exit with the collector refusing connections (20 calls, llm-resilience/register):",
        "",
        "| app | last call → exit: median (max) | warnings about lost spans (median) | other warnings (median) |",
        "|:--|--:|--:|--:|",
        ...["cjs", "esm"].map((k) => {
          const xs = exits.filter((e) => e.key === k);
          const t = xs.map((e) => e.exitAfterLastCallMs);
          const lost = xs.map((e) => e.warnings.filter((w) => /spans could not be sent/.test(w)).length);
          const other = xs.map((e, i) => e.warnings.length - lost[i]);
          return `| ${k === "cjs" ? "CommonJS" : "ESM"} | ${median(t).toFixed(0)} (${Math.max(...t).toFixed(0)}) | ${median(lost)} | ${median(other)} |`;
        }),
        "",
        `Warnings of one refused run: ${exits[0].warnings.join(" / ") || "none"}`,
      );
    }
    console.log(lines.join("\n"));
    if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify({ rows, exits: exits.map(({ warnings, ...e }) => ({ ...e, warnings: warnings.length })) }, null, 2));
  } finally {
    provider.server.close();
    sink.server.close();
    if (!APP_DIR) rmSync(appDir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
