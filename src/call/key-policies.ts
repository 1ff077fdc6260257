import type { Attributes } from "@opentelemetry/api";
import type { ResilienceOptions } from "../config.js";
import { type BreakerDecision, CircuitBreaker } from "../policy/breaker.js";
import type { Deadline } from "../policy/deadline.js";
import { RateLimiter, type ServerRateLimit } from "../policy/rate-limiter.js";
import { KeyedRegistry } from "../policy/registry.js";
import { RetryBudget } from "../policy/retry-budget.js";
import type { BreakerTransition, BreakerView, StateStore, StoreKind } from "../policy/store.js";
import type { Failure } from "../providers/classify.js";
import { guard } from "../telemetry/call-recorder.js";
import { BREAKER_STATE_VALUE, breakerGauge, getInstruments } from "../telemetry/instruments.js";
import { log } from "../telemetry/logger.js";
import { ATTR } from "../telemetry/semconv.js";
import { stateOwner } from "./policy-scope.js";

/** `transition`: the state change this admission itself caused (open → half_open), for the call's span. */
export type Admission =
  | { allowed: true; probe: boolean; store: StoreKind; transition?: BreakerTransition }
  | { allowed: false; retryAt: number; store: StoreKind; transition?: BreakerTransition };

type MaybePromise<T> = T | Promise<T>;

/**
 * The policies of one breaker key (provider + server + model) as the attempt loop sees them: breaker,
 * retry budget and rate limiter, each optional, with their metrics and logs. Results are plain values
 * for the in-process store and may be Promises for a shared one; the loop awaits them. A breaker
 * transition a call caused comes back in that call's admission or outcome result: the loop puts it
 * on the call's span. Every transition this process sees (also the fleet's, learnt via pub/sub) is
 * a metric and a log line here.
 */
export class KeyPolicies {
  private readonly breaker: CircuitBreaker<any> | undefined;
  private readonly budget: RetryBudget<any> | undefined;
  private readonly limiter: RateLimiter<any> | undefined;
  private readonly countRateLimits: boolean;
  /** A server-sent reset beyond this is ignored, as a retry-after beyond it would be. */
  private readonly maxResetMs: number;
  private readonly labels: Attributes;

  constructor(
    readonly key: string,
    options: ResilienceOptions,
    store: StateStore<any>,
  ) {
    const { provider, model } = parseBreakerKey(key);
    this.labels = { [ATTR.BREAKER_KEY]: key, [ATTR.PROVIDER]: provider, ...(model !== undefined && { [ATTR.REQUEST_MODEL]: model }) };
    const b = options.breaker;
    this.countRateLimits = b ? b.countRateLimits : false;
    this.maxResetMs = options.maxRetryAfterMs;
    if (b) {
      this.breaker = new CircuitBreaker<any>(key, {
        consecutiveFailures: b.failures,
        failureRatio: b.failureRatio,
        windowMs: b.windowMs,
        minimumCalls: b.minimumCalls,
        cooldownMs: b.cooldownMs,
        halfOpenProbes: b.halfOpenProbes,
        store,
        onTransition: (from, to, _key, storeKind) => this.observed({ from, to, store: storeKind }),
      });
      breakerGauge.set(key, { value: 0, attributes: this.labels });
    }
    if (options.retryBudget) {
      this.budget = new RetryBudget<any>(key, { ...options.retryBudget, store });
    }
    if (options.rpm !== undefined || options.tpm !== undefined) {
      this.limiter = new RateLimiter<any>(key, { requestsPerMinute: options.rpm, tokensPerMinute: options.tpm, store });
    }
  }

  private views: Map<string, KeyPolicies> | undefined;

  /**
   * These policies without the breaker and/or the retry budget, for the calls of a `withPolicies`
   * scope that turned them off: such a call neither asks nor tells them. The view shares everything
   * else (the rate limiter, the key) through its prototype.
   */
  without(breaker: boolean, budget: boolean): KeyPolicies {
    if (!breaker && !budget) return this;
    const id = `${breaker}|${budget}`;
    this.views ??= new Map();
    let view = this.views.get(id);
    if (!view) {
      view = Object.create(this) as KeyPolicies;
      if (breaker) Object.defineProperty(view, "breaker", { value: undefined });
      if (budget) Object.defineProperty(view, "budget", { value: undefined });
      this.views.set(id, view);
    }
    return view;
  }

  /** The breaker's state for a health check; undefined when these policies have no breaker. */
  breakerView(): BreakerView | undefined {
    return this.breaker?.view();
  }

