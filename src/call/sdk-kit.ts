import type { ProviderAdapter } from "../providers/types.js";

/** What a call needs from one loaded SDK build (an SDK's CJS and ESM builds are separate). */
export interface SdkKit {
  adapter: ProviderAdapter;
  /** The error this build throws for a caller abort (its APIUserAbortError). */
  abortError(): Error;
}

/** Carries the call from the resource's `post()` to `makeRequest()` inside the request options. */
export const kCall = Symbol.for("llm-resilience.call");
