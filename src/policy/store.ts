/**
 * The state-store seam. The breaker, the retry budget and the rate limiter keep their state in
 * "cells" handed out by a `StateStore`, so that a shared store (fleet/, Redis) can share that state
 * across a fleet. The default `LocalStore` (local-store.ts) keeps it in process memory and is fully
 * synchronous.
 *
 * Calling convention (read this before using a policy):
 * - Every cell method returns `StoreResult<M, T>`: plain `T` for a sync store (`LocalStore`, M =
 *   "sync"), `T | Promise<T>` for an async one (M = "async"). The policies pass this through.
 * - Callers **await only when a Promise is returned** (`isPromiseLike(r) ? await r : r`). With the
 *   LocalStore the types are plain `T` and nothing ever yields to the microtask queue, so the local
 *   hot path pays nothing for the seam: one method call on an object the caller already holds.
 * - Cells are per key and held by their policy object (the registries bound the key count), so the
 *   hot path does no map lookup in the store.
 *
 * Why the cells work at the level of policy events ("acquire", "record an outcome", "reserve
 * tokens") and not as a generic get/set KV: a shared breaker or bucket is only correct if each
 * event is applied atomically where the state lives. A Redis store implements each method as one
 * Lua script (EVALSHA), one round trip, no read-modify-write races:
 * - breaker: a hash per key `{state, openUntil, consecutive, probeSuccesses}`; the sliding window as
 *   one hash per time bucket (`HINCRBY`, `PEXPIRE windowMs + bucketMs`) — the same buckets as local;
 *   half-open probes as tokens in a sorted set scored by expiry (a crashed process's probe frees
 *   itself after its TTL); the open state carries `openUntil`, so the whole fleet shares the cooldown.
 * - buckets: `{level, updatedAt, notBefore}` refilled inside the script with the server's time.
 * A remote cell keeps the last state it saw so that the synchronous `state` getter still answers.
 * Each decision says which store made it (`store: "local" | "redis"`), for telemetry.
 */

/** Which store decided; the contract's `llm_resilience.breaker.store` values. */
export type StoreKind = "local" | "redis";
export type StoreMode = "sync" | "async";
/** A cell method's return: plain for a sync store, possibly a Promise for an async one. */
export type StoreResult<M extends StoreMode, T> = M extends "sync" ? T : T | Promise<T>;

export type BreakerState = "closed" | "open" | "half_open";

/** A state change, and which store decided it. */
export interface BreakerTransition {
  readonly from: BreakerState;
  readonly to: BreakerState;
  readonly store: StoreKind;
}

/**
 * An admission. `transition` is present when this acquire itself changed the state (open → half_open
 * once the cooldown is over): the caller records it on the call that caused it.
 */
export type BreakerDecision =
  | { readonly allowed: true; readonly probe: boolean; readonly store: StoreKind; readonly transition?: BreakerTransition }
  | {
      readonly allowed: false;
      /** Epoch ms worth trying again: the end of the cooldown (open) or a conservative hint (half_open, probes busy). */
      readonly retryAtMs: number;
      readonly state: "open" | "half_open";
      readonly store: StoreKind;
      readonly transition?: BreakerTransition;
    };

/** `neutral`: the attempt ended without a verdict on the service's health (uncounted failure, abort). */
export type BreakerOutcome = "success" | "failure" | "neutral";

/** Resolved breaker settings a cell runs with (see breaker.ts for the defaults and meaning). */
export interface BreakerSettings {
  readonly consecutiveFailures: number;
  readonly failureRatio: number | undefined;
  readonly windowMs: number;
  readonly windowBuckets: number;
  readonly minimumCalls: number;
  readonly cooldownMs: number;
  readonly halfOpenProbes: number;
}

/**
 * Called by a cell for every transition it sees: the ones this process caused and, for a shared
 * store, the ones it learnt from the fleet (for metrics and logs; the caused ones also come back
 * to their caller in the decision or the outcome's result).
 */
export type CellTransitionListener = (transition: BreakerTransition) => void;

/** One breaker key's state. Contract: every allowed `acquire` is followed by exactly one `record`. */
/** What a health check sees of one breaker, as this process knows it now. */
export interface BreakerView {
  readonly state: BreakerState;
  /** End of the cooldown (epoch ms, this process's clock) while open; undefined otherwise. */
  readonly openUntil: number | undefined;
  /** Counted failures in a row while closed. */
  readonly consecutiveFailures: number;
  /** Calls and failures in the ratio window, when the ratio is on. */
  readonly window: { readonly calls: number; readonly failures: number } | undefined;
  /** Which store's state this is (`local` also for a Redis breaker deciding locally while Redis is unusable). */
  readonly store: StoreKind;
}

export interface BreakerCell<M extends StoreMode> {
  /** Last known state; synchronous for every store. open → half_open happens on the next acquire. */
  readonly state: BreakerState;
  /** The state for a health check: synchronous, from what this process knows. */
  view(now: number): BreakerView;
  acquire(now: number): StoreResult<M, BreakerDecision>;
  /** Resolves with the transition this outcome caused, if any. */
  record(now: number, outcome: BreakerOutcome, probe: boolean): StoreResult<M, BreakerTransition | undefined>;
}

export interface BucketSettings {
  /** Maximum level; the bucket starts full. */
  readonly capacity: number;
  /** Continuous refill in units per ms; 0 for a bucket refilled only by `add` (the retry budget). */
  readonly refillPerMs: number;
}

/** One token bucket. */
export interface BucketCell<M extends StoreMode> {
  /** Takes `amount` only if the level covers it; returns whether it did. */
  tryTake(now: number, amount: number): StoreResult<M, boolean>;
  /**
   * Always takes `amount` (the level may go negative: later callers queue behind this one) and
   * returns the ms until the level is back to >= 0 and any server-imposed block has passed.
   */
  reserve(now: number, amount: number): StoreResult<M, number>;
  /** Adds `amount` (negative debits), capped at capacity. */
  add(now: number, amount: number): StoreResult<M, void>;
  /** Lowers the level to at most `maxLevel` and blocks reservations until `notBeforeMs`; never loosens. */
  tighten(now: number, maxLevel: number, notBeforeMs?: number): StoreResult<M, void>;
  level(now: number): StoreResult<M, number>;
}

export interface StateStore<M extends StoreMode = StoreMode> {
  readonly kind: StoreKind;
  /** A breaker cell for `key`. For a shared store, equal keys share state across processes. */
  breaker(key: string, settings: BreakerSettings, onTransition: CellTransitionListener): BreakerCell<M>;
  /** A token bucket for `key` (callers namespace keys, e.g. `budget:` / `rpm:` / `tpm:`). */
  bucket(key: string, settings: BucketSettings): BucketCell<M>;
}

/** True for a Promise or any thenable (a remote store may use its client's promise type). */
export function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === "function";
}

/** Applies `f` now for a plain value, or after resolution for a Promise; keeps sync results sync. */
export function mapResult<M extends StoreMode, T, U>(value: StoreResult<M, T>, f: (v: T) => U): StoreResult<M, U> {
  const v = value as T | PromiseLike<T>;
  return (isPromiseLike(v) ? Promise.resolve(v).then(f) : f(v)) as StoreResult<M, U>;
}
