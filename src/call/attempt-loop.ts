import type { ResilienceOptions } from "../config.js";
import { BreakerOpenError, DeadlineExceededError } from "../errors.js";
import { backoffDelay } from "../policy/backoff.js";
import { Deadline } from "../policy/deadline.js";
import { parseRetryAfter } from "../policy/retry-after.js";
import { sleep } from "../policy/sleep.js";
import type { BreakerTransition } from "../policy/store.js";
import { classify, type Failure } from "../providers/classify.js";
import type { ProviderAdapter } from "../providers/types.js";
import type { Attempt, CallRecorder } from "../telemetry/call-recorder.js";
import { ATTR, EVENT } from "../telemetry/semconv.js";
import type { KeyPolicies } from "./key-policies.js";
import type { Preflight } from "./preflight.js";

/** What the SDK's makeRequest resolves with; we only read the response. */
export interface RequestProps {
  response: { status: number; headers: { get(n: string): string | null } };
  [k: string]: unknown;
}

/** How one attempt leaves: through an SDK client's own request machinery, or an AI SDK provider's model method. */
export interface AttemptSender {
  /** Sends one attempt with the SDK's own retries off. */
  send(model: string | undefined, attempt: Attempt, timeoutMs: number | undefined): Promise<RequestProps>;
  /** The error the caller gets for an abort, as its SDK builds it (APIUserAbortError of that SDK build, the signal's reason). */
  abortError(): Error;
  /** The SDK's own verdict on retrying after this failed attempt, where it has one (see SdkAttempts.wouldRetry). */
  wouldRetry?(err: unknown): Promise<boolean | undefined> | undefined;
}

export interface LoopInput extends AttemptSender {
  recorder: CallRecorder;
  adapter: ProviderAdapter;
  options: ResilienceOptions;
  /** Attempts per model, from the user's maxRetries (request, then client) or our option. */
  maxAttempts: number;
  /** The SDK timeout that applies to one attempt (request option, else client). */
  sdkTimeoutMs: number | undefined;
  signal: AbortSignal | undefined;
  /** The model the caller asked for, then its fallbacks for unavailability and for context overflow. */
  model: string | undefined;
  fallbacks: readonly string[];
  contextFallbacks: readonly string[];
  estimatedTokens: number;
  /** Validation and the spend limit, before the first request to each model (absent when both are off). */
  preflight?: Pick<Preflight, "admit">;
  policiesFor(model: string | undefined): KeyPolicies;
}

export interface LoopResult {
  props: RequestProps;
  attempt: Attempt;
  policies: KeyPolicies;
  model: string | undefined;
  /** 0-based retry index of the successful attempt on its model, and the call's deadline. */
  retryIndex: number;
  deadline: Deadline;
}

type Decision =
  | { kind: "retry"; delayMs: number; source: string; budgetCost: number }
  | { kind: "fallback"; reason: string }
  | { kind: "give_up"; reason: string };

class GiveUp {
  constructor(
    readonly reason: string,
    readonly errorType: string,
    readonly error: unknown,
  ) {}
}

/** What a call makes of its successful attempt before the SDK sees it (the response handed out, watched). */
export interface Settler<T> {
  settle(result: LoopResult): T;
}

const AS_IS: Settler<LoopResult> = { settle: (result) => result };

/**
 * The policy-driven loop: attempts on the primary model until one succeeds or a policy says stop;
 * when the model is unavailable (breaker open, retries exhausted, server delay too long, budget
 * spent) the next of its fallbacks takes over, and on a context overflow the next context fallback.
 * Every decision becomes an event on the logical span. The successful attempt's result goes through
 * `settler` inside the loop's own promise: no further async layer between the SDK and its caller.
 */
export function runAttempts(input: LoopInput): Promise<LoopResult>;
export function runAttempts<T>(input: LoopInput, settler: Settler<T>): Promise<T>;
export function runAttempts(input: LoopInput, settler: Settler<unknown> = AS_IS): Promise<unknown> {
  const fallbacks = new FallbackCursor(input.fallbacks, input.contextFallbacks);
  return attempts(input, settler, input.model, new Deadline(input.options.deadlineMs), fallbacks, 0, 0, true);
}

