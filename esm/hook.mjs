// Module customization hook (`module.register`), registered by `register()` so that an SDK's ESM
// build imported AFTER registering (a dynamic `import("openai")` from a CommonJS app, an ES module
// dependency loaded later, `node --import llm-resilience/register`) is instrumented as it is
// evaluated. It only touches the SDKs' and the AI SDK providers' entry files; everything else passes
// through untouched.
// The appended lines hand the module's own namespace to the main thread's runtime.
const ENTRIES = [
  // The client module too: the Bedrock and Vertex SDKs load `@anthropic-ai/sdk/client` without the main entry.
  [/\/node_modules\/openai\/(?:index|client)\.mjs$/, "openai"],
  [/\/node_modules\/@anthropic-ai\/sdk\/(?:index|client)\.mjs$/, "@anthropic-ai/sdk"],
  [/\/node_modules\/@ai-sdk\/openai\/dist\/index\.m?js$/, "@ai-sdk/openai"],
  [/\/node_modules\/@ai-sdk\/anthropic\/dist\/index\.m?js$/, "@ai-sdk/anthropic"],
  [/\/node_modules\/@ai-sdk\/azure\/dist\/index\.m?js$/, "@ai-sdk/azure"],
];

export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context);
  if (result.format !== "module" || result.source == null || !url.startsWith("file:")) return result;
  const pathname = new URL(url).pathname;
  const hit = ENTRIES.find(([re]) => re.test(pathname));
  if (!hit) return result;
  const source = typeof result.source === "string" ? result.source : new TextDecoder().decode(result.source);
  if (source.includes("__llmResilienceSelf")) return result; // already appended by another copy of this hook
  const self = JSON.stringify(url);
  return {
    ...result,
    source:
      `${source}\n;import * as __llmResilienceSelf from ${self};\n` +
      `globalThis[Symbol.for("llm-resilience.esm-loaded")]?.(${JSON.stringify(hit[1])}, __llmResilienceSelf, ${self});\n`,
  };
}
