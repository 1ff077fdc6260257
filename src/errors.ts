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