/** Where the call goes next: the fallbacks for unavailability and for context overflow, in order. */
class FallbackCursor {
  private unavailable = 0;
  private overflow = 0;
  constructor(
    private readonly fallbacks: readonly string[],
    private readonly contextFallbacks: readonly string[],
  ) {}

  hasNext(failure: Failure | "unavailable"): boolean {
    if (failure !== "unavailable" && failure.contextOverflow) return this.overflow < this.contextFallbacks.length;
    return this.unavailable < this.fallbacks.length;
  }

  hasContextFallback(): boolean {
    return this.overflow < this.contextFallbacks.length;
  }

  next(reason: string): string | undefined {
    return reason === "context_length_exceeded" ? this.contextFallbacks[this.overflow++] : this.fallbacks[this.unavailable++];
  }
}

const NO_FALLBACKS = new FallbackCursor([], []);

/**
 * The attempts of a call, model after model, in one async function (each nested one would cost the
 * call a promise and a turn). Throws GiveUp when it stops, recorded on the call first when
 * `recordGiveUp`; `firstIndex` / `firstRetryCost` resume a model's attempts after a failed read.
 */
async function attempts<T>(
  input: LoopInput,
  settler: Settler<T>,
  firstModel: string | undefined,
  deadline: Deadline,
  fallbacks: FallbackCursor,
  firstIndex: number,
  firstRetryCost: number,
  recordGiveUp: boolean,
): Promise<T> {
  const { recorder, options } = input;
  let model = firstModel;
  let n = firstIndex;
  let retryCost = firstRetryCost;
  try {
    for (;;) {
      const policies = input.policiesFor(model);
      /** Why the call moves on to this model's next fallback, if it does. */
      let fallbackReason: string | undefined;
      if (input.preflight && n === 0) {
        const checked = input.preflight.admit(model, recorder);
        const stop = isThenable(checked) ? await checked : checked;
        if (stop?.kind === "context_overflow") {
          // Known too long for this model: straight to the next context fallback, no round trip.
          if (!fallbacks.hasContextFallback()) throw new GiveUp("invalid_request", stop.error.errorType, stop.error);
          fallbackReason = "context_length_exceeded";
        } else if (stop) throw new GiveUp(stop.reason, stop.errorType, stop.error);
      }
      if (fallbackReason === undefined) {
        recorder.breakerKey = policies.key;
        for (; ; n++) {
          if (input.signal?.aborted) throw new GiveUp("aborted", "aborted", input.abortError());

          const acquired = policies.acquire();
          // The local store answers synchronously: don't pay a microtask (and its async-hook work) for it.
          const admission = isThenable(acquired) ? await acquired : acquired;
          if (admission.transition) breakerTransition(recorder, policies.key, admission.transition);
          if (!admission.allowed) {
            recorder.event(EVENT.BREAKER_REJECT, { [ATTR.BREAKER_KEY]: policies.key });
            policies.rejected(recorder.metricAttributes(model));
            const error = new BreakerOpenError(policies.key, admission.retryAt, admission.store);
            if (!fallbacks.hasNext("unavailable")) throw new GiveUp("breaker_open", "breaker_open", error);
            fallbackReason = "breaker_open";
            break;
          }
          if (admission.probe) recorder.event(EVENT.BREAKER_PROBE, { [ATTR.BREAKER_KEY]: policies.key });

          let attempt: Attempt | undefined;
          let success: LoopResult | undefined;
          try {
            const waitLimit = options.maxRateLimitWaitMs;
            const reserved = policies.reserveRate(input.estimatedTokens, waitLimit === undefined ? deadline : withinWait(deadline, waitLimit));
            const wait = isThenable(reserved) ? await reserved : reserved;
            // Not granted: the deadline (or the call's longest rate-limit wait) does not allow the wait, and nothing was reserved.
            if (!wait.granted)
              throw new GiveUp("deadline", "timeout", new DeadlineExceededError(deadline.bounded ? options.deadlineMs! : waitLimit!));
            if (wait.waitMs > 0) {
              recorder.event(EVENT.RATELIMIT_WAIT, {
                [ATTR.RATELIMIT_KIND]: wait.kind ?? "requests",
                [ATTR.RATELIMIT_WAIT_MS]: Math.round(wait.waitMs),
              });
              try {
                await waitOrAbort(input, wait.waitMs);
              } catch (abortErr) {
                // The caller gave up while waiting: the reservation goes back to the limiter.
                policies.cancelRate(input.estimatedTokens);
                throw abortErr;
              }
            }

            const timeoutMs = attemptTimeout(input, deadline);
            if (timeoutMs !== undefined && timeoutMs <= 0) {
              throw new GiveUp("deadline", "timeout", new DeadlineExceededError(options.deadlineMs!));
            }
            attempt = recorder.startAttempt(model);
            const props = await input.send(model, attempt, timeoutMs);
            recorder.recordResponse(attempt, props.response.status, props.response.headers);
            policies.applyRateHeaders(props.response.headers);
            const closed = policies.success(admission.probe, retryCost);
            const transition = isThenable(closed) ? await closed : closed;
            if (transition) breakerTransition(recorder, policies.key, transition);
            success = { props, attempt, policies, model, retryIndex: n, deadline };
          } catch (err) {
            if (err instanceof GiveUp) {
              policies.release(admission.probe);
              throw err;
            }
            const failure = await failureOf(input, err);
            if (attempt) {
              recorder.recordResponse(attempt, failure.status, failure.headers);
              recorder.endAttempt(attempt, failure.errorType);
            }
            if (failure.headers) policies.applyRateHeaders(failure.headers);
            if (failure.aborted) {
              policies.release(admission.probe);
              throw new GiveUp("aborted", "aborted", err);
            }
            // Awaited: the decision below reads the state this failure left (with Redis, one round trip).
            const opened = policies.failure(admission.probe, failure);
            const transition = isThenable(opened) ? await opened : opened;
            if (transition) breakerTransition(recorder, policies.key, transition);

            const decision = await decide(input, policies, failure, n, deadline, fallbacks.hasNext(failure));
            if (decision.kind === "give_up") throw new GiveUp(decision.reason, failure.errorType, err);
            if (decision.kind === "fallback") {
              fallbackReason = decision.reason;
              break;
            }
            retryCost = decision.budgetCost;
            recorder.retry(attempt?.number ?? 0, decision.delayMs, decision.source, failure.errorType, model);
            try {
              await waitOrAbort(input, decision.delayMs);
            } catch (abortErr) {
              throw new GiveUp("aborted", "aborted", abortErr);
            }
          }
          if (success) return settler.settle(success);
        }
      }
      const next = fallbacks.next(fallbackReason)!;
      recorder.fallback(model, next, fallbackReason);
      model = next;
      n = 0;
      retryCost = 0;
    }
  } catch (e) {
    if (!(e instanceof GiveUp) || !recordGiveUp) throw e;
    recorder.giveUp(e.reason, e.errorType);
    recorder.fail(e.errorType, e.error);
    throw e.error;
  }
}

