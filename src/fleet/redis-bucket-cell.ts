import { LocalBucketCell } from "../policy/local-bucket-cell.js";
import type { BucketCell, BucketSettings } from "../policy/store.js";
import type { RedisHost } from "./redis-host.js";
import { BUCKET } from "./redis-scripts.js";

type Op = "apply" | "reserve" | "take" | "lease" | "level";

/**
 * A token bucket shared through Redis, spent locally from a lease.
 *
 * A refilled bucket (rpm/tpm) leases `leaseFraction × capacity` units at a time from the shared
 * bucket; reservations that the lease covers are answered at once (no round trip), and a new
 * lease is fetched in the background when half of it is spent. Leased units have already left the
 * shared bucket, so the fleet never spends more than the bucket holds: leasing can only make a
 * replica wait a little early (at most the other replicas' unspent leases), and an unused lease
 * goes back after `leaseTtlMs`. The retry budget (no refill) is not leased: its `tryTake` runs on
 * the retry path, which already waits for a backoff.
 *
 * `add` (the rate limiter's corrections and cancellations, the budget's refills) and `tighten`
 * (provider headers) are batched: a debit is first taken from the lease, the rest is sent on the
 * next turn of the event loop, like a `notBefore` block; refunds and plain tightening go with the
 * next flush tick. One flush in flight per bucket; the next carries what came meanwhile.
 *
 * Redis unusable: a LocalBucketCell holding this replica's share (capacity / fleet size, the
 * number of store instances subscribed when last seen) decides, after the lease is spent. When
 * Redis is back, the fallback's deficit is debited from the shared bucket.
 */
export class RedisBucketCell implements BucketCell<"async"> {
  private lease = 0;
  private leaseAt = 0;
  private pendingDelta = 0;
  private pendingMax: number | undefined;
  /** Server ms. */
  private pendingNotBefore: number | undefined;
  /** Local ms until which the shared bucket is known to be blocked. */
  private blockedUntil = 0;
  private lastLevel: number | undefined;
  private flushing = false;
  private fetching = false;
  private fallback: LocalBucketCell | undefined;
  /** The fallback's level when it took over: what it spends below that is debited on recovery. */
  private fbSeed = 0;
  private readonly chunk: number;
  private readonly redisKey: string;
  private readonly ttlMs: number;

  constructor(
    private readonly host: RedisHost,
    readonly key: string,
    private readonly s: BucketSettings,
  ) {
    this.chunk = s.refillPerMs > 0 ? s.capacity * host.cfg.leaseFraction : 0;
    this.redisKey = host.key(key, "k");
    // A refilled bucket that expires is full again, as it would be; the retry budget is kept a day.
    this.ttlMs = s.refillPerMs > 0 ? Math.ceil(s.capacity / s.refillPerMs) + 60_000 : 86_400_000;
  }

  tryTake(now: number, amount: number): boolean | Promise<boolean> {
    if (amount <= this.lease && now >= this.blockedUntil) {
      this.lease -= amount;
      return true;
    }
    if (!this.host.usable) return this.fallbackCell(now).tryTake(now, amount);
    return this.remote("take", amount, 0).then(
      (r) => r[1] === 1,
      () => this.fallbackCell(now).tryTake(now, amount),
    );
  }

  reserve(now: number, amount: number): number | Promise<number> {
    if (amount <= this.lease && now >= this.blockedUntil) {
      this.lease -= amount;
      if (this.lease < this.chunk / 2 && this.host.usable) this.prefetch();
      return 0;
    }
    if (!this.host.usable) return this.fallbackCell(now).reserve(now, amount);
    return this.remote("reserve", amount, this.chunk).then(
      (r) => {
        const wait = Number(r[1]);
        return wait < 0 ? Infinity : wait;
      },
      () => this.fallbackCell(now).reserve(now, amount),
    );
  }

  add(now: number, amount: number): void {
    if (amount < 0 && this.lease > 0) {
      const d = Math.min(this.lease, -amount);
      this.lease -= d;
      amount += d;
    }
    if (amount === 0 || !Number.isFinite(amount)) return;
    if (!this.host.usable) {
      this.fallbackCell(now).add(now, amount);
      return;
    }
    this.pendingDelta += amount;
    // A debit (usage above the estimate) tightens the fleet's limit: sent on the next turn of the
    // event loop; a refund can wait for the flush tick.
    this.host.schedule(this, amount < 0);
  }

