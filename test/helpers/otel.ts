import { context, metrics, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { MeterProvider, MetricReader, type ResourceMetrics } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";

/** A collect-on-demand reader: tests read metrics when they want them. */
class TestReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

export interface TestTelemetry {
  spans: InMemorySpanExporter;
  reader: TestReader;
  finished(): ReadableSpan[];
  logical(): ReadableSpan[];
  attemptsOf(parent: ReadableSpan): ReadableSpan[];
  metrics(): Promise<ResourceMetrics>;
  /** Sum of a counter's / histogram's data points matching the attributes. */
  metricValue(name: string, match?: Record<string, unknown>): Promise<number>;
  reset(): void;
}

let installed: TestTelemetry | undefined;

/** Real OTel SDK providers registered globally, exporting to memory (the app-owned set-up case). */
export function installTestTelemetry(): TestTelemetry {
  if (installed) return installed;
  const spans = new InMemorySpanExporter();
  const tp = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(tp);
  const reader = new TestReader();
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  const t: TestTelemetry = {
    spans,
    reader,
    finished: () => spans.getFinishedSpans(),
    logical: () => spans.getFinishedSpans().filter((s) => s.kind === 2 /* CLIENT */),
    attemptsOf: (parent) =>
      spans
        .getFinishedSpans()
        .filter((s) => s.parentSpanContext?.spanId === parent.spanContext().spanId)
        .sort((a, b) => Number(a.attributes["llm_resilience.attempt.number"]) - Number(b.attributes["llm_resilience.attempt.number"])),
    metrics: async () => (await reader.collect()).resourceMetrics,
    metricValue: async (name, match = {}) => {
      const rm = (await reader.collect()).resourceMetrics;
      let total = 0;
      for (const sm of rm.scopeMetrics)
        for (const m of sm.metrics) {
          if (m.descriptor.name !== name) continue;
          for (const dp of m.dataPoints as any[]) {
            if (!Object.entries(match).every(([k, v]) => dp.attributes[k] === v)) continue;
            total += typeof dp.value === "number" ? dp.value : dp.value.count;
          }
        }
      return total;
    },
    reset: () => spans.reset(),
  };
  installed = t;
  return t;
}
