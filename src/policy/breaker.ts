import { type Clock, systemClock } from "./clock.js";
import { localStore } from "./local-store.js";
import type {
  BreakerCell,
  BreakerDecision,
  BreakerSettings,
  BreakerState,
  BreakerTransition,
  BreakerView,
  StateStore,
  StoreKind,
  StoreMode,
  StoreResult,
} from "./store.js";

export type { BreakerDecision, BreakerState, BreakerTransition } from "./store.js";

/** Reports each state change; `store` is the contract's `llm_resilience.breaker.store`. */
type BreakerTransitionListener = (from: BreakerState, to: BreakerState, key: string, store: StoreKind) => void;

export interface CircuitBreakerOptions<M extends StoreMode = "sync"> {
  /** Open after this many consecutive counted failures (default 5). */
  consecutiveFailures?: number;
  /** Also open when failures / calls over the window reach this ratio, in (0, 1]; off when undefined. */
  failureRatio?: number;
  /** Sliding window for the ratio (default 60 s). */
  windowMs?: number;
  /** Buckets the window is kept in (default 10: 6 s each for 60 s). */
  windowBuckets?: number;
  /** Calls needed in the window before the ratio can open the breaker (default 20). */
  minimumCalls?: number;
  /** How long the breaker stays open before probing (default 30 s). */
  cooldownMs?: number;
  /** Concurrent probes admitted while half-open, and successes needed to close (default 1). */
  halfOpenProbes?: number;
  clock?: Clock;
  /** Where the state lives (default: the in-process `localStore`). */
  store?: StateStore<M>;
  onTransition?: BreakerTransitionListener;
}

export const DEFAULT_BREAKER_SETTINGS: BreakerSettings = Object.freeze({
  consecutiveFailures: 5,
  failureRatio: undefined,
  windowMs: 60_000,
  windowBuckets: 10,
  minimumCalls: 20,
  cooldownMs: 30_000,
  halfOpenProbes: 1,
});

/** Fills defaults and rejects values the state machine cannot run with (RangeError naming the option). */
function resolveBreakerSettings(o: CircuitBreakerOptions<StoreMode> = {}): BreakerSettings {
  const d = DEFAULT_BREAKER_SETTINGS;
  const s: BreakerSettings = {
    consecutiveFailures: o.consecutiveFailures ?? d.consecutiveFailures,
    failureRatio: o.failureRatio,
    windowMs: o.windowMs ?? d.windowMs,
    windowBuckets: o.windowBuckets ?? d.windowBuckets,
    minimumCalls: o.minimumCalls ?? d.minimumCalls,
    cooldownMs: o.cooldownMs ?? d.cooldownMs,
    halfOpenProbes: o.halfOpenProbes ?? d.halfOpenProbes,
  };
  const int = (name: keyof BreakerSettings, min: number): void => {
    const v = s[name];
    if (!Number.isInteger(v) || (v as number) < min) throw new RangeError(`breaker ${name} must be an integer >= ${min}, got ${v}`);
  };
  int("consecutiveFailures", 1);
  int("windowBuckets", 1);
  int("minimumCalls", 1);
  int("halfOpenProbes", 1);
  if (!(s.windowMs > 0) || !Number.isFinite(s.windowMs)) throw new RangeError(`breaker windowMs must be > 0, got ${s.windowMs}`);
  if (!(s.cooldownMs >= 0) || !Number.isFinite(s.cooldownMs)) throw new RangeError(`breaker cooldownMs must be >= 0, got ${s.cooldownMs}`);
  if (s.failureRatio !== undefined && !(s.failureRatio > 0 && s.failureRatio <= 1)) {
    throw new RangeError(`breaker failureRatio must be in (0, 1], got ${s.failureRatio}`);
  }
  return s;
}

/**
 * A circuit breaker for one key. Usage per attempt: `tryAcquire()`; if allowed, exactly one of
 * `onSuccess(probe)`, `onFailure(probe, counted)` or `onRelease(probe)` when the attempt ends.
 *
 * Uncounted failures (`counted = false`, e.g. a 400 or 401) are neutral: they neither count as a
 * failure nor reset the consecutive count nor enter the ratio window (as in cockatiel). A client
 * error says something about the request, not about the service's health; treating it as a success
 * would let a trickle of bad requests hide a failing backend (5 × 503 with a 400 in between would
 * never open), and counting it as a call would dilute the failure ratio. An uncounted probe outcome
 * frees its slot without a verdict, so the next caller probes instead.
 *
 * With an async store the methods may return Promises: see store.ts for the calling convention.
 */
export class CircuitBreaker<M extends StoreMode = "sync"> {
  readonly store: StoreKind;
  private readonly cell: BreakerCell<M>;
  private readonly clock: Clock;

  constructor(
    readonly key: string,
    options: CircuitBreakerOptions<M> = {},
  ) {
    const store = (options.store ?? localStore) as StateStore<M>;
    this.store = store.kind;
    this.clock = options.clock ?? systemClock;
    const listener = options.onTransition;
    this.cell = store.breaker(key, resolveBreakerSettings(options), (t) => {
      // Telemetry must never break the call path: a throwing listener is ignored.
      if (listener) {
        try {
          listener(t.from, t.to, key, t.store);
        } catch {
          /* ignored */
        }
      }
    });
  }

  /** Last known state (the open → half_open move happens on the first acquire after the cooldown). */
  get state(): BreakerState {
    return this.cell.state;
  }

  /** The state for a health check, as this process knows it now. */
  view(): BreakerView {
    return this.cell.view(this.clock.now());
  }

  tryAcquire(): StoreResult<M, BreakerDecision> {
    return this.cell.acquire(this.clock.now());
  }

  /** Resolves with the transition this success caused (a probe closing the breaker), if any. */
  onSuccess(probe: boolean): StoreResult<M, BreakerTransition | undefined> {
    return this.cell.record(this.clock.now(), "success", probe);
  }

  /**
   * Resolves with the transition this failure caused (the breaker opening), if any. `counted = false`
   * for failures that say nothing about the service (see the class comment).
   */
  onFailure(probe: boolean, counted = true): StoreResult<M, BreakerTransition | undefined> {
    return this.cell.record(this.clock.now(), counted ? "failure" : "neutral", probe);
  }

  /** The attempt ended without an outcome (caller aborted, deadline): frees a probe slot. */
  onRelease(probe: boolean): StoreResult<M, BreakerTransition | undefined> {
    if (!probe) return undefined as StoreResult<M, undefined>;
    return this.cell.record(this.clock.now(), "neutral", true);
  }
}
