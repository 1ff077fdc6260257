import type { BreakerState } from "../policy/store.js";

/** What a script publishes on the store's channel: a transition, or a freed half-open probe slot (`freed`). */
export interface TransitionMessage {
  readonly key: string;
  readonly state: BreakerState;
  readonly openUntil: number;
  readonly generation: number;
  readonly freed: boolean;
}

/** The channel of a key prefix: every store with that prefix subscribes to it. */
export function transitionChannel(prefix: string): string {
  return `${prefix}breaker-events`;
}

/** A message as the scripts publish it (JSON `{k, s, ou, g, f?}`), or undefined for anything else. */
export function parseTransitionMessage(message: string): TransitionMessage | undefined {
  let m: { k?: unknown; s?: unknown; ou?: unknown; g?: unknown; f?: unknown };
  try {
    m = JSON.parse(message) as typeof m;
  } catch {
    return undefined;
  }
  if (typeof m.k !== "string") return undefined;
  const s = m.s;
  if (s !== "closed" && s !== "open" && s !== "half_open") return undefined;
  return { key: m.k, state: s, openUntil: Number(m.ou), generation: Number(m.g), freed: m.f === 1 };
}
