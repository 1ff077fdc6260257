import { readFileSync } from "node:fs";
import { ConfigError } from "./errors.js";
import { DEFAULT_BASE_DELAY_MS, DEFAULT_MAX_DELAY_MS } from "./policy/backoff.js";
import { DEFAULT_BREAKER_SETTINGS } from "./policy/breaker.js";
import { DEFAULT_MAX_RETRY_AFTER_MS } from "./policy/retry-after.js";
import { DEFAULT_RETRY_BUDGET_CAPACITY, DEFAULT_RETRY_COST, DEFAULT_TIMEOUT_RETRY_COST } from "./policy/retry-budget.js";
import { DEFAULT_SPEND_WINDOW_MS } from "./policy/spend-limit.js";
import { type PriceOverrides, priceOverridesProblem } from "./pricing/price-book.js";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
const LOG_LEVELS: readonly LogLevel[] = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

export interface BreakerOptions {
  /** Open after this many consecutive counted failures. */
  failures: number;
  /** Optional: open when the failure ratio over `windowMs` reaches this (0..1) with at least `minimumCalls`. */
  failureRatio?: number;
  windowMs: number;
  minimumCalls: number;
  cooldownMs: number;
  /** Probes admitted while half-open. */
  halfOpenProbes: number;
  /** Count 429s as breaker failures (off by default: a rate limit is not an outage). */
  countRateLimits: boolean;
}

export interface RetryBudgetOptions {
  capacity: number;
  retryCost: number;
  timeoutRetryCost: number;
}

export interface ResilienceOptions {
  /** Attempts per model including the first; default: the SDK's maxRetries + 1 (3). */
  maxAttempts?: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A server-requested delay above this ends the call (`retry_after_too_long`). */
  maxRetryAfterMs: number;
  attemptTimeoutMs?: number;
  deadlineMs?: number;
  breaker: BreakerOptions | false;
  retryBudget: RetryBudgetOptions | false;
  rpm?: number;
  tpm?: number;
  /** Longest a call waits for our own rate limiter; a longer wait ends it (`deadline`) before it is sent. */
  maxRateLimitWaitMs?: number;
  /** Set by a `withPolicies` scope's `spendLimit: false`: the spend limit never refuses the call; its cost still counts. */
  exemptFromSpendLimit?: boolean;
  /** model -> ordered fallback models, used when the primary is unavailable. */
  fallbacks: Record<string, string[]>;
  /** model -> ordered fallback models, used on a context-window overflow. */
  contextFallbacks: Record<string, string[]>;
  /** Refuse before sending what the provider would answer with a 400 (default false). */
  validate?: boolean;
}

/** A spend limit in USD over a sliding window (per process; fleet-wide with the Redis store). */
export interface SpendLimitOptions {
  usd: number;
  windowMs: number;
}

export interface Options extends ResilienceOptions {
  disabled: boolean;
  logLevel: LogLevel;
  /** A pino logger of the application's; ours is created when absent. */
  logger?: unknown;
  redisUrl?: string;
  /** A Redis client of the application's (ioredis) for fleet-wide state. */
  redisClient?: unknown;
  captureContent: boolean;
  /** Ask OpenAI chat streams for their usage chunk without the caller seeing it. */
  openaiStreamUsage: boolean;
  /** Start the OpenTelemetry Node SDK when the application has not registered providers. */
  startSdk: boolean;
  /** USD per million tokens by model, merged over the bundled price table. */
  prices?: PriceOverrides;
  spendLimit?: SpendLimitOptions;
}

export type UserOptions = Partial<Omit<Options, "breaker" | "retryBudget" | "spendLimit">> & {
  breaker?: Partial<BreakerOptions> | false;
  retryBudget?: Partial<RetryBudgetOptions> | false;
  spendLimit?: { usd?: number; windowMs?: number } | false;
};

/** Per-client overrides given to `instrument(client, overrides)`. */
export type ClientOverrides = Partial<Omit<ResilienceOptions, "breaker" | "retryBudget">> & {
  breaker?: Partial<BreakerOptions> | false;
  retryBudget?: Partial<RetryBudgetOptions> | false;
};

// The defaults live with their policies (README "Defaults" says why); these are their option names.
const DEFAULT_BREAKER: BreakerOptions = {
  failures: DEFAULT_BREAKER_SETTINGS.consecutiveFailures,
  windowMs: DEFAULT_BREAKER_SETTINGS.windowMs,
  minimumCalls: DEFAULT_BREAKER_SETTINGS.minimumCalls,
  cooldownMs: DEFAULT_BREAKER_SETTINGS.cooldownMs,
  halfOpenProbes: DEFAULT_BREAKER_SETTINGS.halfOpenProbes,
  countRateLimits: false,
};
const DEFAULT_RETRY_BUDGET: RetryBudgetOptions = {
  capacity: DEFAULT_RETRY_BUDGET_CAPACITY,
  retryCost: DEFAULT_RETRY_COST,
  timeoutRetryCost: DEFAULT_TIMEOUT_RETRY_COST,
};

