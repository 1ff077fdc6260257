// The loopback transport (the fake provider in its own process) and the Node binaries of the matrix,
// shared by bench/run.mjs (part 5) and bench/count.mjs.
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./common.mjs";

/** The Node binary of a major version: BENCH_NODE<major>, else the compat matrix's (scripts/compat-install.sh). */
export function nodeBinary(major) {
  const file = process.env[`BENCH_NODE${major}`] ?? join(ROOT, `test/compat/node_modules/node${major}/bin/node`);
  if (!existsSync(file)) throw new Error(`Node ${major}: ${file} is missing; run scripts/compat-install.sh or set BENCH_NODE${major}`);
  const version = execFileSync(file, ["-p", "process.versions.node"], { encoding: "utf8" }).trim();
  if (version.split(".")[0] !== String(major)) throw new Error(`Node ${major}: ${file} is Node ${version}`);
  return { file, version };
}

/**
 * bench/loopback/provider.mts in its own process (the Node running this script), streamed answers of
 * `chunks` content chunks; resolves with its url once it listens. `stop()` ends it (so does our exit).
 */
export function startLoopbackProvider(chunks) {
  const child = spawn(process.execPath, ["--import", "tsx", "bench/loopback/provider.mts", String(chunks)], {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`loopback provider exited (code ${code}) before listening`)));
    child.once("message", (m) => {
      child.removeAllListeners("exit");
      resolve({
        url: m.url,
        stop: () =>
          new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.once("exit", () => done());
            child.disconnect();
          }),
      });
    });
  });
}
