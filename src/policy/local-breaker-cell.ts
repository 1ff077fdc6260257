import { SlidingWindow } from "./sliding-window.js";
import type { BreakerCell, BreakerDecision, BreakerOutcome, BreakerSettings, BreakerState, CellTransitionListener } from "./store.js";

// Admissions are shared frozen objects: the closed-state hot path allocates nothing.
const ALLOW: BreakerDecision = Object.freeze({ allowed: true, probe: false, store: "local" });
const ALLOW_PROBE: BreakerDecision = Object.freeze({ allowed: true, probe: true, store: "local" });

/**
 * The breaker state machine for one key, in process memory.
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
  state: BreakerState = "closed";
  private openUntil = 0;
  private consecutive = 0;
  private probesInFlight = 0;
  private probeSuccesses = 0;
  private readonly window: SlidingWindow | undefined;

  constructor(
    private readonly s: BreakerSettings,
    private readonly onTransition: CellTransitionListener,
  ) {
    this.window = s.failureRatio === undefined ? undefined : new SlidingWindow(s.windowMs, s.windowBuckets);
  }

  acquire(now: number): BreakerDecision {
    if (this.state === "closed") return ALLOW;
    if (this.state === "open") {
      if (now < this.openUntil) {
        return { allowed: false, retryAtMs: this.openUntil, state: "open", store: "local" };
      }
      this.probeSuccesses = 0;
      this.transition("half_open");
    }
    if (this.probesInFlight + this.probeSuccesses < this.s.halfOpenProbes) {
      this.probesInFlight++;
      return ALLOW_PROBE;
    }
    // Probes busy: nobody knows when they finish; if they fail, the next chance is a cooldown away.
    return { allowed: false, retryAtMs: now + this.s.cooldownMs, state: "half_open", store: "local" };
  }

  record(now: number, outcome: BreakerOutcome, probe: boolean): void {
    if (probe && this.probesInFlight > 0) this.probesInFlight--;
    if (this.state === "closed") {
      if (outcome === "success") {
        this.consecutive = 0;
        this.window?.add(now, false);
      } else if (outcome === "failure") {
        this.consecutive++;
        this.window?.add(now, true);
        if (this.consecutive >= this.s.consecutiveFailures || this.ratioTripped(now)) this.open(now);
      }
    } else if (this.state === "half_open" && probe) {
      if (outcome === "success") {
        if (++this.probeSuccesses >= this.s.halfOpenProbes) this.close();
      } else if (outcome === "failure") {
        this.open(now);
      }
    }
  }

  private ratioTripped(now: number): boolean {
    if (this.window === undefined) return false;
    const { calls, failures } = this.window.totals(now);
    return calls >= this.s.minimumCalls && failures >= this.s.failureRatio! * calls;
  }

  private open(now: number): void {
    this.openUntil = now + this.s.cooldownMs;
    this.probeSuccesses = 0;
    this.transition("open");
  }

  /** A fresh start: failures from before the outage must not re-trip the recovered breaker. */
  private close(): void {
    this.consecutive = 0;
    this.probeSuccesses = 0;
    this.window?.reset();
    this.transition("closed");
  }

  private transition(to: BreakerState): void {
    const from = this.state;
    this.state = to;
    this.onTransition(from, to);
  }
}
