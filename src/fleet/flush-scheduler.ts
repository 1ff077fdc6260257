/** A cell with outcomes or corrections waiting to be sent. */
export interface Flushable {
  flush(): Promise<void> | undefined | void;
}

/**
 * Batched sends: a cell asks to be flushed soon (next turn of the event loop: a failure) or at the
 * next tick (`intervalMs`: successes, refunds). One pass flushes every cell that asked.
 */
export class FlushScheduler {
  private readonly dirty = new Set<Flushable>();
  private immediate: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly intervalMs: number) {}

  get pending(): number {
    return this.dirty.size;
  }

  schedule(cell: Flushable, soon: boolean): void {
    this.dirty.add(cell);
    if (soon) {
      this.immediate ??= setImmediate(() => this.flushAll());
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flushAll(), this.intervalMs);
      this.timer.unref();
    }
  }

  flushAll(): void {
    this.cancel();
    const cells = [...this.dirty];
    this.dirty.clear();
    for (const c of cells) c.flush();
  }

  /** Sends everything pending and waits for it (closing the store). */
  async flushAndWait(): Promise<void> {
    const pending = [...this.dirty];
    this.dirty.clear();
    await Promise.allSettled(pending.map((c) => c.flush()));
  }

  /** Waits (briefly) until no flush is pending, then lets `settleMs` pass for replies in flight. */
  async drain(settleMs: number): Promise<void> {
    for (let i = 0; i < 20 && this.dirty.size > 0; i++) {
      this.flushAll();
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, settleMs));
  }

  cancel(): void {
    if (this.immediate) clearImmediate(this.immediate);
    if (this.timer) clearTimeout(this.timer);
    this.immediate = undefined;
    this.timer = undefined;
  }
}
