import { randomBytes } from "node:crypto";
import type { Redis, RedisOptions } from "ioredis";
import type { SpendCell, SpendSettings, SpendStore } from "../policy/spend-cell.js";
import type { BreakerCell, BreakerSettings, BreakerState, BucketCell, BucketSettings, CellTransitionListener, StateStore } from "../policy/store.js";
import { RedisBreakerCell } from "./redis-breaker-cell.js";
import { RedisBucketCell } from "./redis-bucket-cell.js";
import { type RedisCellConfig, type RedisHost, WeakSetOf } from "./redis-host.js";
import { ALL_SCRIPTS, type LuaScript } from "./redis-scripts.js";
import { RedisSpendCell } from "./redis-spend-cell.js";

/*
 * ## Fleet-wide state through Redis: consistency and staleness
 *
 * With `createRedisStore(...)` the breaker, the retry budget and the rate limits of a key are
 * shared by every process using the same Redis and key prefix. Each policy event that needs the
 * fleet's agreement is one Lua script run (atomic, one round trip, server clock); everything else
 * is answered from a local cache so that a healthy call pays no round trip:
 *
 * - Closed breaker: `acquire` answers from the cache. Opening is learned by pub/sub (the script
 *   that opens the breaker PUBLISHes; one Redis → client hop, well under a millisecond on a LAN)
 *   and from the reply to each of the process's own flushes. Bound: after the fleet opens, a
 *   process admits calls for at most the pub/sub delivery delay. When the subscription is down
 *   the cache is trusted for at most `maxStalenessMs` (1 s) since its last confirmation, after
 *   which `acquire` asks Redis; every cache is re-read after a re-subscription, and every
 *   `resyncIntervalMs` (5 s) in the background.
 * - Outcomes: closed-state failures are sent on the next turn of the event loop (one flush in
 *   flight per key and process; the next carries what came meanwhile), successes at most
 *   `flushIntervalMs` (100 ms) later. The fleet's failure count lags by one round trip per
 *   process, so the breaker opens after the fleet-wide threshold plus at most the failures in
 *   flight during that round trip. "Consecutive" is decided in event time across the fleet (each
 *   outcome carries its time on the server clock), so a batched success only cancels the failures
 *   that happened before it; events closer together than the clock-offset error (≈ half a round
 *   trip) may be ordered either way.
 * - Open breaker: rejections answer from the cache until `openUntil` (server clock, shared by the
 *   fleet; the client's offset to it is estimated from every reply, error ≈ half a round trip).
 * - Half-open: every admission is a script run; at most K probes are in flight in the whole
 *   fleet (tokens in a sorted set that expire after `probeTtlMs`, 60 s: a probe that dies with its
 *   process frees its slot then; a probe that outlives it may let one more in). A process that
 *   was refused keeps refusing locally for `halfOpenPollMs` (250 ms) or until a message says a
 *   slot was freed or the state changed.
 * - Rate limits: each process spends from a lease taken from the shared bucket (5 % of the
 *   limit, fetched in the background when half spent, unused leases given back after 1 s). Leased
 *   units have left the shared bucket, so the fleet cannot spend more than the limit through
 *   leases; it may wait early by at most the other processes' unspent leases. Corrections from
 *   reported usage are exact inside a lease; beyond it a debit (usage above the estimate) is sent
 *   on the next turn of the event loop, a refund within `flushIntervalMs`, so the limit can be
 *   overshot by the usage above estimate of the calls in flight plus one round trip's worth
 *   (locally: of the calls in flight).
 *   The retry budget is shared per key; its refills are batched the same way.
 *
 * Redis is never a new way to fail: a command error or a timeout (`commandTimeoutMs`, 50 ms) marks
 * the store degraded (one warning, `onDegraded(true, err)`), and each cell decides with a local
 * fallback seeded from the last state it knew (an open breaker stays open until the same
 * `openUntil`; a rate limit keeps this process's share, limit / number of store instances last
 * seen subscribed). Decisions say `store: "local"`. When Redis answers again (reconnection, or a
 * successful PING for a slow server), the scripts are loaded again, each breaker pushes an open
 * fallback state that the fleet missed (only onto shared state that did not move meanwhile; open
 * wins, the later `openUntil` wins), adopts the shared state, buckets debit what their fallback
 * spent, and `onDegraded(false)` is called. A flushed script cache (restart, `SCRIPT FLUSH`) is
 * handled by re-loading on NOSCRIPT.
 */

/** A pino-like logger; only `warn` is required. */
export interface RedisStoreLogger {
  warn(obj: object, msg: string): void;
  info?(obj: object, msg: string): void;
}

