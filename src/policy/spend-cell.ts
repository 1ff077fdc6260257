import type { StoreKind, StoreMode, StoreResult } from "./store.js";

export interface SpendSettings {
  readonly limitUsd: number;
  readonly windowMs: number;
  readonly buckets: number;
  readonly holdTtlMs: number;
}

export type SpendDecision =
  | {
      readonly admitted: true;
      /** Names this call's hold: pass it to later `reserve`s of the same call and to `settle`. */
      readonly hold: string;
      readonly spentUsd: number;
      readonly reservedUsd: number;
      readonly store: StoreKind;
    }
  | {
      readonly admitted: false;
      /** Settled spend in the window. */
      readonly spentUsd: number;
      /** Held by calls in flight. */
      readonly reservedUsd: number;
      /** Epoch ms when enough spend has left the window (Infinity: the estimate alone is above the limit). */
      readonly retryAtMs: number;
      readonly store: StoreKind;
    };

/**
 * One spend window. `reserve` admits `usd` only if settled spend + holds + `usd` stays within the
 * limit, atomically where the state lives; `settle` replaces a hold with what the call cost.
 */
export interface SpendCell<M extends StoreMode> {
  /** Adds `usd` to the hold `hold` (a new one when absent) if it fits. */
  reserve(now: number, usd: number, hold?: string): StoreResult<M, SpendDecision>;
  /** Drops the hold and records `actualUsd` as spent now. */
  settle(now: number, hold: string, actualUsd: number): StoreResult<M, void>;
  /** Settled spend in the window. */
  spent(now: number): StoreResult<M, number>;
}

/** Where spend windows live: in process (local-spend-cell.ts) or shared by a fleet (the Redis store). */
export interface SpendStore<M extends StoreMode> {
  readonly kind: StoreKind;
  spend(key: string, settings: SpendSettings): SpendCell<M>;
}
