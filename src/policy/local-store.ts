import { LocalBreakerCell } from "./local-breaker-cell.js";
import { LocalBucketCell } from "./local-bucket-cell.js";
import type { BreakerCell, BreakerSettings, BucketCell, BucketSettings, CellTransitionListener, StateStore } from "./store.js";

/**
 * In-process state, synchronous. Each call returns a fresh cell owned by the caller: the key only
 * matters to shared stores, and keeping a map here would duplicate the registries' bounded maps.
 */
export class LocalStore implements StateStore<"sync"> {
  readonly kind = "local" as const;
  breaker(_key: string, settings: BreakerSettings, onTransition: CellTransitionListener): BreakerCell<"sync"> {
    return new LocalBreakerCell(settings, onTransition);
  }
  bucket(_key: string, settings: BucketSettings): BucketCell<"sync"> {
    return new LocalBucketCell(settings);
  }
}

/** The shared default store. */
export const localStore: LocalStore = new LocalStore();