function defaultOptions(): Options {
  return {
    baseDelayMs: DEFAULT_BASE_DELAY_MS,
    maxDelayMs: DEFAULT_MAX_DELAY_MS,
    maxRetryAfterMs: DEFAULT_MAX_RETRY_AFTER_MS,
    breaker: { ...DEFAULT_BREAKER },
    retryBudget: { ...DEFAULT_RETRY_BUDGET },
    fallbacks: {},
    contextFallbacks: {},
    disabled: false,
    logLevel: "info",
    captureContent: false,
    openaiStreamUsage: false,
    startSdk: true,
  };
}

type Env = Record<string, string | undefined>;

function intVar(env: Env, name: string, min: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return undefined;
  if (!/^\s*\d+\s*$/.test(raw) || Number(raw) < min || !Number.isSafeInteger(Number(raw))) {
    throw new ConfigError(name, `a plain integer >= ${min}`, raw);
  }
  return Number(raw);
}

function boolVar(env: Env, name: string): boolean | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return undefined;
  const v = raw.trim().toLowerCase();
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw new ConfigError(name, "true or false", raw);
}

function fallbackMapVar(env: Env, name: string): Record<string, string[]> | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(name, 'JSON mapping a model to its ordered fallbacks, e.g. {"gpt-4o":["gpt-4o-mini"]}', raw);
  }
  return checkFallbackMap(name, parsed);
}

function checkFallbackMap(name: string, value: unknown): Record<string, string[]> {
  const accepts = 'an object mapping a model to an array of fallback models, e.g. {"gpt-4o":["gpt-4o-mini"]}';
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new ConfigError(name, accepts, value);
  for (const [model, list] of Object.entries(value)) {
    if (!model || !Array.isArray(list) || !list.every((m) => typeof m === "string" && m.length > 0)) {
      throw new ConfigError(name, accepts, value);
    }
  }
  return value as Record<string, string[]>;
}

function checkInt(name: string, value: unknown, min: number): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new ConfigError(name, `an integer >= ${min}`, value);
  }
}

function usdVar(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return undefined;
  const v = Number(raw.trim());
  if (!/^\s*\d+(\.\d+)?\s*$/.test(raw) || !(v > 0) || !Number.isFinite(v)) throw new ConfigError(name, "a number of USD > 0, e.g. 25 or 2.5", raw);
  return v;
}

const PRICES_ACCEPTS = '{"<model>": {"input": n, "output": n, "cacheRead": n, "cacheWrite": n}} in USD per million tokens';

function checkPrices(name: string, value: unknown): PriceOverrides {
  const problem = priceOverridesProblem(value);
  if (problem !== undefined) throw new ConfigError(name, `${PRICES_ACCEPTS} (${problem})`, value);
  return value as PriceOverrides;
}

/** A JSON object, or the path of a file holding one. */
function pricesVar(env: Env, name: string): PriceOverrides | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return undefined;
  let text = raw;
  if (!raw.startsWith("{")) {
    try {
      text = readFileSync(raw, "utf8");
    } catch (err) {
      throw new ConfigError(name, `${PRICES_ACCEPTS}, or the path of a JSON file of it (${(err as Error).message})`, raw);
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(name, `${PRICES_ACCEPTS}, or the path of a JSON file of it (not JSON)`, raw);
  }
  return checkPrices(name, parsed);
}

function checkSpendLimit(where: string, v: unknown): void {
  if (v === undefined || v === false) return;
  if (!v || typeof v !== "object") throw new ConfigError(`${where} spendLimit`, "{ usd: number > 0, windowMs?: integer >= 1 } or false", v);
  const { usd, windowMs } = v as { usd?: unknown; windowMs?: unknown };
  if (usd !== undefined && (typeof usd !== "number" || !(usd > 0) || !Number.isFinite(usd)))
    throw new ConfigError(`${where} spendLimit.usd`, "a number of USD > 0", usd);
  checkInt(`${where} spendLimit.windowMs`, windowMs, 1);
}

