/**
 * What a user installs. The package is packed the way `npm publish` packs it (`npm pack`, whose
 * `prepack` builds dist/) from a copy of the package's sources, and the tarball is installed into a
 * fresh project outside the repository together with the real SDKs (the versions the repository
 * uses). There it runs as a CommonJS app, an ESM app whose first import is the register entry, under
 * `node --import llm-resilience/register` and under tsx, against the fake provider with OTLP to a
 * receiver; it is type-checked as a TypeScript consumer (node16, nodenext, bundler); attw, publint
 * and `npm publish --dry-run` judge the tarball.
 *
 * Needs the npm registry or an npm cache holding the packages (`npm install --prefer-offline`).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { type FakeProvider, startFakeProvider } from "./fake-provider/index.ts";
import { childEnv, describeRun, REPO_ROOT, runChild } from "./helpers/child.ts";
import { OTLP_KIND, type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "./helpers/otlp-receiver.ts";

const FIXTURES = join(REPO_ROOT, "test", "fixtures", "packed");
/** What the package's sources are: copied to a scratch directory and packed there (`prepack` builds). */
const PACKAGE_SOURCES = ["package.json", "tsconfig.json", "README.md", "LICENSE", "CHANGELOG.md", "src", "esm"];

interface Sh {
  code: number | null;
  stdout: string;
  stderr: string;
}
/** Runs a command without a shell; never rejects (the exit code is asserted by the caller). */
function sh(cmd: string, args: string[], cwd: string, timeoutMs = 300_000): Promise<Sh> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: childEnv(), timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}
const shown = (r: Sh) => `exit ${r.code}\n--- stdout ---\n${r.stdout.slice(-4000)}\n--- stderr ---\n${r.stderr.slice(-4000)}`;

/** The version of a package installed in the repository (read from disk: not every package exports ./package.json). */
function repoVersion(name: string): string {
  return JSON.parse(readFileSync(join(REPO_ROOT, "node_modules", name, "package.json"), "utf8")).version;
}

let scratch: string;
let pkgDir: string;
let appDir: string;
let tarball: string;
let packedFiles: string[];
let fake: FakeProvider;
let rx: OtlpReceiver;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), "llmr-packed-"));
  pkgDir = join(scratch, "package");
  appDir = join(scratch, "app");
  mkdirSync(pkgDir);
  for (const entry of PACKAGE_SOURCES) cpSync(join(REPO_ROOT, entry), join(pkgDir, entry), { recursive: true });
  symlinkSync(join(REPO_ROOT, "node_modules"), join(pkgDir, "node_modules"), "dir");

  const pack = await sh("npm", ["pack", "--json", "--pack-destination", scratch], pkgDir);
  assert.equal(pack.code, 0, `npm pack\n${shown(pack)}`);
  const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("[")));
  tarball = join(scratch, info.filename);
  packedFiles = info.files.map((f: { path: string }) => f.path).sort();

  mkdirSync(appDir);
  writeFileSync(join(appDir, "package.json"), JSON.stringify({ name: "packed-consumer", private: true }));
  for (const f of readdirSync(FIXTURES)) cpSync(join(FIXTURES, f), join(appDir, f));
  const deps = ["openai", "@anthropic-ai/sdk", "tsx", "typescript", "@types/node"].map((n) => `${n}@${repoVersion(n)}`);
  const install = await sh("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", tarball, ...deps], appDir);
  assert.equal(install.code, 0, `npm install of the tarball\n${shown(install)}`);

  [fake, rx] = await Promise.all([startFakeProvider(), startOtlpReceiver()]);
});

