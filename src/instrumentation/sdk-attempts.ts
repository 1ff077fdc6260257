import type { RequestProps } from "../call/attempt-loop.js";
import type { SdkAttempts } from "../call/sdk-kit.js";
import { handOver } from "./body-retry.js";
import { markSentInPlace } from "./sent-by-patched.js";

type MakeRequest = (options: any, retriesRemaining: number | null, retryOf: undefined) => Promise<RequestProps>;
type ShouldRetry = (response: unknown, options?: unknown) => boolean | Promise<boolean>;

/** On the options of an instrumented attempt: the verdict of the SDK's `shouldRetry` on its response. */
const kVerdict = Symbol("llm-resilience.sdk-verdict");

/**
 * An SDK build's own request machinery, built once per patched client class. Each attempt is the
 * client's makeRequest with no retries remaining and `maxRetries` set by the call loop to the attempt's
 * retry index, so the SDK itself numbers the attempt (X-Stainless-Retry-Count) and keeps its per-request
 * state on the options.
 */
export function sdkAttempts(makeRequest: MakeRequest, shouldRetry: ShouldRetry | undefined): SdkAttempts {
  return {
    send(client, options, first) {
      options[kVerdict] = undefined;
      // A top-level request (null) resets the SDK's per-request state; later attempts keep it.
      return makeRequest.call(client, markSentInPlace(options), first ? null : 0, undefined);
    },
    async wouldRetry(client, options, err) {
      if (sendsStreamingBody(client, options)) return false;
      const status = (err as { status?: unknown } | null)?.status;
      if (typeof status !== "number") return undefined;
      const recorded = options[kVerdict];
      if (typeof recorded === "boolean") return recorded;
      // Not asked during the attempt (older SDKs ask only while retries remain): ask now, with what the
      // error kept of the response. Those builds' shouldRetry reads the status and headers only.
      if (typeof shouldRetry !== "function") return undefined;
      try {
        const verdict = await shouldRetry.call(client, { status, ok: false, headers: headersOf((err as { headers?: unknown }).headers) });
        return typeof verdict === "boolean" ? verdict : undefined;
      } catch {
        return undefined;
      }
    },
    abortError(client, signal) {
      const make = (client as { _makeUserAbortError?: unknown })._makeUserAbortError;
      try {
        return typeof make === "function" ? make.call(client, signal) : undefined;
      } catch {
        return undefined;
      }
    },
    handOver,
  };
}

/**
 * `shouldRetry` recording its verdict on the options of an instrumented attempt. The Anthropic SDK
 * (0.137 on) asks it on every response and acts on it: a 401 from a request that used a token provider
 * invalidates the token and says retry, once per request (a flag it keeps on those options).
 */
export function recordingShouldRetry(original: ShouldRetry): ShouldRetry {
  return function (this: unknown, response: unknown, options?: any, ...rest: unknown[]) {
    const verdict = (original as (...a: unknown[]) => boolean | Promise<boolean>).call(this, response, options, ...rest);
    if (!options || typeof options !== "object" || !(kVerdict in options)) return verdict;
    if (typeof (verdict as Promise<boolean>)?.then === "function") {
      return (verdict as Promise<boolean>).then((v) => {
        options[kVerdict] = v;
        return v;
      });
    }
    options[kVerdict] = verdict;
    return verdict;
  };
}

/** What the SDK itself never retries: openai (6.49 on) marks the options while building the request, anthropic (0.137 on) asks isStreamBody. */
function sendsStreamingBody(client: any, options: any): boolean {
  if (options?.__metadata?.hasStreamingBody === true) return true;
  return typeof client?.isStreamBody === "function" && options?.body != null && client.isStreamBody(options.body) === true;
}

function headersOf(h: unknown): { get(name: string): string | null } {
  if (h && typeof (h as { get?: unknown }).get === "function") return h as { get(name: string): string | null };
  const out = new Headers();
  if (h && typeof h === "object") {
    for (const [k, v] of Object.entries(h)) if (typeof v === "string") out.set(k, v);
  }
  return out;
}
