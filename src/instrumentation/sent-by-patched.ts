/**
 * Marks the requests a patched client sends (instrumented or passed through), so the request watch
 * (`request-watch.ts`) tells them from those of SDK copies no hook reached. The mark is a symbol key
 * in the request's `fetchOptions`: the SDKs spread those into the `init` they hand to `fetch`, past
 * their middleware, and it never reaches the wire.
 */
export const kSentByPatched = Symbol.for("llm-resilience.sent-by-patched");

/** The SDK request options with the mark added to their `fetchOptions`. */
export function markSent(options: any): any {
  if (!options || typeof options !== "object") return options;
  return { ...options, fetchOptions: { ...options.fetchOptions, [kSentByPatched]: true } };
}

/** The mark on options of our own (one object per call, reused by every attempt): added once, in place. */
export function markSentInPlace(options: any): any {
  if (options && typeof options === "object" && !options.fetchOptions?.[kSentByPatched]) {
    const fetchOptions = { ...options.fetchOptions };
    fetchOptions[kSentByPatched] = true;
    options.fetchOptions = fetchOptions;
  }
  return options;
}
