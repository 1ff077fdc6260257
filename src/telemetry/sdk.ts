import { type DiagLogger, DiagLogLevel, diag, metrics, trace } from "@opentelemetry/api";
import { nextConnectionFailure } from "./collector-watch.js";
import { log, reportOnce } from "./logger.js";
import type { OwnSdk } from "./own-sdk.js";

/**
 * Our OpenTelemetry set-up for an application that has none, in two steps. `prepareSdk` (at register)
 * builds the providers and exporters, so that no call pays for it; `startSdkIfNeeded` (on the next
 * turn of the event loop, or at the first call if that comes sooner) makes them the global ones —
 * unless the application registered its own tracer provider in the meantime: then ours are dropped
 * unused and our spans go to the application's.
 */
let prepared: OwnSdk | undefined;
let sdk: OwnSdk | undefined;
let shutdownPromise: Promise<void> | undefined;
let exitHandlersInstalled = false;
let unsentReported = false;

type Flushable = { forceFlush?: () => Promise<void> };

/** The provider behind the API's proxy (the proxy itself when it has none). */
function delegateOf(provider: object | undefined): object | undefined {
  const p = provider as { getDelegate?: () => object } | undefined;
  return typeof p?.getDelegate === "function" ? p.getDelegate() : p;
}

/** True when the application (or anyone before us) registered a tracer provider. */
function hasTracerProvider(): boolean {
  return delegateOf(trace.getTracerProvider())?.constructor?.name !== "NoopTracerProvider";
}

function hasMeterProvider(): boolean {
  return metrics.getMeterProvider()?.constructor?.name !== "NoopMeterProvider";
}

const sdkDisabled = () => /^true$/i.test(process.env.OTEL_SDK_DISABLED?.trim() ?? "");

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
 * Builds our providers and exporters from the OTEL_* variables, not yet global. Nothing is built when
 * the application has registered a tracer provider already, or OTEL_SDK_DISABLED=true.
 */
export function prepareSdk(): void {
  if (prepared || sdk || hasTracerProvider() || sdkDisabled()) return;
  try {
    if (!process.env.OTEL_LOG_LEVEL) installDiagLogger();
    const { buildOwnSdk } = require("./own-sdk.js") as typeof import("./own-sdk.js");
    prepared = buildOwnSdk({ metrics: !hasMeterProvider() });
  } catch (err) {
    reportOnce("could not start the OpenTelemetry SDK; spans and metrics are not exported", err);
  }
}

/**
 * Makes our prepared set-up the global one, unless the application has registered its own tracer
 * provider (then ours is dropped and we only add our spans and metrics to the application's).
 */
export function startSdkIfNeeded(): "started" | "app-owned" | "disabled" {
  if (sdk) return "started";
  if (hasTracerProvider()) {
    void prepared?.discard();
    prepared = undefined;
    return "app-owned";
  }
  prepareSdk();
  if (!prepared) return "disabled";
  sdk = prepared;
  prepared = undefined;
  try {
    sdk.install();
  } catch (err) {
    reportOnce("could not start the OpenTelemetry SDK; spans and metrics are not exported", err);
  }
  installExitHandlers();
  return "started";
}

/** Flushes and stops the SDK we started (idempotent), then says how many spans could not be sent. */
export function shutdownSdk(): Promise<void> {
  if (!sdk) return Promise.resolve();
  shutdownPromise ??= sdk
    .shutdown()
    .catch((err) => reportOnce("OpenTelemetry shutdown failed", err))
    .then(() => reportUnsent());
  return shutdownPromise;
}

/** Flushes whatever providers are registered (ours or the app's). */
export async function flushProviders(): Promise<void> {
  const delegate = delegateOf(trace.getTracerProvider()) as Flushable | undefined;
  const mp = metrics.getMeterProvider() as Flushable | undefined;
  await Promise.allSettled([delegate?.forceFlush?.(), mp?.forceFlush?.()]);
}

/** One warning, the first time there is something to say: the spans that never reached the collector. */
function reportUnsent(reason?: string): void {
  if (unsentReported || !sdk) return;
  for (const ledger of sdk.ledgers) {
    if (ledger.unsent === 0) continue;
    unsentReported = true;
    const why = reason ?? ledger.lastError ?? "the export did not finish";
    try {
      log().warn(
        { spans: ledger.unsent, endpoint: ledger.endpoint, reason: why },
        `llm-resilience: ${ledger.unsent} spans could not be sent to ${ledger.endpoint}: ${why}`,
      );
    } catch {
      // a broken logger must not break the exit either
    }
  }
}

const FLUSH_LIMIT_MS = 5_000;

/**
 * The flush at exit, bounded: it ends when the SDK has shut down, after FLUSH_LIMIT_MS (a collector
 * that does not answer), or at once when a connection to the collector fails (down: the exporters
 * would otherwise retry with back-off for their whole timeout). Resolves with whether it finished.
 */
async function flushAtExit(): Promise<boolean> {
  const failure = nextConnectionFailure();
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    shutdownSdk().then(() => ({ done: true as const })),
    failure.failed.then((reason) => ({ done: false as const, reason })),
    new Promise<{ done: false; reason: string }>((resolve) => {
      timer = setTimeout(() => resolve({ done: false, reason: `no answer from the collector within ${FLUSH_LIMIT_MS / 1000} s` }), FLUSH_LIMIT_MS);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
  failure.cancel();
  if (!outcome.done) reportUnsent(outcome.reason);
  return outcome.done;
}

/**
 * Spans are flushed when the process ends on its own (beforeExit), and on SIGTERM/SIGINT. On a signal
 * we flush, then let the default action happen unless the application handles the signal itself.
 * A flush cut short (collector down or silent) ends the exit the application began.
 */
function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.once("beforeExit", () => {
    void flushAtExit().then((done) => {
      if (!done) process.exit();
    });
  });
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    const onSignal = () => {
      process.removeListener(signal, onSignal);
      void flushAtExit().then(() => {
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      });
    };
    process.on(signal, onSignal);
  }
}
