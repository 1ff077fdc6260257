class RedisStoreTimeoutError extends Error {
  constructor(ms: number) {
    super(`Redis command timed out after ${ms} ms`);
    this.name = "RedisStoreTimeoutError";
  }
}

/**
 * `p`, or a RedisStoreTimeoutError after `ms`. A reply that arrives after the timeout goes to
 * `onLate` (the command may have run: a script that took a probe slot, say).
 */
export function withTimeout<T>(p: Promise<T>, ms: number, onLate?: (v: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    // After a blocked event loop, timers run before the poll phase reads replies that arrived
    // meanwhile: the rejection waits for the check phase so that such a reply still wins.
    const t = setTimeout(
      () =>
        setImmediate(() => {
          timedOut = true;
          reject(new RedisStoreTimeoutError(ms));
        }),
      ms,
    );
    p.then(
      (v) => {
        clearTimeout(t);
        if (timedOut) safely(() => onLate?.(v));
        else resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** A broken logger or callback must not break the call path. */
export function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    /* ignored */
  }
}