export interface RedisStoreOptions {
  /** `redis://` or `rediss://` URL (default redis://127.0.0.1:6379); ignored when `client` is given. */
  url?: string;
  /** An ioredis client of the application's. It is used as is (never closed by the store); a
   * duplicate of it subscribes to the transition channel. */
  client?: Redis;
  /** Prefix of every key and of the channel (default `llmr:`). Processes share state when equal. */
  keyPrefix?: string;
  /** A Redis command slower than this counts as Redis unavailable (default 50 ms). */
  commandTimeoutMs?: number;
  /** Connection timeout of the store's own client (default 1000 ms). */
  connectTimeoutMs?: number;
  /** Longest delay between reconnection attempts of the store's own client (default 2000 ms). */
  reconnectMaxDelayMs?: number;
  /** While degraded by timeouts on a live connection, Redis is pinged this often (default 500 ms). */
  recoveryCheckMs?: number;
  /** Batched outcomes and corrections are sent at least this often (default 100 ms). */
  flushIntervalMs?: number;
  /** Background re-read of cached breaker states and of the fleet size (default 5000 ms). */
  resyncIntervalMs?: number;
  /** Without a live subscription, a cached closed state is trusted this long (default 1000 ms). */
  maxStalenessMs?: number;
  /** A half-open probe's slot frees itself after this if its outcome never comes (default 60 s). */
  probeTtlMs?: number;
  /** A process refused while probes are busy asks Redis again after this (default 250 ms). */
  halfOpenPollMs?: number;
  /** Lease size as a fraction of a rate limit (default 0.05). */
  leaseFraction?: number;
  /** An unused lease goes back to the shared bucket after this (default 1000 ms). */
  leaseTtlMs?: number;
  /** One warning per degraded episode (default: a line on stderr). */
  logger?: RedisStoreLogger;
  /** Called when the store starts and stops deciding locally (wire to `llm_resilience.store.degraded`). */
  onDegraded?: (degraded: boolean, err?: unknown) => void;
}

export type RedisStoreStatus = "connecting" | "ready" | "degraded" | "closed";

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

class RedisStoreTimeoutError extends Error {
  constructor(ms: number) {
    super(`Redis command timed out after ${ms} ms`);
    this.name = "RedisStoreTimeoutError";
  }
}

const defaultLogger: RedisStoreLogger = {
  warn: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: "warn", msg, ...obj })}\n`),
  info: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: "info", msg, ...obj })}\n`),
};

/**
 * Breaker, retry-budget and rate-limit state shared by a fleet through Redis (see the statement
 * above for what is shared how, and how stale a process's view can be). Results are plain values
 * when answered locally and Promises after a round trip; the policies pass both through.
 */
export class RedisStore implements StateStore<"async">, SpendStore<"async">, RedisHost {
  readonly channel: string;
  readonly cfg: RedisCellConfig;
  readonly stats: RedisStoreStats = { commands: 0, scriptReloads: 0, degradedEpisodes: 0, recoveries: 0 };
  private _status: RedisStoreStatus = "connecting";
  private _subscribed = false;
  private _offset = 0;
  /** Round trip of the sample the offset rests on, and when it was taken (local ms). */
  private offsetRtt = Infinity;
  private offsetAt = 0;
  private _fleetSize = 1;
  private recovering = false;
  private seq = 0;
  private readonly id = `${process.pid.toString(36)}-${randomBytes(4).toString("hex")}`;
  private readonly client: Redis;
  private readonly sub: Redis;
  private readonly ownClient: boolean;
  private readonly prefix: string;
  private readonly commandTimeoutMs: number;
  private readonly flushIntervalMs: number;
  private readonly resyncIntervalMs: number;
  private readonly recoveryCheckMs: number;
  private readonly logger: RedisStoreLogger;
  private readonly onDegraded: ((degraded: boolean, err?: unknown) => void) | undefined;
  private readonly breakers = new Map<string, WeakSetOf<RedisBreakerCell>>();
  private readonly buckets = new WeakSetOf<RedisBucketCell>();
  private readonly spends = new WeakSetOf<RedisSpendCell>();
  private readonly dirty = new Set<{ flush(): Promise<void> | undefined | void }>();
  private readonly leaseHolders = new Set<{ expireLease(now: number): boolean }>();
  private immediate: NodeJS.Immediate | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private readonly maintenanceTimer: NodeJS.Timeout;
  private lastError: unknown;
  private readyWaiters: Array<() => void> = [];

