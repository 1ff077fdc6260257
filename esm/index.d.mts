// Types of the ESM entry (esm/index.mjs): the CommonJS build's declarations, as an ES module.
import * as llmResilience from "../dist/index.js";

export * from "../dist/index.js";
export default llmResilience;
