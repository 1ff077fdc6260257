import { admitted, probeSlotFree, probesBusy, rejectedOpen } from "./breaker-decisions.js";
import { SlidingWindow, type WindowSnapshot } from "./sliding-window.js";
import type {
  BreakerCell,
  BreakerDecision,
  BreakerOutcome,
  BreakerSettings,
  BreakerState,
  BreakerTransition,
  BreakerView,
  CellTransitionListener,
} from "./store.js";

/** A breaker's whole state as plain JSON: what `toJSON()` gives and what a cell can start from. */
export interface BreakerSnapshot {
  readonly state: BreakerState;
  /** End of the cooldown (epoch ms) while open. */
  readonly openUntil: number;
  /** Counted failures in a row (closed). */
  readonly consecutive: number;
  readonly probesInFlight: number;
  /** Probe successes of this half-open episode. */
  readonly probeSuccesses: number;
  /** The failure-ratio window, when the ratio is on. */
  readonly window?: WindowSnapshot;
}

export const CLOSED_BREAKER: BreakerSnapshot = Object.freeze({ state: "closed", openUntil: 0, consecutive: 0, probesInFlight: 0, probeSuccesses: 0 });

/**
 * The breaker state machine for one key, in process memory. It serves the local store and the Redis
 * store's fallback alike (which starts it from the last state it knew of the fleet).
 *
 * - closed: every call is allowed; counted failures open it (consecutive count, or failure ratio
 *   over the sliding window once `minimumCalls` calls are in it).
 * - open: calls are rejected until `openUntil`; the next acquire after that moves to half_open.
 * - half_open: admits `halfOpenProbes` (K) probes; K probe successes close it, any counted probe
 *   failure re-opens it with a fresh cooldown.
 *
 * Outcomes that do not match the state are stale and ignored: a call admitted while closed that
 * finishes after the breaker opened says nothing about the recovery being probed. `probesInFlight`
 * is exact across episodes (every probe reports once), so a slow probe of an earlier half-open
 * episode still occupies a slot and K is never exceeded.
 */
export class LocalBreakerCell implements BreakerCell<"sync"> {
  state: BreakerState;
  private openUntil: number;
  private consecutive: number;
  private probesInFlight: number;
  private probeSuccesses: number;
  private readonly window: SlidingWindow | undefined;

  constructor(
    private readonly s: BreakerSettings,
    private readonly onTransition: CellTransitionListener,
    initial: BreakerSnapshot = CLOSED_BREAKER,
  ) {
    this.state = initial.state;
    this.openUntil = initial.openUntil;
    this.consecutive = initial.consecutive;
    this.probesInFlight = initial.probesInFlight;
    this.probeSuccesses = initial.probeSuccesses;
    this.window = s.failureRatio === undefined ? undefined : new SlidingWindow(s.windowMs, s.windowBuckets, initial.window);
  }

  acquire(now: number): BreakerDecision {
    if (this.state === "closed") return admitted("local", false);
    let transition: BreakerTransition | undefined;
    if (this.state === "open") {
      if (now < this.openUntil) return rejectedOpen(this.openUntil, "local");
      this.probeSuccesses = 0;
      transition = this.transition("half_open");
    }
    if (probeSlotFree(this.probesInFlight, this.probeSuccesses, this.s.halfOpenProbes)) {
      this.probesInFlight++;
      return admitted("local", true, transition);
    }
    return probesBusy(now, this.s.cooldownMs, "local", transition);
  }

  record(now: number, outcome: BreakerOutcome, probe: boolean): BreakerTransition | undefined {
    if (probe && this.probesInFlight > 0) this.probesInFlight--;
    if (this.state === "closed") {
      if (outcome === "success") {
        this.consecutive = 0;
        this.window?.add(now, false);
      } else if (outcome === "failure") {
        this.consecutive++;
        this.window?.add(now, true);
        if (this.consecutive >= this.s.consecutiveFailures || this.ratioTripped(now)) return this.open(now);
      }
    } else if (this.state === "half_open" && probe) {
      if (outcome === "success") {
        if (++this.probeSuccesses >= this.s.halfOpenProbes) return this.close();
      } else if (outcome === "failure") {
        return this.open(now);
      }
    }
    return undefined;
  }

  view(now: number): BreakerView {
    return {
      state: this.state,
      openUntil: this.state === "open" ? this.openUntil : undefined,
      consecutiveFailures: this.consecutive,
      window: this.window?.totals(now),
      store: "local",
    };
  }

  toJSON(): BreakerSnapshot {
    const snapshot = {
      state: this.state,
      openUntil: this.openUntil,
      consecutive: this.consecutive,
      probesInFlight: this.probesInFlight,
      probeSuccesses: this.probeSuccesses,
    };
    return this.window === undefined ? snapshot : { ...snapshot, window: this.window.toJSON() };
  }

  private ratioTripped(now: number): boolean {
    if (this.window === undefined) return false;
    const { calls, failures } = this.window.totals(now);
    return calls >= this.s.minimumCalls && failures >= this.s.failureRatio! * calls;
  }

  private open(now: number): BreakerTransition {
    this.openUntil = now + this.s.cooldownMs;
    this.probeSuccesses = 0;
    return this.transition("open");
  }

  /** A fresh start: failures from before the outage must not re-trip the recovered breaker. */
  private close(): BreakerTransition {
    this.consecutive = 0;
    this.probeSuccesses = 0;
    this.window?.reset();
    return this.transition("closed");
  }

  private transition(to: BreakerState): BreakerTransition {
    const t: BreakerTransition = { from: this.state, to, store: "local" };
    this.state = to;
    this.onTransition(t);
    return t;
  }
}
