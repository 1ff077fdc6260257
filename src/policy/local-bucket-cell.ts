import type { BucketCell, BucketSettings } from "./store.js";

/** A token bucket in process memory, refilled continuously and lazily (no timers). */
export class LocalBucketCell implements BucketCell<"sync"> {
  private lvl: number;
  private updatedAt = -Infinity;
  private notBefore = -Infinity;

  constructor(private readonly s: BucketSettings) {
    this.lvl = s.capacity;
  }

  tryTake(now: number, amount: number): boolean {
    this.refill(now);
    if (this.lvl < amount) return false;
    this.lvl -= amount;
    return true;
  }

  reserve(now: number, amount: number): number {
    this.refill(now);
    this.lvl -= amount;
    const block = this.notBefore - now;
    let wait = 0;
    if (this.lvl < 0) wait = this.s.refillPerMs > 0 ? Math.ceil(-this.lvl / this.s.refillPerMs) : Infinity;
    return block > wait ? Math.ceil(block) : wait;
  }

  add(now: number, amount: number): void {
    this.refill(now);
    this.lvl = Math.min(this.s.capacity, this.lvl + amount);
  }

  tighten(now: number, maxLevel: number, notBeforeMs?: number): void {
    this.refill(now);
    if (maxLevel < this.lvl) this.lvl = maxLevel;
    if (notBeforeMs !== undefined && notBeforeMs > this.notBefore) this.notBefore = notBeforeMs;
  }

  level(now: number): number {
    this.refill(now);
    return this.lvl;
  }

  private refill(now: number): void {
    // A clock that went backwards (wall time) refills nothing but moves the reference point.
    if (now > this.updatedAt && this.s.refillPerMs > 0 && this.lvl < this.s.capacity) {
      this.lvl = Math.min(this.s.capacity, this.lvl + (now - this.updatedAt) * this.s.refillPerMs);
    }
    this.updatedAt = now;
  }
}
