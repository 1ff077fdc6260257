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
): boolean {
  // openai <= 4.12's Stream has no `iterator`: its [Symbol.asyncIterator] is the one seam there.
  const key: "iterator" | typeof Symbol.asyncIterator =
    typeof stream?.iterator === "function" ? "iterator" : Symbol.asyncIterator;
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
    let inner: AsyncIterator<unknown> = original.call(this);
    return (async function* () {
      let first = true;
      let finished = false;
      try {
        while (true) {
          let r: IteratorResult<unknown>;
          try {
            r = await inner.next();
          } catch (error) {
            const next = first && restart ? await restart(error).catch(() => undefined) : undefined;
            if (!next) throw error;
            inner = next;
            continue;
          }
          if (r.done) {
            finished = true;
            end({ kind: "completed" });
            return r.value;
          }
          if (first) {
            first = false;
            onFirstChunk();
          }
          let pass = true;
          try {
            pass = acc.add(r.value);
          } catch (err) {
            reportOnce("telemetry error reading a stream chunk", err);
          }
          if (pass) yield r.value;
        }
      } catch (error) {
        finished = true;
        end({ kind: "error", error });
        throw error;
      } finally {
        if (!finished) {
          // The consumer left early (break / return): let the SDK release the connection. Decided on
          // the next turn: an SDK layer above us that threw (and so closed us) reports its error first.
          setImmediate(() => end({ kind: "returned" }));
          await inner.return?.();
        }
      }
    })();
  };
  return true;
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
                const it: AsyncIterator<unknown> = fn.call(this);
                return {
                  next: (...a: [] | [unknown]) =>
                    it.next(...a).catch((error: unknown) => {
                      end({ kind: "error", error });
                      throw error;
                    }),
                  return: (v?: unknown) => (it.return ? it.return(v) : Promise.resolve({ done: true as const, value: v })),
                  throw: (e?: unknown) => (it.throw ? it.throw(e) : Promise.reject(e)),
                  [Symbol.asyncIterator]() {
                    return this;
                  },
                };
              };
      },
    });
  } catch {
    // a frozen stream object: the inner observation alone
  }
}
