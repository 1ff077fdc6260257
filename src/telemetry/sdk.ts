import { diag, DiagLogLevel, metrics, trace, type DiagLogger } from "@opentelemetry/api";
import { reportOnce } from "./logger.js";

type Sdk = { start(): void; shutdown(): Promise<void> };

let sdk: Sdk | undefined;
let shutdownPromise: Promise<void> | undefined;
let exitHandlersInstalled = false;

/** True when the application (or anyone before us) registered a tracer provider. */
export function hasTracerProvider(): boolean {
  const p: any = trace.getTracerProvider();
  const delegate = typeof p?.getDelegate === "function" ? p.getDelegate() : p;
  return delegate?.constructor?.name !== "NoopTracerProvider";
}

export function hasMeterProvider(): boolean {
  return metrics.getMeterProvider()?.constructor?.name !== "NoopMeterProvider";
}

/** Forwards the OTel SDK's own errors (exporter down, …) to our logger, once per kind of message. */
function installDiagLogger(): void {
  const once = (level: string) => (message: string, ...args: unknown[]) =>
    reportOnce(`OpenTelemetry ${level}: ${String(message).slice(0, 200)}`, args[0]);
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
    sdk = new NodeSDK(config) as Sdk;
    sdk.start();
    installExitHandlers();
    return "started";
  } catch (err) {
    reportOnce("could not start the OpenTelemetry SDK; spans and metrics are not exported", err);
    return "disabled";
  }
}

/** Flushes and stops the SDK we started (idempotent). */
export function shutdownSdk(): Promise<void> {
  if (!sdk) return Promise.resolve();
  shutdownPromise ??= sdk.shutdown().catch((err) => reportOnce("OpenTelemetry shutdown failed", err));
  return shutdownPromise;
}

/** Flushes whatever providers are registered (ours or the app's). */
export async function flushProviders(): Promise<void> {
  const tp: any = trace.getTracerProvider();
  const delegate = typeof tp?.getDelegate === "function" ? tp.getDelegate() : tp;
  const mp: any = metrics.getMeterProvider();
  await Promise.allSettled([delegate?.forceFlush?.(), mp?.forceFlush?.()]);
}

const FLUSH_LIMIT_MS = 5_000;

function withLimit(p: Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, FLUSH_LIMIT_MS);
    t.unref();
    p.finally(() => {
      clearTimeout(t);
      resolve();
    });
  });
}

/**
 * Spans are flushed when the process ends on its own (beforeExit), and on SIGTERM/SIGINT. On a signal
 * we flush, then let the default action happen unless the application handles the signal itself.
 */
function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.once("beforeExit", () => {
    void withLimit(shutdownSdk());
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

/** For tests: forget the SDK we started. */
export function _resetSdkForTests(): void {
  sdk = undefined;
  shutdownPromise = undefined;
}
