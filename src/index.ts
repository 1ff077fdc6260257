import * as workerThreads from "node:worker_threads";
import { isMainThread, type MessagePort, parentPort } from "node:worker_threads";
import { type BreakerStatus, localBreakerStatuses, mergeFleet } from "./call/breaker-status.js";
import { type ClientOverrides, resolveOptions, type UserOptions, validateUserOptions } from "./config.js";
import { createRedisStore, type RedisStore, type RedisStoreOptions } from "./fleet/redis-store.js";
import { installAiSdkRequireHook, instrumentAiSdkEsmBuilds, uninstallAiSdkRequireHook } from "./instrumentation/ai-sdk.js";
import { watchSdkEvaluation } from "./instrumentation/evaluation-probe.js";
import { installEsmHook, installRequireHook, instrumentEsmBuilds, uninstallRequireHook } from "./instrumentation/hooks.js";
import { watchSdkRequests } from "./instrumentation/request-watch.js";
import { instrumentClientObject } from "./instrumentation/sdks.js";
import { localStore } from "./policy/local-store.js";
import { getRuntime, type Runtime, setRuntime } from "./runtime.js";
import { setStoreDegraded } from "./telemetry/instruments.js";
import { log, setLogger } from "./telemetry/logger.js";
import { flushProviders, prepareSdk, shutdownSdk, startSdkIfNeeded } from "./telemetry/sdk.js";

export type { BreakerStatus } from "./call/breaker-status.js";
export { withPolicies } from "./call/policy-scope.js";
export type {
  BreakerOptions,
  ClientOverrides,
  LogLevel,
  PolicyScope,
  RetryBudgetOptions,
  SpendLimitOptions,
  UserOptions as RegisterOptions,
} from "./config.js";
export { BreakerOpenError, ConfigError, DeadlineExceededError, InvalidRequestError, SpendLimitError } from "./errors.js";
export type { RedisStoreLogger, RedisStoreOptions, RedisStoreStatus } from "./fleet/redis-store.js";
export { createRedisStore, RedisStore } from "./fleet/redis-store.js";
export type {
  BreakerProbeDecision,
  BreakerRejectDecision,
  BreakerStateName,
  BreakerTransitionDecision,
  Decision,
  DecisionCall,
  DecisionListener,
  DecisionOf,
  DecisionType,
  FallbackDecision,
  GiveUpDecision,
  GiveUpReason,
  RateLimitWaitDecision,
  RetryDecision,
  SpendRejectDecision,
} from "./telemetry/decisions.js";
export { onDecision } from "./telemetry/decisions.js";
export { VERSION } from "./version.js";

/** The fleet-wide store installed by register() (LLM_RESILIENCE_REDIS_URL / redisUrl / redisClient). */
let fleetStore: RedisStore | undefined;

/**
 * Instruments every openai / @anthropic-ai/sdk client in the process. Reads the LLM_RESILIENCE_* and
 * OTEL_* variables; `options` win over them. Throws ConfigError on a bad setting. Calling it again
 * updates the options and patches nothing twice.
 */
export function register(options: UserOptions = {}): void {
  if (isLoaderThread()) return;
  const resolved = resolveOptions(options);
  const existing = getRuntime();
  setLogger(resolved.logger, resolved.logLevel);
  if (existing) {
    existing.options = resolved;
    existing.enabled = !resolved.disabled;
    if (!resolved.disabled) {
      installFleetStore(resolved);
      existing.store = fleetStore ?? localStore;
      installRequireHook(); // all idempotent: a runtime registered disabled gets its hooks now
      installAiSdkRequireHook();
      installEsmHook();
      watchSdkRequests();
    }
    return;
  }
  let settled = false;
  const rt: Runtime = {
    enabled: !resolved.disabled,
    options: resolved,
    store: localStore,
    clientOverrides: new WeakMap(),
    excluded: new WeakSet(),
    beforeFirstCall: () => {
      if (settled) return;
      settled = true;
      if (rt.options.startSdk) startSdkIfNeeded();
    },
  };
  setRuntime(rt);
  if (resolved.disabled) return;
  // Built now, so that no call pays for it; made global once the application's own OpenTelemetry
  // set-up, if any, has had the rest of this tick to register (or at the first call, if sooner).
  // Before the require hooks: the SDK's modules then load without passing through them.
  if (resolved.startSdk) prepareSdk();
  installFleetStore(resolved);
  rt.store = fleetStore ?? localStore;
  installRequireHook();
  installAiSdkRequireHook();
  installEsmHook();
  watchSdkRequests();
  setImmediate(() => rt.beforeFirstCall?.()).unref();
}

