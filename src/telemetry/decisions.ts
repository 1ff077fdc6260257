import type { Attributes, Span } from "@opentelemetry/api";
import { reportOnce } from "./logger.js";
import { ATTR, EVENT } from "./semconv.js";

/** The call a decision was made for. */
export interface DecisionCall {
  readonly provider: string;
  readonly operation: string;
  /** The model the caller asked for. */
  readonly requestModel: string | undefined;
  /** The model of the attempt the decision is about (differs from `requestModel` after a fallback). */
  readonly model: string | undefined;
  readonly breakerKey: string | undefined;
  /** The attempt the decision followed (1-based); undefined before the first attempt. */
  readonly attempt: number | undefined;
  readonly traceId: string;
  readonly spanId: string;
}

export type BreakerStateName = "closed" | "open" | "half_open";
export type GiveUpReason =
  | "non_retryable"
  | "max_attempts"
  | "deadline"
  | "budget"
  | "retry_after_too_long"
  | "aborted"
  | "breaker_open"
  | "spend_limit"
  | "invalid_request";

interface OfCall<T extends string> {
  readonly type: T;
  /** Epoch ms. */
  readonly time: number;
  readonly call: DecisionCall;
}

export interface RetryDecision extends OfCall<"retry"> {
  /** The attempt that failed. */
  readonly attempt: number;
  readonly delayMs: number;
  readonly delaySource: "retry-after-ms" | "retry-after" | "backoff";
  readonly errorType: string;
}
export interface GiveUpDecision extends OfCall<"give_up"> {
  readonly reason: GiveUpReason;
  readonly errorType: string;
}
export interface BreakerTransitionDecision extends OfCall<"breaker.transition"> {
  readonly key: string;
  readonly from: BreakerStateName;
  readonly to: BreakerStateName;
  /** Which store decided. */
  readonly store: "local" | "redis";
}
export interface BreakerRejectDecision extends OfCall<"breaker.reject"> {
  readonly key: string;
}
export interface BreakerProbeDecision extends OfCall<"breaker.probe"> {
  readonly key: string;
}
export interface RateLimitWaitDecision extends OfCall<"ratelimit.wait"> {
  readonly kind: "requests" | "tokens";
  readonly waitMs: number;
}
export interface FallbackDecision extends OfCall<"fallback"> {
  readonly from: string;
  readonly to: string;
  readonly reason: string;
}
export interface SpendRejectDecision extends OfCall<"spend.reject"> {
  readonly limitUsd: number;
  readonly spentUsd: number;
  readonly estimateUsd: number;
}

export type Decision =
  | RetryDecision
  | GiveUpDecision
  | BreakerTransitionDecision
  | BreakerRejectDecision
  | BreakerProbeDecision
  | RateLimitWaitDecision
  | FallbackDecision
  | SpendRejectDecision;
export type DecisionType = Decision["type"];
export type DecisionOf<T extends DecisionType> = Extract<Decision, { type: T }>;
export type DecisionListener<T extends DecisionType = DecisionType> = (decision: DecisionOf<T>) => void;

/** How the span event of each decision becomes its typed payload: one table, so both say the same. */
const FROM_EVENT: Record<string, (a: Attributes) => Record<string, unknown> & { type: DecisionType }> = {
  [EVENT.RETRY]: (a) => ({
    type: "retry",
    attempt: a[ATTR.ATTEMPT_NUMBER],
    delayMs: a[ATTR.RETRY_DELAY_MS],
    delaySource: a[ATTR.RETRY_DELAY_SOURCE],
    errorType: a[ATTR.ERROR_TYPE],
  }),
  [EVENT.GIVE_UP]: (a) => ({ type: "give_up", reason: a[ATTR.GIVE_UP_REASON], errorType: a[ATTR.ERROR_TYPE] }),
  [EVENT.BREAKER_TRANSITION]: (a) => ({
    type: "breaker.transition",
    key: a[ATTR.BREAKER_KEY],
    from: a[ATTR.BREAKER_FROM],
    to: a[ATTR.BREAKER_TO],
    store: a[ATTR.BREAKER_STORE],
  }),
  [EVENT.BREAKER_REJECT]: (a) => ({ type: "breaker.reject", key: a[ATTR.BREAKER_KEY] }),
  [EVENT.BREAKER_PROBE]: (a) => ({ type: "breaker.probe", key: a[ATTR.BREAKER_KEY] }),
  [EVENT.RATELIMIT_WAIT]: (a) => ({ type: "ratelimit.wait", kind: a[ATTR.RATELIMIT_KIND], waitMs: a[ATTR.RATELIMIT_WAIT_MS] }),
  [EVENT.FALLBACK]: (a) => ({ type: "fallback", from: a[ATTR.FALLBACK_FROM], to: a[ATTR.FALLBACK_TO], reason: a[ATTR.FALLBACK_REASON] }),
  [EVENT.SPEND_REJECT]: (a) => ({
    type: "spend.reject",
    limitUsd: a[ATTR.SPEND_LIMIT_USD],
    spentUsd: a[ATTR.SPEND_SPENT_USD],
    estimateUsd: a[ATTR.SPEND_ESTIMATE_USD],
  }),
};