  /** Only closed breakers may be forgotten: evicting an open one would forget an outage. */
  evictable(): boolean {
    return !this.breaker || this.breaker.state === "closed";
  }

  private observed({ from, to, store }: BreakerTransition): void {
    guard("breaker transition", () => {
      breakerGauge.set(this.key, { value: BREAKER_STATE_VALUE[to], attributes: this.labels });
      getInstruments().breakerTransitions.add(1, { ...this.labels, [ATTR.BREAKER_FROM]: from, [ATTR.BREAKER_TO]: to, [ATTR.BREAKER_STORE]: store });
      log().warn({ "breaker.key": this.key, from, to, store }, "llm circuit breaker transition");
    });
  }

  acquire(): MaybePromise<Admission> {
    if (!this.breaker) return ADMIT;
    const d = this.breaker.tryAcquire();
    return isThenable(d) ? d.then(toAdmission) : toAdmission(d);
  }

  /** True while the breaker rejects calls (a retry now would only be rejected). */
  breakerOpen(): boolean {
    return this.breaker?.state === "open";
  }

  rejected(attrs: Attributes): void {
    guard("breaker rejection", () => getInstruments().breakerRejections.add(1, { ...attrs, [ATTR.BREAKER_KEY]: this.key }));
  }

  /**
   * The attempt succeeded; `retryCost` is what its retry took from the budget (0 if none). Resolves
   * with the transition it caused (a probe closing the breaker), if any.
   */
  success(probe: boolean, retryCost: number): MaybePromise<BreakerTransition | undefined> {
    if (this.budget) swallow(this.budget.onSuccess(retryCost));
    return this.breaker ? settled(this.breaker.onSuccess(probe)) : undefined;
  }

  /** Resolves with the transition the failure caused (the breaker opening), if any. */
  failure(probe: boolean, f: Failure): MaybePromise<BreakerTransition | undefined> {
    if (!this.breaker) return undefined;
    const counted = f.outage || (f.rateLimited && this.countRateLimits);
    return settled(this.breaker.onFailure(probe, counted));
  }

  /** The attempt ended without a verdict (aborted, or stopped by another policy before sending). */
  release(probe: boolean): void {
    if (this.breaker) swallow(this.breaker.onRelease(probe));
  }

  /** Budget for one retry: its cost, or undefined when the budget is spent. */
  acquireRetry(timeout: boolean): MaybePromise<number | undefined> {
    if (!this.budget) return 0;
    const d = this.budget.tryAcquire(timeout ? "timeout" : "normal");
    const cost = (r: { ok: boolean; cost?: number }) => (r.ok ? (r.cost ?? 0) : undefined);
    return isThenable(d) ? d.then(cost) : cost(d);
  }

  /** Reserves the call's request and tokens; `granted: false` when the deadline does not allow the wait (nothing reserved). */
  reserveRate(estimatedTokens: number, deadline: Pick<Deadline, "allows">): MaybePromise<{ waitMs: number; kind?: string; granted: boolean }> {
    if (!this.limiter?.enabled) return NO_WAIT;
    return this.limiter.reserve(estimatedTokens, deadline);
  }

  /** Gives a reservation back: the call gave up while waiting for it. */
  cancelRate(estimatedTokens: number): void {
    if (this.limiter?.enabled) swallow(this.limiter.cancel(estimatedTokens));
  }

  correctRate(estimated: number, actual: number): void {
    if (this.limiter?.enabled) swallow(this.limiter.correct(estimated, actual));
  }

  applyRateHeaders(headers: { get(n: string): string | null }): void {
    if (!this.limiter?.enabled) return;
    const parsed = parseRateLimitHeaders(headers, Date.now());
    if (!parsed) return;
    if ((parsed.resetRequestsMs ?? 0) > this.maxResetMs) parsed.resetRequestsMs = undefined;
    if ((parsed.resetTokensMs ?? 0) > this.maxResetMs) parsed.resetTokensMs = undefined;
    swallow(this.limiter.applyServerHeaders(parsed));
  }
}

const ADMIT: Admission = Object.freeze({ allowed: true, probe: false, store: "local" }) as Admission;
const NO_WAIT = Object.freeze({ waitMs: 0, granted: true });

function toAdmission(d: BreakerDecision): Admission {
  if (d.allowed) return d;
  const rejected: Admission = { allowed: false, retryAt: d.retryAtMs, store: d.store };
  return d.transition === undefined ? rejected : { ...rejected, transition: d.transition };
}

