import { admitted, probesBusy, rejectedOpen } from "../policy/breaker-decisions.js";
import { type BreakerSnapshot, CLOSED_BREAKER, LocalBreakerCell } from "../policy/local-breaker-cell.js";
import type {
  BreakerCell,
  BreakerDecision,
  BreakerOutcome,
  BreakerSettings,
  BreakerState,
  BreakerTransition,
  BreakerView,
  CellTransitionListener,
  StoreKind,
} from "../policy/store.js";
import type { RedisHost } from "./redis-host.js";
import { BREAKER_ACQUIRE, BREAKER_MERGE_OPEN, BREAKER_RECORD, BREAKER_SYNC } from "./redis-scripts.js";

type TransitionWaiter = (t: BreakerTransition | undefined) => void;

/**
 * Closed-state outcomes not yet sent to the fleet, in the generation they were counted in. Times are
 * local; they are converted to the server clock when sent. Kept while Redis is unreachable, so that
 * what the local fallback counted reaches the fleet when it returns.
 */
interface Batch {
  /** Undefined: counted before this cell ever knew the shared state (adopts the first closed generation it learns). */
  gen: number | undefined;
  /** Local time of the batch's last success (0: none). */
  lastSuccessAt: number;
  /** Local times of the failures after it (the latest `consecutiveFailures` of them). */
  trailing: number[];
  /** Local window epoch → [calls, failures]; only kept when the failure ratio is on. */
  epochs: Map<number, [number, number]> | undefined;
  /** The calls whose failures are in the batch, waiting for what their flush decided (the last one gets the transition). */
  waiters: TransitionWaiter[];
}

const HALF_OPEN_BY_ACQUIRE: BreakerTransition = Object.freeze({ from: "open", to: "half_open", store: "redis" });

/**
 * One breaker key over Redis, with a local cache of the shared state so that the closed, healthy
 * path answers without a round trip (docs/fleet.md: consistency and staleness).
 *
 * - acquire: closed (cache trusted) → allowed at once; open and cooldown not over (server clock) →
 *   rejected at once; half-open with probes known busy → rejected at once (until a pub/sub message
 *   says a slot was freed, or halfOpenPollMs); otherwise one script run decides atomically.
 * - record: closed-state outcomes are batched; a failure asks for a flush on the next turn of the
 *   event loop (one flush in flight per cell, the next one carries what came meanwhile) and resolves
 *   with what that flush decided; successes go at the next flush tick. Probe outcomes are sent at
 *   once with the probe's token.
 * - Redis unusable: the breaker state machine (LocalBreakerCell) started from the last known shared
 *   state decides (`store: "local"`); its closed-state outcomes stay in the batch for the fleet.
 */
export class RedisBreakerCell implements BreakerCell<"async"> {
  // Cached shared state (server clock).
  private cState: BreakerState = "closed";
  private cOpenUntil = 0;
  private cGen = 0;
  private cConsecutive = 0;
  /** Local time the cache was last confirmed by a reply or message. */
  private verifiedAt = -Infinity;
  /** Local time until which half-open probes are known to be taken. */
  private busyUntil = 0;
  /** Last state reported to the listener. */
  private reported: BreakerState = "closed";
  /** Tokens of this process's probes in flight (FIFO; probes are interchangeable for counting). */
  private readonly tokens: string[] = [];
  /** Probe slots taken by acquires whose reply came after the timeout: nobody probes with them. */
  private orphans: string[] = [];
  private batch: Batch | undefined;
  private flushing = false;
  private syncing: Promise<void> | undefined;
  /** Decides while Redis is unusable. */
  private fallback: LocalBreakerCell | undefined;
  /** Generation known when the fallback took over (merge_open only onto state that did not move). */
  private fbKnownGen = 0;
  private readonly bucketMs: number;
  private readonly keys: string[];
  private readonly ttlMs: number;

  constructor(
    private readonly host: RedisHost,
    readonly key: string,
    private readonly s: BreakerSettings,
    private readonly onTransition: CellTransitionListener,
  ) {
    this.bucketMs = s.windowMs / s.windowBuckets;
    this.keys = [host.key(key, "b"), host.key(key, "p"), host.key(key, "w"), host.key(key, "f")];
    // Long enough that an expired hash is indistinguishable from a fresh closed breaker.
    this.ttlMs = Math.ceil(Math.max(s.windowMs, s.cooldownMs, host.cfg.probeTtlMs)) + 600_000;
  }

