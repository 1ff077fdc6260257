// Side-effect entry: `require("llm-resilience/register")`, `node -r llm-resilience/register`.
// (`import` / `node --import` load esm/register.mjs, which also patches the SDKs' ESM builds.)
import { register } from "./index.js";

register();
