import type { BreakerState, BreakerView } from "../policy/store.js";
import { knownPolicies } from "./key-policies.js";

/** One circuit breaker, for health checks and dashboards in code. */
export interface BreakerStatus {
  /** The contract's breaker key: `provider|address:port|model`. */
  readonly key: string;
  readonly provider: string;
  /** `address:port` of the API the breaker guards. */
  readonly server: string;
  readonly model: string | undefined;
  readonly state: BreakerState;
  /** While open: when calls are let through again (a probe), epoch ms. */
  readonly openUntil: number | undefined;
  readonly consecutiveFailures: number;
  /** Calls and failures in the ratio window, when the failure ratio is configured. */
  readonly window: { readonly calls: number; readonly failures: number } | undefined;
  /** Whose state this is: `redis` (the fleet's) or `local` (this process's, also while Redis is unreachable). */
  readonly store: "local" | "redis";
}

/** Worst first: a key with several breakers (per-client overrides) reports the one that rejects most. */
const SEVERITY: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/** The breakers this process knows, one per key, sorted by key. */
export function localBreakerStatuses(): BreakerStatus[] {
  const byKey = new Map<string, BreakerStatus>();
  for (const policies of knownPolicies()) {
    const view = policies.breakerView();
    if (!view) continue;
    const status = statusOf(policies.key, view);
    const seen = byKey.get(status.key);
    if (!seen || SEVERITY[status.state] > SEVERITY[seen.state]) byKey.set(status.key, status);
  }
  return [...byKey.values()].sort((a, b) => a.key.localeCompare(b.key));
}

/** A fleet breaker's state laid over what this process knows of that key (the fleet's is the truth). */
export function mergeFleet(
  local: readonly BreakerStatus[],
  fleet: readonly { key: string; state: BreakerState; openUntil: number | undefined; consecutiveFailures: number }[],
): BreakerStatus[] {
  const byKey = new Map(local.map((s) => [s.key, s] as const));
  for (const f of fleet) {
    const known = byKey.get(f.key);
    const view: BreakerView = {
      state: f.state,
      openUntil: f.openUntil,
      consecutiveFailures: f.consecutiveFailures,
      window: known?.window,
      store: "redis",
    };
    byKey.set(f.key, statusOf(f.key, view));
  }
  return [...byKey.values()].sort((a, b) => a.key.localeCompare(b.key));
}

function statusOf(key: string, view: BreakerView): BreakerStatus {
  const [provider = "", server = "", ...rest] = key.split("|");
  const model = rest.join("|");
  return { key, provider, server, model: model === "" ? undefined : model, ...view };
}
