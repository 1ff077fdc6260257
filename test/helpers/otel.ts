import { context, diag, DiagLogLevel, metrics, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { MeterProvider, MetricReader, type ResourceMetrics } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanProcessor } from "@opentelemetry/sdk-trace-base";

/** A span's attribute (finished spans of the SDK, or their JSON from a child process). */
export const attr = (s: { attributes: Record<string, unknown> }, k: string): any => s.attributes[k];

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
  installed ??= buildTelemetry([]);
  return installed;
}

/** Real providers registered globally: the given span processors, then an in-memory exporter. */
function buildTelemetry(processors: SpanProcessor[], onReset: () => void = () => {}): TestTelemetry {
  const spans = new InMemorySpanExporter();
  const tp = new BasicTracerProvider({ spanProcessors: [...processors, new SimpleSpanProcessor(spans)] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(tp);
  const reader = new TestReader();
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  return {
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
    reset: () => {
      spans.reset();
      onReset();
    },
  };
}

/**
 * Counts span starts and ends per span id: proves every started span ended exactly once.
 * Install it with `installCountingTelemetry()` (it has to be in the provider from the start).
 */
export class SpanCounter {
  readonly started = new Map<string, string>();
  readonly ends = new Map<string, number>();
  onStart(span: { spanContext(): { spanId: string }; name: string }): void {
    this.started.set(span.spanContext().spanId, span.name);
  }
  onEnd(span: ReadableSpan): void {
    const id = span.spanContext().spanId;
    this.ends.set(id, (this.ends.get(id) ?? 0) + 1);
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
  reset(): void {
    this.started.clear();
    this.ends.clear();
  }
  /** Names of spans started but not (yet) ended. */
  open(): string[] {
    return [...this.started].filter(([id]) => !this.ends.has(id)).map(([, name]) => name);
  }
  /** Names of spans whose end was reported more than once. */
  endedTwice(): string[] {
    return [...this.ends].filter(([, n]) => n > 1).map(([id]) => this.started.get(id) ?? id);
  }
}

/**
 * Same as `installTestTelemetry()` plus a SpanCounter in the tracer provider. Call it before
 * anything else installs telemetry in the process (a test file's first set-up line).
 */
export function installCountingTelemetry(): { tel: TestTelemetry; counter: SpanCounter } {
  if (installed) throw new Error("installCountingTelemetry() must run before installTestTelemetry()");
  const counter = new SpanCounter();
  installed = buildTelemetry([counter as unknown as SpanProcessor], () => counter.reset());
  return { tel: installed, counter };
}

/**
 * Captures OpenTelemetry's diagnostic warnings. The SDK ignores a second `end()` (and any change to
 * an ended span) and only says so through `diag.warn("Cannot execute the operation on ended Span
 * ...")`: `endedSpanMisuse()` returns those, proving no span was ended twice or changed after its end.
 */
export function captureOtelWarnings(): { messages: string[]; endedSpanMisuse(): string[]; reset(): void } {
  const messages: string[] = [];
  const push = (m: string) => messages.push(String(m));
  diag.setLogger({ error: push, warn: push, info: () => {}, debug: () => {}, verbose: () => {} }, DiagLogLevel.WARN);
  return {
    messages,
    endedSpanMisuse: () => messages.filter((m) => m.includes("on ended Span")),
    reset: () => {
      messages.length = 0;
    },
  };
}
