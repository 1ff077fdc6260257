import { resolveOptions, validateUserOptions, type ClientOverrides, type UserOptions } from "./config.js";
import { installRequireHook, instrumentEsmBuilds, uninstallRequireHook } from "./instrumentation/hooks.js";
import { instrumentClientObject } from "./instrumentation/sdks.js";
import { getRuntime, setRuntime, type Runtime } from "./runtime.js";
import { setLogger } from "./telemetry/logger.js";
import { flushProviders, shutdownSdk, startSdkIfNeeded } from "./telemetry/sdk.js";

export { BreakerOpenError, ConfigError, DeadlineExceededError } from "./errors.js";
export type { BreakerOptions, ClientOverrides, LogLevel, RetryBudgetOptions, UserOptions as RegisterOptions } from "./config.js";
export { VERSION } from "./version.js";

/**
 * Instruments every openai / @anthropic-ai/sdk client in the process. Reads the LLM_RESILIENCE_* and
 * OTEL_* variables; `options` win over them. Throws ConfigError on a bad setting. Calling it again
 * updates the options and patches nothing twice.
 */
export function register(options: UserOptions = {}): void {
  const resolved = resolveOptions(options);
  const existing = getRuntime();
  setLogger(resolved.logger, resolved.logLevel);
  if (existing) {
    existing.options = resolved;
    existing.enabled = !resolved.disabled;
    return;
  }
  let settled = false;
  const rt: Runtime = {
    enabled: !resolved.disabled,
    options: resolved,
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
  installRequireHook();
  // Give the application's own OpenTelemetry set-up, if any, the rest of this tick to register.
  setImmediate(() => rt.beforeFirstCall?.()).unref();
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
}

/** @internal used by the ESM register entry. */
export const _internal = { instrumentEsmBuilds, uninstallRequireHook };
