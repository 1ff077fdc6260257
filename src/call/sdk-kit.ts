import type { ProviderAdapter } from "../providers/types.js";
import type { RequestProps } from "./attempt-loop.js";
import type { BodyOwner } from "./body-owner.js";

/** What a call needs from one loaded SDK build (an SDK's CJS and ESM builds are separate). */
export interface SdkKit {
  adapter: ProviderAdapter;
  /** The error this build throws for a caller abort (its APIUserAbortError). */
  abortError(): Error;
  /** The error this build throws for a connection that failed (its APIConnectionError). */
  connectionError(cause?: unknown): Error;
}

/**
 * An SDK build's own request machinery, used one attempt at a time (built once by the client patch).
 * Every attempt of a call passes the same options object: the SDK keeps per-request state on it
 * (Anthropic's once-per-request 401 refresh, a generated idempotency key, openai's streaming-body mark).
 */
export interface SdkAttempts {
  /** The client's makeRequest with its own retries off; `first`: the call's first attempt, where the SDK resets that state. */
  send(client: unknown, options: any, first: boolean): Promise<RequestProps>;
  /**
   * Whether the SDK's own loop would send the request again after this failed attempt (its `shouldRetry`
   * verdict for a status, never for a streaming request body); undefined where it decides by the kind of
   * error alone (connection errors, timeouts, aborts).
   */
  wouldRetry(client: unknown, options: any, err: unknown): Promise<boolean | undefined>;
  /** The client's own error for a caller abort, where it builds one from the signal (openai 7.57 on: its reason as `cause`). */
  abortError(client: unknown, signal: AbortSignal): Error | undefined;
  /** The call's last attempt is done: its props go to the SDK's parser (the SDK's seams that re-read or resend a body learn the call). */
  handOver(call: BodyRetryCall, props: RequestProps): void;
}

/** What the SDK-side seams need of the call whose props they hold. */
export interface BodyRetryCall {
  /** The last response's body observer: it owns the response, and knows why its last read failed. */
  readonly responseBody: (BodyOwner & { readonly failedRead: unknown }) | undefined;
  retryBody(err: unknown): Promise<{ props: RequestProps } | { error: unknown }>;
  connectionError(cause?: unknown): Error;
}

/** Carries the call from the resource's `post()` to `makeRequest()` inside the request options. */
export const kCall = Symbol.for("llm-resilience.call");
