import { context, metrics, propagation, type TextMapPropagator, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  defaultResource,
  detectResources,
  envDetector,
  hostDetector,
  osDetector,
  processDetector,
  type ResourceDetector,
  serviceInstanceIdDetector,
} from "@opentelemetry/resources";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import { metricReadersFromEnv, spanPipelinesFromEnv } from "./exporters.js";
import { reportOnce } from "./logger.js";
import type { SpanLedger } from "./span-ledger.js";

/**
 * The OpenTelemetry set-up register() stands up when the application has none, built from the
 * standard OTEL_* variables out of the SDK's parts (the tracer and meter providers, the exporters
 * asked for) rather than NodeSDK, which loads every exporter it knows. Built at register, made the
 * global one later (`install`), or dropped (`discard`) when the application registered its own first.
 */
export interface OwnSdk {
  /** Makes our providers the global ones, and the context manager and propagator where none is set. */
  install(): void;
  /** Flushes and stops everything we built. */
  shutdown(): Promise<void>;
  /** Stops what we built without it ever having been the global set-up. */
  discard(): Promise<void>;
  /** The pipelines that count what they could not send. */
  readonly ledgers: SpanLedger[];
}

type Env = NodeJS.ProcessEnv;

export function buildOwnSdk(opts: { metrics: boolean }, env: Env = process.env): OwnSdk {
  const resource = defaultResource().merge(detectResources({ detectors: resourceDetectors(env) }));
  const pipelines = spanPipelinesFromEnv(env);
  const tracerProvider =
    pipelines.length > 0 ? new BasicTracerProvider({ resource, spanProcessors: pipelines.flatMap((p) => p.processors) }) : undefined;
  const readers = opts.metrics ? metricReadersFromEnv(env) : [];
  let meterProvider = readers.length > 0 ? new MeterProvider({ resource, readers }) : undefined;
  if (env.OTEL_LOGS_EXPORTER?.trim() && env.OTEL_LOGS_EXPORTER.trim() !== "none") {
    reportOnce("OTEL_LOGS_EXPORTER is not set up by llm-resilience (it records no logs through OpenTelemetry); set up a LoggerProvider yourself");
  }

  const stop = () => Promise.all([tracerProvider?.shutdown(), meterProvider?.shutdown()]).then(() => {});
  return {
    ledgers: pipelines.flatMap((p) => (p.ledger ? [p.ledger] : [])),
    install() {
      if (tracerProvider) {
        trace.setGlobalTracerProvider(tracerProvider);
        if (!apiSlotTaken("context")) context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
        const propagator = propagatorFromEnv(env);
        if (propagator && !apiSlotTaken("propagation")) propagation.setGlobalPropagator(propagator);
      }
      if (meterProvider && !apiSlotTaken("metrics")) {
        metrics.setGlobalMeterProvider(meterProvider);
      } else if (meterProvider) {
        // The application registered a meter provider of its own since we built ours.
        void meterProvider.shutdown();
        meterProvider = undefined;
      }
    },
    shutdown: stop,
    discard: stop,
  };
}

/** Whether the OpenTelemetry API already holds a global of this kind (set by anyone). */
function apiSlotTaken(slot: "context" | "propagation" | "metrics"): boolean {
  const api = (globalThis as Record<symbol, Record<string, unknown> | undefined>)[Symbol.for("opentelemetry.js.api.1")];
  return api?.[slot] !== undefined;
}

const DETECTORS: Record<string, ResourceDetector> = {
  env: envDetector,
  host: hostDetector,
  os: osDetector,
  process: processDetector,
  serviceinstance: serviceInstanceIdDetector,
};

/** OTEL_NODE_RESOURCE_DETECTORS as NodeSDK reads it; unset: env, process, host (NodeSDK's default). */
function resourceDetectors(env: Env): ResourceDetector[] {
  const raw = env.OTEL_NODE_RESOURCE_DETECTORS?.trim();
  if (!raw) return [envDetector, processDetector, hostDetector];
  const names = raw.split(",").map((s) => s.trim());
  if (names.includes("all")) return Object.values(DETECTORS);
  if (names.includes("none")) return [];
  return names.flatMap((name) => {
    const detector = DETECTORS[name];
    if (!detector) reportOnce(`OTEL_NODE_RESOURCE_DETECTORS: unknown detector "${name}" (use ${Object.keys(DETECTORS).join(", ")}, all or none)`);
    return detector ? [detector] : [];
  });
}

/** OTEL_PROPAGATORS: W3C trace context and baggage when unset; b3 / jaeger need their packages. */
function propagatorFromEnv(env: Env): TextMapPropagator | undefined {
  const names = [
    ...new Set(
      (env.OTEL_PROPAGATORS ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  ];
  if (names.length === 0) return new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] });
  if (names.includes("none")) return undefined;
  const propagators = names.flatMap((name): TextMapPropagator[] => {
    if (name === "tracecontext") return [new W3CTraceContextPropagator()];
    if (name === "baggage") return [new W3CBaggagePropagator()];
    reportOnce(`OTEL_PROPAGATORS=${name} is not set up by llm-resilience (tracecontext, baggage or none); set up OpenTelemetry yourself to use it`);
    return [];
  });
  return propagators.length > 0 ? new CompositePropagator({ propagators }) : undefined;
}
