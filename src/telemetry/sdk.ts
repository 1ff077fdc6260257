import { type DiagLogger, DiagLogLevel, diag, metrics, trace } from "@opentelemetry/api";
import { reportOnce } from "./logger.js";

type Sdk = { start(): void; shutdown(): Promise<void> };

let sdk: Sdk | undefined;
let shutdownPromise: Promise<void> | undefined;
let exitHandlersInstalled = false;

type Flushable = { forceFlush?: () => Promise<void> };

/** The provider behind the API's proxy (the proxy itself when it has none). */
function delegateOf(provider: object | undefined): object | undefined {
  const p = provider as { getDelegate?: () => object } | undefined;
  return typeof p?.getDelegate === "function" ? p.getDelegate() : p;
}

/** True when the application (or anyone before us) registered a tracer provider. */
export function hasTracerProvider(): boolean {
  return delegateOf(trace.getTracerProvider())?.constructor?.name !== "NoopTracerProvider";
}

export function hasMeterProvider(): boolean {
  return metrics.getMeterProvider()?.constructor?.name !== "NoopMeterProvider";
}

/** Forwards the OTel SDK's own errors (exporter down, …) to our logger, once per kind of message. */
function installDiagLogger(): void {
  const once =
    (level: string) =>
    (message: string, ...args: unknown[]) =>
      // Keyed without digits so "Dropped 12 spans" and "Dropped 13 spans" are one kind of message.
      reportOnce(`OpenTelemetry ${level}: ${String(message).slice(0, 200).replace(/\d+/g, "N")}`, args[0]);
  const logger: DiagLogger = {
    error: once("error"),
    warn: once("warning"),
    info: () => {},
    debug: () => {},
    verbose: () => {},
  };
  diag.setLogger(logger, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
}

/**
 * Starts the OpenTelemetry Node SDK from the standard OTEL_* variables, unless the application has
 * registered its own providers (then we only add our instrumentation to them).
 */
export function startSdkIfNeeded(): "started" | "app-owned" | "disabled" {
  if (sdk) return "started";
  if (hasTracerProvider()) return "app-owned";
  if (/^true$/i.test(process.env.OTEL_SDK_DISABLED ?? "")) return "disabled";
  try {
    if (!process.env.OTEL_LOG_LEVEL) installDiagLogger();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { NodeSDK } = require("@opentelemetry/sdk-node") as typeof import("@opentelemetry/sdk-node");
    const config: Record<string, unknown> = { instrumentations: [] };
    // We emit no OTel log records; don't stand up an idle OTLP log exporter unless asked to.
    if (!process.env.OTEL_LOGS_EXPORTER) config.logRecordProcessors = [];
    if (hasMeterProvider()) config.metricReaders = [];
    boundMetricRequestTimeout();
    sdk = new NodeSDK(config) as Sdk;
    sdk.start();
    installExitHandlers();
    return "started";
  } catch (err) {
    reportOnce("could not start the OpenTelemetry SDK; spans and metrics are not exported", err);
    return "disabled";
  }
}

const OTLP_DEFAULT_TIMEOUT_MS = 10_000;

/**
 * With a metric export interval at or below the OTLP request timeout (10 s unless set), failing
 * periodic exports overlap: a hanging or refusing collector then keeps a request pending at every
 * moment, the event loop never drains, and a process whose work is done never reaches beforeExit —
 * it never ends. The metric reader gives up on an export after one interval anyway, so unless the
 * user set a metrics-specific timeout, keep each metrics request shorter than the interval.
 */
function boundMetricRequestTimeout(env: NodeJS.ProcessEnv = process.env): void {
  if (env.OTEL_EXPORTER_OTLP_METRICS_TIMEOUT?.trim()) return;
  const interval = Number(env.OTEL_METRIC_EXPORT_INTERVAL?.trim() || 60_000);
  const timeout = Number(env.OTEL_EXPORTER_OTLP_TIMEOUT?.trim() || OTLP_DEFAULT_TIMEOUT_MS);
  if (!(interval > 0) || !(timeout > 0)) return;
  const bound = Math.max(1, Math.floor(interval * 0.8));
  if (bound < timeout) env.OTEL_EXPORTER_OTLP_METRICS_TIMEOUT = String(bound);
}

/** Flushes and stops the SDK we started (idempotent). */
export function shutdownSdk(): Promise<void> {
  if (!sdk) return Promise.resolve();
  shutdownPromise ??= sdk.shutdown().catch((err) => reportOnce("OpenTelemetry shutdown failed", err));
  return shutdownPromise;
}

/** Flushes whatever providers are registered (ours or the app's). */
export async function flushProviders(): Promise<void> {
  const delegate = delegateOf(trace.getTracerProvider()) as Flushable | undefined;
  const mp = metrics.getMeterProvider() as Flushable | undefined;
  await Promise.allSettled([delegate?.forceFlush?.(), mp?.forceFlush?.()]);
}

const FLUSH_LIMIT_MS = 5_000;

/** Resolves when `p` settles or after FLUSH_LIMIT_MS, with `true` when the limit was hit. */
function withLimit(p: Promise<void>): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(true), FLUSH_LIMIT_MS);
    t.unref();
    p.finally(() => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

/**
 * Spans are flushed when the process ends on its own (beforeExit), and on SIGTERM/SIGINT. On a signal
 * we flush, then let the default action happen unless the application handles the signal itself.
 * Either way the flush holds the process for at most FLUSH_LIMIT_MS.
 */
function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.once("beforeExit", () => {
    // The exporters' pending requests keep the process alive; a dead or hanging collector would hold
    // it for the whole export timeout and retries. Past the limit, finish the exit the app began.
    void withLimit(shutdownSdk()).then((timedOut) => {
      if (timedOut) process.exit();
    });
  });
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    const onSignal = () => {
      process.removeListener(signal, onSignal);
      void withLimit(shutdownSdk()).then(() => {
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      });
    };
    process.on(signal, onSignal);
  }
}

