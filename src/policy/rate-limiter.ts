import { type Clock, systemClock } from "./clock.js";
import type { Deadline } from "./deadline.js";
import { localStore } from "./local-store.js";
import { type BucketCell, isPromiseLike, type StateStore, type StoreKind, type StoreMode, type StoreResult } from "./store.js";

/** The contract's `llm_resilience.ratelimit.kind`. */
type RateLimitKind = "requests" | "tokens";

export interface RateLimitReservation {
  /** How long to wait before sending (ms, integer). */
  readonly waitMs: number;
  /** The limit that imposed the wait; absent when `waitMs` is 0. */
  readonly kind?: RateLimitKind;
  /** False when the deadline does not allow the wait: nothing was reserved, the caller should not send. */
  readonly granted: boolean;
  readonly store: StoreKind;
}

/** The provider's rate-limit headers, already parsed (remaining counts, ms until full reset). */
export interface ServerRateLimit {
  remainingRequests?: number;
  remainingTokens?: number;
  resetRequestsMs?: number;
  resetTokensMs?: number;
}

export interface RateLimiterOptions<M extends StoreMode = "sync"> {
  /** Requests per minute; no request limit when undefined. */
  requestsPerMinute?: number;
  /** Tokens (input + output) per minute; no token limit when undefined. */
  tokensPerMinute?: number;
  clock?: Clock;
  store?: StateStore<M>;
}

const MINUTE_MS = 60_000;

/**
 * A client-side limiter for one key: token buckets with capacity = the per-minute limit, refilled
 * continuously. `reserve` takes from the buckets at once, so concurrent callers queue fairly: each
 * reservation pushes the next caller's wait further.
 */
export class RateLimiter<M extends StoreMode = "sync"> {
  readonly store: StoreKind;
  /** False when neither limit is set: `reserve` returns a zero wait without touching any state. */
  readonly enabled: boolean;
  private readonly requests: BucketCell<M> | undefined;
  private readonly tokens: BucketCell<M> | undefined;
  private readonly clock: Clock;
  private readonly noWait: RateLimitReservation;

  constructor(key: string, options: RateLimiterOptions<M> = {}) {
    const store = (options.store ?? localStore) as StateStore<M>;
    this.store = store.kind;
    this.clock = options.clock ?? systemClock;
    this.requests = bucket(store, `rpm:${key}`, "requestsPerMinute", options.requestsPerMinute);
    this.tokens = bucket(store, `tpm:${key}`, "tokensPerMinute", options.tokensPerMinute);
    this.enabled = this.requests !== undefined || this.tokens !== undefined;
    this.noWait = Object.freeze({ waitMs: 0, granted: true, store: store.kind });
  }

  /**
   * Reserves one request and `estimatedTokens` now and says how long to wait before sending. A wait
   * the call's `deadline` does not allow reserves nothing and returns `granted: false`.
   */
  reserve(estimatedTokens: number, deadline?: Pick<Deadline, "allows">): StoreResult<M, RateLimitReservation> {
    if (!this.enabled) return this.noWait as StoreResult<M, RateLimitReservation>;
    const now = this.clock.now();
    const tokens = count(estimatedTokens);
    const wr = this.requests ? this.requests.reserve(now, 1) : 0;
    const wt = this.tokens ? this.tokens.reserve(now, tokens) : 0;
    return join<M, number, number, RateLimitReservation>(wr, wt, (r, t) => {
      const waitMs = Math.max(r, t);
      if (waitMs === 0) return this.noWait;
      const kind: RateLimitKind = r >= t ? "requests" : "tokens";
      if (deadline === undefined || deadline.allows(waitMs)) return { waitMs, kind, granted: true, store: this.store };
      const refused: RateLimitReservation = { waitMs, kind, granted: false, store: this.store };
      const undo = this.cancelAt(now, tokens) as void | Promise<void>;
      return (isPromiseLike(undo) ? undo.then(() => refused) : refused) as RateLimitReservation;
    });
  }

  /** Gives back a granted reservation that will not be used (the caller gave up while waiting). */
  cancel(estimatedTokens: number): StoreResult<M, void> {
    return this.cancelAt(this.clock.now(), count(estimatedTokens));
  }

  /** The response reported real usage: settle the difference with the token bucket. */
  correct(estimatedTokens: number, actualTokens: number): StoreResult<M, void> {
    if (!this.tokens || !Number.isFinite(actualTokens) || actualTokens < 0) return undefined as StoreResult<M, void>;
    const diff = count(estimatedTokens) - actualTokens;
    if (diff === 0) return undefined as StoreResult<M, void>;
    return this.tokens.add(this.clock.now(), diff);
  }

