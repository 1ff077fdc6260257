import type { ClientOverrides, Options } from "./config.js";
import type { StateStore } from "./policy/store.js";

/**
 * Process-wide state, kept on globalThis so that two copies of this package (CJS and ESM entry,
 * or two installed versions) share one registration and never patch or count twice.
 */
export interface Runtime {
  enabled: boolean;
  options: Options;
  clientOverrides: WeakMap<object, ClientOverrides>;
  /** Where the policies keep their state: in process, or the fleet's Redis. */
  store: StateStore;
  /** Clients that `instrument(client, false)` excluded. */
  excluded: WeakSet<object>;
  /** Hooks settled on first call (OTel SDK start decision). */
  beforeFirstCall?: () => void;
}

const KEY = Symbol.for("llm-resilience.runtime");
type Holder = { [KEY]?: Runtime };

export function getRuntime(): Runtime | undefined {
  return (globalThis as Holder)[KEY];
}

export function setRuntime(rt: Runtime | undefined): void {
  (globalThis as Holder)[KEY] = rt;
}
