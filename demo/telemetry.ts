/**
 * The demo's own OpenTelemetry set-up, the way an application would do it: a NodeSDK with
 *   - an in-memory SpanProcessor and a collect-on-demand MetricReader, which the progress lines and
 *     the summary table read (so every number printed comes from the library's real telemetry), and
 *   - the OTLP exporters when OTEL_EXPORTER_OTLP_ENDPOINT (or a per-signal variant) is set.
 * llm-resilience sees the application's providers and adds its spans and metrics to them instead of
 * starting an SDK of its own.
 */
import type { Attributes } from "@opentelemetry/api";
import { NodeSDK } from "@opentelemetry/sdk-node";
import {
  AggregationTemporality,
  DataPointType,
  MetricReader,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
} from "@opentelemetry/sdk-metrics";
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter, type SpanProcessor } from "@opentelemetry/sdk-trace-base";

/** Keeps the library's spans (logical CLIENT spans and their attempt children) in memory. */
export class SpanCollector implements SpanProcessor {
  readonly spans: ReadableSpan[] = [];
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    if (span.instrumentationScope.name === "llm-resilience") this.spans.push(span);
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
  logical(): ReadableSpan[] {
    return this.spans.filter((s) => s.kind === 2 /* CLIENT */);
  }
  childrenOf(parent: ReadableSpan): ReadableSpan[] {
    const id = parent.spanContext().spanId;
    return this.spans
      .filter((s) => s.parentSpanContext?.spanId === id)
      .sort((a, b) => Number(a.attributes["llm_resilience.attempt.number"]) - Number(b.attributes["llm_resilience.attempt.number"]));
  }
}

/** Reads the meter provider when asked (cumulative temporality: every read is a running total). */
export class OnDemandReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}

  /** Every data point of every metric, flattened. */
  async points(): Promise<MetricPoint[]> {
    const { resourceMetrics } = await this.collect();
    const out: MetricPoint[] = [];
    for (const sm of resourceMetrics.scopeMetrics) {
      if (sm.scope.name !== "llm-resilience") continue;
      for (const m of sm.metrics) {
        for (const dp of m.dataPoints as any[]) {
          const histogram = m.dataPointType === DataPointType.HISTOGRAM;
          out.push({
            name: m.descriptor.name,
            attributes: dp.attributes,
            value: histogram ? dp.value.count : dp.value,
            sum: histogram ? dp.value.sum : dp.value,
          });
        }
      }
    }
    return out;
  }
}

export interface MetricPoint {
  name: string;
  attributes: Attributes;
  /** Counter / gauge value, or a histogram's count. */
  value: number;
  /** A histogram's sum (the value for counters and gauges). */
  sum: number;
}

/** Sum of `value` (or `sum`) over the points of `name` whose attributes match. */
export function total(points: MetricPoint[], name: string, match: Attributes = {}, field: "value" | "sum" = "value"): number {
  let t = 0;
  for (const p of points) {
    if (p.name !== name) continue;
    if (!Object.entries(match).every(([k, v]) => (v === undefined ? p.attributes[k] === undefined : p.attributes[k] === v))) continue;
    t += p[field];
  }
  return t;
}

export interface DemoTelemetry {
  collector: SpanCollector;
  reader: OnDemandReader;
  /** Where traces and metrics are exported, or undefined when they stay in this process. */
  otlpEndpoint: string | undefined;
  shutdown(): Promise<void>;
}

function otlpEndpoint(): string | undefined {
  const e = process.env;
  return e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || e.OTEL_EXPORTER_OTLP_ENDPOINT || e.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT || undefined;
}

function otlpExporters(): { spans: SpanExporter; metrics: PushMetricExporter } {
  // The OTLP exporters read the endpoint, headers and per-signal variables themselves.
  const protocol = (process.env.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf").trim();
  if (protocol === "http/json") {
    const { OTLPTraceExporter } = require("@opentelemetry/exporter-trace-otlp-http");
    const { OTLPMetricExporter } = require("@opentelemetry/exporter-metrics-otlp-http");
    return { spans: new OTLPTraceExporter(), metrics: new OTLPMetricExporter() };
  }
  const { OTLPTraceExporter } = require("@opentelemetry/exporter-trace-otlp-proto");
  const { OTLPMetricExporter } = require("@opentelemetry/exporter-metrics-otlp-proto");
  return { spans: new OTLPTraceExporter(), metrics: new OTLPMetricExporter() };
}

/** Starts the NodeSDK with our in-memory readers (and OTLP when configured). Call before register(). */
export function startTelemetry(): DemoTelemetry {
  const collector = new SpanCollector();
  const reader = new OnDemandReader();
  const endpoint = otlpEndpoint();
  const spanProcessors: SpanProcessor[] = [collector];
  const metricReaders: MetricReader[] = [reader];
  if (endpoint) {
    const exp = otlpExporters();
    spanProcessors.push(new BatchSpanProcessor(exp.spans, { maxQueueSize: 16_384, maxExportBatchSize: 1_024, scheduledDelayMillis: 1_000 }));
    const interval = Number(process.env.OTEL_METRIC_EXPORT_INTERVAL) || 5_000;
    metricReaders.push(new PeriodicExportingMetricReader({ exporter: exp.metrics, exportIntervalMillis: interval }));
  }
  const sdk = new NodeSDK({
    ...(process.env.OTEL_SERVICE_NAME ? {} : { serviceName: "llm-resilience-demo" }),
    spanProcessors,
    metricReaders,
    instrumentations: [],
    // No OTel log records in this demo (the library logs with pino).
    logRecordProcessors: [],
  });
  sdk.start();
  return { collector, reader, otlpEndpoint: endpoint, shutdown: () => sdk.shutdown() };
}
