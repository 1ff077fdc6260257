// `import "llm-resilience/register"` (first import of an ESM app) and `node --import llm-resilience/register`.
// The app's static imports were linked before this module runs; importing the SDK copies they hold
// (top-level await) returns those same module instances, patched before any app code runs.
import cjs from "../dist/index.js";
import "../dist/register.js";

// Not in Node's module-hooks thread (preloads run there too), nor when switched off (LLM_RESILIENCE_DISABLED).
const runtime = globalThis[Symbol.for("llm-resilience.runtime")];
if (!cjs._internal.isLoaderThread() && runtime?.enabled) {
  // Started before this module's first await: the rest of the app's static graph evaluates in between,
  // and the probe sees which SDK copies it holds.
  const stopProbe = cjs._internal.watchSdkEvaluation();
  await cjs._internal.instrumentEsmBuilds(stopProbe);
}