/** A shared store's outcome result, never rejecting into the caller. */
function settled(v: BreakerTransition | undefined | Promise<BreakerTransition | undefined>): MaybePromise<BreakerTransition | undefined> {
  return isThenable(v) ? v.catch(() => undefined) : v;
}

function isThenable<T>(v: T | PromiseLike<T>): v is Promise<T> {
  return typeof (v as any)?.then === "function";
}

/** A shared store's bookkeeping must not reject into the caller. */
function swallow(v: unknown): void {
  if (isThenable(v)) (v as Promise<unknown>).catch(() => {});
}

/** "1s", "6m0s", "20ms", "1h2m3.5s" → ms. */
function parseDuration(raw: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let matched = "";
  for (const m of raw.matchAll(re)) {
    const n = Number(m[1]);
    total += m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : m[2] === "m" ? n * 60_000 : n * 3_600_000;
    matched += m[0];
  }
  return matched.length > 0 && matched === raw.trim() ? total : undefined;
}

function intHeader(headers: { get(n: string): string | null }, name: string): number | undefined {
  const v = headers.get(name);
  return v !== null && /^\d+$/.test(v.trim()) ? Number(v) : undefined;
}

function resetHeader(headers: { get(n: string): string | null }, name: string, now: number): number | undefined {
  const v = headers.get(name);
  if (v === null || v.trim() === "") return undefined;
  const d = parseDuration(v);
  if (d !== undefined) return d;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** OpenAI's x-ratelimit-* and Anthropic's anthropic-ratelimit-* headers, when present. */
export function parseRateLimitHeaders(headers: { get(n: string): string | null }, now: number): ServerRateLimit | undefined {
  const out: ServerRateLimit = {
    remainingRequests: intHeader(headers, "x-ratelimit-remaining-requests") ?? intHeader(headers, "anthropic-ratelimit-requests-remaining"),
    remainingTokens: intHeader(headers, "x-ratelimit-remaining-tokens") ?? intHeader(headers, "anthropic-ratelimit-tokens-remaining"),
    resetRequestsMs: resetHeader(headers, "x-ratelimit-reset-requests", now) ?? resetHeader(headers, "anthropic-ratelimit-requests-reset", now),
    resetTokensMs: resetHeader(headers, "x-ratelimit-reset-tokens", now) ?? resetHeader(headers, "anthropic-ratelimit-tokens-reset", now),
  };
  return Object.values(out).some((v) => v !== undefined) ? out : undefined;
}

/** provider | server address:port | model — the breaker key of the contract. */
export function breakerKey(provider: string, address: string | undefined, port: number | undefined, model: string | undefined): string {
  return `${provider}|${address ?? ""}:${port ?? ""}|${model ?? ""}`;
}

function parseBreakerKey(key: string): { provider: string; model: string | undefined } {
  const [provider = "", , ...rest] = key.split("|");
  const model = rest.join("|");
  return { provider, model: model === "" ? undefined : model };
}

const registries = new WeakMap<ResilienceOptions, { store: StateStore<any>; registry: KeyedRegistry<KeyPolicies> }>();
/** Every registry, for health checks (one per options object: register's, each client override's); gone with its options. */
const inUse = new Set<WeakRef<KeyedRegistry<KeyPolicies>>>();

/** The policies of every key this process has called, under every options object still in use. */
export function* knownPolicies(): IterableIterator<KeyPolicies> {
  for (const ref of inUse) {
    const registry = ref.deref();
    if (!registry) inUse.delete(ref);
    else for (const [, policies] of registry.entries()) yield policies;
  }
}

/**
 * The policies a call runs under: those of its options' owner (a `withPolicies` scope never has state
 * of its own), less what the scope turned off for its calls.
 */
export function policiesForCall(key: string, options: ResilienceOptions, store: StateStore<any>): KeyPolicies {
  const owner = stateOwner(options);
  const policies = policiesFor(key, owner, store);
  if (owner === options) return policies;
  return policies.without(options.breaker === false && owner.breaker !== false, options.retryBudget === false && owner.retryBudget !== false);
}

/** The policies of `key` under these options, keeping their state in `store` (one bounded LRU registry per options object). */
function policiesFor(key: string, options: ResilienceOptions, store: StateStore<any>): KeyPolicies {
  let r = registries.get(options);
  if (!r || r.store !== store) {
    r = { store, registry: new KeyedRegistry((k) => new KeyPolicies(k, options, store), { evictable: (p) => p.evictable() }) };
    registries.set(options, r);
    inUse.add(new WeakRef(r.registry));
  }
  return r.registry.get(key);
}
