/** The SDKs' own first backoff step (openai and anthropic both use 0.5 s). */
export const DEFAULT_BASE_DELAY_MS = 500;
/** The SDKs' own backoff cap (8 s). */
export const DEFAULT_MAX_DELAY_MS = 8000;

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

/**
 * Exponential backoff with full jitter: `random() * min(maxMs, baseMs * 2^retryIndex)`, in ms
 * (not rounded). `retryIndex` is 0-based. Full jitter spreads a herd of clients over the whole
 * interval. Safe for any index: the exponent stops growing once the cap is reached.
 */
export function backoffDelay(retryIndex: number, { baseMs, maxMs }: BackoffOptions, random: () => number = Math.random): number {
  if (!(baseMs > 0) || !(maxMs > 0)) return 0;
  // 2^1024 is Infinity and 0 * Infinity is NaN; past 2^1023 everything is capped anyway.
  const exp = retryIndex > 0 ? Math.min(Math.floor(retryIndex), 1023) : 0;
  const ceiling = Math.min(maxMs, baseMs * 2 ** exp);
  const r = random();
  // A misbehaving random source must not produce a negative or oversized delay.
  return (r > 0 ? Math.min(r, 1) : 0) * ceiling;
}
