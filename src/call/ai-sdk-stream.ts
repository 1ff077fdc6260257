import { isOutputPart } from "../providers/ai-sdk.js";
import type { StreamAccumulator } from "../providers/types.js";
import { reportOnce } from "../telemetry/logger.js";
import type { StreamOutcome } from "./stream-observer.js";

/** What observing one AI SDK model stream reports to its call. */
export interface PartStreamWatcher {
  /** Reads each part as it passes (the current attempt's accumulator). */
  readonly acc: StreamAccumulator & { readonly hasError: boolean; readonly error: unknown };
  firstChunk(): void;
  /** The stream failed before any output reached the caller: the stream of a new attempt to go on with, or undefined. */
  restart(error: unknown): Promise<ReadableStream | undefined>;
  end(outcome: StreamOutcome): void;
}

/**
 * The stream of parts a `doStream` call returned, observed as the AI SDK reads it: nothing is read
 * ahead (high-water mark 0), a cancel reaches the provider's stream, and `end` runs once however the
 * stream ends: at its `finish` part, before the AI SDK sees it (the AI SDK's own telemetry ends its
 * span there), else at its end, error or cancel. The parts before the first output (`stream-start`,
 * `response-metadata`, `text-start`) are held back until output arrives, so a stream that fails before
 * any output can be swapped for a retried one.
 */
export function observePartStream(source: ReadableStream, w: PartStreamWatcher): ReadableStream {
  let reader = source.getReader();
  let output = false;
  let held: unknown[] = [];
  let ended = false;
  const end = (outcome: StreamOutcome) => {
    if (ended) return;
    ended = true;
    try {
      w.end(outcome);
    } catch (err) {
      reportOnce("telemetry error at stream end", err);
    }
  };
  const flush = (ctrl: ReadableStreamDefaultController) => {
    for (const part of held) ctrl.enqueue(part);
    held = [];
  };
  const retried = async (error: unknown): Promise<boolean> => {
    if (output) return false;
    let next: ReadableStream | undefined;
    try {
      next = await w.restart(error);
    } catch (err) {
      reportOnce("telemetry error retrying a stream", err);
    }
    if (!next) return false;
    reader.cancel().catch(() => {});
    reader = next.getReader();
    held = [];
    return true;
  };

  return new ReadableStream(
    {
      async pull(ctrl) {
        while (true) {
          let r: ReadableStreamReadResult<any>;
          try {
            r = await reader.read();
          } catch (err) {
            if (await retried(err)) continue;
            flush(ctrl);
            ctrl.error(err);
            end({ kind: "error", error: err });
            return;
          }
          if (r.done) {
            flush(ctrl);
            ctrl.close();
            end(w.acc.hasError ? { kind: "error", error: w.acc.error } : { kind: "completed" });
            return;
          }
          const part = r.value;
          try {
            w.acc.add(part);
          } catch (err) {
            reportOnce("telemetry error reading a stream part", err);
          }
          if (!output && part?.type === "error" && (await retried(part.error))) continue;
          if (part?.type === "finish") end(w.acc.hasError ? { kind: "error", error: w.acc.error } : { kind: "completed" });
          if (!output && isOutputPart(part)) {
            output = true;
            try {
              w.firstChunk();
            } catch (err) {
              reportOnce("telemetry error at the first chunk", err);
            }
          }
          if (!output) {
            held.push(part);
            continue;
          }
          flush(ctrl);
          ctrl.enqueue(part);
          return;
        }
      },
      cancel(reason) {
        end({ kind: "returned" });
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
