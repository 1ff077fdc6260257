import { type Clock, systemClock } from "./clock.js";
import { localSpendStore } from "./local-spend-cell.js";
import type { SpendCell, SpendDecision, SpendSettings, SpendStore } from "./spend-cell.js";
import type { StoreKind, StoreMode, StoreResult } from "./store.js";

export const DEFAULT_SPEND_WINDOW_MS = 3_600_000;
/** The window slides in steps of windowMs / buckets (1 minute for the default hour). */
const DEFAULT_SPEND_BUCKETS = 60;
/** A hold whose call never ended (a crashed process, a stream never read) frees itself after this. */
const DEFAULT_SPEND_HOLD_TTL_MS = 900_000;

export interface SpendLimitOptions<M extends StoreMode = "sync"> {
  limitUsd: number;
  /** Default 1 hour. */
  windowMs?: number;
  /** Default 60. */
  buckets?: number;
  holdTtlMs?: number;
  clock?: Clock;
  store?: SpendStore<M>;
}

/**
 * A spend limit over a sliding window. Before a request leaves, the call reserves its worst-case
 * cost; a call that would take settled spend plus the holds of calls in flight past the limit is
 * refused before it sends anything. When the call ends its hold is replaced by what it cost, so
 * concurrent calls cannot overshoot together: spend stays within the limit as long as no call costs
 * more than it reserved. The window is kept in `buckets` steps; the oldest step leaves whole.
 */
export class SpendLimit<M extends StoreMode = "sync"> {
  readonly limitUsd: number;
  readonly windowMs: number;
  readonly store: StoreKind;
  private readonly cell: SpendCell<M>;
  private readonly clock: Clock;

  constructor(key: string, options: SpendLimitOptions<M>) {
    const s: SpendSettings = {
      limitUsd: options.limitUsd,
      windowMs: options.windowMs ?? DEFAULT_SPEND_WINDOW_MS,
      buckets: options.buckets ?? DEFAULT_SPEND_BUCKETS,
      holdTtlMs: options.holdTtlMs ?? DEFAULT_SPEND_HOLD_TTL_MS,
    };
    if (!(s.limitUsd > 0) || !Number.isFinite(s.limitUsd))
      throw new RangeError(`spend limit limitUsd must be a finite number > 0, got ${s.limitUsd}`);
    if (!(s.windowMs > 0) || !Number.isFinite(s.windowMs))
      throw new RangeError(`spend limit windowMs must be a finite number > 0, got ${s.windowMs}`);
    if (!Number.isInteger(s.buckets) || s.buckets < 1) throw new RangeError(`spend limit buckets must be an integer >= 1, got ${s.buckets}`);
    if (!(s.holdTtlMs > 0)) throw new RangeError(`spend limit holdTtlMs must be > 0, got ${s.holdTtlMs}`);
    this.limitUsd = s.limitUsd;
    this.windowMs = s.windowMs;
    const store = (options.store ?? localSpendStore) as SpendStore<M>;
    this.store = store.kind;
    this.clock = options.clock ?? systemClock;
    this.cell = store.spend(`spend:${key}`, s);
  }

  /** Holds `usd` for a call (adds to `hold` when the call already has one), or refuses it. */
  reserve(usd: number, hold?: string): StoreResult<M, SpendDecision> {
    return this.cell.reserve(this.clock.now(), usd > 0 && Number.isFinite(usd) ? usd : 0, hold);
  }

  /** The call ended: its hold becomes `actualUsd` spent (0 when nothing was billed). */
  settle(hold: string, actualUsd: number): StoreResult<M, void> {
    return this.cell.settle(this.clock.now(), hold, actualUsd > 0 && Number.isFinite(actualUsd) ? actualUsd : 0);
  }

  /** Settled spend in the window. */
  spent(): StoreResult<M, number> {
    return this.cell.spent(this.clock.now());
  }
}
