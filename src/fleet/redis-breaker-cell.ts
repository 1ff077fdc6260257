import { LocalBreakerCell } from "../policy/local-breaker-cell.js";
import type {
  BreakerCell,
  BreakerDecision,
  BreakerOutcome,
  BreakerSettings,
  BreakerState,
  CellTransitionListener,
  StoreKind,
} from "../policy/store.js";
import type { RedisHost } from "./redis-host.js";
import { BREAKER_ACQUIRE, BREAKER_MERGE_OPEN, BREAKER_RECORD, BREAKER_SYNC } from "./redis-scripts.js";

const ALLOW: BreakerDecision = Object.freeze({ allowed: true, probe: false, store: "redis" });
const ALLOW_PROBE: BreakerDecision = Object.freeze({ allowed: true, probe: true, store: "redis" });

/** Closed-state outcomes counted since the last flush, in the generation they were counted in. */
interface Batch {
  gen: number;
  /** Server time of the batch's last success (0: none). */
  lastSuccessAt: number;
  /** Server times of the failures after it (the latest `consecutiveFailures` of them). */
  trailing: number[];
  /** window epoch → [calls, failures]; only kept when the failure ratio is on. */
  epochs: Map<number, [number, number]> | undefined;
}

/**
 * One breaker key over Redis, with a local cache of the shared state so that the closed, healthy
 * path answers without a round trip (see the staleness statement in redis-store.ts).
 *
 * - acquire: closed (cache trusted) → allowed at once; open and cooldown not over (server clock) →
 *   rejected at once; half-open with probes known busy → rejected at once (until a pub/sub message
 *   says a slot was freed, or halfOpenPollMs); otherwise one script run decides atomically.
 * - record: closed-state outcomes are batched; a failure asks for a flush on the next turn of the
 *   event loop (one flush in flight per cell, the next one carries what came meanwhile), successes
 *   go at the next flush tick. Probe outcomes are sent at once with the probe's token.
 * - Redis unusable: a LocalBreakerCell seeded from the last known state decides (`store: "local"`).
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
  // Degraded mode.
  private fallback: LocalBreakerCell | undefined;
  private fbOpenUntil = 0;
  private fbMuted = false;
  private fbNow = 0;
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

  acquire(now: number): BreakerDecision | Promise<BreakerDecision> {
    const h = this.host;
    if (!h.usable) return this.fallbackAcquire(now);
    switch (this.cState) {
      case "closed":
        // Never confirmed (a new cell): the first acquire asks Redis, the fleet may be open.
        if ((h.subscribed && this.verifiedAt !== -Infinity) || now - this.verifiedAt < h.cfg.maxStalenessMs) return ALLOW;
        break;
      case "open":
        if (now + h.offset < this.cOpenUntil) {
          return { allowed: false, retryAtMs: Math.round(this.cOpenUntil - h.offset), state: "open", store: "redis" };
        }
        break;
      case "half_open":
        if (now < this.busyUntil) return this.busy(now);
        break;
    }
    return this.remoteAcquire(now);
  }

  record(now: number, outcome: BreakerOutcome, probe: boolean): void | Promise<void> {
    if (probe) {
      const token = this.tokens.shift();
      if (token === undefined) {
        // Admitted by the local fallback.
        this.fbNow = now;
        this.fallback?.record(now, outcome, true);
        return;
      }
      // Unreachable Redis: the slot is given back when it returns (or frees itself after probeTtlMs).
      if (!this.host.usable) {
        this.orphans.push(token);
        return;
      }
      return this.send(token, outcome);
    }
    if (outcome === "neutral") return;
    if (!this.host.usable) {
      this.fbNow = now;
      this.fallbackCell(now).record(now, outcome, false);
      return;
    }
    if (this.cState !== "closed") return; // stale: admitted before the breaker left closed
    let b = this.batch;
    if (b === undefined || b.gen !== this.cGen) {
      b = this.batch = {
        gen: this.cGen,
        lastSuccessAt: 0,
        trailing: [],
        epochs: this.s.failureRatio === undefined ? undefined : new Map(),
      };
    }
    const failed = outcome === "failure";
    const at = Math.round(now + this.host.offset);
    if (failed) {
      b.trailing.push(at);
      if (b.trailing.length > this.s.consecutiveFailures) b.trailing.shift();
    } else {
      b.lastSuccessAt = at;
      b.trailing.length = 0;
    }
    if (b.epochs) {
      const epoch = Math.floor(at / this.bucketMs);
      const e = b.epochs.get(epoch);
      if (e) {
        e[0]++;
        if (failed) e[1]++;
      } else b.epochs.set(epoch, [1, failed ? 1 : 0]);
    }
    this.host.schedule(this, failed);
  }

  /** Sends the pending batch (one flush in flight at a time). */
  flush(): Promise<void> | undefined {
    if (this.flushing || this.batch === undefined || !this.host.usable) return undefined;
    const b = this.batch;
    this.batch = undefined;
    this.flushing = true;
    return this.recordScript(b, "", "")
      .catch(() => {
        /* degraded: the store switched to local state */
      })
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
   * Redis is back: push a local open state that the fleet may not know (only onto shared state
   * that did not move meanwhile), then adopt the shared state and drop the fallback.
   */
  async reconcile(): Promise<void> {
    while (this.orphans.length > 0) {
      await this.recordScript(undefined, this.orphans[0]!, "neutral");
      this.orphans.shift();
    }
    const fb = this.fallback;
    if (fb !== undefined && fb.state !== "closed") {
      const until = fb.state === "open" ? this.fbOpenUntil : Date.now();
      await this.host.run(
        BREAKER_MERGE_OPEN,
        [this.keys[0]!],
        [this.key, this.host.channel, Math.round(until + this.host.offset), this.fbKnownGen, this.ttlMs],
      );
    }
    const r = await this.host.run(BREAKER_SYNC, [this.keys[0]!], []);
    this.fallback = undefined;
    this.batch = undefined;
    this.busyUntil = 0;
    // Not forced: a message that arrived meanwhile may be newer than this reply.
    this.applyReply(r, 1);
    // The listener saw the fallback's states; move it to the shared one.
    this.emit(this.cState, "redis");
  }

  /** A transition (or a freed probe slot) published by any process of the fleet. */
  onMessage(s: BreakerState, ou: number, g: number, freed: boolean): void {
    if (freed) {
      if (g >= this.cGen) this.busyUntil = 0;
      return;
    }
    this.apply(s, ou, g, false);
  }

  private busy(now: number): BreakerDecision {
    // Probes busy: nobody knows when they finish; if they fail, the next chance is a cooldown away.
    return { allowed: false, retryAtMs: now + this.s.cooldownMs, state: "half_open", store: "redis" };
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
        if (r[1] === 1) {
          if (r[2] === 1) {
            this.tokens.push(token);
            return ALLOW_PROBE;
          }
          return ALLOW;
        }
        if (this.cState === "open") {
          return { allowed: false, retryAtMs: Math.round(this.cOpenUntil - h.offset), state: "open", store: "redis" };
        }
        this.busyUntil = Date.now() + h.cfg.halfOpenPollMs;
        return this.busy(now);
      })
      .catch(() => this.fallbackAcquire(now));
  }

  private releaseOrphan(token: string): void {
    if (!this.host.usable) {
      this.orphans.push(token);
      return;
    }
    this.recordScript(undefined, token, "neutral").catch(() => this.orphans.push(token));
  }

  private send(token: string, outcome: BreakerOutcome): Promise<void> {
    return this.recordScript(undefined, token, outcome).catch(() => {
      /* degraded; the token expires by itself */
    });
  }

  private recordScript(b: Batch | undefined, token: string, outcome: string): Promise<void> {
    const s = this.s;
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
      b === undefined ? "" : b.gen,
      b?.lastSuccessAt ?? 0,
      this.host.newToken(),
      token,
      outcome,
      b?.trailing.length ?? 0,
    ];
    if (b) args.push(...b.trailing);
    if (b?.epochs) for (const [epoch, [calls, failures]] of b.epochs) args.push(epoch, calls, failures);
    return this.host.run(BREAKER_RECORD, this.keys, args).then((r) => this.applyReply(r, 1));
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
      if (this.batch !== undefined && this.batch.gen !== g) this.batch = undefined;
    }
    // While degraded, the fallback's state is what callers see.
    if (this.host.usable || this.fallback === undefined) this.emit(s, "redis");
  }

  private emit(to: BreakerState, kind: StoreKind): void {
    if (to === this.reported) return;
    const from = this.reported;
    this.reported = to;
    this.host.reportAs(kind, () => this.onTransition(from, to));
  }

  private fallbackAcquire(now: number): BreakerDecision {
    this.fbNow = now;
    return this.fallbackCell(now).acquire(now);
  }

  /** The local fallback, created on first use and seeded from the last known shared state. */
  private fallbackCell(now: number): LocalBreakerCell {
    if (this.fallback !== undefined) return this.fallback;
    const s = this.s;
    const cell = new LocalBreakerCell(s, (_from, to) => {
      if (this.fbMuted) return;
      if (to === "open") this.fbOpenUntil = this.fbNow + s.cooldownMs;
      this.emit(to, "local");
    });
    this.fbKnownGen = this.cGen;
    this.fbMuted = true;
    try {
      if (this.cState !== "closed") {
        // open: the same cooldown end (local clock); half_open: probing may start at once.
        const until = this.cState === "open" ? this.cOpenUntil - this.host.offset : now;
        this.fbOpenUntil = until;
        for (let i = 0; i < s.consecutiveFailures; i++) cell.record(until - s.cooldownMs, "failure", false);
      } else {
        // Carry the fleet's consecutive count, short of tripping: the next failure may.
        const b = this.batch;
        const known = b?.gen === this.cGen ? (b.lastSuccessAt > 0 ? 0 : this.cConsecutive) + b.trailing.length : this.cConsecutive;
        let n = Math.min(known, s.consecutiveFailures - 1);
        if (s.failureRatio !== undefined) n = Math.min(n, s.minimumCalls - 1);
        for (let i = 0; i < n; i++) cell.record(now, "failure", false);
      }
    } finally {
      this.fbMuted = false;
    }
    this.batch = undefined;
    this.fallback = cell;
    return cell;
  }
}