/**
 * The last attempt's response failed after its headers — a stream before any chunk reached the caller,
 * or a JSON body the SDK could not read (openai's body timeout, a connection broken mid-body): that
 * counts as a failed attempt, and the call may still retry on the same model. Returns the new
 * attempt's result, or why the call ends.
 */
export async function resumeAfterStreamFailure(
  input: LoopInput,
  prev: Omit<LoopResult, "props">,
  err: unknown,
): Promise<LoopResult | { giveUp: string; errorType: string; error: unknown }> {
  const { recorder } = input;
  const failure = await failureOf(input, err);
  recorder.endAttempt(prev.attempt, failure.errorType);
  if (failure.aborted) return { giveUp: "aborted", errorType: failure.errorType, error: err };
  const opened = prev.policies.failure(false, failure);
  const transition = isThenable(opened) ? await opened : opened;
  if (transition) breakerTransition(recorder, prev.policies.key, transition);
  const decision = await decide(input, prev.policies, failure, prev.retryIndex, prev.deadline, false);
  if (decision.kind !== "retry") return { giveUp: decision.reason, errorType: failure.errorType, error: err };
  recorder.retry(prev.attempt.number, decision.delayMs, decision.source, failure.errorType, prev.model);
  try {
    await waitOrAbort(input, decision.delayMs);
    return await attempts(input, AS_IS, prev.model, prev.deadline, NO_FALLBACKS, prev.retryIndex + 1, decision.budgetCost, false);
  } catch (e) {
    if (e instanceof GiveUp) return { giveUp: e.reason, errorType: e.errorType, error: e.error };
    return { giveUp: "aborted", errorType: "aborted", error: e };
  }
}

