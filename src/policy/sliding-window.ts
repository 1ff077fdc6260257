/** The window's live buckets as `[epoch, calls, failures]` (epoch = floor(time / bucketMs)): plain JSON. */
export type WindowSnapshot = ReadonlyArray<readonly [number, number, number]>;

/** Totals over the window. */
export interface WindowTotals {
  calls: number;
  failures: number;
}

/**
 * Call and failure counts over the last `windowMs`, kept in a fixed ring of time buckets (memory is
 * O(buckets), never O(calls)). The effective window is between `windowMs - bucketMs` and `windowMs`:
 * the oldest bucket drops out whole.
 */
export class SlidingWindow {
  private readonly bucketMs: number;
  private readonly epochs: Float64Array;
  private readonly calls: Float64Array;
  private readonly failures: Float64Array;

  constructor(
    windowMs: number,
    private readonly buckets: number,
    initial: WindowSnapshot = [],
  ) {
    this.bucketMs = windowMs / buckets;
    this.epochs = new Float64Array(buckets).fill(-Infinity);
    this.calls = new Float64Array(buckets);
    this.failures = new Float64Array(buckets);
    for (const [epoch, calls, failures] of initial) {
      const slot = this.slot(epoch);
      if (this.epochs[slot]! > epoch) continue;
      this.epochs[slot] = epoch;
      this.calls[slot] = calls;
      this.failures[slot] = failures;
    }
  }

  private slot(epoch: number): number {
    return ((epoch % this.buckets) + this.buckets) % this.buckets;
  }

  add(now: number, failed: boolean): void {
    const epoch = Math.floor(now / this.bucketMs);
    const slot = this.slot(epoch);
    if (this.epochs[slot] !== epoch) {
      this.epochs[slot] = epoch;
      this.calls[slot] = 0;
      this.failures[slot] = 0;
    }
    this.calls[slot]! += 1;
    if (failed) this.failures[slot]! += 1;
  }

  totals(now: number): WindowTotals {
    const epoch = Math.floor(now / this.bucketMs);
    let calls = 0;
    let failures = 0;
    for (let i = 0; i < this.buckets; i++) {
      const e = this.epochs[i]!;
      if (e > epoch - this.buckets && e <= epoch) {
        calls += this.calls[i]!;
        failures += this.failures[i]!;
      }
    }
    return { calls, failures };
  }

  reset(): void {
    this.epochs.fill(-Infinity);
  }

  toJSON(): WindowSnapshot {
    const out: Array<[number, number, number]> = [];
    for (let i = 0; i < this.buckets; i++) {
      if (this.epochs[i] !== -Infinity) out.push([this.epochs[i]!, this.calls[i]!, this.failures[i]!]);
    }
    return out;
  }
}
