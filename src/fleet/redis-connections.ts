import type { Redis, RedisOptions } from "ioredis";
import type { StoreSettings } from "./redis-store-options.js";

export interface RedisConnections {
  /** Runs the scripts: the application's client, or our own. */
  readonly client: Redis;
  /** Subscribes to the transition channel (a duplicate of the client). */
  readonly sub: Redis;
  /** True when the client is ours (we connect and close it). */
  readonly ownClient: boolean;
}

/**
 * The store's connections, not yet connected. They never keep the application alive: our own
 * connections do not hold the event loop open (the application's client is left as it is).
 */
export function createConnections(url: string | undefined, appClient: Redis | undefined, s: StoreSettings): RedisConnections {
  let client: Redis;
  if (appClient) {
    client = appClient;
  } else {
    const redisOptions: RedisOptions = {
      // Fail fast instead of queueing while disconnected: the fallback decides meanwhile.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // No ioredis commandTimeout: it would fire after a blocked event loop even when the reply
      // had arrived; the store times commands itself (command-timeout.ts).
      connectTimeout: s.connectTimeoutMs,
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 10), s.reconnectMaxDelayMs),
      lazyConnect: true,
    };
    // Loaded here, not at import: an application without Redis never pays for ioredis (~100+ ms).
    const { Redis: RedisClient } = require("ioredis") as typeof import("ioredis");
    client = new RedisClient(url ?? "redis://127.0.0.1:6379", redisOptions);
  }
  const sub = client.duplicate({ enableOfflineQueue: true, commandTimeout: undefined, lazyConnect: true });
  const unref = (c: Redis) => () => (c as unknown as { stream?: { unref?: () => void } }).stream?.unref?.();
  if (!appClient) client.on("connect", unref(client));
  sub.on("connect", unref(sub));
  return { client, sub, ownClient: !appClient };
}
