import { fileURLToPath } from "node:url";

/**
 * Which SDK copies an ES module graph evaluates, without loading any: a first-line
 * `import "llm-resilience/register"` runs before the rest of the app's static graph is evaluated, and
 * its top-level await resumes after. Between the two, the current SDK builds call `Symbol.for` with
 * their own keys while their modules evaluate (@anthropic-ai/sdk's internal/headers.mjs since 0.5x,
 * openai's internal/provider.mjs since 6.x); the file that called tells which copy it is.
 */
const KEYS = new Set(["brand.privateNullableHeaders", "openai.node.providerTimeout.v1", "openai.node.providerDefinitions.v1"]);

/** The marker each SDK's probe-visible builds carry, by package and file (see `probeSees`). */
export const PROBED_FILES = {
  openai: ["internal/provider.mjs", "Symbol.for('openai.node.provider"],
  "@anthropic-ai/sdk": ["internal/headers.mjs", "Symbol.for('brand.privateNullableHeaders')"],
} as const;

const FRAME_FILE = /\(?((?:file:\/\/)?\/[^():]+|[A-Za-z]:\\[^():]+):\d+:\d+\)?$/;

/** Starts watching; the returned function stops and gives the files of the SDK modules seen evaluating. */
export function watchSdkEvaluation(): () => string[] {
  const original = Symbol.for;
  const files: string[] = [];
  const probe = function (this: unknown, key: string): symbol {
    if (KEYS.has(key)) {
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 2;
      const frame = (new Error().stack ?? "").split("\n")[2]?.trim() ?? "";
      Error.stackTraceLimit = limit;
      const file = FRAME_FILE.exec(frame)?.[1];
      if (file) files.push(file.startsWith("file://") ? fileURLToPath(file) : file);
    }
    return original.call(Symbol, key);
  };
  Object.defineProperty(probe, "name", { value: "for" });
  Symbol.for = probe;
  return () => {
    if (Symbol.for === probe) Symbol.for = original;
    return files;
  };
}
