/** Source of time for every policy; inject a fake one in tests so nothing ever sleeps for real. */
export interface Clock {
  /** Milliseconds on the wall clock (epoch-based, like `Date.now()`). */
  now(): number;
}

/** The default clock: wall time, so times compare with HTTP dates and a future Redis store's clock. */
export const systemClock: Clock = { now: () => Date.now() }; // late-bound: fake timers that patch Date.now still apply

/** A clock that only moves when told to; for tests. */
export class ManualClock implements Clock {
  constructor(private t = 0) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(t: number): void {
    this.t = t;
  }
}
