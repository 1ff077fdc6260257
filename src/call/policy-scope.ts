import { AsyncLocalStorage } from "node:async_hooks";
import type { ResilienceOptions } from "../config.js";
import { type PolicyScope, validatePolicyScope } from "../config.js";

/** A scope's settings merged with the scopes around it (inner wins), frozen. */
type MergedScope = Readonly<PolicyScope>;

const KEY = Symbol.for("llm-resilience.policy-scope");
type Holder = { [KEY]?: AsyncLocalStorage<MergedScope> };
/** One storage per process, shared by every copy of this package. */
const holder = globalThis as Holder;
holder[KEY] ??= new AsyncLocalStorage<MergedScope>();
const storage: AsyncLocalStorage<MergedScope> = holder[KEY];

/**
 * Runs `fn` with these policy settings for every call it makes, directly or through anything it awaits
 * or streams. Nested scopes merge, the inner one winning setting by setting. Throws ConfigError on a bad
 * setting, before `fn` runs.
 */
export function withPolicies<T>(scope: PolicyScope, fn: () => T): T {
  validatePolicyScope(scope);
  const outer = storage.getStore();
  const merged: MergedScope = Object.freeze(outer ? { ...outer, ...definedOnly(scope) } : definedOnly(scope));
  return storage.run(merged, fn);
}

/** The scope the current code runs in, if any. */
export function currentScope(): MergedScope | undefined {
  return storage.getStore();
}

function definedOnly(scope: PolicyScope): PolicyScope {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(scope)) if (v !== undefined) out[k] = v;
  return out as PolicyScope;
}

/** The options whose policy state (breakers, budget, rate limits) a call shares: never a scope's own copy. */
const kStateOwner = Symbol("llm-resilience.state-owner");
type Scoped = ResilienceOptions & { [kStateOwner]?: ResilienceOptions };

export function stateOwner(options: ResilienceOptions): ResilienceOptions {
  return (options as Scoped)[kStateOwner] ?? options;
}

const applied = new WeakMap<MergedScope, WeakMap<ResilienceOptions, ResilienceOptions>>();

/**
 * `options` with the scope's per-call settings laid over them. The result keeps `options` as the owner
 * of the policy state, so a scope changes what a call does, never which breaker or bucket it shares.
 */
export function withScope(options: ResilienceOptions, scope: MergedScope | undefined): ResilienceOptions {
  if (!scope) return options;
  let byOptions = applied.get(scope);
  const hit = byOptions?.get(options);
  if (hit) return hit;
  const out: Scoped = { ...options, [kStateOwner]: stateOwner(options) };
  if (scope.maxAttempts !== undefined) out.maxAttempts = scope.maxAttempts;
  if (scope.baseDelayMs !== undefined) out.baseDelayMs = scope.baseDelayMs;
  if (scope.maxDelayMs !== undefined) out.maxDelayMs = scope.maxDelayMs;
  if (scope.maxRetryAfterMs !== undefined) out.maxRetryAfterMs = scope.maxRetryAfterMs;
  if (scope.deadlineMs !== undefined) out.deadlineMs = scope.deadlineMs === false ? undefined : scope.deadlineMs;
  if (scope.attemptTimeoutMs !== undefined) out.attemptTimeoutMs = scope.attemptTimeoutMs === false ? undefined : scope.attemptTimeoutMs;
  if (scope.fallbacks !== undefined) out.fallbacks = scope.fallbacks === false ? {} : scope.fallbacks;
  if (scope.contextFallbacks !== undefined) out.contextFallbacks = scope.contextFallbacks === false ? {} : scope.contextFallbacks;
  if (scope.breaker === false) out.breaker = false;
  if (scope.retryBudget === false) out.retryBudget = false;
  if (scope.maxRateLimitWaitMs !== undefined) out.maxRateLimitWaitMs = scope.maxRateLimitWaitMs;
  if (scope.spendLimit === false) out.exemptFromSpendLimit = true;
  if (!byOptions) {
    byOptions = new WeakMap();
    applied.set(scope, byOptions);
  }
  byOptions.set(options, out);
  return out;
}
