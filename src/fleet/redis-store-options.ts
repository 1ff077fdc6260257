import type { Redis } from "ioredis";
import type { RedisCellConfig } from "./redis-host.js";

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

/** The options as the store runs with them: defaults filled in, validated once. */
export interface StoreSettings {
  readonly prefix: string;
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly reconnectMaxDelayMs: number;
  readonly flushIntervalMs: number;
  readonly resyncIntervalMs: number;
  readonly recoveryCheckMs: number;
  readonly cfg: RedisCellConfig;
  readonly logger: RedisStoreLogger;
}

const defaultLogger: RedisStoreLogger = {
  warn: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: "warn", msg, ...obj })}\n`),
  info: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: "info", msg, ...obj })}\n`),
};

/** Fills the defaults and rejects values the store cannot run with (RangeError naming the option). */
export function resolveStoreSettings(options: RedisStoreOptions): StoreSettings {
  const num = (name: keyof RedisStoreOptions, d: number, min = 0): number => {
    const v = (options[name] as number | undefined) ?? d;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min) throw new RangeError(`redis store ${name} must be a number >= ${min}, got ${v}`);
    return v;
  };
  const leaseFraction = num("leaseFraction", 0.05);
  if (leaseFraction > 1) throw new RangeError(`redis store leaseFraction must be in [0, 1], got ${leaseFraction}`);
  return {
    prefix: options.keyPrefix ?? "llmr:",
    commandTimeoutMs: num("commandTimeoutMs", 50, 1),
    connectTimeoutMs: num("connectTimeoutMs", 1000, 1),
    reconnectMaxDelayMs: num("reconnectMaxDelayMs", 2000, 1),
    flushIntervalMs: num("flushIntervalMs", 100, 1),
    resyncIntervalMs: num("resyncIntervalMs", 5000, 10),
    recoveryCheckMs: num("recoveryCheckMs", 500, 10),
    cfg: Object.freeze({
      probeTtlMs: num("probeTtlMs", 60_000, 1),
      halfOpenPollMs: num("halfOpenPollMs", 250),
      maxStalenessMs: num("maxStalenessMs", 1000),
      leaseFraction,
      leaseTtlMs: num("leaseTtlMs", 1000, 1),
    }),
    logger: options.logger ?? defaultLogger,
  };
}
