import type { StreamAccumulator } from "../providers/types.js";
import { reportOnce } from "../telemetry/logger.js";

export interface StreamOutcome {
  /** completed: the provider ended the stream; returned: the consumer stopped early. */
  kind: "completed" | "returned" | "error";
  error?: unknown;
}

/**
 * Observes an SDK `Stream` in place: its `iterator` (which async iteration, `tee()` and
 * `toReadableStream()` all go through) is wrapped so each chunk is seen once as it passes,
 * nothing is buffered, and `onEnd` runs exactly once however the stream ends.
 */
export function observeStream(
  stream: any,
  acc: StreamAccumulator,
  onFirstChunk: () => void,
  onEnd: (outcome: StreamOutcome) => void,
  /** Called when the stream fails before any chunk reached the caller: a fresh iterator to continue with, or undefined. */
  restart?: (error: unknown) => Promise<AsyncIterator<unknown> | undefined>,
  /** Called when the caller (or an SDK helper, `tee()`, `toReadableStream()`) starts iterating. */
  onIterate?: () => void,
): boolean {
  // openai <= 4.12's Stream has no `iterator`: its [Symbol.asyncIterator] is the one seam there.
  const key: "iterator" | typeof Symbol.asyncIterator = typeof stream?.iterator === "function" ? "iterator" : Symbol.asyncIterator;
  const original = stream?.[key];
  if (typeof original !== "function") {
    reportOnce("unexpected SDK stream shape: streamed calls are not observed");
    return false;
  }
  let ended = false;
  const end = (outcome: StreamOutcome) => {
    if (ended) return;
    ended = true;
    try {
      onEnd(outcome);
    } catch (err) {
      reportOnce("telemetry error at stream end", err);
    }
  };
  if (key === "iterator") watchOuterIterator(stream, end);
  stream[key] = function observedIterator(this: unknown) {
    onIterate?.();
    return new ObservedIterator(original.call(this), acc, onFirstChunk, end, restart);
  };
  return true;
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined }) as IteratorReturnResult<undefined>;

/**
 * The SDK's iterator with each chunk read as it passes: one plain object whose `next()` is the
 * inner `next()` plus one `then`, so a chunk costs a single extra promise (an async generator here
 * cost two layers of promises per chunk).
 */
class ObservedIterator implements AsyncIterator<unknown> {
  private first = true;
  private finished = false;

  constructor(
    private inner: AsyncIterator<unknown>,
    private readonly acc: StreamAccumulator,
    private readonly onFirstChunk: () => void,
    private readonly end: (outcome: StreamOutcome) => void,
    private readonly restart: ((error: unknown) => Promise<AsyncIterator<unknown> | undefined>) | undefined,
  ) {}

  next(): Promise<IteratorResult<unknown>> {
    if (this.finished) return Promise.resolve(DONE);
    let pending: Promise<IteratorResult<unknown>>;
    try {
      pending = this.inner.next();
    } catch (error) {
      return this.failed(error);
    }
    return pending.then(
      (r) => this.read(r),
      (error) => this.failed(error),
    );
  }

  private read(r: IteratorResult<unknown>): IteratorResult<unknown> | Promise<IteratorResult<unknown>> {
    if (r.done) {
      this.finished = true;
      this.end({ kind: "completed" });
      return r;
    }
    if (this.first) {
      this.first = false;
      this.onFirstChunk();
    }
    let pass = true;
    try {
      pass = this.acc.add(r.value);
    } catch (err) {
      reportOnce("telemetry error reading a stream chunk", err);
    }
    return pass ? r : this.next();
  }

  /** Before any chunk reached the caller a failed stream may be restarted (a retry); else the error ends it. */
  private async failed(error: unknown): Promise<IteratorResult<unknown>> {
    const fresh = this.first && this.restart ? await this.restart(error).catch(() => undefined) : undefined;
    if (fresh) {
      this.inner = fresh;
      return this.next();
    }
    this.finished = true;
    this.end({ kind: "error", error });
    throw error;
  }

  /** The consumer left early (break / return): let the SDK release the connection. */
  async return(value?: unknown): Promise<IteratorResult<unknown>> {
    if (!this.finished) {
      this.finished = true;
      // Decided on the next turn: an SDK layer above us that threw (and so closed us) reports its error first.
      setImmediate(() => this.end({ kind: "returned" }));
      await this.inner.return?.();
    }
    return { done: true, value };
  }

  async throw(error?: unknown): Promise<IteratorResult<unknown>> {
    if (!this.finished) {
      this.finished = true;
      this.end({ kind: "error", error });
      await this.inner.return?.();
    }
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * SDK layers may wrap iteration after us (openai 7 assigns a chunk-normalising
 * `stream[Symbol.asyncIterator]` once the response is parsed). An error thrown there reaches the
 * caller but not our iterator, which only sees an early return: observe the outermost iterator too.
 */
function watchOuterIterator(stream: any, end: (o: StreamOutcome) => void): void {
  let current = stream[Symbol.asyncIterator];
  try {
    Object.defineProperty(stream, Symbol.asyncIterator, {
      configurable: true,
      enumerable: false,
      get: () => current,
      set(fn: unknown) {
        current =
          typeof fn !== "function"
            ? fn
            : function outerIterator(this: unknown) {
                return new OuterIterator(fn.call(this), end);
              };
      },
    });
  } catch {
    // a frozen stream object: the inner observation alone
  }
}

class OuterIterator implements AsyncIterator<unknown> {
  private readonly onError = (error: unknown): never => {
    this.end({ kind: "error", error });
    throw error;
  };

  constructor(
    private readonly it: AsyncIterator<unknown>,
    private readonly end: (o: StreamOutcome) => void,
  ) {}

  next(...a: [] | [unknown]): Promise<IteratorResult<unknown>> {
    return this.it.next(...a).then(undefined, this.onError);
  }

  return(v?: unknown): Promise<IteratorResult<unknown>> {
    return this.it.return ? this.it.return(v) : Promise.resolve({ done: true as const, value: v });
  }

  throw(e?: unknown): Promise<IteratorResult<unknown>> {
    return this.it.throw ? this.it.throw(e) : Promise.reject(e);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