/** Reads the LLM_RESILIENCE_* and OTel variables we own; throws ConfigError on a bad value. */
export function optionsFromEnv(env: Env = process.env): UserOptions {
  const out: UserOptions = {};
  const set = <K extends keyof UserOptions>(k: K, v: UserOptions[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set("maxAttempts", intVar(env, "LLM_RESILIENCE_MAX_ATTEMPTS", 1));
  set("baseDelayMs", intVar(env, "LLM_RESILIENCE_BASE_DELAY_MS", 0));
  set("maxDelayMs", intVar(env, "LLM_RESILIENCE_MAX_DELAY_MS", 0));
  set("maxRetryAfterMs", intVar(env, "LLM_RESILIENCE_MAX_RETRY_AFTER_MS", 0));
  set("attemptTimeoutMs", intVar(env, "LLM_RESILIENCE_ATTEMPT_TIMEOUT_MS", 1));
  set("deadlineMs", intVar(env, "LLM_RESILIENCE_DEADLINE_MS", 1));
  set("rpm", intVar(env, "LLM_RESILIENCE_RPM", 1));
  set("tpm", intVar(env, "LLM_RESILIENCE_TPM", 1));
  set("fallbacks", fallbackMapVar(env, "LLM_RESILIENCE_FALLBACKS"));
  set("contextFallbacks", fallbackMapVar(env, "LLM_RESILIENCE_CONTEXT_FALLBACKS"));
  set("disabled", boolVar(env, "LLM_RESILIENCE_DISABLED"));
  set("captureContent", boolVar(env, "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"));
  set("openaiStreamUsage", boolVar(env, "LLM_RESILIENCE_OPENAI_STREAM_USAGE"));
  set("validate", boolVar(env, "LLM_RESILIENCE_VALIDATE"));
  set("prices", pricesVar(env, "LLM_RESILIENCE_PRICES"));
  const usd = usdVar(env, "LLM_RESILIENCE_SPEND_LIMIT_USD");
  const windowMs = intVar(env, "LLM_RESILIENCE_SPEND_WINDOW_MS", 1);
  if (usd !== undefined || windowMs !== undefined)
    out.spendLimit = { ...(usd !== undefined && { usd }), ...(windowMs !== undefined && { windowMs }) };
  const failures = intVar(env, "LLM_RESILIENCE_BREAKER_FAILURES", 0);
  const cooldownMs = intVar(env, "LLM_RESILIENCE_BREAKER_COOLDOWN_MS", 0);
  if (failures === 0) out.breaker = false;
  else if (failures !== undefined || cooldownMs !== undefined) {
    out.breaker = { ...(failures !== undefined && { failures }), ...(cooldownMs !== undefined && { cooldownMs }) };
  }
  const level = env.LLM_RESILIENCE_LOG_LEVEL;
  if (level !== undefined && level.trim() !== "") {
    if (!LOG_LEVELS.includes(level.trim() as LogLevel)) {
      throw new ConfigError("LLM_RESILIENCE_LOG_LEVEL", LOG_LEVELS.join(" | "), level);
    }
    out.logLevel = level.trim() as LogLevel;
  }
  const redis = env.LLM_RESILIENCE_REDIS_URL;
  if (redis !== undefined && redis.trim() !== "") {
    if (!/^rediss?:\/\/.+/.test(redis.trim())) {
      throw new ConfigError("LLM_RESILIENCE_REDIS_URL", "a redis:// or rediss:// URL", "<redacted>");
    }
    out.redisUrl = redis.trim();
  }
  return out;
}

/** Validates programmatic options the same way as the variables; names the option on error. */
export function validateUserOptions(o: UserOptions | ClientOverrides, where = "option"): void {
  checkInt(`${where} maxAttempts`, o.maxAttempts, 1);
  for (const k of ["baseDelayMs", "maxDelayMs", "maxRetryAfterMs"] as const) checkInt(`${where} ${k}`, o[k], 0);
  for (const k of ["attemptTimeoutMs", "deadlineMs", "rpm", "tpm"] as const) checkInt(`${where} ${k}`, o[k], 1);
  checkInt(`${where} maxRateLimitWaitMs`, o.maxRateLimitWaitMs, 0);
  if (o.fallbacks !== undefined) checkFallbackMap(`${where} fallbacks`, o.fallbacks);
  if (o.contextFallbacks !== undefined) checkFallbackMap(`${where} contextFallbacks`, o.contextFallbacks);
  if (o.breaker) {
    checkInt(`${where} breaker.failures`, o.breaker.failures, 1);
    checkInt(`${where} breaker.cooldownMs`, o.breaker.cooldownMs, 0);
    checkInt(`${where} breaker.windowMs`, o.breaker.windowMs, 1);
    checkInt(`${where} breaker.minimumCalls`, o.breaker.minimumCalls, 1);
    checkInt(`${where} breaker.halfOpenProbes`, o.breaker.halfOpenProbes, 1);
    const r = o.breaker.failureRatio;
    if (r !== undefined && (typeof r !== "number" || !(r > 0 && r <= 1))) {
      throw new ConfigError(`${where} breaker.failureRatio`, "a number in (0, 1]", r);
    }
  }
  if (o.validate !== undefined && typeof o.validate !== "boolean") throw new ConfigError(`${where} validate`, "true or false", o.validate);
  if ("prices" in o && o.prices !== undefined) checkPrices(`${where} prices`, o.prices);
  if ("spendLimit" in o) checkSpendLimit(where, o.spendLimit);
  if ("logLevel" in o && o.logLevel !== undefined && !LOG_LEVELS.includes(o.logLevel as LogLevel)) {
    throw new ConfigError(`${where} logLevel`, LOG_LEVELS.join(" | "), o.logLevel);
  }
}

/** Merges defaults < environment < programmatic options. */
export function resolveOptions(user: UserOptions = {}, env: Env = process.env): Options {
  validateUserOptions(user);
  const fromEnv = optionsFromEnv(env);
  const base = defaultOptions();
  const merged: Options = { ...base, ...stripUndefined(fromEnv), ...stripUndefined(user) } as Options;
  merged.breaker = mergeBreaker(base.breaker, fromEnv.breaker, user.breaker);
  merged.retryBudget = user.retryBudget === false ? false : { ...DEFAULT_RETRY_BUDGET, ...(user.retryBudget || {}) };
  const spend = user.spendLimit === false ? undefined : { ...fromEnv.spendLimit, ...stripUndefined(user.spendLimit || {}) };
  merged.spendLimit = spend?.usd !== undefined ? { usd: spend.usd, windowMs: spend.windowMs ?? DEFAULT_SPEND_WINDOW_MS } : undefined;
  if (merged.maxDelayMs < merged.baseDelayMs) {
    throw new ConfigError("LLM_RESILIENCE_MAX_DELAY_MS", `an integer >= the base delay (${merged.baseDelayMs})`, merged.maxDelayMs);
  }
  return merged;
}

export function mergeBreaker(base: BreakerOptions | false, ...layers: (Partial<BreakerOptions> | false | undefined)[]): BreakerOptions | false {
  let out: BreakerOptions | false = base;
  for (const layer of layers) {
    if (layer === undefined) continue;
    if (layer === false) out = false;
    else out = { ...(out || DEFAULT_BREAKER), ...stripUndefined(layer) };
  }
  return out;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/**
 * Per-call settings for `withPolicies(scope, fn)`: what a call site may choose for itself. `false` turns
 * a policy off for the scope's calls (the breaker: neither asked nor told; the deadline, attempt
 * timeout, fallbacks: none).
 */
export interface PolicyScope {
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  maxRetryAfterMs?: number;
  deadlineMs?: number | false;
  attemptTimeoutMs?: number | false;
  fallbacks?: Record<string, string[]> | false;
  contextFallbacks?: Record<string, string[]> | false;
  breaker?: false;
  retryBudget?: false;
  maxRateLimitWaitMs?: number;
  /** The spend limit never refuses the scope's calls; what they cost still counts toward it. */
  spendLimit?: false;
}

const SCOPE_KEYS: ReadonlySet<string> = new Set<keyof PolicyScope>([
  "maxAttempts",
  "baseDelayMs",
  "maxDelayMs",
  "maxRetryAfterMs",
  "deadlineMs",
  "attemptTimeoutMs",
  "fallbacks",
  "contextFallbacks",
  "breaker",
  "retryBudget",
  "maxRateLimitWaitMs",
  "spendLimit",
]);

/** Validates a `withPolicies` scope like register() options; names the setting on error. */
export function validatePolicyScope(scope: PolicyScope): void {
  const where = "withPolicies()";
  if (!scope || typeof scope !== "object") throw new ConfigError(where, "an object of policy settings", scope);
  for (const k of Object.keys(scope)) {
    if (!SCOPE_KEYS.has(k)) throw new ConfigError(`${where} ${k}`, `one of ${[...SCOPE_KEYS].join(", ")}`, "an unknown setting");
  }
  checkInt(`${where} maxAttempts`, scope.maxAttempts, 1);
  for (const k of ["baseDelayMs", "maxDelayMs", "maxRetryAfterMs", "maxRateLimitWaitMs"] as const) checkInt(`${where} ${k}`, scope[k], 0);
  for (const k of ["deadlineMs", "attemptTimeoutMs"] as const) {
    if (scope[k] !== false) checkInt(`${where} ${k}`, scope[k], 1);
  }
  for (const k of ["fallbacks", "contextFallbacks"] as const) {
    const v = scope[k];
    if (v !== undefined && v !== false) checkFallbackMap(`${where} ${k}`, v);
  }
  for (const k of ["breaker", "retryBudget", "spendLimit"] as const) {
    if (scope[k] !== undefined && scope[k] !== false)
      throw new ConfigError(`${where} ${k}`, "false (a scope can turn it off, not reconfigure it)", scope[k]);
  }
  const base = scope.baseDelayMs;
  const max = scope.maxDelayMs;
  if (base !== undefined && max !== undefined && max < base) throw new ConfigError(`${where} maxDelayMs`, `an integer >= baseDelayMs (${base})`, max);
}