/** What a recorder knows of its call when it records a decision. */
export interface DecisionSource {
  readonly provider: string;
  readonly operation: string;
  readonly requestModel: string | undefined;
  readonly span: Span;
  /** The breaker key the call is on now. */
  readonly breakerKey: string | undefined;
  /** The current attempt: its number and model. */
  currentAttempt(): { readonly number: number; readonly model: string | undefined } | undefined;
}

type Entry = { types: ReadonlySet<DecisionType> | undefined; listener: (d: Decision) => void };

const KEY = Symbol.for("llm-resilience.decision-listeners");
type Holder = { [KEY]?: Set<Entry> };
/** Shared by every copy of this package in the process, as the runtime is. */
const holder = globalThis as Holder;
holder[KEY] ??= new Set();
const entries: Set<Entry> = holder[KEY];

/** True when code listens: the recorder builds no payload otherwise. */
export function hasDecisionListeners(): boolean {
  return entries.size > 0;
}

/**
 * Subscribes to the policies' decisions (all, or the given types). Returns the unsubscribe function.
 * Listeners run after the decision is recorded, outside the call: one that throws is reported once and
 * the call goes on; a returned promise is not awaited (its rejection is reported the same way).
 */
export function onDecision<T extends DecisionType = DecisionType>(listener: DecisionListener<T>, types?: readonly T[]): () => void {
  if (typeof listener !== "function") throw new TypeError("onDecision: the listener must be a function");
  const entry: Entry = { types: types ? new Set<DecisionType>(types) : undefined, listener: listener as (d: Decision) => void };
  entries.add(entry);
  return () => {
    entries.delete(entry);
  };
}

function callOf(src: DecisionSource, key: string | undefined): DecisionCall {
  const attempt = src.currentAttempt();
  const sc = src.span.spanContext();
  return {
    provider: src.provider,
    operation: src.operation,
    requestModel: src.requestModel,
    model: attempt?.model ?? src.requestModel,
    breakerKey: key ?? src.breakerKey,
    attempt: attempt?.number,
    traceId: sc.traceId,
    spanId: sc.spanId,
  };
}

/** Delivers the decision a span event records to the listeners (call it only when there are some). */
export function emitDecision(eventName: string, attributes: Attributes, src: DecisionSource): void {
  const build = FROM_EVENT[eventName];
  if (!build) return;
  const fields = build(attributes);
  const key = typeof attributes[ATTR.BREAKER_KEY] === "string" ? (attributes[ATTR.BREAKER_KEY] as string) : undefined;
  const decision = { ...fields, time: Date.now(), call: callOf(src, key) } as Decision;
  deliver(decision);
}

function deliver(decision: Decision): void {
  const targets = [...entries].filter((e) => !e.types || e.types.has(decision.type));
  if (targets.length === 0) return;
  // After the current step of the call: a slow or throwing listener never sits on the call's path.
  queueMicrotask(() => {
    for (const e of targets) {
      try {
        const r = e.listener(decision) as unknown;
        if (r && typeof (r as PromiseLike<unknown>).then === "function") {
          Promise.resolve(r).catch((err) => reportOnce("a decision listener rejected", err));
        }
      } catch (err) {
        reportOnce("a decision listener threw", err);
      }
    }
  });
}
