import { context } from "@opentelemetry/api";
import { InstrumentedCall } from "../call/instrumented-call.js";
import { kCall, type SdkKit } from "../call/sdk-kit.js";
import { getRuntime } from "../runtime.js";
import { reportOnce } from "../telemetry/logger.js";
import { silenceClientTracing } from "./anthropic-tracing.js";
import { retryingBodyTimeout } from "./body-retry.js";
import { ownerOf } from "./owner-of.js";
import { RawResponseWatch, watchAsResponse } from "./raw-response.js";
import { recordingShouldRetry, sdkAttempts } from "./sdk-attempts.js";
import { markSent } from "./sent-by-patched.js";

const PATCHED = Symbol.for("llm-resilience.patched");

/**
 * Patches one SDK build's client class. Two seams, both on the prototype, so clients constructed
 * before registering are covered and already-loaded ESM instances can still be patched:
 * - `post(path, opts)`: every resource call passes here; starts the logical call and observes the
 *   parsed result through `_thenUnwrap` (which keeps the SDK's APIPromise and all its helpers).
 * - `makeRequest(options, retriesRemaining)`: the SDK's attempt + retry loop; ours replaces its
 *   retries by calling the original once per attempt with no retries remaining.
 * Where the SDK has them, also `shouldRetry` (its verdict on a response, recorded for our loop) and
 * openai's `parseResponseWithTimeout` (a JSON body that times out is retried by our loop).
 */
export function patchClientClass(ClientClass: any, kit: SdkKit): "patched" | "already" | "unsupported" {
  const proto = ClientClass?.prototype;
  const postOwner = ownerOf(proto, "post");
  const makeOwner = ownerOf(proto, "makeRequest");
  if (!postOwner || !makeOwner || typeof postOwner.post !== "function" || typeof makeOwner.makeRequest !== "function") {
    return "unsupported";
  }
  if (postOwner[PATCHED] || makeOwner[PATCHED]) return "already";

  const originalPost = postOwner.post;
  const originalMakeRequest = makeOwner.makeRequest;
  const retryOwner = ownerOf(proto, "shouldRetry");
  const originalShouldRetry = typeof retryOwner?.shouldRetry === "function" ? retryOwner.shouldRetry : undefined;
  const parseOwner = ownerOf(proto, "parseResponseWithTimeout");

  const post = function (this: any, path: unknown, opts: unknown) {
    const rt = getRuntime();
    if (!rt?.enabled || rt.excluded.has(this) || typeof path !== "string") return originalPost.call(this, path, opts);
    const op = kit.adapter.operationForPath(path);
    if (!op) return originalPost.call(this, path, opts);
    rt.beforeFirstCall?.();
    if (kit.adapter.sdk === "anthropic") silenceClientTracing(this);
    const parent = context.active();
    let ic: InstrumentedCall | undefined;
    const raw = new RawResponseWatch();
    const start = (o: unknown) => {
      const t = InstrumentedCall.start(rt, this, kit, op, parent, o);
      ic = t?.[kCall];
      if (ic) raw.attach(ic);
      return t;
    };
    let tagged: unknown;
    if (typeof (opts as any)?.then === "function") {
      tagged = Promise.resolve(opts).then(start);
    } else {
      // The resources pass plain options: no promise and no microtask needed to tag them.
      try {
        tagged = start(opts);
      } catch (err) {
        reportOnce("telemetry error starting a call", err);
        tagged = opts;
      }
    }
    const promise = originalPost.call(this, path, tagged);
    try {
      if (watchAsResponse(promise, raw)) raw.hook();
    } catch (err) {
      reportOnce("telemetry error watching asResponse()", err);
    }
    if (typeof promise?._thenUnwrap !== "function") {
      reportOnce("unexpected SDK shape: APIPromise._thenUnwrap missing; responses are not read");
      return promise;
    }
    return promise._thenUnwrap((data: unknown) => {
      try {
        ic?.finish(data);
      } catch (err) {
        reportOnce("telemetry error reading a response", err);
      }
      return data;
    });
  };

  const attempts = sdkAttempts(originalMakeRequest, originalShouldRetry);
  const callOrPass = (client: any, options: any, rest: unknown[]): Promise<unknown> => {
    const ic: InstrumentedCall | undefined = options?.[kCall];
    if (!ic) return originalMakeRequest.call(client, markSent(options), ...rest);
    return ic.run(options, attempts);
  };
  // Not async: the resources pass plain options, and each async layer costs the call a promise and a turn.
  const makeRequest = function (this: any, optionsInput: unknown, ...rest: unknown[]) {
    try {
      if (typeof (optionsInput as any)?.then === "function") return Promise.resolve(optionsInput).then((o) => callOrPass(this, o, rest));
      return callOrPass(this, optionsInput, rest);
    } catch (err) {
      return Promise.reject(err);
    }
  };

  define(postOwner, "post", post, originalPost);
  define(makeOwner, "makeRequest", makeRequest, originalMakeRequest);
  if (originalShouldRetry && !originalShouldRetry.__original) {
    define(retryOwner, "shouldRetry", recordingShouldRetry(originalShouldRetry), originalShouldRetry);
  }
  const originalParse = parseOwner?.parseResponseWithTimeout;
  if (typeof originalParse === "function" && !originalParse.__original) {
    define(parseOwner, "parseResponseWithTimeout", retryingBodyTimeout(originalParse), originalParse);
  }
  postOwner[PATCHED] = true;
  makeOwner[PATCHED] = true;
  return "patched";
}

function define(target: any, name: string, fn: (...args: any[]) => unknown, original: (...args: any[]) => unknown): void {
  Object.defineProperty(fn, "name", { value: original.name || name });
  Object.defineProperty(fn, "__original", { value: original });
  Object.defineProperty(target, name, { value: fn, writable: true, configurable: true, enumerable: false });
}
