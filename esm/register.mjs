// `import "llm-resilience/register"` (first import of an ESM app) and `node --import llm-resilience/register`.
// The app's static imports were linked before this module runs; importing the SDKs' ESM builds here
// (top-level await) evaluates and patches those same module instances before any app code runs.
import cjs from "../dist/index.js";
import "../dist/register.js";

// Not in Node's module-hooks thread (preloads run there too), nor when switched off (LLM_RESILIENCE_DISABLED).
const runtime = globalThis[Symbol.for("llm-resilience.runtime")];
if (!cjs._internal.isLoaderThread() && runtime?.enabled) {
  await cjs._internal.instrumentEsmBuilds();
}
