import type { ClientOverrides, ResilienceOptions } from "../config.js";
import { mergeBreaker } from "../config.js";
import type { Runtime } from "../runtime.js";
import { currentScope } from "./policy-scope.js";

const effective = new WeakMap<object, { base: ResilienceOptions; overrides: ClientOverrides; merged: ResilienceOptions }>();

/** The options a client's calls run with: its `instrument(client, overrides)` merged over the runtime's. */
export function effectiveOptions(rt: Runtime, client: object): ResilienceOptions {
  const o: ClientOverrides | undefined = rt.clientOverrides.get(client);
  if (!o) return rt.options;
  const hit = effective.get(client);
  if (hit && hit.base === rt.options && hit.overrides === o) return hit.merged;
  const merged = { ...rt.options, ...o } as ResilienceOptions;
  merged.breaker = mergeBreaker(rt.options.breaker, o.breaker);
  if (o.retryBudget !== undefined) {
    merged.retryBudget = o.retryBudget === false ? false : ({ ...(rt.options.retryBudget || {}), ...o.retryBudget } as any);
  }
  effective.set(client, { base: rt.options, overrides: o, merged });
  return merged;
}

/**
 * Attempts per model, first match wins: the request's `maxRetries`, the `withPolicies` scope's, the client's override, the
 * client's explicit `maxRetries`, our `maxAttempts` option, the SDK's default `maxRetries` (2).
 */
export function maxAttemptsFor(rt: Runtime, client: any, requestOptions: any, effective: ResilienceOptions): number {
  const perRequest = requestOptions?.maxRetries;
  if (typeof perRequest === "number" && perRequest >= 0) return Math.floor(perRequest) + 1;
  const scoped = currentScope()?.maxAttempts;
  if (scoped !== undefined) return scoped;
  const override = rt.clientOverrides.get(client)?.maxAttempts;
  if (override !== undefined) return override;
  const clientExplicit = client?._options?.maxRetries;
  if (typeof clientExplicit === "number" && clientExplicit >= 0) return Math.floor(clientExplicit) + 1;
  if (effective.maxAttempts !== undefined) return effective.maxAttempts;
  const sdkDefault = client?.maxRetries;
  return (typeof sdkDefault === "number" && sdkDefault >= 0 ? Math.floor(sdkDefault) : 2) + 1;
}

/** The SDK timeout that applies to one attempt: the request's, else the client's. */
export function sdkTimeoutFor(client: any, requestOptions: any): number | undefined {
  if (typeof requestOptions.timeout === "number") return requestOptions.timeout;
  return typeof client.timeout === "number" ? client.timeout : undefined;
}

export function isStreamRequest(options: any): boolean {
  return options?.stream === true || options?.body?.stream === true;
}
