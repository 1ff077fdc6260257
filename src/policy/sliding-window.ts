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
  ) {
    this.bucketMs = windowMs / buckets;
    this.epochs = new Float64Array(buckets).fill(-Infinity);
    this.calls = new Float64Array(buckets);
    this.failures = new Float64Array(buckets);
  }

  add(now: number, failed: boolean): void {
    const epoch = Math.floor(now / this.bucketMs);
    const slot = ((epoch % this.buckets) + this.buckets) % this.buckets;
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
}
