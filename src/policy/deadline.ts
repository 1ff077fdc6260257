import { type Clock, systemClock } from "./clock.js";

/** An overall time budget for a logical call (all attempts and waits), or none. */
export class Deadline {
  /** Epoch ms at which the budget runs out; Infinity when there is no deadline. */
  readonly atMs: number;

  /** `budgetMs` undefined (or Infinity) means no deadline; it must otherwise be >= 0. */
  constructor(
    budgetMs?: number,
    private readonly clock: Clock = systemClock,
  ) {
    if (budgetMs !== undefined && !(budgetMs >= 0)) {
      throw new RangeError(`deadline budget must be a number >= 0 (ms), got ${budgetMs}`);
    }
    this.atMs = budgetMs === undefined || budgetMs === Infinity ? Infinity : clock.now() + budgetMs;
  }

  /** True when a deadline was set. */
  get bounded(): boolean {
    return this.atMs !== Infinity;
  }

  /** Milliseconds left, >= 0; Infinity without a deadline. */
  remainingMs(): number {
    if (this.atMs === Infinity) return Infinity;
    return Math.max(0, this.atMs - this.clock.now());
  }

  expired(): boolean {
    return this.atMs !== Infinity && this.clock.now() >= this.atMs;
  }

  /**
   * Whether a wait of `waitMs` may start: it must end strictly before the deadline, since a wait
   * that ends at (or after) it leaves no time for the attempt it waits for.
   */
  allows(waitMs: number): boolean {
    return waitMs < this.remainingMs();
  }
}
