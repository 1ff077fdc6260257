import type { ProviderAdapter } from "../providers/types.js";
import type { RequestProps } from "./attempt-loop.js";

/** What a call needs from one loaded SDK build (an SDK's CJS and ESM builds are separate). */
export interface SdkKit {
  adapter: ProviderAdapter;
  /** The error this build throws for a caller abort (its APIUserAbortError). */
  abortError(): Error;
  /** The error this build throws for a connection that failed (its APIConnectionError). */
  connectionError(cause?: unknown): Error;
}

/**
 * One client's own request machinery, used one attempt at a time (built by the client patch). Every
 * attempt of a call passes the same options object: the SDK keeps per-request state on it (Anthropic's
 * once-per-request 401 refresh, a generated idempotency key, openai's streaming-body mark).
 */
export interface SdkAttempts {
  /** The SDK's makeRequest with its own retries off; `first`: the call's first attempt, where the SDK resets that state. */
  send(options: any, first: boolean): Promise<RequestProps>;
  /**
   * Whether the SDK's own loop would send the request again after this failed attempt (its `shouldRetry`
   * verdict for a status, never for a streaming request body); undefined where it decides by the kind of
   * error alone (connection errors, timeouts, aborts).
   */
  wouldRetry(options: any, err: unknown): Promise<boolean | undefined>;
  /** The client's own error for a caller abort, where it builds one from the signal (openai 7.57 on: its reason as `cause`). */
  abortError(signal: AbortSignal): Error | undefined;
}

/** Carries the call from the resource's `post()` to `makeRequest()` inside the request options. */
export const kCall = Symbol.for("llm-resilience.call");
