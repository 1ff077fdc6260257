/**
 * Runs a fixture app as a real child process: `node <args>` with cwd = the repository root, so the
 * package resolves itself as `llm-resilience` through its `exports`. The child's environment is the
 * parent's minus anything OpenTelemetry / llm-resilience / NODE_OPTIONS related, plus `env`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";

export const REPO_ROOT = resolve(__dirname, "..", "..");
export const FIXTURES = resolve(REPO_ROOT, "test", "fixtures", "startup");

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  /** The child was killed by us after `timeoutMs`. */
  timedOut: boolean;
}

export interface ChildOptions {
  env?: Record<string, string | undefined>;
  /** Killed with SIGKILL after this long (default 20 s). */
  timeoutMs?: number;
  cwd?: string;
}

export interface RunningChild {
  readonly process: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the stdout so far once it matches `pattern`; rejects if the child ends first. */
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<string>;
  readonly result: Promise<ChildResult>;
}

const SCRUB = /^(OTEL_|LLM_RESILIENCE_|ANTHROPIC_|OPENAI_|NODE_OPTIONS$|NODE_TEST_CONTEXT$)/;

export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!SCRUB.test(k)) env[k] = v;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export function spawnChild(args: string[], opts: ChildOptions = {}): RunningChild {
  const started = Date.now();
  const child = spawn(process.execPath, args, {
    cwd: opts.cwd ?? REPO_ROOT,
    env: childEnv(opts.env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let timedOut = false;
  const listeners = new Set<() => void>();
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
    for (const l of [...listeners]) l();
  });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, opts.timeoutMs ?? 20_000);
  const result = new Promise<ChildResult>((resolveResult, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      for (const l of [...listeners]) l();
      resolveResult({ code, signal, stdout, stderr, durationMs: Date.now() - started, timedOut });
    });
  });
  let ended = false;
  void result.then(() => (ended = true), () => (ended = true));

  return {
    process: child,
    stdout: () => stdout,
    stderr: () => stderr,
    result,
    waitForStdout(pattern, timeoutMs = 15_000) {
      return new Promise<string>((res, rej) => {
        const check = () => {
          if (pattern.test(stdout)) {
            finish();
            res(stdout);
          } else if (ended || child.exitCode !== null || child.signalCode !== null) {
            finish();
            rej(new Error(`child ended before printing ${pattern}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
          }
        };
        const t = setTimeout(() => {
          finish();
          rej(new Error(`timed out waiting for ${pattern} on stdout\nstdout:\n${stdout}\nstderr:\n${stderr}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(t);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
  };
}

export function runChild(args: string[], opts: ChildOptions = {}): Promise<ChildResult> {
  return spawnChild(args, opts).result;
}

/** A readable dump of a child's run for assertion messages. */
export function describeRun(r: ChildResult): string {
  return `exit code ${r.code} signal ${r.signal} after ${r.durationMs} ms${r.timedOut ? " (TIMED OUT)" : ""}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}