/** Creates the fleet's Redis store once, when configured; the runtime hands it to the policies. */
function installFleetStore(resolved: ReturnType<typeof resolveOptions>): void {
  if (fleetStore || (resolved.redisUrl === undefined && resolved.redisClient === undefined)) return;
  fleetStore = createRedisStore({
    url: resolved.redisUrl,
    client: resolved.redisClient as RedisStoreOptions["client"],
    logger: log(),
    onDegraded: (degraded) => setStoreDegraded(degraded),
  });
  setStoreDegraded(false);
}

/**
 * Instruments one client (also one whose SDK copy we could not hook) and sets per-client overrides;
 * `false` excludes the client. Returns the client.
 */
export function instrument<T extends object>(client: T, overrides: ClientOverrides | false = {}): T {
  if (!getRuntime()) register();
  const rt = getRuntime()!;
  if (overrides === false) {
    rt.excluded.add(client);
    return client;
  }
  validateUserOptions(overrides, "instrument()");
  rt.excluded.delete(client);
  rt.clientOverrides.set(client, overrides);
  instrumentClientObject(client);
  return client;
}

/** Flushes telemetry and stops the OpenTelemetry SDK if we started it. Calls keep working untraced. */
export async function shutdown(): Promise<void> {
  await flushProviders();
  await shutdownSdk();
  // Sends batched outcomes and corrections, gives rate-limit leases back; policies go on locally.
  await fleetStore?.close();
}

/**
 * The circuit breakers, one per key: those this process has used, and with the Redis store every
 * breaker the fleet keeps (Redis's state wins). While Redis is unreachable: what this process last
 * knew, and `store: "local"` where it decides on its own.
 */
export async function breakerStates(): Promise<BreakerStatus[]> {
  const local = localBreakerStatuses();
  if (!fleetStore?.usable) return local;
  const fleet = await fleetStore.fleetBreakers().catch(() => undefined);
  return fleet ? mergeFleet(local, fleet) : local;
}

/** A summary for a readiness or health endpoint. */
export interface HealthSummary {
  /** `ok`: no breaker open or half-open and the store reachable; `degraded` otherwise. */
  readonly status: "ok" | "degraded";
  readonly breakers: { readonly closed: number; readonly half_open: number; readonly open: number };
  /** The breakers rejecting calls now (open) or letting only probes through (half-open). */
  readonly unavailable: readonly BreakerStatus[];
  readonly store: { readonly kind: "local" | "redis"; readonly degraded: boolean };
}

export async function health(): Promise<HealthSummary> {
  const states = await breakerStates();
  const breakers = { closed: 0, half_open: 0, open: 0 };
  for (const b of states) breakers[b.state]++;
  const unavailable = states.filter((b) => b.state !== "closed");
  const store = { kind: fleetStore ? ("redis" as const) : ("local" as const), degraded: fleetStore !== undefined && !fleetStore.usable };
  return { status: unavailable.length === 0 && !store.degraded ? "ok" : "degraded", breakers, unavailable, store };
}

/**
 * Node runs `-r` / `--import` preloads again in its module-customization-hooks thread (Node >= 20.6
 * once any hook is registered). No SDK call runs there: registering there would start a second
 * OpenTelemetry SDK and chain our loader hook twice.
 */
export function isLoaderThread(): boolean {
  const wt = workerThreads as { isInternalThread?: boolean };
  if (wt.isInternalThread === true) return true;
  return !isMainThread && (parentPort as MessagePort | null) === null;
}

/** @internal used by the ESM register entry. */
export const _internal = {
  instrumentEsmBuilds: async (stopProbe?: () => string[]): Promise<void> => {
    await instrumentEsmBuilds(stopProbe);
    await instrumentAiSdkEsmBuilds();
  },
  watchSdkEvaluation,
  uninstallRequireHook: (): void => {
    uninstallRequireHook();
    uninstallAiSdkRequireHook();
  },
  isLoaderThread,
};
