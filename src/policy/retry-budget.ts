import { type Clock, systemClock } from "./clock.js";
import { localStore } from "./local-store.js";
import { type BucketCell, mapResult, type StateStore, type StoreKind, type StoreMode, type StoreResult } from "./store.js";

// The AWS SDKs' "standard" retry mode quota.
export const DEFAULT_RETRY_BUDGET_CAPACITY = 500;
export const DEFAULT_RETRY_COST = 5;
export const DEFAULT_TIMEOUT_RETRY_COST = 10;
/** Refund for a call that succeeded without a retry. */
const DEFAULT_NO_RETRY_INCREMENT = 1;

export type RetryKind = "normal" | "timeout";
export type RetryBudgetDecision =
  | { readonly ok: true; readonly cost: number; readonly store: StoreKind }
  | { readonly ok: false; readonly store: StoreKind };

export interface RetryBudgetPolicyOptions<M extends StoreMode = "sync"> {
  capacity?: number;
  retryCost?: number;
  timeoutRetryCost?: number;
  noRetryIncrement?: number;
  clock?: Clock;
  store?: StateStore<M>;
}

/**
 * A per-key retry quota (AWS standard retry mode): a bucket of `capacity` tokens, each retry takes
 * `retryCost` (`timeoutRetryCost` after a timeout), a successful call puts back the cost of the
 * retry that succeeded, or `noRetryIncrement` if it needed none. During an outage nothing comes back,
 * so retries stop after capacity / cost of them however heavy the traffic; first attempts are never
 * limited. The bucket does not refill with time, only with successes.
 */
export class RetryBudget<M extends StoreMode = "sync"> {
  readonly store: StoreKind;
  private readonly cell: BucketCell<M>;
  private readonly clock: Clock;
  private readonly noRetryIncrement: number;
  private readonly retryCost: number;
  private readonly timeoutRetryCost: number;
  // Decisions are built once: the hot path allocates nothing.
  private readonly okNormal: RetryBudgetDecision;
  private readonly okTimeout: RetryBudgetDecision;
  private readonly refused: RetryBudgetDecision;
  private readonly toNormal = (taken: boolean): RetryBudgetDecision => (taken ? this.okNormal : this.refused);
  private readonly toTimeout = (taken: boolean): RetryBudgetDecision => (taken ? this.okTimeout : this.refused);

  constructor(key: string, options: RetryBudgetPolicyOptions<M> = {}) {
    const capacity = options.capacity ?? DEFAULT_RETRY_BUDGET_CAPACITY;
    const retryCost = options.retryCost ?? DEFAULT_RETRY_COST;
    const timeoutRetryCost = options.timeoutRetryCost ?? DEFAULT_TIMEOUT_RETRY_COST;
    this.retryCost = retryCost;
    this.timeoutRetryCost = timeoutRetryCost;
    this.noRetryIncrement = options.noRetryIncrement ?? DEFAULT_NO_RETRY_INCREMENT;
    for (const [name, v] of [
      ["capacity", capacity],
      ["retryCost", retryCost],
      ["timeoutRetryCost", timeoutRetryCost],
      ["noRetryIncrement", this.noRetryIncrement],
    ] as const) {
      if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`retry budget ${name} must be a finite number >= 0, got ${v}`);
    }
    const store = (options.store ?? localStore) as StateStore<M>;
    this.store = store.kind;
    this.clock = options.clock ?? systemClock;
    this.cell = store.bucket(`budget:${key}`, { capacity, refillPerMs: 0 });
    this.okNormal = Object.freeze({ ok: true, cost: retryCost, store: store.kind });
    this.okTimeout = Object.freeze({ ok: true, cost: timeoutRetryCost, store: store.kind });
    this.refused = Object.freeze({ ok: false, store: store.kind });
  }

  /** Takes the cost of one retry, if the budget has it. Keep `cost` for `onSuccess`. */
  tryAcquire(kind: RetryKind): StoreResult<M, RetryBudgetDecision> {
    const timeout = kind === "timeout";
    return mapResult<M, boolean, RetryBudgetDecision>(
      this.cell.tryTake(this.clock.now(), timeout ? this.timeoutRetryCost : this.retryCost),
      timeout ? this.toTimeout : this.toNormal,
    );
  }

  /** A call succeeded: pass the cost of the retry that succeeded, or 0 when it succeeded at once. */
  onSuccess(costOfRetryOrZero: number): StoreResult<M, void> {
    return this.cell.add(this.clock.now(), costOfRetryOrZero > 0 ? costOfRetryOrZero : this.noRetryIncrement);
  }

  /** Tokens left (for tests and gauges). */
  available(): StoreResult<M, number> {
    return this.cell.level(this.clock.now());
  }
}
