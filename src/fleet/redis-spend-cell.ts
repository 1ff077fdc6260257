import { LocalSpendCell } from "../policy/local-spend-cell.js";
import type { SpendCell, SpendDecision, SpendSettings } from "../policy/spend-cell.js";
import type { RedisHost } from "./redis-host.js";
import { SPEND } from "./redis-spend-script.js";

/**
 * A spend window shared through Redis: each reservation is one script run that admits it only if
 * the fleet's settled spend plus every process's holds plus it stays within the limit (atomic, so
 * concurrent processes cannot overshoot together); each settle replaces a hold with the call's cost.
 *
 * Redis unusable: a LocalSpendCell holding this process's share (limit / fleet size, the number of
 * store instances last seen subscribed), seeded with that share of the fleet's last known spend,
 * decides. Settles of holds taken in Redis wait for Redis to come back (their holds would otherwise
 * block the fleet until they expire); spend recorded by the fallback is added to the shared window
 * on recovery.
 */
export class RedisSpendCell implements SpendCell<"async"> {
  private readonly keys: string[];
  private readonly bucketMs: number;
  private fallback: LocalSpendCell | undefined;
  /** Spend the fallback recorded that the shared window has not seen yet. */
  private unsynced = 0;
  private lastSpent = 0;
  private lastReserved = 0;
  /** Holds taken in Redis and not yet settled there. */
  private readonly remoteHolds = new Set<string>();
  private readonly pendingSettles = new Map<string, number>();
  private flushing = false;
  private waitedForStart = false;
  private starting: Promise<void> | undefined;

  constructor(
    private readonly host: RedisHost,
    key: string,
    private readonly s: SpendSettings,
    /** While the store has never connected: waits (bounded) until it has. */
    private readonly start: { connecting(): boolean; ready(): Promise<unknown> },
  ) {
    this.keys = [host.key(key, "w"), host.key(key, "h"), host.key(key, "x")];
    this.bucketMs = s.windowMs / s.buckets;
  }

  reserve(now: number, usd: number, hold?: string): SpendDecision | Promise<SpendDecision> {
    // A process's first calls must not each spend a whole limit while Redis is still connecting.
    if (!this.waitedForStart && this.start.connecting()) {
      this.starting ??= this.start.ready().then(() => {
        this.waitedForStart = true;
      });
      return this.starting.then(() => this.reserve(Date.now(), usd, hold));
    }
    // A hold the fallback took stays there while the fallback decides; after recovery a top-up of it
    // is taken in Redis under the same id (the fallback's part was recorded by the fallback).
    const local = hold !== undefined && this.fallback !== undefined && !this.remoteHolds.has(hold);
    if (local || !this.host.usable) return this.fallbackCell(now).reserve(now, usd, hold);
    const id = hold ?? this.host.newToken();
    // Timed out but admitted after all: that hold would block the fleet until it expires; release it.
    const late = (r: unknown[]) => {
      if (Number(r[1]) === 1 && !this.remoteHolds.has(id)) {
        this.pendingSettles.set(id, this.pendingSettles.get(id) ?? 0);
        this.host.schedule(this, true);
      }
    };
    return this.run("reserve", id, usd, 0, late).then(
      (r) => {
        if (Number(r[1]) === 1) {
          this.remoteHolds.add(id);
          return { admitted: true, hold: id, spentUsd: this.lastSpent, reservedUsd: this.lastReserved, store: "redis" } as const;
        }
        const retryAt = Number(r[4]);
        return {
          admitted: false,
          spentUsd: this.lastSpent,
          reservedUsd: this.lastReserved,
          retryAtMs: retryAt < 0 ? Infinity : retryAt - this.host.offset,
          store: "redis",
        } as const;
      },
      () => (hold === undefined ? this.fallbackCell(now).reserve(now, usd) : this.fallbackCell(now).reserve(now, usd, hold)),
    );
  }

  settle(now: number, hold: string, actualUsd: number): void | Promise<void> {
    if (!this.remoteHolds.has(hold)) {
      this.fallback?.settle(now, hold, actualUsd);
      if (actualUsd > 0) {
        this.unsynced += actualUsd;
        if (this.host.usable) this.host.schedule(this, true);
      }
      return;
    }
    this.remoteHolds.delete(hold);
    // Sent at once, ahead of this process's next reservation on the same connection.
    if (this.host.usable && !this.pendingSettles.has(hold)) {
      return this.run("settle", hold, 0, actualUsd).then(
        () => undefined,
        () => this.retryLater(hold, actualUsd),
      );
    }
    this.retryLater(hold, actualUsd);
  }

  private retryLater(hold: string, actualUsd: number): void {
    this.pendingSettles.set(hold, (this.pendingSettles.get(hold) ?? 0) + actualUsd);
    this.host.schedule(this, false);
  }

  spent(now: number): number | Promise<number> {
    if (!this.host.usable) return this.fallbackCell(now).spent(now);
    return this.run("read", "", 0, 0).then(
      () => this.lastSpent,
      () => this.fallbackCell(now).spent(now),
    );
  }

  /** Sends the pending settles (one flush in flight; what comes meanwhile goes with the next). */
  flush(): Promise<void> | undefined {
    if (this.flushing || !this.host.usable || (this.pendingSettles.size === 0 && this.unsynced === 0)) return undefined;
    this.flushing = true;
    const batch = [...this.pendingSettles];
    this.pendingSettles.clear();
    const extra = this.unsynced;
    this.unsynced = 0;
    const sends = batch.map(([hold, usd], i) => this.run("settle", hold, 0, i === 0 ? usd + extra : usd));
    if (sends.length === 0) sends.push(this.run("settle", "", 0, extra));
    return Promise.all(sends)
      .then(
        () => undefined,
        () => {
          // Sent again after recovery: a settle that did arrive before the error counts its cost
          // twice, erring on the side of the limit.
          for (const [hold, usd] of batch) this.pendingSettles.set(hold, (this.pendingSettles.get(hold) ?? 0) + usd);
          this.unsynced += extra;
        },
      )
      .finally(() => {
        this.flushing = false;
        if ((this.pendingSettles.size > 0 || this.unsynced > 0) && this.host.usable) this.host.schedule(this, false);
      });
  }

  /** Redis is back: the fallback's spend goes to the shared window with the pending settles. */
  reconcile(): void {
    this.fallback = undefined;
    if (this.pendingSettles.size > 0 || this.unsynced > 0) this.host.schedule(this, true);
  }

  private run(op: "reserve" | "settle" | "read", hold: string, usd: number, actualUsd: number, onLate?: (r: unknown[]) => void): Promise<unknown[]> {
    const s = this.s;
    return this.host.run(SPEND, this.keys, [op, s.limitUsd, this.bucketMs, s.buckets, hold, usd, s.holdTtlMs, actualUsd], onLate).then((r) => {
      this.lastSpent = Number(r[2]);
      this.lastReserved = Number(r[3]);
      return r;
    });
  }

  /** This process's share of the limit, seeded with its share of what the fleet had spent and held. */
  private fallbackCell(now: number): LocalSpendCell {
    if (this.fallback !== undefined) return this.fallback;
    const share = Math.max(1, this.host.fleetSize);
    const cell = new LocalSpendCell({ ...this.s, limitUsd: this.s.limitUsd / share });
    cell.record(now, (this.lastSpent + this.lastReserved) / share);
    this.fallback = cell;
    return cell;
  }
}