  get state(): BreakerState {
    return this.fallback !== undefined && !this.host.usable ? this.fallback.state : this.cState;
  }

  view(now: number): BreakerView {
    if (this.fallback !== undefined && !this.host.usable) return this.fallback.view(now);
    return {
      state: this.cState,
      openUntil: this.cState === "open" ? Math.round(this.cOpenUntil - this.host.offset) : undefined,
      consecutiveFailures: this.cConsecutive,
      window: undefined,
      store: "redis",
    };
  }

  acquire(now: number): BreakerDecision | Promise<BreakerDecision> {
    const h = this.host;
    if (!h.usable) return this.fallbackCell().acquire(now);
    switch (this.cState) {
      case "closed":
        // Never confirmed (a new cell): the first acquire asks Redis, the fleet may be open.
        if ((h.subscribed && this.verifiedAt !== -Infinity) || now - this.verifiedAt < h.cfg.maxStalenessMs) return admitted("redis", false);
        break;
      case "open":
        if (now + h.offset < this.cOpenUntil) return rejectedOpen(Math.round(this.cOpenUntil - h.offset), "redis");
        break;
      case "half_open":
        if (now < this.busyUntil) return probesBusy(now, this.s.cooldownMs, "redis");
        break;
    }
    return this.remoteAcquire(now);
  }

  record(now: number, outcome: BreakerOutcome, probe: boolean): BreakerTransition | undefined | Promise<BreakerTransition | undefined> {
    if (probe) {
      const token = this.tokens.shift();
      // Admitted by the local fallback.
      if (token === undefined) return this.fallback?.record(now, outcome, true);
      // Unreachable Redis: the slot is given back when it returns (or frees itself after probeTtlMs).
      if (!this.host.usable) {
        this.orphans.push(token);
        return undefined;
      }
      return this.send(token, outcome);
    }
    if (outcome === "neutral") return undefined;
    const failed = outcome === "failure";
    if (!this.host.usable) {
      if (this.cState === "closed") this.count(now, failed);
      return this.fallbackCell().record(now, outcome, false);
    }
    if (this.cState !== "closed") return undefined; // stale: admitted before the breaker left closed
    const b = this.count(now, failed);
    this.host.schedule(this, failed);
    return failed ? new Promise<BreakerTransition | undefined>((resolve) => b.waiters.push(resolve)) : undefined;
  }

  /** Sends the pending batch (one flush in flight at a time). */
  flush(): Promise<void> | undefined {
    const b = this.batch;
    if (b === undefined) return undefined;
    if (!this.host.usable) {
      // Kept for the fleet; its callers stop waiting (the fallback decides meanwhile).
      settle(b.waiters.splice(0), undefined);
      return undefined;
    }
    if (this.flushing) return undefined;
    this.batch = undefined;
    this.flushing = true;
    return this.recordScript(b, "", "")
      .then(
        (t) => {
          // The failure recorded last completed the count: the transition is its call's.
          const last = b.waiters.pop();
          settle(b.waiters, undefined);
          last?.(t);
        },
        () => settle(b.waiters, undefined), // degraded: the store switched to local state
      )
      .finally(() => {
        this.flushing = false;
        if (this.batch !== undefined) this.host.schedule(this, this.batch.trailing.length > 0);
      });
  }

  /** Confirms the cached state (background refresh; pub/sub may have lost a message). */
  sync(force = false): Promise<void> {
    if (!force && this.syncing) return this.syncing;
    const p = this.host
      .run(BREAKER_SYNC, [this.keys[0]!], [])
      .then((r) => this.applyReply(r, 1))
      .finally(() => {
        if (this.syncing === p) this.syncing = undefined;
      });
    this.syncing = p;
    return p;
  }

  needsSync(now: number, maxAgeMs: number): boolean {
    return now - this.verifiedAt >= maxAgeMs;
  }

  /**
   * Redis answers again (before the store is in use): give back orphaned probe slots, push a local
   * open state that the fleet may not know (only onto shared state that did not move meanwhile),
   * and read the shared state.
   */
  async reconcile(): Promise<void> {
    while (this.orphans.length > 0) {
      await this.recordScript(undefined, this.orphans[0]!, "neutral");
      this.orphans.shift();
    }
    const fb = this.fallback?.toJSON();
    if (fb !== undefined && fb.state !== "closed") {
      const until = fb.state === "open" ? fb.openUntil : Date.now();
      await this.host.run(
        BREAKER_MERGE_OPEN,
        [this.keys[0]!],
        [this.key, this.host.channel, Math.round(until + this.host.offset), this.fbKnownGen, this.ttlMs],
      );
    }
    const r = await this.host.run(BREAKER_SYNC, [this.keys[0]!], []);
    // Not forced: a message that arrived meanwhile may be newer than this reply.
    this.applyReply(r, 1);
  }

