import { type Context, TraceFlags } from "@opentelemetry/api";
import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import type { ReadableSpan, Span, SpanExporter, SpanProcessor } from "@opentelemetry/sdk-trace-base";

/**
 * Counts, for one export pipeline of ours, the spans that ended sampled and the spans the exporter
 * confirmed as sent: the difference is what never reached the collector (dropped from a full queue,
 * refused, timed out, or still in flight when the process left). Said once, at shutdown.
 */
export class SpanLedger {
  ended = 0;
  sent = 0;
  lastError: string | undefined;

  constructor(readonly endpoint: string) {}

  get unsent(): number {
    return Math.max(0, this.ended - this.sent);
  }

  /** Goes in the provider's processor list next to the batch processor: counts what it is handed. */
  readonly counter: SpanProcessor = {
    onStart: (_span: Span, _ctx: Context) => {},
    onEnd: (span: ReadableSpan) => {
      if (span.spanContext().traceFlags & TraceFlags.SAMPLED) this.ended++;
    },
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };

  /** The exporter of the pipeline, counting its confirmed exports. */
  wrap(exporter: SpanExporter): SpanExporter {
    const settle = (n: number, result: ExportResult) => {
      if (result.code === ExportResultCode.SUCCESS) this.sent += n;
      else this.lastError = result.error?.message ?? "export failed";
    };
    return {
      export: (spans, done) => {
        try {
          exporter.export(spans, (result) => {
            settle(spans.length, result);
            done(result);
          });
        } catch (err) {
          const result = { code: ExportResultCode.FAILED, error: err as Error };
          settle(spans.length, result);
          done(result);
        }
      },
      shutdown: () => exporter.shutdown(),
      forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
    };
  }
}