/** The failure as the loop treats it: classified, and retried only where the SDK's own loop would retry it. */
async function failureOf(input: LoopInput, err: unknown): Promise<Failure> {
  const failure = classify(err, input.adapter);
  const verdict = input.wouldRetry?.(err);
  const retryable = verdict === undefined ? undefined : await verdict;
  return retryable === undefined || retryable === failure.retryable ? failure : { ...failure, retryable };
}

async function decide(
  input: LoopInput,
  policies: KeyPolicies,
  failure: Failure,
  retryIndex: number,
  deadline: Deadline,
  canFallBack: boolean,
): Promise<Decision> {
  const { options } = input;
  const unavailable = (reason: string): Decision => (canFallBack ? { kind: "fallback", reason } : { kind: "give_up", reason });
  if (!failure.retryable) {
    if (failure.contextOverflow && canFallBack) return { kind: "fallback", reason: "context_length_exceeded" };
    return { kind: "give_up", reason: "non_retryable" };
  }
  if (retryIndex + 1 >= input.maxAttempts) return unavailable("max_attempts");
  // This failure opened the breaker: waiting to be rejected helps nobody, move on now.
  if (policies.breakerOpen()) return unavailable("breaker_open");

  const server = failure.headers ? parseRetryAfter((n) => failure.headers!.get(n), Date.now()) : undefined;
  if (server && server.ms > options.maxRetryAfterMs) return unavailable("retry_after_too_long");
  const delayMs = server ? server.ms : backoffDelay(retryIndex, { baseMs: options.baseDelayMs, maxMs: options.maxDelayMs });
  if (!deadline.allows(delayMs)) return { kind: "give_up", reason: "deadline" };
  // A rate limit answered with the provider's own retry-after is flow control, not a failure storm: the
  // provider scheduled that retry, and attempts and the server-delay cap still bound it. Every other
  // retry (5xx, timeouts, connection errors, a 429 without a delay) draws from the budget.
  const scheduledByServer = failure.rateLimited && server !== undefined;
  const budgetCost = scheduledByServer ? 0 : await policies.acquireRetry(failure.timeout);
  if (budgetCost === undefined) return unavailable("budget");
  return { kind: "retry", delayMs, source: server ? server.source : "backoff", budgetCost };
}

function attemptTimeout(input: LoopInput, deadline: Deadline): number | undefined {
  let t = input.sdkTimeoutMs;
  const own = input.options.attemptTimeoutMs;
  if (own !== undefined) t = t === undefined ? own : Math.min(t, own);
  if (deadline.bounded) {
    const left = deadline.remainingMs();
    t = t === undefined ? left : Math.min(t, left);
  }
  return t;
}

/** An abortable wait; a caller abort rejects the way the SDK rejects an aborted request. */
async function waitOrAbort(input: LoopInput, ms: number): Promise<void> {
  try {
    // Ref'd on purpose: a caller is awaiting this wait; an abort clears the timer at once.
    await sleep(ms, input.signal, { ref: true });
  } catch {
    throw input.abortError();
  }
}

/** The deadline, further bounded by the longest wait for our own rate limiter this call accepts. */
function withinWait(deadline: Deadline, maxWaitMs: number): Pick<Deadline, "allows"> {
  return { allows: (waitMs) => waitMs <= maxWaitMs && deadline.allows(waitMs) };
}

/** A transition this call caused: an event on its span (the contract's `llm_resilience.breaker.transition`). */
function breakerTransition(recorder: CallRecorder, key: string, t: BreakerTransition): void {
  recorder.event(EVENT.BREAKER_TRANSITION, {
    [ATTR.BREAKER_KEY]: key,
    [ATTR.BREAKER_FROM]: t.from,
    [ATTR.BREAKER_TO]: t.to,
    [ATTR.BREAKER_STORE]: t.store,
  });
}

function isThenable<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === "function";
}
