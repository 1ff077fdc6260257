import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import {
  type AggregationOption,
  AggregationTemporality,
  AggregationType,
  InstrumentType,
  type PushMetricExporter,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import { reportOnce } from "./logger.js";

/**
 * Exporters created at their first export (a batch after OTEL_BSP_SCHEDULE_DELAY, a metric export
 * after OTEL_METRIC_EXPORT_INTERVAL, or the flush at exit): loading an OTLP exporter and its
 * serializers costs tens of milliseconds that neither start-up nor a call should pay.
 */
class Lazy<T> {
  private made: T | null | undefined;

  constructor(
    private readonly create: () => T,
    private readonly what: string,
  ) {}

  get(): T | undefined {
    if (this.made === undefined) {
      try {
        this.made = this.create();
      } catch (err) {
        reportOnce(`could not create the ${this.what}; nothing is exported through it`, err);
        this.made = null;
      }
    }
    return this.made ?? undefined;
  }

  /** The exporter if it was ever created (nothing to flush or stop otherwise). */
  get existing(): T | undefined {
    return this.made ?? undefined;
  }
}

const notCreated = (what: string): ExportResult => ({ code: ExportResultCode.FAILED, error: new Error(`the ${what} could not be created`) });

export function lazySpanExporter(create: () => SpanExporter, what: string): SpanExporter {
  const lazy = new Lazy(create, what);
  return {
    export(spans: ReadableSpan[], done: (result: ExportResult) => void) {
      const exporter = lazy.get();
      if (exporter) exporter.export(spans, done);
      else done(notCreated(what));
    },
    shutdown: () => lazy.existing?.shutdown() ?? Promise.resolve(),
    forceFlush: () => lazy.existing?.forceFlush?.() ?? Promise.resolve(),
  };
}

/**
 * The metric reader asks its exporter for the temporality of each instrument when the instrument is
 * created (at the first call), before any export: answered here the way the OTLP metric exporters
 * answer it, from OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE.
 */
export function lazyOtlpMetricExporter(create: () => PushMetricExporter, what: string, env: NodeJS.ProcessEnv = process.env): PushMetricExporter {
  const lazy = new Lazy(create, what);
  const temporality = temporalitySelector(env);
  return {
    export(metrics: ResourceMetrics, done: (result: ExportResult) => void) {
      const exporter = lazy.get();
      if (exporter) exporter.export(metrics, done);
      else done(notCreated(what));
    },
    selectAggregationTemporality: temporality,
    selectAggregation: (): AggregationOption => ({ type: AggregationType.DEFAULT }),
    shutdown: () => lazy.existing?.shutdown() ?? Promise.resolve(),
    forceFlush: () => lazy.existing?.forceFlush() ?? Promise.resolve(),
  };
}

const DELTA_TYPES: Record<string, InstrumentType[]> = {
  delta: [InstrumentType.COUNTER, InstrumentType.OBSERVABLE_COUNTER, InstrumentType.GAUGE, InstrumentType.HISTOGRAM, InstrumentType.OBSERVABLE_GAUGE],
  lowmemory: [InstrumentType.COUNTER, InstrumentType.HISTOGRAM],
  cumulative: [],
};

function temporalitySelector(env: NodeJS.ProcessEnv): (type: InstrumentType) => AggregationTemporality {
  const preference = (env.OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE?.trim() || "cumulative").toLowerCase();
  let delta = DELTA_TYPES[preference];
  if (!delta) {
    reportOnce(`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=${preference} is not cumulative, delta or lowmemory; using cumulative`);
    delta = [];
  }
  return (type) => (delta.includes(type) ? AggregationTemporality.DELTA : AggregationTemporality.CUMULATIVE);
}
