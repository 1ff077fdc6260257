/** Thrown at start-up when a setting is invalid; names the setting and what it accepts. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    readonly setting: string,
    readonly accepts: string,
    readonly got: unknown,
  ) {
    super(`llm-resilience: invalid ${setting}=${JSON.stringify(got)}: expected ${accepts}`);
  }
}

/**
 * The circuit breaker for this provider/model is open: the call was rejected before any request
 * left the process. `retryAfterMs` says when the breaker will let a probe through.
 */
export class BreakerOpenError extends Error {
  override readonly name = "BreakerOpenError";
  readonly errorType = "breaker_open";
  constructor(
    readonly key: string,
    readonly retryAt: number,
    readonly store: "local" | "redis" = "local",
  ) {
    super(`llm-resilience: circuit breaker ${key} is open; retry after ${new Date(retryAt).toISOString()}`);
  }
  get retryAfterMs(): number {
    return Math.max(0, this.retryAt - Date.now());
  }
}

/** The overall deadline (LLM_RESILIENCE_DEADLINE_MS / `deadlineMs`) ran out before a call could succeed. */
export class DeadlineExceededError extends Error {
  override readonly name = "DeadlineExceededError";
  readonly errorType = "timeout";
  constructor(
    readonly deadlineMs: number,
    override readonly cause?: unknown,
  ) {
    super(`llm-resilience: deadline of ${deadlineMs} ms exceeded`);
  }
}

/**
 * The spend limit (LLM_RESILIENCE_SPEND_LIMIT_USD / `spendLimit`) would be passed by this call's
 * worst-case cost: it was refused before any request left the process. `retryAt` (epoch ms) is when
 * enough spend has left the window for it (Infinity when its estimate alone is above the limit).
 */
export class SpendLimitError extends Error {
  override readonly name = "SpendLimitError";
  readonly errorType = "spend_limit";
  constructor(
    readonly retryAt: number,
    readonly limitUsd: number,
    /** Spent in the window when the call was refused. */
    readonly spentUsd: number,
    /** This call's worst-case cost. */
    readonly estimateUsd: number,
    /** Held by calls in flight. */
    readonly reservedUsd: number,
  ) {
    super(
      `llm-resilience: spend limit of ${limitUsd} USD reached (spent ${round(spentUsd)}, in flight ${round(reservedUsd)}, this call up to ${round(estimateUsd)}); ` +
        (Number.isFinite(retryAt) ? `retry after ${new Date(retryAt).toISOString()}` : "this call alone is above the limit"),
    );
  }
  get retryAfterMs(): number {
    return Math.max(0, this.retryAt - Date.now());
  }
}

/** Request validation (LLM_RESILIENCE_VALIDATE / `validate`) found what the provider would refuse; nothing was sent. */
export class InvalidRequestError extends Error {
  override readonly name = "InvalidRequestError";
  constructor(
    readonly problems: readonly string[],
    /** `invalid_request_error`, or `context_length_exceeded` for an input above the model's context window. */
    readonly errorType = "invalid_request_error",
  ) {
    super(`llm-resilience: invalid request: ${problems.join("; ")}`);
  }
}

function round(usd: number): string {
  return usd.toFixed(usd < 1 ? 4 : 2);
}
