import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { SpendCell, SpendSettings, SpendStore } from "../policy/spend-cell.js";
import type { BreakerCell, BreakerSettings, BucketCell, BucketSettings, CellTransitionListener, StateStore } from "../policy/store.js";
import { ClockOffset } from "./clock-offset.js";
import { safely, withTimeout } from "./command-timeout.js";
import { type Flushable, FlushScheduler } from "./flush-scheduler.js";
import { LeaseExpiry, type LeaseHolder } from "./lease-expiry.js";
import { RedisBreakerCell } from "./redis-breaker-cell.js";
import { RedisBucketCell } from "./redis-bucket-cell.js";
import { createConnections } from "./redis-connections.js";
import { type RedisCellConfig, type RedisHost, WeakSetOf } from "./redis-host.js";
import { ALL_SCRIPTS, type LuaScript } from "./redis-scripts.js";
import { RedisSpendCell } from "./redis-spend-cell.js";
import { type RedisStoreOptions, resolveStoreSettings, type StoreSettings } from "./redis-store-options.js";
import { loadScripts, runScript } from "./script-loader.js";
import { parseTransitionMessage, transitionChannel } from "./transition-channel.js";

export type { RedisStoreLogger, RedisStoreOptions } from "./redis-store-options.js";

export type RedisStoreStatus = "connecting" | "ready" | "degraded" | "closed";

/** One breaker as the fleet's Redis holds it. */
export interface FleetBreaker {
  readonly key: string;
  readonly state: "closed" | "open" | "half_open";
  /** End of the cooldown (epoch ms, this process's clock) while open. */
  readonly openUntil: number | undefined;
  readonly consecutiveFailures: number;
}

export interface RedisStoreStats {
  /** Script runs sent (each one round trip). */
  commands: number;
  /** Scripts loaded again after NOSCRIPT (flushed script cache, restarted server). */
  scriptReloads: number;
  /** Times the store became degraded. */
  degradedEpisodes: number;
  /** Times it recovered. */
  recoveries: number;
}

/**
 * Breaker, retry-budget, rate-limit and spend state shared by a fleet through Redis (docs/fleet.md:
 * what is shared how, and how stale a process's view can be). Results are plain values when
 * answered locally and Promises after a round trip; the policies pass both through.
 */
export class RedisStore implements StateStore<"async">, SpendStore<"async">, RedisHost {
  readonly channel: string;
  readonly cfg: RedisCellConfig;
  readonly stats: RedisStoreStats = { commands: 0, scriptReloads: 0, degradedEpisodes: 0, recoveries: 0 };
  private _status: RedisStoreStatus = "connecting";
  private _subscribed = false;
  private readonly clock = new ClockOffset();
  private _fleetSize = 1;
  private recovering = false;
  private seq = 0;
  private readonly id = `${process.pid.toString(36)}-${randomBytes(4).toString("hex")}`;
  private readonly client: Redis;
  private readonly sub: Redis;
  private readonly ownClient: boolean;
  private readonly settings: StoreSettings;
  private readonly onDegraded: ((degraded: boolean, err?: unknown) => void) | undefined;
  private readonly breakers = new Map<string, WeakSetOf<RedisBreakerCell>>();
  private readonly buckets = new WeakSetOf<RedisBucketCell>();
  private readonly spends = new WeakSetOf<RedisSpendCell>();
  private readonly flushes: FlushScheduler;
  private readonly leases: LeaseExpiry;
  private healthTimer: NodeJS.Timeout | undefined;
  private readonly maintenanceTimer: NodeJS.Timeout;
  private lastError: unknown;
  private readyWaiters: Array<() => void> = [];

  constructor(options: RedisStoreOptions = {}) {
    const settings = resolveStoreSettings(options);
    this.settings = settings;
    this.cfg = settings.cfg;
    this.channel = transitionChannel(settings.prefix);
    this.onDegraded = options.onDegraded;
    this.flushes = new FlushScheduler(settings.flushIntervalMs);
    this.leases = new LeaseExpiry(settings.cfg.leaseTtlMs);
    const connections = createConnections(options.url, options.client, settings);
    this.client = connections.client;
    this.sub = connections.sub;
    this.ownClient = connections.ownClient;

    this.client.on("error", (err: unknown) => {
      this.lastError = err;
    });
    this.client.on("ready", () => void this.recover());
    this.client.on("close", () => this.degrade(this.lastError ?? new Error("Redis connection closed")));
    this.sub.on("error", () => {});
    this.sub.on("ready", () => {
      this.sub.subscribe(this.channel).then(
        () => {
          this._subscribed = true;
          // Messages may have been missed while unsubscribed: re-read every cached state, also
          // mid-recovery (a reconcile that ran before the subscription may have missed one). Not
          // while the command connection is down or still connecting: its own recovery reconciles
          // every state once it is ready, and a command sent now would only fail and mark the store
          // degraded for nothing (the subscriber connection often wins the race at start-up).
          if (this._status !== "closed" && this.client.status === "ready") this.resyncAll();
        },
        () => {},
      );
    });
    this.sub.on("close", () => {
      this._subscribed = false;
    });
    this.sub.on("message", (_channel: string, message: string) => this.dispatch(message));

    if (this.ownClient || this.client.status === "wait") this.client.connect().catch(() => {});
    else if (this.client.status === "ready") queueMicrotask(() => void this.recover());
    this.sub.connect().catch(() => {});

    this.maintenanceTimer = setInterval(() => this.maintain(), settings.resyncIntervalMs);
    this.maintenanceTimer.unref();
  }

