import type { BreakerDecision, BreakerTransition, StoreKind } from "./store.js";

// Admissions without a transition are shared frozen objects: the closed-state hot path allocates nothing.
const ADMIT: Record<StoreKind, BreakerDecision> = {
  local: Object.freeze({ allowed: true, probe: false, store: "local" }),
  redis: Object.freeze({ allowed: true, probe: false, store: "redis" }),
};
const ADMIT_PROBE: Record<StoreKind, BreakerDecision> = {
  local: Object.freeze({ allowed: true, probe: true, store: "local" }),
  redis: Object.freeze({ allowed: true, probe: true, store: "redis" }),
};

/** The decisions every breaker cell hands out, whichever store decided. */
export function admitted(store: StoreKind, probe: boolean, transition?: BreakerTransition): BreakerDecision {
  if (transition !== undefined) return { allowed: true, probe, store, transition };
  return probe ? ADMIT_PROBE[store] : ADMIT[store];
}

/** Open: rejected until the end of the cooldown. */
export function rejectedOpen(openUntil: number, store: StoreKind): BreakerDecision {
  return { allowed: false, retryAtMs: openUntil, state: "open", store };
}

/** Half-open with every probe slot taken: nobody knows when they finish; if they fail, the next chance is a cooldown away. */
export function probesBusy(now: number, cooldownMs: number, store: StoreKind, transition?: BreakerTransition): BreakerDecision {
  const d = { allowed: false as const, retryAtMs: now + cooldownMs, state: "half_open" as const, store };
  return transition === undefined ? d : { ...d, transition };
}

/** Whether a half-open breaker admits one more probe: probes in flight and successes so far stay within K. */
export function probeSlotFree(inFlight: number, successes: number, probes: number): boolean {
  return inFlight + successes < probes;
}
