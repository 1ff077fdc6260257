// Node clamps longer timeouts to 1 ms (with a TimeoutOverflowWarning); we clamp to the maximum instead.
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export interface SleepOptions {
  /**
   * Keep the process alive while sleeping (default false: the timer is unref()ed). Caution: with
   * the default, a process whose only pending work is this sleep exits mid-wait (an awaited retry
   * backoff in a CLI script never resumes; ESM exits with code 13). Pass `ref: true` for a wait
   * that a caller is awaiting the result of.
   */
  ref?: boolean;
}

/**
 * Resolves after `ms`; rejects at once with `signal.reason` (or an AbortError) when the signal
 * aborts. The timer is unref()ed unless `ref` is set; the abort listener and the timer are removed
 * on every path.
 */
export function sleep(ms: number, signal?: AbortSignal, options?: SleepOptions): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  const delay = ms > 0 ? Math.min(ms, MAX_TIMEOUT_MS) : 0;
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, delay);
    if (options?.ref !== true) timer.unref();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}