  /** Decisions of a cell's local fallback say `store: "local"` themselves. */
  readonly kind = "redis" as const;

  get status(): RedisStoreStatus {
    return this._status;
  }

  /** True when cells decide locally (Redis unreachable or slow, or not yet connected). */
  get degraded(): boolean {
    return this._status !== "ready";
  }

  get usable(): boolean {
    return this._status === "ready";
  }

  get subscribed(): boolean {
    return this._subscribed;
  }

  get offset(): number {
    return this.clock.value;
  }

  /** Every key and the channel start with it: processes share state when equal. */
  private get prefix(): string {
    return this.settings.prefix;
  }

  get fleetSize(): number {
    return this._fleetSize;
  }

  /** Resolves true once Redis is in use (or false after `timeoutMs`). Calls never need to wait for it. */
  ready(timeoutMs = 2000): Promise<boolean> {
    if (this.usable) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.readyWaiters = this.readyWaiters.filter((w) => w !== done);
        resolve(this.usable);
      }, timeoutMs);
      const done = () => {
        clearTimeout(t);
        resolve(true);
      };
      this.readyWaiters.push(done);
    });
  }

  breaker(key: string, settings: BreakerSettings, onTransition: CellTransitionListener): BreakerCell<"async"> {
    const cell = new RedisBreakerCell(this, key, settings, onTransition);
    let set = this.breakers.get(key);
    if (!set) {
      set = new WeakSetOf();
      this.breakers.set(key, set);
    }
    set.add(cell);
    if (this.usable) cell.sync().catch(() => {});
    return cell;
  }

  bucket(key: string, settings: BucketSettings): BucketCell<"async"> {
    const cell = new RedisBucketCell(this, key, settings);
    this.buckets.add(cell);
    return cell;
  }

  /** A spend window shared by the fleet (see RedisSpendCell). */
  spend(key: string, settings: SpendSettings): SpendCell<"async"> {
    const cell = new RedisSpendCell(this, key, settings, { connecting: () => this._status === "connecting", ready: () => this.ready(1000) });
    this.spends.add(cell);
    return cell;
  }

  /**
   * Sends pending outcomes and corrections, gives leases back and disconnects (the application's
   * own client is left open). Policies keep working on local state afterwards.
   */
  async close(): Promise<void> {
    if (this._status === "closed") return;
    if (this.usable) {
      this.leases.returnAll();
      await this.flushes.flushAndWait();
      await this.flushes.drain(2 * this.settings.commandTimeoutMs);
    }
    this._status = "closed";
    for (const t of [this.healthTimer, this.maintenanceTimer]) if (t) clearTimeout(t);
    this.flushes.cancel();
    this.leases.close();
    this.sub.disconnect();
    if (this.ownClient) this.client.disconnect();
  }

  // ---- RedisHost ----

  run(script: LuaScript, keys: string[], args: (string | number)[], onLate?: (reply: unknown[]) => void): Promise<unknown[]> {
    if (this._status === "closed") return Promise.reject(new Error("Redis store closed"));
    this.stats.commands++;
    const t0 = Date.now();
    const reloaded = () => this.stats.scriptReloads++;
    return runScript(this.client, script, keys, args, this.timed, reloaded, onLate).then(
      (r) => {
        this.clock.sample(t0, Date.now(), Number(r[0]));
        return r;
      },
      (err: unknown) => {
        this.degrade(err);
        throw err;
      },
    );
  }

  schedule(cell: Flushable, soon: boolean): void {
    this.flushes.schedule(cell, soon);
  }

  leasing(cell: LeaseHolder): void {
    this.leases.add(cell);
  }

  key(key: string, suffix: string): string {
    return `${this.prefix}{${key}}:${suffix}`;
  }

  newToken(): string {
    return `${this.id}:${++this.seq}`;
  }

  /**
   * Every breaker the fleet keeps in this Redis (under this store's prefix), as Redis says now: for
   * health checks, never on a call's path. Rejects when Redis cannot answer within the command timeout.
   */
  async fleetBreakers(): Promise<FleetBreaker[]> {
    const pattern = `${this.prefix}{*}:b`;
    const names: string[] = [];
    let cursor = "0";
    do {
      const [next, batch] = await this.timed(this.client.scan(cursor, "MATCH", pattern, "COUNT", 200));
      cursor = next;
      names.push(...batch);
    } while (cursor !== "0");
    if (names.length === 0) return [];
    const pipeline = this.client.pipeline();
    for (const name of names) pipeline.hmget(name, "s", "ou", "c");
    const replies = (await this.timed(pipeline.exec())) ?? [];
    const head = this.prefix.length + 1;
    const out: FleetBreaker[] = [];
    for (const [i, name] of names.entries()) {
      const [err, fields] = replies[i] ?? [];
      if (err || !Array.isArray(fields)) continue;
      const [state, openUntil, consecutive] = fields as (string | null)[];
      if (state !== "closed" && state !== "open" && state !== "half_open") continue;
      out.push({
        key: name.slice(head, name.length - "}:b".length),
        state,
        openUntil: state === "open" && openUntil ? Math.round(Number(openUntil) - this.offset) : undefined,
        consecutiveFailures: Number(consecutive ?? 0) || 0,
      });
    }
    return out;
  }

  // ---- internals ----

  /** A command with the store's timeout (see command-timeout.ts). */
  private readonly timed = <T>(p: Promise<T>, onLate?: (v: T) => void): Promise<T> => withTimeout(p, this.settings.commandTimeoutMs, onLate);

  private dispatch(message: string): void {
    const m = parseTransitionMessage(message);
    if (m === undefined) return;
    const cells = this.breakers.get(m.key);
    if (!cells) return;
    for (const c of cells) c.onMessage(m.state, m.openUntil, m.generation, m.freed);
  }

  private *allBreakers(): IterableIterator<RedisBreakerCell> {
    for (const [key, set] of this.breakers) {
      if (set.size === 0) this.breakers.delete(key);
      else yield* set;
    }
  }

  private resyncAll(): void {
    for (const c of this.allBreakers()) c.sync(true).catch(() => {});
  }

  private maintain(): void {
    if (!this.usable) return;
    this.refreshFleetSize().catch(() => {});
    const now = Date.now();
    for (const c of this.allBreakers()) if (c.needsSync(now, this.settings.resyncIntervalMs)) c.sync().catch(() => {});
  }

  private async refreshFleetSize(): Promise<void> {
    const r = (await this.timed(this.client.call("PUBSUB", "NUMSUB", this.channel))) as [string, number];
    const n = Number(r[1]);
    this._fleetSize = Number.isFinite(n) && n >= 1 ? n : 1;
  }

  private degrade(err: unknown): void {
    if (this._status === "closed" || this._status === "degraded") return;
    this._status = "degraded";
    this.stats.degradedEpisodes++;
    safely(() =>
      this.settings.logger.warn(
        { err: summarize(err), store: "redis" },
        "llm-resilience: Redis store unavailable; breaker and rate-limit state is local to this process until it returns",
      ),
    );
    safely(() => this.onDegraded?.(true, err));
    if (this.healthTimer === undefined) {
      this.healthTimer = setInterval(() => this.checkHealth(), this.settings.recoveryCheckMs);
      this.healthTimer.unref();
    }
  }

  /** Degraded on a live connection (timeouts): a fast PING starts the recovery. */
  private checkHealth(): void {
    if (this._status !== "degraded" || this.recovering || this.client.status !== "ready") return;
    this.timed(this.client.ping()).then(
      () => void this.recover(),
      () => {},
    );
  }

  private async recover(): Promise<void> {
    if (this.recovering || this._status === "closed" || this._status === "ready") return;
    this.recovering = true;
    try {
      await loadScripts(this.client, ALL_SCRIPTS, this.timed);
      await this.clock.calibrate(() => this.timed(this.client.time()) as Promise<[string | number, string | number]>);
      await this.refreshFleetSize();
      await Promise.all([...this.allBreakers()].map((c) => c.reconcile()));
      if ((this._status as RedisStoreStatus) === "closed") return;
      const wasDegraded = this._status === "degraded";
      this._status = "ready";
      if (this.healthTimer) clearInterval(this.healthTimer);
      this.healthTimer = undefined;
      this.lastError = undefined;
      const now = Date.now();
      for (const b of this.buckets) b.reconcile(now);
      for (const c of this.spends) c.reconcile();
      for (const c of this.allBreakers()) c.resume();
      for (const w of this.readyWaiters.splice(0)) w();
      if (wasDegraded) {
        this.stats.recoveries++;
        safely(() => this.settings.logger.info?.({ store: "redis" }, "llm-resilience: Redis store available again; state is shared"));
        safely(() => this.onDegraded?.(false));
      }
    } catch (err) {
      this.degrade(err);
    } finally {
      this.recovering = false;
    }
  }
}

/** Creates a store that shares breaker and rate-limit state through Redis (see RedisStore). */
export function createRedisStore(options: RedisStoreOptions = {}): RedisStore {
  return new RedisStore(options);
}

function summarize(err: unknown): unknown {
  return err instanceof Error ? { type: err.name, message: err.message } : err;
}