  constructor(options: RedisStoreOptions = {}) {
    const num = (name: keyof RedisStoreOptions, d: number, min = 0): number => {
      const v = (options[name] as number | undefined) ?? d;
      if (typeof v !== "number" || !Number.isFinite(v) || v < min) throw new RangeError(`redis store ${name} must be a number >= ${min}, got ${v}`);
      return v;
    };
    this.commandTimeoutMs = num("commandTimeoutMs", 50, 1);
    this.flushIntervalMs = num("flushIntervalMs", 100, 1);
    this.resyncIntervalMs = num("resyncIntervalMs", 5000, 10);
    this.recoveryCheckMs = num("recoveryCheckMs", 500, 10);
    const leaseFraction = num("leaseFraction", 0.05);
    if (leaseFraction > 1) throw new RangeError(`redis store leaseFraction must be in [0, 1], got ${leaseFraction}`);
    this.cfg = Object.freeze({
      probeTtlMs: num("probeTtlMs", 60_000, 1),
      halfOpenPollMs: num("halfOpenPollMs", 250),
      maxStalenessMs: num("maxStalenessMs", 1000),
      leaseFraction,
      leaseTtlMs: num("leaseTtlMs", 1000, 1),
    });
    this.prefix = options.keyPrefix ?? "llmr:";
    this.channel = `${this.prefix}breaker-events`;
    this.logger = options.logger ?? defaultLogger;
    this.onDegraded = options.onDegraded;

    const reconnectMax = num("reconnectMaxDelayMs", 2000, 1);
    if (options.client) {
      this.ownClient = false;
      this.client = options.client;
    } else {
      this.ownClient = true;
      const redisOptions: RedisOptions = {
        // Fail fast instead of queueing while disconnected: the fallback decides meanwhile.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        // No ioredis commandTimeout: it would fire after a blocked event loop even when the reply
        // had arrived; the store times commands itself (see timed()).
        connectTimeout: num("connectTimeoutMs", 1000, 1),
        retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 10), reconnectMax),
        lazyConnect: true,
      };
      // Loaded here, not at import: an application without Redis never pays for ioredis (~100+ ms).
      const { Redis: RedisClient } = require("ioredis") as typeof import("ioredis");
      this.client = new RedisClient(options.url ?? "redis://127.0.0.1:6379", redisOptions);
    }
    this.sub = this.client.duplicate({ enableOfflineQueue: true, commandTimeout: undefined, lazyConnect: true });

    // The store must never keep the application alive: its own connections do not hold the event
    // loop open (the application's client is left as it is).
    const unref = (c: Redis) => () => (c as unknown as { stream?: { unref?: () => void } }).stream?.unref?.();
    if (this.ownClient) this.client.on("connect", unref(this.client));
    this.sub.on("connect", unref(this.sub));
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

    this.maintenanceTimer = setInterval(() => this.maintain(), this.resyncIntervalMs);
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
    return this._offset;
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
      for (const c of this.leaseHolders) c.expireLease(Infinity);
      this.leaseHolders.clear();
      const pending = [...this.dirty];
      this.dirty.clear();
      await Promise.allSettled(pending.map((c) => c.flush()));
      await this.drain();
    }
    this._status = "closed";
    for (const t of [this.flushTimer, this.leaseTimer, this.healthTimer, this.maintenanceTimer]) if (t) clearTimeout(t);
    if (this.immediate) clearImmediate(this.immediate);
    this.sub.disconnect();
    if (this.ownClient) this.client.disconnect();
  }

  // ---- RedisHost ----

  run(script: LuaScript, keys: string[], args: (string | number)[], onLate?: (reply: unknown[]) => void): Promise<unknown[]> {
    if (this._status === "closed") return Promise.reject(new Error("Redis store closed"));
    this.stats.commands++;
    const t0 = Date.now();
    return this.evalsha(script, keys, args, onLate).then(
      (r) => {
        this.sampleOffset(t0, Date.now(), Number(r[0]));
        return r;
      },
      (err: unknown) => {
        this.degrade(err);
        throw err;
      },
    );
  }

  schedule(cell: { flush(): void }, soon: boolean): void {
    this.dirty.add(cell);
    if (soon) {
      this.immediate ??= setImmediate(() => this.flushDirty());
    } else if (this.flushTimer === undefined) {
      this.flushTimer = setTimeout(() => this.flushDirty(), this.flushIntervalMs);
      this.flushTimer.unref();
    }
  }

  leasing(cell: { expireLease(now: number): boolean }): void {
    this.leaseHolders.add(cell);
    if (this.leaseTimer === undefined) {
      this.leaseTimer = setTimeout(() => this.expireLeases(), this.cfg.leaseTtlMs / 2);
      this.leaseTimer.unref();
    }
  }

  key(key: string, suffix: string): string {
    return `${this.prefix}{${key}}:${suffix}`;
  }

  newToken(): string {
    return `${this.id}:${++this.seq}`;
  }

  // ---- internals ----

  private async evalsha(s: LuaScript, keys: string[], args: (string | number)[], onLate?: (reply: unknown[]) => void): Promise<unknown[]> {
    const late = onLate as ((v: unknown) => void) | undefined;
    try {
      return (await this.timed(this.client.evalsha(s.sha, s.numberOfKeys, ...keys, ...args), late)) as unknown[];
    } catch (err) {
      if (!(err instanceof Error) || !err.message.includes("NOSCRIPT")) throw err;
      // The server lost its script cache (restart, SCRIPT FLUSH): load it again.
      this.stats.scriptReloads++;
      await this.timed(this.client.script("LOAD", s.lua));
      return (await this.timed(this.client.evalsha(s.sha, s.numberOfKeys, ...keys, ...args), late)) as unknown[];
    }
  }

  private timed<T>(p: Promise<T>, onLate?: (v: T) => void): Promise<T> {
    const ms = this.commandTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      let timedOut = false;
      // After a blocked event loop, timers run before the poll phase reads replies that arrived
      // meanwhile: the rejection waits for the check phase so that such a reply still wins.
      const t = setTimeout(
        () =>
          setImmediate(() => {
            timedOut = true;
            reject(new RedisStoreTimeoutError(ms));
          }),
        ms,
      );
      p.then(
        (v) => {
          clearTimeout(t);
          if (timedOut) safely(() => onLate?.(v));
          else resolve(v);
        },
        (e: unknown) => {
          clearTimeout(t);
          reject(e);
        },
      );
    });
  }

  /**
   * Server clock minus local clock. The estimate rests on the sample with the shortest round trip
   * (error <= half of it); that sample ages by 1 ms per 10 s so that clock drift is followed, and
   * samples nearly as good are averaged in.
   */
  private sampleOffset(t0: number, t1: number, server: number): void {
    if (!Number.isFinite(server)) return;
    const rtt = t1 - t0;
    const sample = server - (t0 + t1) / 2;
    const best = this.offsetRtt + (t1 - this.offsetAt) / 10_000;
    if (rtt < best) {
      this._offset = sample;
      this.offsetRtt = rtt;
      this.offsetAt = t1;
    } else if (rtt <= best + 2) {
      this._offset += 0.3 * (sample - this._offset);
    }
  }

  /** A few TIME round trips (microsecond resolution) on (re)connection. */
  private async calibrate(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      const t0 = performance.timeOrigin + performance.now();
      const [sec, usec] = (await this.timed(this.client.time())) as [string | number, string | number];
      const t1 = performance.timeOrigin + performance.now();
      this.sampleOffset(t0, t1, Number(sec) * 1000 + Number(usec) / 1000);
    }
  }

  private flushDirty(): void {
    if (this.immediate) clearImmediate(this.immediate);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.immediate = undefined;
    this.flushTimer = undefined;
    const cells = [...this.dirty];
    this.dirty.clear();
    for (const c of cells) c.flush();
  }

  /** Waits (briefly) until no flush is pending. */
  private async drain(): Promise<void> {
    for (let i = 0; i < 20 && this.dirty.size > 0; i++) {
      this.flushDirty();
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 2 * this.commandTimeoutMs));
  }

  private expireLeases(): void {
    this.leaseTimer = undefined;
    const now = Date.now();
    for (const c of this.leaseHolders) if (!c.expireLease(now)) this.leaseHolders.delete(c);
    if (this.leaseHolders.size > 0 && this._status !== "closed") {
      this.leaseTimer = setTimeout(() => this.expireLeases(), this.cfg.leaseTtlMs / 2);
      this.leaseTimer.unref();
    }
  }

  private dispatch(message: string): void {
    let m: { k?: unknown; s?: unknown; ou?: unknown; g?: unknown; f?: unknown };
    try {
      m = JSON.parse(message) as typeof m;
    } catch {
      return;
    }
    if (typeof m.k !== "string") return;
    const cells = this.breakers.get(m.k);
    if (!cells) return;
    const s = m.s as BreakerState;
    if (s !== "closed" && s !== "open" && s !== "half_open") return;
    for (const c of cells) c.onMessage(s, Number(m.ou), Number(m.g), m.f === 1);
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
    for (const c of this.allBreakers()) if (c.needsSync(now, this.resyncIntervalMs)) c.sync().catch(() => {});
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
      this.logger.warn(
        { err: summarize(err), store: "redis" },
        "llm-resilience: Redis store unavailable; breaker and rate-limit state is local to this process until it returns",
      ),
    );
    safely(() => this.onDegraded?.(true, err));
    if (this.healthTimer === undefined) {
      this.healthTimer = setInterval(() => this.checkHealth(), this.recoveryCheckMs);
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
      for (const s of ALL_SCRIPTS) await this.timed(this.client.script("LOAD", s.lua));
      await this.calibrate();
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
        safely(() => this.logger.info?.({ store: "redis" }, "llm-resilience: Redis store available again; state is shared"));
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

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    /* a broken logger or callback must not break the call path */
  }
}

function summarize(err: unknown): unknown {
  return err instanceof Error ? { type: err.name, message: err.message } : err;
}