after(async () => {
  await Promise.all([fake?.close(), rx?.close()]);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("the packed package", { concurrency: true }, () => {
  test("the tarball ships the built entries, their declarations, LICENSE and CHANGELOG, and nothing else", () => {
    for (const f of [
      "package.json",
      "README.md",
      "LICENSE",
      "CHANGELOG.md",
      "dist/index.js",
      "dist/index.d.ts",
      "dist/register.js",
      "dist/register.d.ts",
      "esm/index.mjs",
      "esm/index.d.mts",
      "esm/register.mjs",
      "esm/register.d.mts",
      "esm/hook.mjs",
    ]) {
      assert.ok(packedFiles.includes(f), `${f} is in the tarball:\n${packedFiles.join("\n")}`);
    }
    const unexpected = packedFiles.filter(
      (f) => !/^(package\.json|README\.md|LICENSE|CHANGELOG\.md|dist\/.+\.(js|d\.ts)|esm\/[^/]+\.(mjs|d\.mts))$/.test(f),
    );
    assert.deepEqual(unexpected, [], "source maps, sources, tests or build info in the tarball");
    const installed = join(appDir, "node_modules", "llm-resilience", "dist", "index.js");
    assert.doesNotMatch(readFileSync(installed, "utf8"), /sourceMappingURL/, "no reference to a source map that is not shipped");
  });

  test("installing it brings no OpenTelemetry everything-bundle: no sdk-node, gRPC, protobufjs, one copy of each OTel package", () => {
    const nm = join(appDir, "node_modules");
    for (const heavy of ["@opentelemetry/sdk-node", "@grpc/grpc-js", "protobufjs", "@opentelemetry/exporter-zipkin", "import-in-the-middle"]) {
      assert.equal(existsSync(join(nm, heavy)), false, `${heavy} was installed`);
    }
    const nested = readdirSync(join(nm, "@opentelemetry")).filter((p) => existsSync(join(nm, "@opentelemetry", p, "node_modules", "@opentelemetry")));
    assert.deepEqual(nested, [], "OTel packages with a nested OTel copy (versions not aligned)");
  });

  test("ESM and CommonJS entries export the same names", async () => {
    const r = await runChild(
      [
        "--input-type=module",
        "-e",
        `import { createRequire } from "node:module";
         const cjs = createRequire(process.cwd() + "/x.js")("llm-resilience");
         const esm = await import("llm-resilience");
         console.log(JSON.stringify({ cjs: Object.keys(cjs).filter((k) => !["__esModule", "_internal"].includes(k)).sort(),
           esm: Object.keys(esm).filter((k) => !["default", "__esModule", "_internal"].includes(k)).sort(), same: esm.default === cjs }));`,
      ],
      { cwd: appDir },
    );
    assert.equal(r.code, 0, describeRun(r));
    const { cjs, esm, same } = JSON.parse(r.stdout);
    assert.deepEqual(esm, cjs, "every value export of the CommonJS build comes through esm/index.mjs");
    assert.equal(same, true, "the ESM default export is the CommonJS module (one instance)");
  });

  describe("apps in every module system, against the fake provider, spans over OTLP", { concurrency: true }, () => {
    const cases: [title: string, args: (dir: string) => string[], resolvedFile: string][] = [
      ['CommonJS: require("llm-resilience/register") first', () => ["app.cjs"], "dist/index.js"],
      ['ESM: import "llm-resilience/register" first', () => ["app-import-first.mjs"], "esm/index.mjs"],
      ["node --import llm-resilience/register", () => ["--import", "llm-resilience/register", "app-plain.mjs"], "esm/index.mjs"],
      ["TypeScript run with tsx", (dir) => [join(dir, "node_modules", "tsx", "dist", "cli.mjs"), "app.ts"], "dist/index.js"],
    ];
    for (const [i, [title, args, resolvedFile]] of cases.entries()) {
      test(title, async () => {
        const service = `packed-${i}`;
        const r = await runChild(args(appDir), {
          cwd: appDir,
          timeoutMs: 90_000,
          env: { FAKE_URL: fake.url, OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_SERVICE_NAME: service, LLM_RESILIENCE_LOG_LEVEL: "warn" },
        });
        assert.equal(r.code, 0, describeRun(r));
        assert.match(r.stdout, /^APP-RESULT \["tok0 tok1 tok2 ","tok0 tok1 tok2 "\]$/m, describeRun(r));
        const resolved = /^APP-RESOLVED (.+)$/m.exec(r.stdout)?.[1] ?? "";
        assert.equal(
          relative(join(appDir, "node_modules", "llm-resilience"), resolved.replace(/^file:\/\//, "")),
          resolvedFile,
          "loaded from the installed tarball",
        );
        await new Promise((res) => setTimeout(res, 50));
        assertTwoCalls(rx.spansOf(service), describeRun(r));
      });
    }
  });

  /**
   * skipLibCheck is off so that our own declarations are checked too; errors inside other packages'
   * declarations (ioredis references the untyped redis-errors) are theirs, not the consumer's nor ours.
   */
  test("OTEL_EXPORTER_OTLP_PROTOCOL=grpc without the optional gRPC exporters: calls work, one line each says what to install", async () => {
    const r = await runChild(["app.cjs"], {
      cwd: appDir,
      timeoutMs: 90_000,
      env: { FAKE_URL: fake.url, OTEL_EXPORTER_OTLP_PROTOCOL: "grpc", OTEL_SERVICE_NAME: "packed-grpc", LLM_RESILIENCE_LOG_LEVEL: "warn" },
    });
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /^APP-RESULT /m);
    const lines = r.stdout.split("\n").filter((l) => l.includes("which is not installed"));
    const wanted = ["@opentelemetry/exporter-trace-otlp-grpc", "@opentelemetry/exporter-metrics-otlp-grpc"];
    assert.equal(lines.length, wanted.length, describeRun(r));
    for (const pkg of wanted) {
      assert.ok(
        lines.some((l) => l.includes(`needs ${pkg}, which is not installed: npm install ${pkg}@~0.223.0`)),
        `${pkg} named with its install command\n${lines.join("\n")}`,
      );
    }
  });

  test("a TypeScript consumer type-checks under module node16, nodenext (ESM and CJS) and bundler", async () => {
    const tsc = join(appDir, "node_modules", "typescript", "bin", "tsc");
    const modes = ["node16", "nodenext", "bundler"];
    const results = await Promise.all(modes.map((m) => sh(process.execPath, [tsc, "-p", `tsconfig.${m}.json`], appDir)));
    results.forEach((r, i) => {
      const errors = r.stdout.split("\n").filter((l) => /error TS\d+/.test(l) && !/^node_modules\/(?!llm-resilience\/)/.test(l));
      assert.deepEqual(errors, [], `tsc -p tsconfig.${modes[i]}.json\n${shown(r)}`);
      assert.ok(r.code === 0 || /error TS/.test(r.stdout), `tsc ran\n${shown(r)}`);
    });
  });

  test("attw: the types resolve for import and require under node10, node16 and bundler", async () => {
    const r = await sh(join(REPO_ROOT, "node_modules", ".bin", "attw"), [tarball, "--format", "json"], scratch);
    assert.equal(r.code, 0, shown(r));
    assert.deepEqual(JSON.parse(r.stdout).problems, {});
  });

  test("publint --strict finds nothing", async () => {
    const r = await sh(join(REPO_ROOT, "node_modules", ".bin", "publint"), ["run", tarball, "--strict"], scratch);
    assert.equal(r.code, 0, shown(r));
    assert.match(r.stdout, /All good/);
  });

  test("npm publish --dry-run is clean (the only warning: not logged in)", async () => {
    const r = await sh("npm", ["publish", "--dry-run"], pkgDir);
    assert.equal(r.code, 0, shown(r));
    const warnings = r.stderr.split("\n").filter((l) => /npm (warn|WARN|error|ERR)/.test(l) && !/requires you to be logged in/.test(l));
    assert.deepEqual(warnings, []);
  });
});

/** One logical CLIENT span per call with one INTERNAL attempt child, all of our scope. */
function assertTwoCalls(spans: ReceivedSpan[], ctx: string): void {
  const dump = `\n${spans.map((s) => `  ${s.kind} ${s.name} scope=${s.scope}`).join("\n")}\n${ctx}`;
  const logical = spans.filter((s) => s.kind === OTLP_KIND.CLIENT);
  assert.deepEqual(logical.map((s) => s.name).sort(), ["chat claude-haiku-4-5", "chat gpt-4o-mini"], `logical spans${dump}`);
  for (const span of logical) {
    assert.equal(span.scope, "llm-resilience");
    const attempts = spans.filter((s) => s.parentSpanId === span.spanId);
    assert.deepEqual(
      attempts.map((a) => [a.name, a.kind]),
      [[`${span.name} attempt`, OTLP_KIND.INTERNAL]],
      `attempt of ${span.name}${dump}`,
    );
  }
  assert.equal(spans.length, 4, `no other span${dump}`);
}
