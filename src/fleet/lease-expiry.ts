/** A bucket cell holding a lease of a shared rate limit. */
export interface LeaseHolder {
  /** Gives an unused lease back when it is older than the lease TTL; false once it holds none. */
  expireLease(now: number): boolean;
}

/** Checks the lease holders every half TTL while any holds a lease (the timer never keeps the process alive). */
export class LeaseExpiry {
  private readonly holders = new Set<LeaseHolder>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly ttlMs: number) {}

  add(holder: LeaseHolder): void {
    this.holders.add(holder);
    if (this.timer === undefined && !this.closed) this.arm();
  }

  /** Gives every lease back (closing the store). */
  returnAll(): void {
    for (const h of this.holders) h.expireLease(Infinity);
    this.holders.clear();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    this.timer = setTimeout(() => this.expire(), this.ttlMs / 2);
    this.timer.unref();
  }

  private expire(): void {
    this.timer = undefined;
    const now = Date.now();
    for (const h of this.holders) if (!h.expireLease(now)) this.holders.delete(h);
    if (this.holders.size > 0 && !this.closed) this.arm();
  }
}