  /** The store is in use again: the fallback steps down, and what it counted goes to the fleet. */
  resume(): void {
    this.fallback = undefined;
    this.busyUntil = 0;
    // The listener saw the fallback's states; move it to the shared one.
    this.emit(this.cState, "redis");
    if (this.batch !== undefined) this.host.schedule(this, true);
  }

  /** A transition (or a freed probe slot) published by any process of the fleet. */
  onMessage(s: BreakerState, ou: number, g: number, freed: boolean): void {
    if (freed) {
      if (g >= this.cGen) this.busyUntil = 0;
      return;
    }
    this.apply(s, ou, g, false);
  }

  /** Adds an outcome to the batch (created in the current generation when there is none). */
  private count(now: number, failed: boolean): Batch {
    let b = this.batch;
    if (b === undefined) {
      const gen = this.verifiedAt === -Infinity && !this.host.usable ? undefined : this.cGen;
      b = { gen, lastSuccessAt: 0, trailing: [], epochs: this.s.failureRatio === undefined ? undefined : new Map(), waiters: [] };
      this.batch = b;
    }
    if (failed) {
      b.trailing.push(now);
      if (b.trailing.length > this.s.consecutiveFailures) b.trailing.shift();
    } else {
      b.lastSuccessAt = now;
      b.trailing.length = 0;
    }
    if (b.epochs) {
      const epoch = Math.floor(now / this.bucketMs);
      const e = b.epochs.get(epoch);
      if (e) {
        e[0]++;
        if (failed) e[1]++;
      } else {
        b.epochs.set(epoch, [1, failed ? 1 : 0]);
        // Outcomes older than the window say nothing any more (a long outage of Redis).
        for (const old of b.epochs.keys()) if (old <= epoch - this.s.windowBuckets) b.epochs.delete(old);
      }
    }
    return b;
  }

  private remoteAcquire(now: number): Promise<BreakerDecision> {
    const h = this.host;
    const token = h.newToken();
    // Timed out, fell back, but the script ran and took a probe slot: give it back at once (or
    // when Redis is back) rather than let it block the fleet's recovery for probeTtlMs.
    const onLate = (r: unknown[]) => {
      if (r[1] === 1 && r[2] === 1) this.releaseOrphan(token);
    };
    return h
      .run(
        BREAKER_ACQUIRE,
        [this.keys[0]!, this.keys[1]!],
        [this.key, h.channel, this.s.cooldownMs, this.s.halfOpenProbes, h.cfg.probeTtlMs, token, this.ttlMs],
        onLate,
      )
      .then((r): BreakerDecision => {
        this.applyReply(r, 3);
        // This acquire itself moved the fleet's breaker from open to half_open.
        const transition = r[7] === 1 ? HALF_OPEN_BY_ACQUIRE : undefined;
        if (r[1] === 1) {
          if (r[2] === 1) this.tokens.push(token);
          return admitted("redis", r[2] === 1, transition);
        }
        if (this.cState === "open") return rejectedOpen(Math.round(this.cOpenUntil - h.offset), "redis");
        this.busyUntil = Date.now() + h.cfg.halfOpenPollMs;
        return probesBusy(now, this.s.cooldownMs, "redis", transition);
      })
      .catch(() => this.fallbackCell().acquire(now));
  }

  private releaseOrphan(token: string): void {
    if (!this.host.usable) {
      this.orphans.push(token);
      return;
    }
    this.recordScript(undefined, token, "neutral").catch(() => this.orphans.push(token));
  }

  private send(token: string, outcome: BreakerOutcome): Promise<BreakerTransition | undefined> {
    return this.recordScript(undefined, token, outcome).catch(() => {
      /* degraded; the token expires by itself */
      return undefined;
    });
  }