  /**
   * Tightens (never loosens) the configured buckets from the provider's headers: the level drops
   * to the reported remaining count, and an exhausted limit blocks reservations until its reset.
   * Limits that are not configured locally are not created. Approximate: the server's count does
   * not yet include requests this process has reserved but not yet sent.
   */
  applyServerHeaders(h: ServerRateLimit): StoreResult<M, void> {
    const now = this.clock.now();
    const r = this.requests ? tightenFrom(this.requests, now, h.remainingRequests, h.resetRequestsMs) : undefined;
    const t = this.tokens ? tightenFrom(this.tokens, now, h.remainingTokens, h.resetTokensMs) : undefined;
    return join<M, void, void, void>(r as StoreResult<M, void>, t as StoreResult<M, void>, () => undefined);
  }

  private cancelAt(now: number, tokens: number): StoreResult<M, void> {
    const r = this.requests ? this.requests.add(now, 1) : undefined;
    const t = this.tokens && tokens > 0 ? this.tokens.add(now, tokens) : undefined;
    return join<M, void, void, void>(r as StoreResult<M, void>, t as StoreResult<M, void>, () => undefined);
  }
}

function bucket<M extends StoreMode>(store: StateStore<M>, key: string, name: string, perMinute: number | undefined) {
  if (perMinute === undefined) return undefined;
  if (!(perMinute > 0) || !Number.isFinite(perMinute)) {
    throw new RangeError(`rate limiter ${name} must be a finite number > 0, got ${perMinute}`);
  }
  return store.bucket(key, { capacity: perMinute, refillPerMs: perMinute / MINUTE_MS });
}

function tightenFrom<M extends StoreMode>(
  cell: BucketCell<M>,
  now: number,
  remaining: number | undefined,
  resetMs: number | undefined,
): StoreResult<M, void> | undefined {
  if (remaining === undefined || !(remaining >= 0) || !Number.isFinite(remaining)) return undefined;
  const exhausted = remaining < 1 && resetMs !== undefined && resetMs > 0 && Number.isFinite(resetMs);
  return cell.tighten(now, remaining, exhausted ? now + resetMs : undefined);
}

/** Sanitised token count: negative, NaN and infinite estimates count as 0. */
function count(n: number): number {
  return n > 0 && Number.isFinite(n) ? n : 0;
}

/** Combines two store results, staying synchronous when both are. */
function join<M extends StoreMode, A, B, R>(a: StoreResult<M, A>, b: StoreResult<M, B>, f: (a: A, b: B) => R | PromiseLike<R>): StoreResult<M, R> {
  const x = a as A | PromiseLike<A>;
  const y = b as B | PromiseLike<B>;
  if (isPromiseLike(x) || isPromiseLike(y)) {
    return Promise.all([x, y]).then(([p, q]) => f(p, q)) as StoreResult<M, R>;
  }
  return f(x, y) as StoreResult<M, R>;
}

// Base64 media would count as text and inflate the estimate by orders of magnitude (a 1 MB image
// is ~1k tokens, not 250k); each such payload counts as a flat allowance instead.
const MEDIA_TOKENS = 1000;
const MEDIA_MIN_CHARS = 512;

/**
 * A rough token estimate for rate limiting before the response reports real usage: characters / 4
 * over the JSON of the messages/input (base64 media counted as MEDIA_TOKENS each), plus
 * `maxTokens` (providers count the requested output against the token limit). Not a tokenizer;
 * `RateLimiter.correct` settles the difference afterwards. Never throws.
 */
export function estimateTokens(input: unknown, maxTokens?: number): number {
  let chars = 0;
  let media = 0;
  if (typeof input === "string") {
    chars = input.length;
  } else if (input !== undefined && input !== null) {
    try {
      const json = JSON.stringify(input, (k, v: unknown) => {
        if (typeof v === "string" && v.length >= MEDIA_MIN_CHARS && (k === "data" || v.startsWith("data:"))) {
          media++;
          return "";
        }
        return v;
      });
      chars = json === undefined ? 0 : json.length;
    } catch {
      chars = 0; // circular structures, BigInt: no estimate rather than a failed call
    }
  }
  return Math.ceil(chars / 4) + media * MEDIA_TOKENS + count(maxTokens ?? 0);
}
