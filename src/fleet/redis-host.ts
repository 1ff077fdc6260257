import type { LuaScript } from "./redis-scripts.js";

/** What a Redis cell needs from its store (kept apart so the cells do not import the store). */
export interface RedisHost {
  /** True while Redis answers; otherwise cells decide with their local fallback. */
  readonly usable: boolean;
  /** True while the subscription to the transition channel is live. */
  readonly subscribed: boolean;
  /** Estimated server clock minus local clock (ms). */
  readonly offset: number;
  /** Store instances subscribed to the channel (>= 1): the fleet size the local fallback shares limits by. */
  readonly fleetSize: number;
  readonly channel: string;
  readonly cfg: RedisCellConfig;
  /**
   * Runs a script; rejects (after marking the store degraded) on any error or timeout. A script
   * that timed out may still have run: `onLate` gets its reply if one arrives after the timeout.
   */
  run(script: LuaScript, keys: string[], args: (string | number)[], onLate?: (reply: unknown[]) => void): Promise<unknown[]>;
  /** Asks for `cell.flush()` soon (next turn of the event loop) or at the next flush tick. */
  schedule(cell: { flush(): void }, soon: boolean): void;
  /** Registers a bucket cell holding a lease, so that an unused lease goes back after leaseTtlMs. */
  leasing(cell: { expireLease(now: number): boolean }): void;
  key(key: string, suffix: string): string;
  newToken(): string;
}

export interface RedisCellConfig {
  readonly probeTtlMs: number;
  readonly halfOpenPollMs: number;
  readonly maxStalenessMs: number;
  readonly leaseFraction: number;
  readonly leaseTtlMs: number;
}

/**
 * A set of objects held weakly: cells belong to their policy objects (which the registries may
 * evict); the store only needs to reach the live ones (pub/sub dispatch, recovery).
 */
export class WeakSetOf<T extends object> {
  private readonly refs = new Set<WeakRef<T>>();
  private readonly registry = new FinalizationRegistry<WeakRef<T>>((ref) => this.refs.delete(ref));

  add(v: T): void {
    const ref = new WeakRef(v);
    this.refs.add(ref);
    this.registry.register(v, ref);
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (const ref of this.refs) {
      const v = ref.deref();
      if (v === undefined) this.refs.delete(ref);
      else yield v;
    }
  }

  get size(): number {
    return this.refs.size;
  }
}