  /** Runs the record script; resolves with the transition that run made, if any. */
  private recordScript(b: Batch | undefined, token: string, outcome: string): Promise<BreakerTransition | undefined> {
    const s = this.s;
    const offset = this.host.offset;
    const args: (string | number)[] = [
      this.key,
      this.host.channel,
      s.cooldownMs,
      s.halfOpenProbes,
      this.ttlMs,
      s.consecutiveFailures,
      s.failureRatio === undefined ? "" : s.failureRatio,
      s.windowBuckets,
      this.bucketMs,
      s.minimumCalls,
      b === undefined ? "" : (b.gen ?? this.cGen),
      b !== undefined && b.lastSuccessAt > 0 ? Math.round(b.lastSuccessAt + offset) : 0,
      this.host.newToken(),
      token,
      outcome,
      b?.trailing.length ?? 0,
    ];
    if (b) for (const t of b.trailing) args.push(Math.round(t + offset));
    if (b?.epochs) {
      for (const [epoch, [calls, failures]] of b.epochs) {
        // The bucket's middle on the server clock decides which server bucket it counts in.
        args.push(Math.floor(((epoch + 0.5) * this.bucketMs + offset) / this.bucketMs), calls, failures);
      }
    }
    return this.host.run(BREAKER_RECORD, this.keys, args).then((r) => {
      this.applyReply(r, 1);
      const from = r[5];
      return typeof from === "string" && from !== "" ? { from: from as BreakerState, to: String(r[1]) as BreakerState, store: "redis" } : undefined;
    });
  }

  /** Adopts {now, ..., s, ou, g, c} (state at index `at`) from a script's reply. */
  private applyReply(r: unknown[], at: number, force = false): void {
    this.apply(String(r[at]) as BreakerState, Number(r[at + 1]), Number(r[at + 2]), force, Number(r[at + 3]), Number(r[0]));
  }

  /**
   * What is newer wins. A generation is the server time of its transition and only grows, so a
   * message with g < cached is old. A script reply carries the server time it ran at: it is newer
   * than the cached transition when it ran after it (`serverNow > cached g`) — that also adopts a
   * restarted, empty Redis (g = 0) — and older otherwise, even when it arrives after a pub/sub
   * message (replies and messages come on different connections).
   */
  private apply(s: BreakerState, ou: number, g: number, force: boolean, c?: number, serverNow?: number): void {
    if (!force && g < this.cGen && !(serverNow !== undefined && serverNow > this.cGen)) return;
    this.verifiedAt = Date.now();
    if (c !== undefined) this.cConsecutive = c;
    if (g !== this.cGen || s !== this.cState) {
      if (s !== "half_open" || this.cState !== "half_open") this.busyUntil = 0;
      this.cState = s;
      this.cOpenUntil = ou;
      this.cGen = g;
    }
    const b = this.batch;
    if (b !== undefined) {
      // Outcomes counted before this cell knew the fleet belong to its current closed episode.
      if (b.gen === undefined && s === "closed") b.gen = g;
      else if (b.gen !== g || s !== "closed") {
        this.batch = undefined;
        settle(b.waiters, undefined);
      }
    }
    // While degraded, the fallback's state is what callers see.
    if (this.host.usable || this.fallback === undefined) this.emit(s, "redis");
  }

  private emit(to: BreakerState, store: StoreKind): void {
    if (to === this.reported) return;
    const from = this.reported;
    this.reported = to;
    this.onTransition({ from, to, store });
  }

  /** The local state machine, created on first use and started from the last known shared state. */
  private fallbackCell(): LocalBreakerCell {
    if (this.fallback !== undefined) return this.fallback;
    let seed: BreakerSnapshot;
    if (this.cState === "open") {
      seed = { ...CLOSED_BREAKER, state: "open", openUntil: this.cOpenUntil - this.host.offset };
    } else if (this.cState === "half_open") {
      seed = { ...CLOSED_BREAKER, state: "half_open" };
    } else {
      // Carry the fleet's consecutive count, short of tripping: the next failure may.
      seed = { ...CLOSED_BREAKER, consecutive: Math.min(this.knownConsecutive(), this.s.consecutiveFailures - 1) };
    }
    this.fbKnownGen = this.cGen;
    this.fallback = new LocalBreakerCell(this.s, (t) => this.emit(t.to, t.store), seed);
    return this.fallback;
  }

  /** The fleet's consecutive count as last known, with this process's outcomes not yet sent. */
  private knownConsecutive(): number {
    const b = this.batch;
    if (b === undefined || (b.gen !== undefined && b.gen !== this.cGen)) return this.cConsecutive;
    return (b.lastSuccessAt > 0 ? 0 : this.cConsecutive) + b.trailing.length;
  }
}

function settle(waiters: TransitionWaiter[], t: BreakerTransition | undefined): void {
  for (const w of waiters.splice(0)) w(t);
}