  tighten(now: number, maxLevel: number, notBeforeMs?: number): void {
    if (maxLevel < this.lease) this.lease = Math.max(0, maxLevel);
    if (notBeforeMs !== undefined && notBeforeMs > this.blockedUntil) this.blockedUntil = notBeforeMs;
    if (!this.host.usable) {
      const share = this.host.fleetSize;
      this.fallbackCell(now).tighten(now, maxLevel / share, notBeforeMs);
      return;
    }
    this.pendingMax = this.pendingMax === undefined ? maxLevel : Math.min(this.pendingMax, maxLevel);
    if (notBeforeMs !== undefined) {
      const nb = notBeforeMs + this.host.offset;
      this.pendingNotBefore = this.pendingNotBefore === undefined ? nb : Math.max(this.pendingNotBefore, nb);
    }
    this.host.schedule(this, notBeforeMs !== undefined);
  }

  /** The shared level plus this replica's unspent lease. */
  level(now: number): number | Promise<number> {
    if (!this.host.usable) return this.lease + this.fallbackCell(now).level(now);
    return this.remote("level", 0, 0).then(
      () => this.lease + (this.lastLevel ?? this.s.capacity),
      () => this.lease + this.fallbackCell(now).level(now),
    );
  }

  /** Sends pending corrections (one flush in flight at a time). */
  flush(): Promise<void> | undefined {
    if (this.flushing || !this.host.usable || !this.hasPending()) return undefined;
    this.flushing = true;
    return this.remote("apply", 0, 0)
      .then(() => undefined)
      .catch(() => {
        /* degraded; pending corrections were kept for later */
      })
      .finally(() => {
        this.flushing = false;
        if (this.hasPending() && this.host.usable) this.host.schedule(this, false);
      });
  }

  /** Gives an unused lease back after leaseTtlMs; returns true while a lease is held. */
  expireLease(now: number): boolean {
    if (this.lease <= 0) return false;
    if (now - this.leaseAt < this.host.cfg.leaseTtlMs) return true;
    if (this.host.usable) {
      this.pendingDelta += this.lease;
      this.lease = 0;
      this.host.schedule(this, false);
      return false;
    }
    return true;
  }

  /** Redis is back: drop the fallback, debit what this replica spent from its share meanwhile. */
  reconcile(now: number): void {
    const fb = this.fallback;
    if (fb === undefined) return;
    this.fallback = undefined;
    // Below the seed: spent meanwhile and not yet refilled (the fallback refills like the bucket).
    const deficit = this.fbSeed - fb.level(now);
    if (deficit > 0) this.pendingDelta -= deficit;
    if (this.hasPending()) this.host.schedule(this, false);
  }

  private hasPending(): boolean {
    return this.pendingDelta !== 0 || this.pendingMax !== undefined || this.pendingNotBefore !== undefined;
  }

  private prefetch(): void {
    if (this.fetching) return;
    this.fetching = true;
    this.remote("lease", 0, this.chunk)
      .catch(() => {})
      .finally(() => {
        this.fetching = false;
      });
  }

  /** One script run carrying the pending corrections; they are kept for later if it fails. */
  private remote(op: Op, amount: number, want: number): Promise<unknown[]> {
    const h = this.host;
    const delta = this.pendingDelta;
    const max = this.pendingMax;
    const nb = this.pendingNotBefore;
    this.pendingDelta = 0;
    this.pendingMax = undefined;
    this.pendingNotBefore = undefined;
    const nbRel = nb === undefined ? "" : Math.max(0, Math.round(nb - (Date.now() + h.offset)));
    return h.run(BUCKET, [this.redisKey], [this.s.capacity, this.s.refillPerMs, op, amount, want, delta, max ?? "", nbRel, this.ttlMs]).then(
      (r) => {
        const local = Date.now();
        this.lastLevel = Number(r[2]);
        const rem = Number(r[3]);
        if (rem > 0 && local + rem > this.blockedUntil) this.blockedUntil = local + rem;
        const granted = Number(r[4]);
        if (granted > 0) {
          this.lease += granted;
          this.leaseAt = local;
          h.leasing(this);
        }
        return r;
      },
      (err: unknown) => {
        this.pendingDelta += delta;
        if (max !== undefined) this.pendingMax = this.pendingMax === undefined ? max : Math.min(this.pendingMax, max);
        if (nb !== undefined) this.pendingNotBefore = Math.max(this.pendingNotBefore ?? nb, nb);
        throw err;
      },
    );
  }

  /** This replica's share of the bucket, seeded from the last level seen; created on first use. */
  private fallbackCell(now: number): LocalBucketCell {
    if (this.fallback !== undefined) return this.fallback;
    const share = this.host.fleetSize;
    const cell = new LocalBucketCell({ capacity: this.s.capacity / share, refillPerMs: this.s.refillPerMs / share });
    const known = this.lastLevel ?? this.s.capacity;
    cell.tighten(now, known / share, this.blockedUntil > now ? this.blockedUntil : undefined);
    this.fbSeed = cell.level(now);
    this.fallback = cell;
    return cell;
  }
}
