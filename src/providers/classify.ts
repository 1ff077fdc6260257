import type { Failure, ProviderAdapter } from "./types.js";

export type { Failure } from "./types.js";

/** A failure with every flag off: the classifiers spread it and set what applies. */
export const NO_FLAGS = Object.freeze({ timeout: false, aborted: false, outage: false, rateLimited: false, contextOverflow: false });

const TRANSIENT_TYPES = new Set(["overloaded_error", "api_error", "server_error", "rate_limit_error", "timeout_error"]);

function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

export function classify(err: unknown, adapter: ProviderAdapter): Failure {
  if (adapter.classify) return adapter.classify(err);
  const e = err as any;
  const name: string = e?.constructor?.name ?? e?.name ?? "";
  const base = NO_FLAGS;
  if (name === "APIUserAbortError" || e?.name === "AbortError") {
    return { ...base, errorType: "aborted", retryable: false, aborted: true };
  }
  if (name === "BreakerOpenError") return { ...base, errorType: "breaker_open", retryable: false };
  if (name === "DeadlineExceededError") return { ...base, errorType: "timeout", retryable: false, timeout: true };
  if (name === "APIConnectionTimeoutError") {
    return { ...base, errorType: "timeout", retryable: true, timeout: true, outage: true };
  }
  if (name === "APIConnectionError" || isSocketError(e)) {
    return { ...base, errorType: "connection_error", retryable: true, outage: true };
  }

  const status: number | undefined = typeof e?.status === "number" ? e.status : undefined;
  const headers = headerReader(e?.headers);
  const providerType = adapter.providerErrorType(e);
  if (status !== undefined) return httpFailure(status, providerType, headers);
  // An APIError without status: a mid-stream `event: error` carrying the provider's type.
  return providerTypeFailure(providerType);
}

/** An HTTP error answer: retried as the SDKs do (`x-should-retry` first, then the status). */
export function httpFailure(status: number, providerType: string | undefined, headers: Failure["headers"]): Failure {
  const override = headers?.get("x-should-retry");
  const retryable = override === "true" ? true : override === "false" ? false : isRetryableStatus(status);
  return {
    ...NO_FLAGS,
    errorType: providerType ?? String(status),
    retryable,
    status,
    outage: status >= 500 || status === 408,
    rateLimited: status === 429,
    contextOverflow: providerType === "context_length_exceeded",
    headers,
  };
}

/** An error without an HTTP status that carries the provider's error type (a stream's error event), or `_OTHER`. */
export function providerTypeFailure(providerType: string | undefined): Failure {
  if (!providerType) return { ...NO_FLAGS, errorType: "_OTHER", retryable: false };
  return {
    ...NO_FLAGS,
    errorType: providerType,
    retryable: TRANSIENT_TYPES.has(providerType),
    outage: providerType === "overloaded_error" || providerType === "api_error" || providerType === "server_error",
    rateLimited: providerType === "rate_limit_error",
  };
}

/** undici's errors for a connection that failed or broke mid-body (a cut stream is `TypeError: terminated`). */
export function isSocketError(e: any): boolean {
  if (!(e instanceof Error) || typeof (e as any).status === "number") return false;
  const code = e.cause && typeof e.cause === "object" ? (e.cause as any).code : (e as any).code;
  return (
    (e.name === "TypeError" && (e.message === "terminated" || e.message === "fetch failed")) ||
    /^(ECONNRESET|ECONNREFUSED|EPIPE|UND_ERR_SOCKET|UND_ERR_CLOSED)$/.test(String(code ?? ""))
  );
}

/**
 * The error's response headers: a `Headers` in openai >= 5 and the BaseAnthropic builds of @anthropic-ai/sdk, a plain
 * lower-cased record (`Core.Headers`) in openai 4.x and the older @anthropic-ai/sdk 0.x (0.30 checked).
 */
function headerReader(h: unknown): { get(name: string): string | null } | undefined {
  if (!h || typeof h !== "object") return undefined;
  if (typeof (h as any).get === "function") return h as { get(name: string): string | null };
  const rec = h as Record<string, unknown>;
  return {
    get(name: string): string | null {
      const v = rec[name.toLowerCase()] ?? rec[name];
      return v === undefined || v === null ? null : String(v);
    },
  };
}
