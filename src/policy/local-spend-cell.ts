import type { SpendCell, SpendDecision, SpendSettings, SpendStore } from "./spend-cell.js";

/** Sums of float amounts drift by far less than this; a call that fits exactly is admitted. */
const USD_EPSILON = 1e-9;

interface Hold {
  usd: number;
  expiresAt: number;
}

/**
 * A spend window in process memory: settled spend in a ring of time buckets (memory O(buckets)),
 * plus the holds of the calls in flight. Holds expire after `holdTtlMs` so a call that never ends
 * cannot block the limit forever.
 */
export class LocalSpendCell implements SpendCell<"sync"> {
  private readonly bucketMs: number;
  private readonly epochs: Float64Array;
  private readonly sums: Float64Array;
  private readonly holds = new Map<string, Hold>();
  private reservedUsd = 0;
  private seq = 0;

  constructor(private readonly s: SpendSettings) {
    this.bucketMs = s.windowMs / s.buckets;
    this.epochs = new Float64Array(s.buckets).fill(-Infinity);
    this.sums = new Float64Array(s.buckets);
  }

  reserve(now: number, usd: number, hold?: string): SpendDecision {
    this.expireHolds(now);
    const spent = this.spentAt(now);
    if (spent + this.reservedUsd + usd > this.s.limitUsd + USD_EPSILON) {
      return { admitted: false, spentUsd: spent, reservedUsd: this.reservedUsd, retryAtMs: this.retryAt(now, usd), store: "local" };
    }
    const id = hold ?? `h${++this.seq}`;
    const h = this.holds.get(id);
    if (h) {
      h.usd += usd;
      h.expiresAt = now + this.s.holdTtlMs;
    } else {
      this.holds.set(id, { usd, expiresAt: now + this.s.holdTtlMs });
    }
    this.reservedUsd += usd;
    return { admitted: true, hold: id, spentUsd: spent, reservedUsd: this.reservedUsd, store: "local" };
  }

  settle(now: number, hold: string, actualUsd: number): void {
    const h = this.holds.get(hold);
    if (h) {
      this.holds.delete(hold);
      this.reservedUsd = this.holds.size === 0 ? 0 : this.reservedUsd - h.usd;
    }
    this.record(now, actualUsd);
  }

  record(now: number, usd: number): void {
    if (!(usd > 0) || !Number.isFinite(usd)) return;
    const epoch = Math.floor(now / this.bucketMs);
    const n = this.s.buckets;
    const slot = ((epoch % n) + n) % n;
    if (this.epochs[slot] !== epoch) {
      this.epochs[slot] = epoch;
      this.sums[slot] = 0;
    }
    this.sums[slot]! += usd;
  }

  spent(now: number): number {
    return this.spentAt(now);
  }

  reserved(now: number): number {
    this.expireHolds(now);
    return this.reservedUsd;
  }

  private spentAt(now: number): number {
    const epoch = Math.floor(now / this.bucketMs);
    const n = this.s.buckets;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const e = this.epochs[i]!;
      if (e > epoch - n && e <= epoch) total += this.sums[i]!;
    }
    return total;
  }

  /**
   * When enough settled spend has left the window for `usd` to fit beside the current holds; the
   * holds of calls in flight may keep it out longer. Infinity when `usd` alone is above the limit.
   */
  private retryAt(now: number, usd: number): number {
    if (usd > this.s.limitUsd) return Infinity;
    const epoch = Math.floor(now / this.bucketMs);
    const n = this.s.buckets;
    const live: number[] = [];
    for (let i = 0; i < n; i++) {
      const e = this.epochs[i]!;
      if (e > epoch - n && e <= epoch && this.sums[i]! > 0) live.push(i);
    }
    live.sort((a, b) => this.epochs[a]! - this.epochs[b]!);
    const room = this.s.limitUsd + USD_EPSILON - this.reservedUsd - usd;
    let remaining = this.spentAt(now);
    let at = now;
    for (const i of live) {
      if (remaining <= room) break;
      remaining -= this.sums[i]!;
      at = (this.epochs[i]! + n) * this.bucketMs;
    }
    return Math.max(at, now);
  }

  private expireHolds(now: number): void {
    if (this.holds.size === 0) return;
    for (const [id, h] of this.holds) {
      if (h.expiresAt <= now) {
        this.holds.delete(id);
        this.reservedUsd -= h.usd;
      }
    }
    if (this.holds.size === 0) this.reservedUsd = 0;
  }
}

/** Spend windows in process memory. */
export const localSpendStore: SpendStore<"sync"> = {
  kind: "local",
  spend: (_key, settings) => new LocalSpendCell(settings),
};
